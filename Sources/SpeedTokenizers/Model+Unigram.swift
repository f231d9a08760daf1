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

    func tokenize(_ word: Scalars) -> [Int] { tokenizeWithValues(word).map(\.0) }

    /// An unknown run's token is its own text, not the unk piece, as in HF.
    func tokenizeWithValues(_ word: Scalars) -> [(Int, String?)] {
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
        var out: [(Int, String?)] = []
        var i = n
        // Consecutive unknown code points fuse into one unk whose text spans them.
        var unkEnd: Int? = nil
        while i > 0 {
            let b = best[i]
            guard b.start >= 0 else { return unkId.map { [($0, String(word))] } ?? [] }
            if b.id == unkId, byteFallback {
                var bytes: [Int] = []
                for s in word[b.start..<i] {
                    for byte in UTF8.encode(s)! {
                        if let id = vocab.ids[Array(String(format: "<0x%02X>", byte).utf8)] { bytes.append(id) }
                    }
                }
                out.append(contentsOf: bytes.reversed().map { ($0, nil) })
            } else if b.id == unkId {
                if let end = unkEnd, out.last?.0 == unkId {
                    out[out.count - 1] = (b.id, String(word[b.start..<end]))
                } else {
                    out.append((b.id, String(word[b.start..<i])))
                    unkEnd = i
                }
                i = b.start
                continue
            } else {
                out.append((b.id, nil))
            }
            unkEnd = nil
            i = b.start
        }
        return out.reversed()
    }
}
