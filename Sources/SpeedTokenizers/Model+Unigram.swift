// The Unigram model (SentencePiece): Viterbi segmentation maximizing the sum of piece log-probabilities.
// Invariant: a code point no piece covers becomes the unk piece, scored like HF (min score - 10), and consecutive
// unknowns fuse into one unk as HF's Unigram does.
import Foundation

final class UnigramModel: TokenModel {
    let vocab: Vocabulary
    let scores: [Double]
    let unkId: Int?
    let byteFallback: Bool
    let maxPieceLength: Int
    let unkScore: Double

    init(_ c: ModelConfig, key: String = "model") throws {
        var map: [String: Int] = [:]
        for (i, p) in c.pieces.enumerated() where map[p.piece] == nil { map[p.piece] = i }
        vocab = try Vocabulary(map, key: "\(key).vocab")
        scores = c.pieces.map(\.score)
        unkId = c.unkId
        byteFallback = c.byteFallback ?? false
        maxPieceLength = c.pieces.map { $0.piece.unicodeScalars.count }.max() ?? 1
        unkScore = (scores.min() ?? 0) - 10
    }

    var vocabularySize: Int { scores.count }
    func id(of token: [UInt8]) -> Int? { vocab.ids[token] }
    func token(of id: Int) -> String? { vocab.token(id) }

    /// An unknown run's token is its own text, not the unk piece, as in HF; with byte_fallback the run becomes its
    /// bytes' <0xXX> tokens, each spanning the whole run (HF gives them the run's offsets).
    func tokenize(_ word: Scalars) -> [ModelToken] {
        let n = word.count
        guard n > 0 else { return [] }
        // best[i]: best score of word[0..<i], with the start and id of its last piece.
        var best = [(score: Double, start: Int, id: Int)](repeating: (-.infinity, -1, -1), count: n + 1)
        best[0] = (0, 0, -1)
        for i in 0..<n where best[i].score > -.infinity {
            var hasSingle = false
            for len in 1...min(maxPieceLength, n - i) {
                guard let id = vocab.ids[utf8Key(word[i..<(i + len)])] else { continue }
                if len == 1 { hasSingle = true }
                let s = best[i].score + scores[id]
                if s > best[i + len].score { best[i + len] = (s, i, id) }
            }
            if !hasSingle, let unkId {
                let s = best[i].score + unkScore
                if s > best[i + 1].score { best[i + 1] = (s, i, unkId) }
            }
        }
        // Pieces from the end, consecutive unknown code points fused into one run.
        var pieces: [(id: Int, span: Range<Int>)] = []
        var i = n
        while i > 0 {
            let b = best[i]
            guard b.start >= 0 else {
                return unkId.map { [ModelToken($0, String(word), 0..<n)] } ?? []
            }
            if b.id == unkId, let last = pieces.last, last.id == unkId, last.span.lowerBound == i {
                pieces[pieces.count - 1].span = b.start..<last.span.upperBound
            } else {
                pieces.append((b.id, b.start..<i))
            }
            i = b.start
        }
        var out: [ModelToken] = []
        out.reserveCapacity(pieces.count)
        for p in pieces.reversed() {
            guard p.id == unkId else { out.append(ModelToken(p.id, nil, p.span)); continue }
            if byteFallback {
                let bytes = word[p.span].flatMap { UTF8.encode($0)! }
                let ids = bytes.map { vocab.ids[Array(String(format: "<0x%02X>", $0).utf8)] }
                if ids.allSatisfy({ $0 != nil }) {
                    for id in ids { out.append(ModelToken(id!, nil, p.span)) }
                    continue
                }
            }
            out.append(ModelToken(p.id, String(word[p.span]), p.span))
        }
        return out
    }
}
