// Character classes and single-code-point normalizations against HF itself for every code point
// (Fixtures/unicode-classes.json, read from tokenizers 0.23.3's own components by scripts/make_tokenizer_fixtures.py).
// Invariant: the regex engines' classes (Oniguruma: ByteLevel's pattern and Split; Rust's regex crate: Whitespace)
// stop at Unicode 16 while Rust's char methods (Digits, WhitespaceSplit) and Swift's stdlib know Unicode 17; the
// normalizers' tables are older still (Normalizer+Tables.swift).
import Foundation
import Testing
@testable import SpeedTokenizers

@Suite struct UnicodeTableTests {
    struct File: Decodable { var classes: [String: [[UInt32]]]; var normalizers: [String: [String: String]] }
    static let file = try! JSONDecoder().decode(File.self, from: Data(contentsOf: fixtures.appendingPathComponent("unicode-classes.json")))
    static let all: [Unicode.Scalar] = (UInt32(0)..<0x110000).compactMap(Unicode.Scalar.init)

    static func members(_ name: String) -> Set<UInt32> {
        Set(file.classes[name]!.flatMap { $0[0]...$0[1] })
    }

    /// The code points where `predicate` and HF's class disagree (hex, the first few).
    static func disagreements(_ name: String, _ predicate: (Unicode.Scalar) -> Bool) -> [String] {
        let hf = members(name)
        return all.filter { predicate($0) != hf.contains($0.value) }.map { String($0.value, radix: 16) }
    }

    @Test func predicatesMatchHuggingFaceForEveryCodePoint() {
        for (name, predicate) in [("onig_L", { (c: Unicode.Scalar) in c.isLetterHF }), ("onig_N", { $0.isNumberHF }),
                                  ("rust_regex_w", { $0.isWordHF }), ("onig_s", { $0.isWhitespaceHF }),
                                  ("rust_whitespace", { $0.isWhitespaceHF }), ("rust_numeric", { $0.isNumericHF })] {
            let wrong = Self.disagreements(name, predicate)
            #expect(wrong.isEmpty, "\(name): \(wrong.count) code points differ, e.g. \(wrong.prefix(8))")
        }
        #expect(Self.members("onig_L").count > 140_000 && Self.members("rust_numeric").count > 1900)
    }

    @Test(arguments: [("onig_L", #"\p{L}"#), ("onig_N", #"\p{N}"#), ("onig_w", #"\w"#), ("onig_s", #"\s"#),
                      ("onig_d", #"\d"#), ("onig_P", #"\p{P}"#), ("onig_S", #"\p{S}"#), ("onig_M", #"\p{M}"#),
                      ("onig_Lu", #"\p{Lu}"#), ("onig_Nd", #"\p{Nd}"#)])
    func splitRegexClassesMatchOniguruma(name: String, regex: String) throws {
        // A Split pattern sees each class as Oniguruma does: the same members over all of Unicode, alone and inside
        // a bracket expression (negated, as the Whitespace and Llama 3 patterns use them).
        let hf = Self.members(name)
        for (pattern, inverted) in [(regex, false), ("[^\(regex)]", true)] {
            let p = try Pattern(PatternConfig(regex: pattern), key: "pattern")
            var matched = Set<UInt32>()
            for r in p.matches(in: Self.all) { for i in r { matched.insert(Self.all[i].value) } }
            let wrong = Self.all.filter { matched.contains($0.value) != (hf.contains($0.value) != inverted) }
            #expect(wrong.isEmpty, "\(pattern): \(wrong.count) code points differ, e.g. \(wrong.prefix(8).map { String($0.value, radix: 16) })")
        }
    }

    @Test func onlyRealWordEscapesAreRewritten() {
        let w = "[\(Pattern.onigWord)]"
        #expect(Pattern.oniguruma(#"\w+|[^\w\s]+"#) == w + "+|[^" + w + #"\s]+"#)
        #expect(Pattern.oniguruma(#"a\\w\W"#) == #"a\\w[^"# + Pattern.onigWord + "]")
        #expect(Pattern.oniguruma(#"\Q\w\E\w"#) == #"\Q\w\E"# + w)
    }

    /// NFD, NFKD, NFC, NFKC, Lowercase, StripAccents and BERT's accent strip on every code point alone give HF's
    /// result: decompositions only where the crate's (Unicode 11-era) tables have them, its marks, ICU's pair
    /// compositions made to agree ("\u{CCB}" stays whole).
    @Test(arguments: ["NFD", "NFKD", "NFC", "NFKC", "Lowercase", "StripAccents", "BertStripAccents"])
    func normalizersMatchHuggingFaceForEveryCodePoint(name: String) throws {
        var config = NormalizerConfig(type: name)
        if name == "BertStripAccents" {
            config = NormalizerConfig(type: "BertNormalizer")
            config.cleanText = false; config.handleChineseChars = false; config.stripAccents = true; config.lowercase = false
        }
        let normalizer = try Normalizer(config)
        let hf = try #require(Self.file.normalizers[name])
        var wrong: [String] = []
        for c in Self.all where !(0xAC00...0xD7A3).contains(c.value) {
            let got = normalizer.apply([c]).map { String($0.value, radix: 16) }.joined(separator: " ")
            let want = hf[String(c.value, radix: 16)] ?? String(c.value, radix: 16)
            if got != want { wrong.append("\(String(c.value, radix: 16)) → \(got), HF \(want)") }
        }
        #expect(wrong.isEmpty, "\(name): \(wrong.count) code points differ, e.g. \(wrong.prefix(6))")
        #expect(hf.count > 1000)
    }

    /// Canonical reordering as HF's crate does it: "a" + c + U+0334 (class 1) for every c below U+20000 that NFD leaves
    /// whole — the marks its
    /// tables know move after U+0334 when their class is higher, the 154 newer ones stay put as starters.
    @Test func canonicalReorderingMatchesHuggingFace() throws {
        let hf = try #require(Self.file.normalizers["NFDReorder"])
        let nfd = try Normalizer(NormalizerConfig(type: "NFD"))
        var wrong: [String] = []
        let whole = Self.file.normalizers["NFD"]!
        for c in Self.all where c.value >= 0x300 && c.value < 0x20000 && whole[String(c.value, radix: 16)] == nil
            && !(0xAC00...0xD7A3).contains(c.value) {
            let got = nfd.apply(["a", c, "\u{334}"]).map { String($0.value, radix: 16) }.joined(separator: " ")
            let want = hf[String(c.value, radix: 16)] ?? "61 \(String(c.value, radix: 16)) 334"
            if got != want { wrong.append("\(String(c.value, radix: 16)) → \(got), HF \(want)") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) code points differ, e.g. \(wrong.prefix(6))")
        #expect(hf.count > 500)
    }
}
