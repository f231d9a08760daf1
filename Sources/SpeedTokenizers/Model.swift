// The models that turn one pre-tokenized word into ids: the protocol, WordPiece and WordLevel (BPE in Model+BPE.swift,
// Unigram in Model+Unigram.swift), each token with the scalars of the word it covers.
// Invariant: vocabularies are keyed by UTF-8 bytes, so two canonically equivalent but different tokens stay distinct.
import Foundation

/// One token of a word: its id, the text HF reports when it is not the vocabulary's (Unigram's unknown pieces), and
/// the scalars of the word it covers (a byte-fallback token covers the whole scalar its byte belongs to).
struct ModelToken: Sendable, Equatable {
    var id: Int
    var value: String?
    var start: Int
    var end: Int

    init(_ id: Int, _ value: String? = nil, _ span: Range<Int>) {
        self.id = id; self.value = value; start = span.lowerBound; end = span.upperBound
    }
}

protocol TokenModel: Sendable {
    /// The tokens of one word.
    func tokenize(_ word: Scalars) -> [ModelToken]
    func id(of token: [UInt8]) -> Int?
    func token(of id: Int) -> String?
    var vocabularySize: Int { get }
}

/// The `{token: id}` map and its inverse.
struct Vocabulary: Sendable {
    let ids: [[UInt8]: Int]
    let tokens: [String?]

    init(_ vocab: [String: Int], key: String) throws {
        var ids: [[UInt8]: Int] = [:]
        ids.reserveCapacity(vocab.count)
        var maxId = -1
        for (t, i) in vocab {
            guard i >= 0 else { throw TokenizerError.invalid(key: key, reason: "token \(t) has negative id \(i)") }
            ids[Array(t.utf8)] = i
            maxId = max(maxId, i)
        }
        var tokens = [String?](repeating: nil, count: maxId + 1)
        for (t, i) in vocab { tokens[i] = t }
        self.ids = ids
        self.tokens = tokens
    }

    func token(_ id: Int) -> String? { id >= 0 && id < tokens.count ? tokens[id] : nil }
}

final class WordPieceModel: TokenModel {
    let vocab: Vocabulary
    let unkId: Int
    let prefix: [UInt8]
    let maxChars: Int

    init(_ c: ModelConfig, key: String = "model") throws {
        vocab = try Vocabulary(c.vocab, key: "\(key).vocab")
        let unk = c.unkToken ?? "[UNK]"
        guard let id = vocab.ids[Array(unk.utf8)] else {
            throw TokenizerError.invalid(key: "\(key).unk_token", reason: "unk token \(unk) is not in the vocabulary")
        }
        unkId = id
        prefix = Array((c.continuingSubwordPrefix ?? "##").utf8)
        maxChars = c.maxInputCharsPerWord ?? 100
    }

    var vocabularySize: Int { vocab.ids.count }
    func id(of token: [UInt8]) -> Int? { vocab.ids[token] }
    func token(of id: Int) -> String? { vocab.token(id) }

    func tokenize(_ word: Scalars) -> [ModelToken] {
        guard !word.isEmpty else { return [] }
        let whole = [ModelToken(unkId, nil, 0..<word.count)]
        if word.count > maxChars { return whole }
        var out: [ModelToken] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int? = nil
            while start < end {
                if let id = vocab.ids[utf8Key(word[start..<end], prefix: start > 0 ? prefix : [])] { found = id; break }
                end -= 1
            }
            guard let id = found else { return whole }
            out.append(ModelToken(id, nil, start..<end))
            start = end
        }
        return out
    }
}

final class WordLevelModel: TokenModel {
    let vocab: Vocabulary
    let unkId: Int?

    init(_ c: ModelConfig, key: String = "model") throws {
        let v = try Vocabulary(c.vocab, key: "\(key).vocab")
        vocab = v
        unkId = c.unkToken.flatMap { v.ids[Array($0.utf8)] }
    }

    var vocabularySize: Int { vocab.ids.count }
    func id(of token: [UInt8]) -> Int? { vocab.ids[token] }
    func token(of id: Int) -> String? { vocab.token(id) }
    func tokenize(_ word: Scalars) -> [ModelToken] {
        if let id = vocab.ids[utf8Key(word)] ?? unkId { return [ModelToken(id, nil, 0..<word.count)] }
        return []
    }
}
