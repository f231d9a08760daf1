// The guide's examples (docs/SpeedTokenizers.md), loading errors, the Codable round trip and concurrent use.
// Invariant: every literal id here was printed by HF tokenizers 0.23.3 for the same fixture files.
import Foundation
import Testing
@testable import SpeedTokenizers

@Suite struct TokenizerAPITests {
    @Test func theGuidesExamples() throws {
        let bert = try fixtureTokenizer("bert")
        let e = bert.encode("Hello world!", pair: "How are you?")
        #expect(e.ids == [101, 7592, 2088, 999, 102, 2129, 2024, 2017, 1029, 102])
        #expect(e.typeIds == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        #expect(Array(e.tokens.prefix(6)) == ["[CLS]", "hello", "world", "!", "[SEP]", "how"])
        #expect(bert.decode(e.ids) == "hello world! how are you?")
        #expect(bert.decode(e.ids, skipSpecialTokens: false) == "[CLS] hello world! [SEP] how are you? [SEP]")
        #expect(bert.encode("[MASK] is typed", addSpecialTokens: false).ids == [103, 2003, 21189])
        let batch = bert.encodeBatch(["short", "a somewhat longer text"],
                                     padding: Padding(strategy: .longest, padId: 0, padToken: "[PAD]"),
                                     truncation: Truncation(maxLength: 128))
        #expect(batch.map(\.attentionMask) == [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
        let gpt2 = try fixtureTokenizer("gpt2")
        #expect(gpt2.encode("Hello world<|endoftext|>").ids == [15496, 995, 50256])
        #expect(gpt2.returnsTokenTypeIds == false)
        #expect(bert.returnsTokenTypeIds == true)
        #expect(bert.config?.clsToken == "[CLS]")
        #expect(bert.id(of: "[MASK]") == 103)
        #expect(gpt2.token(of: 50256) == "<|endoftext|>")
    }

    @Test func fixedPaddingOnTheLeftAndMultiples() throws {
        let bert = try fixtureTokenizer("bert")
        let b = bert.encodeBatch(["hello", "hello world"], padding: Padding(strategy: .fixed(6), left: true))
        #expect(b[0].ids == [0, 0, 0, 101, 7592, 102])
        #expect(b[0].attentionMask == [0, 0, 0, 1, 1, 1])
        let m = bert.encodeBatch(["hello"], padding: Padding(strategy: .longest, padToMultipleOf: 8))
        #expect(m[0].count == 8)
    }

    @Test func vocabulariesKeepEveryToken() throws {
        // UTF-8 keys: no two tokens collapse under Swift's canonical String equality.
        #expect(try fixtureTokenizer("bert").vocabularySize == 30522)
        #expect(try fixtureTokenizer("gpt2").vocabularySize == 50257)
    }

    @Test func gpt2SplitFollowsTheRegex() {
        func words(_ s: String) -> [String] { ByteLevel.split(s.scalars).map { String(s.scalars[$0]) } }
        #expect(words("I'm  here\n\nnow 123abc!!") == ["I", "'m", " ", " here", "\n", "\n", "now", " 123", "abc", "!!"])
        #expect(words("a   ") == ["a", "   "])
        #expect(words("it''s") == ["it", "''", "s"])
    }

    @Test func longWordsMergeAsShortOnes() throws {
        let gpt2 = try fixtureTokenizer("gpt2")
        let model = try #require(gpt2.model as? BPEModel)
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzéü日本🤗".unicodeScalars)
        for length in [49, 80, 300, 2000] {
            let word = ByteLevel.encode((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
            let initial = word.map { model.vocab.ids[utf8Key(CollectionOfOne($0))]! }
            let lens = initial.indices.map { $0 % 3 + 1 }
            var (short, shortLens) = (initial, lens)
            model.mergeShort(&short, &shortLens)
            let (long, longLens) = model.mergeLong(initial, lens)
            #expect(long == short, "length \(length)")
            #expect(longLens == shortLens, "length \(length)")
        }
        // A 200,000-character "word" (a base64 blob, say) stays fast with the heap.
        let blob = String(repeating: "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", count: 6000)
        let clock = ContinuousClock()
        let elapsed = clock.measure { _ = gpt2.encode(blob) }
        #expect(elapsed < .seconds(30))
    }

    @Test func bothMergesFormatsGiveTheSameIds() throws {
        // The fixture has tokenizers 0.23's [["a", "b"]] merges; rewrite them in the older "a b" form.
        let url = fixtures.appendingPathComponent("bpe-small/tokenizer.json")
        var json = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var model = try #require(json["model"] as? [String: Any])
        let pairs = try #require(model["merges"] as? [[String]])
        model["merges"] = pairs.map { $0.joined(separator: " ") }
        json["model"] = model
        let legacy = try Tokenizer(file: JSONDecoder().decode(TokenizerFile.self, from: JSONSerialization.data(withJSONObject: json)))
        let modern = try fixtureTokenizer("bpe-small")
        for text in ["Hello world, I'm here", "naïve café 🤗", "  spaces  "] {
            #expect(legacy.encode(text).ids == modern.encode(text).ids)
        }
    }

    @Test func theByteLevelNormalizer() throws {
        // HF tokenizers 0.23.3 with llama3-bpe-small, normalizer ByteLevel, pre-tokenizer Split(" ", MergedWithNext).
        var file = try fixtureTokenizer("llama3-bpe-small").file
        file.normalizer = NormalizerConfig(type: "ByteLevel")
        var split = PreTokenizerConfig(type: "Split")
        split.pattern = PatternConfig(string: " ")
        split.behavior = "MergedWithNext"
        file.preTokenizer = split
        let tok = try Tokenizer(file: file)
        #expect(tok.encode("Hello world, naïve 🤗", addSpecialTokens: false).ids == [314, 283, 302, 13, 413, 222, 174, 255, 99, 247])
        #expect(tok.encode(" two  spaces", addSpecialTokens: false).ids == [258, 88, 80, 267, 84, 81, 66, 68, 70, 84])
    }

    @Test func aCodableRoundTripKeepsTheIds() throws {
        let file = try fixtureTokenizer("bpe-small").file
        let again = try Tokenizer(file: JSONDecoder().decode(TokenizerFile.self, from: JSONEncoder().encode(file)))
        let text = "hello <mask> word, I'm here 🤗"
        #expect(again.encode(text).ids == (try fixtureTokenizer("bpe-small")).encode(text).ids)
    }

    @Test func errorsNameTheFileAndKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sstok-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("tokenizer.json")
        try Data(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Precompiled"}}"#.utf8).write(to: bad)
        #expect { try Tokenizer(contentsOf: bad) } throws: { "\($0)".contains("normalizer") && "\($0)".contains("Precompiled") }
        try Data(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#.utf8).write(to: bad)
        #expect { try Tokenizer(contentsOf: bad) } throws: { "\($0)".contains("model.merges[0]") }
        try Data(#"{"added_tokens": []}"#.utf8).write(to: bad)
        #expect { try Tokenizer(contentsOf: bad) } throws: { "\($0)".contains(bad.path) && "\($0)".contains("model") }
        #expect { try Tokenizer(contentsOf: dir.appendingPathComponent("missing")) } throws: { "\($0)".contains("missing") }
    }

    @Test func oneTokenizerEncodesFromManyTasks() async throws {
        let gpt2 = try fixtureTokenizer("gpt2")
        let texts = (0..<64).map { "line \($0): the quick brown fox jumps over the lazy dog \($0 * 7919)" }
        let serial = texts.map { gpt2.encode($0).ids }
        let parallel = await withTaskGroup(of: (Int, [Int]).self) { group in
            for (i, t) in texts.enumerated() { group.addTask { (i, gpt2.encode(t).ids) } }
            var out = [[Int]](repeating: [], count: texts.count)
            for await (i, ids) in group { out[i] = ids }
            return out
        }
        #expect(parallel == serial)
        #expect(gpt2.encodeBatch(texts).map(\.ids) == serial)
    }
}
