// `swiftspeed tokenize` end to end: stdin lines against the ids Hugging Face gave (SpeedTokenizersTests' fixtures).
// Invariant: the expected ids are read from Fixtures/expected.json, so the CLI and the library test check the same
// HF values; lines holding "\n" or "\r" are skipped (one stdin line is one input) and a TAB line is a pair.
import Foundation
import Testing

/// Runs the built `swiftspeed` with `input` on its stdin.
func swiftspeed(_ args: [String], stdin input: String) throws -> (status: Int32, stdout: String, stderr: String) {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    let inp = Pipe(), out = Pipe(), err = Pipe()
    p.standardInput = inp
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Write from another thread so a full stdout pipe cannot deadlock the writer.
    let writer = Thread {
        inp.fileHandleForWriting.write(Data(input.utf8))
        try? inp.fileHandleForWriting.close()
    }
    writer.start()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

private let tokenizerFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("SpeedTokenizersTests/Fixtures")

private struct HFCase: Decodable {
    var text: String
    var pair: String?
    var add_special_tokens: Bool
    var ids: [Int]
    var type_ids: [Int]
    var offsets: [[Int]]
}

private struct HFExpected: Decodable { var cases: [String: [HFCase]] }

/// `name`'s fixture cases that fit on one stdin line (default special tokens; no CR, LF or TAB inside), and those
/// lines (a pair as `text TAB pair`).
private func lineCases(_ name: String) throws -> ([HFCase], String) {
    let all = try JSONDecoder().decode(HFExpected.self, from: Data(contentsOf: tokenizerFixtures.appendingPathComponent("expected.json")))
    let cases = try #require(all.cases[name]).filter { (c: HFCase) -> Bool in
        let whole = c.text + (c.pair ?? "")
        return c.add_special_tokens && !whole.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\t" }
    }
    let input = cases.map { (c: HFCase) -> String in c.pair.map { "\(c.text)\t\($0)" } ?? c.text }
        .joined(separator: "\n") + "\n"
    return (cases, input)
}

@Suite struct TokenizeCommandTests {
    @Test(arguments: [("bert", true), ("gpt2", false), ("bpe-small", false), ("unigram-small", true), ("unigram-spm", false)])
    func linesGiveHuggingFaceIds(_ name: String, _ typeIds: Bool) throws {
        let (cases, input) = try lineCases(name)
        let r = try swiftspeed(["tokenize", "--tokenizer", tokenizerFixtures.appendingPathComponent(name).path], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        try #require(lines.count == cases.count, "\(lines.count) output lines for \(cases.count) inputs")
        for (line, c) in zip(lines, cases) {
            let obj = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [Int]])
            #expect(obj["input_ids"] == c.ids, "\(name) \(c.text.debugDescription)")
            #expect(obj["attention_mask"] == Array(repeating: 1, count: c.ids.count))
            #expect(obj["token_type_ids"] == (typeIds ? c.type_ids : nil), "\(name) \(c.text.debugDescription)")
        }
        #expect(cases.count > 20)
    }

    /// `--offsets` gives HF's `offset_mapping` (character offsets; [0, 0] for special tokens; a pair's second text
    /// counted from after the TAB) for byte-level BPE, WordPiece and the Precompiled Unigram, over accents, CJK, emoji,
    /// full-width forms, ligatures, circled digits and odd whitespace.
    @Test(arguments: ["gpt2", "bert", "unigram-spm"])
    func offsetsAreHuggingFaces(_ name: String) throws {
        let (cases, input) = try lineCases(name)
        let r = try swiftspeed(["tokenize", "--tokenizer", tokenizerFixtures.appendingPathComponent(name).path, "--offsets"],
                               stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        try #require(lines.count == cases.count, "\(lines.count) output lines for \(cases.count) inputs")
        var nonASCII = 0
        for (line, c) in zip(lines, cases) {
            let obj = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(obj["input_ids"] as? [Int] == c.ids, "\(name) \(c.text.debugDescription)")
            #expect(obj["offset_mapping"] as? [[Int]] == c.offsets, "\(name) \(c.text.debugDescription)")
            if (c.text + (c.pair ?? "")).unicodeScalars.contains(where: { $0.value > 0x7F }) { nonASCII += 1 }
        }
        #expect(nonASCII > 30)
    }

    @Test func offsetsLiterals() throws {
        // transformers 5.25 `tokenizer(text, return_offsets_mapping=True)` for the same files (the guide's examples
        // among them).
        let bert = try swiftspeed(["tokenize", "--tokenizer", tokenizerFixtures.appendingPathComponent("bert").path, "--offsets"],
                                  stdin: "Héllo wörld ①\nHello\twörld\nHéllo wörld\tＦｕｌｌ\n")
        #expect(bert.stdout == """
            {"input_ids":[101,7592,2088,100,102],"token_type_ids":[0,0,0,0,0],"attention_mask":[1,1,1,1,1],"offset_mapping":[[0,0],[0,5],[6,11],[12,13],[0,0]]}
            {"input_ids":[101,7592,102,2088,102],"token_type_ids":[0,0,0,1,1],"attention_mask":[1,1,1,1,1],"offset_mapping":[[0,0],[0,5],[0,0],[0,5],[0,0]]}
            {"input_ids":[101,7592,2088,102,100,102],"token_type_ids":[0,0,0,0,1,1],"attention_mask":[1,1,1,1,1,1],"offset_mapping":[[0,0],[0,5],[6,11],[0,0],[0,4],[0,0]]}

            """)
        let gpt2 = try swiftspeed(["tokenize", "--tokenizer", tokenizerFixtures.appendingPathComponent("gpt2").path, "--offsets"],
                                  stdin: "naïve café 🤗\nnaïve café 🤗 日本\n")
        #expect(gpt2.stdout == """
            {"input_ids":[2616,38776,40304,12520,97,245],"attention_mask":[1,1,1,1,1,1],"offset_mapping":[[0,2],[2,5],[6,10],[11,12],[11,12],[11,12]]}
            {"input_ids":[2616,38776,40304,12520,97,245,10545,245,98,17312,105],"attention_mask":[1,1,1,1,1,1,1,1,1,1,1],\
            "offset_mapping":[[0,2],[2,5],[6,10],[11,12],[11,12],[11,12],[13,14],[13,14],[13,14],[14,15],[14,15]]}

            """)
        let spm = try swiftspeed(["tokenize", "--tokenizer", tokenizerFixtures.appendingPathComponent("unigram-spm").path,
                                  "--offsets", "--tokens"], stdin: "ﬁne Ｆｕｌｌ①\u{3000}日本語\n")
        #expect(spm.stdout == """
            {"input_ids":[58,3,81,22,15,151,3,132,50,133,2],"attention_mask":[1,1,1,1,1,1,1,1,1,1,1],\
            "offset_mapping":[[0,3],[3,4],[4,5],[5,6],[6,8],[8,9],[9,10],[10,11],[11,12],[12,13],[0,0]],\
            "tokens":["▁fine","▁","F","u","ll","1","▁","日","本","語","</s>"]}

            """)
    }

    @Test func emptyLineAndTypedSpecialTokens() throws {
        let bert = tokenizerFixtures.appendingPathComponent("bert/tokenizer.json").path
        let r = try swiftspeed(["tokenize", "--tokenizer", bert], stdin: "\nHello [MASK] world\nHello\tthere\n")
        #expect(r.status == 0, "\(r.stderr)")
        // The values of transformers' AutoTokenizer for all-MiniLM-L6-v2.
        #expect(r.stdout == """
            {"input_ids":[101,102],"token_type_ids":[0,0],"attention_mask":[1,1]}
            {"input_ids":[101,7592,103,2088,102],"token_type_ids":[0,0,0,0,0],"attention_mask":[1,1,1,1,1]}
            {"input_ids":[101,7592,102,2045,102],"token_type_ids":[0,0,0,1,1],"attention_mask":[1,1,1,1,1]}

            """)
        let gpt2 = tokenizerFixtures.appendingPathComponent("gpt2").path
        let g = try swiftspeed(["tokenize", "--tokenizer", gpt2], stdin: "\na<|endoftext|>b\n")
        #expect(g.stdout == "{\"input_ids\":[],\"attention_mask\":[]}\n{\"input_ids\":[64,50256,65],\"attention_mask\":[1,1,1]}\n")
    }

    @Test func withoutSpecialTokensAndWithTokens() throws {
        let bert = tokenizerFixtures.appendingPathComponent("bert").path
        let r = try swiftspeed(["tokenize", "--tokenizer", bert, "--no-special-tokens", "--tokens"], stdin: "Hello [MASK]\n")
        #expect(r.stdout == #"{"input_ids":[7592,103],"token_type_ids":[0,0],"attention_mask":[1,1],"tokens":["hello","[MASK]"]}"# + "\n")
    }

    @Test func aMissingTokenizerNamesThePath() throws {
        let r = try swiftspeed(["tokenize", "--tokenizer", "/nonexistent/tok"], stdin: "x\n")
        #expect(r.status != 0)
        #expect(r.stderr.contains("/nonexistent/tok"))
    }
}
