// Every fixture tokenizer against the ids, tokens, type ids and decodes Hugging Face tokenizers gave
// (Fixtures/expected.json, written by scripts/make_tokenizer_fixtures.py).
// Invariant: the fixtures are the real GPT-2 and BERT (all-MiniLM-L6-v2) files plus small tokenizers trained by the
// tokenizers library itself, so each comparison is against HF's own pipeline, not a re-implementation.
import Foundation
import Testing
@testable import SpeedTokenizers

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

struct Expected: Decodable {
    struct Case: Decodable {
        var text: String
        var pair: String?
        var add_special_tokens: Bool
        var ids: [Int]
        var tokens: [String]
        var type_ids: [Int]
        var attention_mask: [Int]
        var special_tokens_mask: [Int]
        var decoded: String
        var decoded_with_special: String
        var offsets: [[Int]]
        var word_ids: [Int?]
        var sequence_ids: [Int?]
    }
    struct Row: Decodable {
        var ids: [Int]; var type_ids: [Int]; var attention_mask: [Int]; var special_tokens_mask: [Int]?
        var offsets: [[Int]]; var word_ids: [Int?]; var sequence_ids: [Int?]
    }
    /// One text through a probe tokenizer: the normalized text and each normalized character's offsets.
    struct Probe: Decodable { var text: String; var normalized: String; var offsets: [[Int]] }
    struct Batch: Decodable {
        var texts: [String]
        var pairs: [String]
        var max_length: Int
        var pad_token: String
        var batch: [Row]
        var pair_batch: [Row]
    }
    var tokenizers_version: String
    var cases: [String: [Case]]
    var probes: [String: [Probe]]
    var batches: [String: Batch]
    /// A pre-tokenizer alone: the pieces of each text with their code-point offsets.
    struct Split: Decodable { var pre_tokenizer: PreTokenizerConfig; var text: String; var pieces: [[Piece]] }
    enum Piece: Decodable {
        case text(String), offsets([Int])
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s) } else { self = .offsets(try c.decode([Int].self)) }
        }
    }
    struct CTCCase: Decodable { var decoder: DecoderConfig; var tokens: [String]; var decoded: String }
    var pre_tokenizers: [Split]
    var ctc: [CTCCase]
}

/// Offsets as the fixture's `[start, end]` pairs.
func pairs(_ offsets: [Range<Int>]) -> [[Int]] { offsets.map { [$0.lowerBound, $0.upperBound] } }

let expected: Expected = try! JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("expected.json")))

/// Each fixture from its folder (GPT-2's holds only its legacy vocab.json + merges.txt, as AutoTokenizer reads them).
func fixtureTokenizer(_ name: String) throws -> Tokenizer {
    try Tokenizer(contentsOf: fixtures.appendingPathComponent(name))
}

@Suite struct HFFixtureTests {
    @Test func aFolderWithOnlyGPT2sLegacyFilesLoadsAsThePair() throws {
        let dir = fixtures.appendingPathComponent("gpt2")
        let pair = try Tokenizer(gpt2Vocabulary: dir.appendingPathComponent("vocab.json"),
                                 merges: dir.appendingPathComponent("merges.txt"))
        let folder = try Tokenizer(contentsOf: dir)
        for c in try #require(expected.cases["gpt2"]) {
            #expect(folder.encode(c.text, pair: c.pair).ids == pair.encode(c.text, pair: c.pair).ids)
        }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect { try Tokenizer(contentsOf: empty) } throws: {
            "\($0)".contains("tokenizer.json") && "\($0)".contains("vocab.json + merges.txt")
        }
    }

    @Test(arguments: ["gpt2", "bert", "bpe-small", "wordpiece-small", "unigram-small", "llama-bpe-small", "llama3-bpe-small", "wordlevel-small", "unigram-spm",
                      "unigram-scripts-small"])
    func idsMatchHuggingFace(_ name: String) throws {
        let tok = try fixtureTokenizer(name)
        let cases = try #require(expected.cases[name])
        var failures = 0
        for c in cases {
            let e = tok.encode(c.text, pair: c.pair, addSpecialTokens: c.add_special_tokens)
            let label = "\(name) \(c.text.debugDescription) pair \(c.pair?.debugDescription ?? "-") special \(c.add_special_tokens)"
            if e.ids != c.ids { failures += 1 }
            #expect(e.ids == c.ids, "\(label): ids\n  \(e.tokens)\n  \(c.tokens)")
            if e.ids == c.ids {
                #expect(e.tokens == c.tokens, "\(label): tokens")
                #expect(e.typeIds == c.type_ids, "\(label): type ids")
                #expect(e.attentionMask == c.attention_mask, "\(label): attention mask")
                #expect(e.specialTokensMask == c.special_tokens_mask, "\(label): special tokens mask")
                #expect(pairs(e.offsets) == c.offsets, "\(label): offsets\n  \(e.tokens)")
                #expect(e.wordIds == c.word_ids, "\(label): word ids")
                #expect(e.sequenceIds == c.sequence_ids, "\(label): sequence ids")
            }
            #expect(tok.decode(c.ids) == c.decoded, "\(label): decode")
            #expect(tok.decode(c.ids, skipSpecialTokens: false) == c.decoded_with_special, "\(label): decode with specials")
        }
        #expect(cases.count > 60)
    }

    /// Pre-tokenizers alone: UnicodeScripts on mixed-script text and 600 strings of random code points from every
    /// plane (its Unicode 9 script table, Hiragana/Katakana as Han, space joining any script, the leading spaces
    /// dropped), FixedLength at three lengths: the same pieces and offsets as tokenizers'.
    @Test func preTokenizersSplitAsHuggingFace() throws {
        var wrong: [String] = []
        for c in expected.pre_tokenizers {
            let pieces = try PreTokenizer(c.pre_tokenizer).apply([NormalizedText(Scalars(c.text.unicodeScalars))])
            let got = pieces.map { p -> String in
                let r = p.original(0..<p.count)
                return "\(String(String.UnicodeScalarView(p.scalars))) \(r.lowerBound)..<\(r.upperBound)"
            }
            let want = c.pieces.map { piece -> String in
                guard case .text(let t) = piece[0], case .offsets(let o) = piece[1] else { return "?" }
                return "\(t) \(o[0])..<\(o[1])"
            }
            if got != want { wrong.append("\(c.pre_tokenizer.type) \(c.text.debugDescription): \(got) vs \(want)") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) texts differ, e.g. \(wrong.prefix(3))")
        #expect(expected.pre_tokenizers.filter { $0.pre_tokenizer.type == "UnicodeScripts" }.count > 600)
        #expect(expected.pre_tokenizers.filter { $0.pre_tokenizer.type == "FixedLength" }.count == 48)
    }

    /// The CTC decoder: repeats collapse, blanks go, the word delimiter becomes a space (then WordPiece's cleanup).
    @Test func ctcDecodesAsHuggingFace() throws {
        for c in expected.ctc {
            let d = try TokenDecoder(c.decoder)
            #expect(d.decodeChain(c.tokens).joined() == c.decoded, "\(c.tokens) with \(c.decoder.padToken ?? "-")")
        }
        #expect(expected.ctc.count >= 15)
    }

    @Test(arguments: ["bert", "gpt2"])
    func batchesPadAndTruncateAsHuggingFace(_ name: String) throws {
        let tok = try fixtureTokenizer(name)
        let b = try #require(expected.batches[name])
        let padding = Padding(strategy: .longest, padId: tok.id(of: b.pad_token)!, padToken: b.pad_token)
        let truncation = Truncation(maxLength: b.max_length)
        let single = tok.encodeBatch(b.texts, padding: padding, truncation: truncation)
        #expect(single.map(\.ids) == b.batch.map(\.ids))
        #expect(single.map(\.attentionMask) == b.batch.map(\.attention_mask))
        #expect(single.map(\.typeIds) == b.batch.map(\.type_ids))
        #expect(single.map(\.specialTokensMask) == b.batch.map { $0.special_tokens_mask ?? [] })
        let pairs = tok.encodeBatch(b.texts, pairs: b.pairs, padding: padding, truncation: truncation)
        #expect(pairs.map(\.ids) == b.pair_batch.map(\.ids))
        #expect(pairs.map(\.attentionMask) == b.pair_batch.map(\.attention_mask))
        #expect(pairs.map(\.typeIds) == b.pair_batch.map(\.type_ids))
        #expect(single.map { SpeedTokenizersTests.pairs($0.offsets) } == b.batch.map(\.offsets))
        #expect(single.map(\.wordIds) == b.batch.map(\.word_ids))
        #expect(single.map(\.sequenceIds) == b.batch.map(\.sequence_ids))
        #expect(pairs.map { SpeedTokenizersTests.pairs($0.offsets) } == b.pair_batch.map(\.offsets))
        #expect(pairs.map(\.wordIds) == b.pair_batch.map(\.word_ids))
        #expect(pairs.map(\.sequenceIds) == b.pair_batch.map(\.sequence_ids))
    }

    /// Each normalizer on its own (and in sequences): one token per normalized character, so every character's
    /// alignment to the original text is compared with HF's.
    @Test(arguments: ["nfd", "nfkd", "nfc", "nfkc", "lowercase", "strip-accents", "nfd-strip-accents", "bert", "bert-cased",
                      "replace", "prepend", "strip", "byte-level", "mixed"])
    func normalizerAlignmentsMatchHuggingFace(_ name: String) throws {
        let tok = try Tokenizer(contentsOf: fixtures.appendingPathComponent("probes/\(name).json"))
        let probes = try #require(expected.probes[name])
        for p in probes {
            let e = tok.encode(p.text)
            let label = "\(name) \(p.text.debugDescription): normalized \(p.normalized.debugDescription)"
            #expect(e.tokens.count == p.normalized.unicodeScalars.count, "\(label): \(e.tokens.count) tokens")
            #expect(pairs(e.offsets) == p.offsets, "\(name) \(p.text.debugDescription) -> \(p.normalized.debugDescription)")
        }
        #expect(probes.count > 20)
    }
}
