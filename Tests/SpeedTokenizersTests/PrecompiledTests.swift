// The Precompiled normalizer (SentencePiece's precompiled_charsmap) against HF tokenizers, its load errors, and
// malformed charsmaps that must neither trap nor hang.
// Invariant: the charsmap is the real nmt_nfkc one of Fixtures/unigram-spm (trained by sentencepiece, converted by
// transformers' T5Converter); the probe values come from HF tokenizers 0.23.3 over that same charsmap.
import Foundation
import Testing
@testable import SpeedTokenizers

/// unigram-spm's Precompiled normalizer config (the first of its Sequence).
func spmPrecompiled() throws -> NormalizerConfig {
    let file = try fixtureTokenizer("unigram-spm").file
    let seq = try #require(file.normalizer?.normalizers)
    return try #require(seq.first { $0.type == "Precompiled" })
}

/// A TokenizerFile whose normalizer is `n` alone (the probe model: BPE with only [UNK], no pre-tokenizer).
func probeFile(_ n: NormalizerConfig) throws -> TokenizerFile {
    var file = try JSONDecoder().decode(TokenizerFile.self, from: Data(contentsOf: fixtures.appendingPathComponent("probes/nfc.json")))
    file.normalizer = n
    return file
}

/// `units` and `pool` as a precompiled_charsmap blob.
func charsmapBlob(_ units: [UInt32], pool: [UInt8], size: UInt32? = nil) -> [UInt8] {
    func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    return le(size ?? UInt32(units.count * 4)) + units.flatMap(le) + pool
}

@Suite struct PrecompiledTests {
    /// One token per normalized character: every character's text and alignment against HF's.
    @Test func alignmentsMatchHuggingFace() throws {
        let config = try spmPrecompiled()
        let tok = try Tokenizer(file: probeFile(config))
        let normalizer = try Normalizer(config)
        let probes = try #require(expected.probes["precompiled"])
        for p in probes {
            #expect(normalizer.apply(p.text.scalars) == p.normalized.scalars, "\(p.text.debugDescription)")
            let e = tok.encode(p.text)
            #expect(e.tokens.count == p.normalized.unicodeScalars.count, "\(p.text.debugDescription): \(e.tokens.count) tokens")
            #expect(pairs(e.offsets) == p.offsets, "\(p.text.debugDescription) -> \(p.normalized.debugDescription)")
        }
        #expect(probes.count > 30)
    }

    /// nmt_nfkc's rewrites, as HF tokenizers 0.23.3's `normalize_str` gives them: NFKC, whitespace to " ", controls
    /// dropped, and a grapheme under 6 bytes replaced whole by its first scalar's entry (the acute after ﬁ is lost); the
    /// ZWJ stays (the crate's own test map, an older nmt_nfkc, turns it into a space).
    @Test func nmtNfkcRewrites() throws {
        let n = try Normalizer(spmPrecompiled())
        func norm(_ s: String) -> String { String(String.UnicodeScalarView(n.apply(s.scalars))) }
        #expect(norm("ﬁ ①② Ｆｕｌｌ") == "fi 12 Full")
        #expect(norm("tab\there\u{3000}x\u{00a0}y") == "tab here x y")
        #expect(norm("ﬁ\u{301}x") == "fix")
        #expect(norm("a\u{1}b\u{7f}c") == "abc")
        #expect(norm("e\u{301}") == "\u{e9}")
        #expect(norm("𝔾𝕠") == "Go")
        #expect(norm("\u{200d}x") == "\u{200d}x")
        #expect(norm("plain ascii") == "plain ascii")
    }

    @Test func loadErrorsNameTheKey() throws {
        let key = "normalizer.normalizers[0].precompiled_charsmap"
        func load(_ charsmap: String?) throws {
            var p = NormalizerConfig(type: "Precompiled")
            p.precompiledCharsmap = charsmap
            var seq = NormalizerConfig(type: "Sequence")
            seq.normalizers = [p]
            _ = try Tokenizer(file: probeFile(seq))
        }
        func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
        #expect { try load("not base64!") } throws: { "\($0)".contains(key) && "\($0)".contains("base64") }
        #expect { try load(nil) } throws: { "\($0)".contains(key) }
        #expect { try load("") } throws: { "\($0)".contains(key) && "\($0)".contains("truncated: 0 bytes") }
        #expect { try load(b64([8, 0, 0])) } throws: { "\($0)".contains(key) && "\($0)".contains("truncated") }
        // The trie says 64 bytes, 8 follow.
        #expect { try load(b64(charsmapBlob([1, 2], pool: [], size: 64))) } throws: {
            "\($0)".contains(key) && "\($0)".contains("64 bytes but only 8")
        }
        #expect { try load(b64(charsmapBlob([1], pool: [0xC3, 0x28, 0]))) } throws: { "\($0)".contains("not UTF-8") }
        // The real charsmap cut short.
        let base64 = try #require(try spmPrecompiled().precompiledCharsmap)
        let real = try #require(Data(base64Encoded: base64))
        #expect { try load(b64(Array(real.prefix(1000)))) } throws: { "\($0)".contains(key) && "\($0)".contains("truncated") }
        try load(b64(Array(real)))
    }

    /// A hand-made trie of 512 units with one key, "a" -> "xy" (root offset 1; 'a' at 1 ^ 0x61 = 96 with has-leaf and
    /// offset 1; its leaf at 97 holds pool index 0): the values are HF tokenizers 0.23.3's for the same blob. Then the
    /// same trie with its leaf past the pool (HF panics; here: no replacement), a shorter trie that HF indexes past
    /// (HF panics on "b"), and garbage.
    @Test func handMadeAndMalformedTries() throws {
        var units = [UInt32](repeating: 0, count: 512)
        units[0] = 1 << 10
        units[96] = 0x61 | 1 << 8 | 1 << 10
        units[97] = 0
        let map = try PrecompiledCharsmap(blob: charsmapBlob(units, pool: Array("xy\0".utf8)), key: "k")
        for (text, normalized, offsets) in [("bab", "bxyb", [0..<1, 1..<2, 1..<2, 2..<3]),
                                            ("aé🤗a", "xyé🤗xy", [0..<1, 0..<1, 1..<2, 2..<3, 3..<4, 3..<4]),
                                            ("a\u{301}b", "xyb", [0..<1, 1..<2, 2..<3])] {
            var t = NormalizedText(text.scalars)
            map.apply(&t)
            #expect(t.scalars == normalized.scalars, "\(text.debugDescription)")
            #expect(t.alignments() == offsets, "\(text.debugDescription)")
        }
        let short = try PrecompiledCharsmap(blob: charsmapBlob(Array(units.prefix(98)), pool: Array("xy\0".utf8)), key: "k")
        var b = NormalizedText("bab".scalars)
        short.apply(&b)
        #expect(b.scalars == "bxyb".scalars)
        units[97] = 100
        let past = try PrecompiledCharsmap(blob: charsmapBlob(units, pool: Array("xy\0".utf8)), key: "k")
        #expect(past.replacement(Array("a".utf8)) == nil)
        // Every unit all ones: offsets and labels point anywhere, nothing matches, nothing traps.
        let garbage = try PrecompiledCharsmap(blob: charsmapBlob([UInt32](repeating: .max, count: 300), pool: []), key: "k")
        let empty = try PrecompiledCharsmap(blob: charsmapBlob([], pool: []), key: "k")
        for m in [garbage, empty] {
            var u = NormalizedText("naïve 日本 🤗\u{0}x".scalars)
            m.apply(&u)
            #expect(u.scalars == "naïve 日本 🤗\u{0}x".scalars)
        }
    }

    @Test func aCodableRoundTripKeepsTheCharsmap() throws {
        let file = try fixtureTokenizer("unigram-spm").file
        let again = try Tokenizer(file: JSONDecoder().decode(TokenizerFile.self, from: JSONEncoder().encode(file)))
        let text = "ﬁne Ｆｕｌｌ ①　日本語 🤗"
        let e = again.encode(text), f = try fixtureTokenizer("unigram-spm").encode(text)
        #expect(e.ids == f.ids && e.offsets == f.offsets)
    }
}
