// HF's `Nmt` normalizer and BertNormalizer's `clean_text` (which code points each drops and which become spaces: every
// code point below U+30000 was run through tokenizers 0.23.3's `normalize_str`) and `CharDelimiterSplit`, with the
// offsets HF reports.
import Foundation
import Testing
@testable import SpeedTokenizers

@Suite struct NormalizerRulesTests {
    /// tokenizers 0.23.3 drops exactly these and maps exactly those to " "; every other code point is unchanged.
    static let dropped: Set<UInt32> = Set(Array(0x01...0x08) + [0x0B] + Array(0x0E...0x1F) + [0x7F, 0x8F, 0x9F])
    static let spaced: Set<UInt32> = [0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F,
                                      0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD]

    @Test func everyCodePointAsHuggingFace() throws {
        var wrong: [String] = []
        for v in UInt32(0)..<0x30000 {
            guard let c = Unicode.Scalar(v) else { continue }
            let out = Normalizer.nmt.apply([c])
            let want: [Unicode.Scalar] = Self.dropped.contains(v) ? [] : Self.spaced.contains(v) ? [" "] : [c]
            if out != want { wrong.append(String(v, radix: 16)) }
        }
        #expect(wrong.isEmpty, "code points normalized unlike HF: \(wrong.prefix(20))")
    }

    /// Fixtures/bert-clean-text.json: the code-point ranges `BertNormalizer(clean_text=True)` (nothing else on) drops
    /// (Cc, Cf, Co — unassigned code points stay) and maps to " " (whitespace); every other code point is unchanged.
    @Test func bertCleanTextDropsAndSpacesExactlyAsHuggingFace() throws {
        struct Ranges: Decodable { var dropped: [[UInt32]]; var spaced: [[UInt32]] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/bert-clean-text.json")
        let r = try JSONDecoder().decode(Ranges.self, from: Data(contentsOf: url))
        let dropped = Set(r.dropped.flatMap { $0[0]...$0[1] }), spaced = Set(r.spaced.flatMap { $0[0]...$0[1] })
        let config = #"{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": false, "strip_accents": false, "lowercase": false}"#
        let bert = try Normalizer(JSONDecoder().decode(NormalizerConfig.self, from: Data(config.utf8)))
        var wrong: [String] = []
        for v in UInt32(0)..<0x30000 {
            guard let c = Unicode.Scalar(v) else { continue }
            let want: [Unicode.Scalar] = dropped.contains(v) ? [] : spaced.contains(v) ? [" "] : [c]
            if bert.apply([c]) != want { wrong.append(String(v, radix: 16)) }
        }
        #expect(wrong.isEmpty, "code points cleaned unlike HF: \(wrong.prefix(20))")
        #expect(dropped.contains(0xE000) && !dropped.contains(0x0378), "private use dropped, unassigned kept")
    }

    /// Fixtures/bert-punctuation.json: the code points below U+30000 that tokenizers 0.23.3's BertPreTokenizer splits
    /// off as punctuation ("a" + c + "a" gives three pieces) — ASCII punctuation and P* as of Unicode 8.0, the tables
    /// HF's rule reads (so U+2E43 stays in the word, U+166D, Po then, is split off). The Punctuation pre-tokenizer
    /// shares the rule.
    @Test func bertPunctuationIsHuggingFacesForEveryCodePoint() throws {
        struct Ranges: Decodable { var punctuation: [[UInt32]] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/bert-punctuation.json")
        let r = try JSONDecoder().decode(Ranges.self, from: Data(contentsOf: url))
        let punctuation = Set(r.punctuation.flatMap { $0[0]...$0[1] })
        var wrong: [String] = []
        for v in UInt32(0)..<0x30000 {
            guard let c = Unicode.Scalar(v) else { continue }
            if c.isBertPunctuation != punctuation.contains(v) { wrong.append(String(v, radix: 16)) }
        }
        #expect(wrong.isEmpty, "punctuation unlike HF: \(wrong.prefix(20))")
        #expect(punctuation.contains(0x166D) && !punctuation.contains(0x2E43))
    }

    /// tokenizer.json, tokens and offsets from tokenizers 0.23.3 (WordLevel over Nmt + WhitespaceSplit).
    @Test func offsetsAsHuggingFace() throws {
        let json = #"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":{"type":"Nmt"},"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"ab":0,"cd":1,"e":2,"f":3,"gh":4,"x":5,"y":6,"[UNK]":7},"unk_token":"[UNK]"}}"#
        let file = try JSONDecoder().decode(TokenizerFile.self, from: Data(json.utf8))
        let tok = try Tokenizer(file: file)
        let e = tok.encode("a\u{0001}b\tc\u{000b}d\n\u{200b}e\u{2581}f\u{feff}\u{fffd}g\u{007f}\u{009f}h x\u{2028}y")
        #expect(e.tokens == ["ab", "cd", "e", "f", "gh", "x", "y"])
        #expect(e.ids == [0, 1, 2, 3, 4, 5, 6])
        #expect(e.offsets == [0..<3, 4..<7, 9..<10, 11..<12, 14..<18, 19..<20, 21..<22])
    }

    /// tokenizer.json and encoding from tokenizers 0.23.3 (WordLevel over CharDelimiterSplit("_")).
    @Test func charDelimiterSplitAsHuggingFace() throws {
        let json = #"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"CharDelimiterSplit","delimiter":"_"},"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"ab":0,"cd":1,"é":2,"x y":3,"[UNK]":4},"unk_token":"[UNK]"}}"#
        let tok = try Tokenizer(file: try JSONDecoder().decode(TokenizerFile.self, from: Data(json.utf8)))
        let e = tok.encode("ab_cd__é_x y_")
        #expect(e.tokens == ["ab", "cd", "é", "x y"])
        #expect(e.offsets == [0..<2, 3..<5, 7..<8, 9..<12])
        #expect(e.wordIds == [0, 1, 2, 3])
        let bad = #"{"model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"},"pre_tokenizer":{"type":"CharDelimiterSplit","delimiter":"ab"}}"#
        #expect { try Tokenizer(file: try JSONDecoder().decode(TokenizerFile.self, from: Data(bad.utf8))) } throws: {
            "\($0)".contains("pre_tokenizer.delimiter")
        }
    }
}
