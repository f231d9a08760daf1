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
}

private struct HFExpected: Decodable { var cases: [String: [HFCase]] }

@Suite struct TokenizeCommandTests {
    @Test(arguments: [("bert", true), ("gpt2", false), ("bpe-small", false), ("unigram-small", true)])
    func linesGiveHuggingFaceIds(_ name: String, _ typeIds: Bool) throws {
        let all = try JSONDecoder().decode(HFExpected.self, from: Data(contentsOf: tokenizerFixtures.appendingPathComponent("expected.json")))
        let cases = try #require(all.cases[name]).filter { (c: HFCase) -> Bool in
            let whole = c.text + (c.pair ?? "")
            return c.add_special_tokens && !whole.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\t" }
        }
        let input = cases.map { (c: HFCase) -> String in c.pair.map { "\(c.text)\t\($0)" } ?? c.text }
            .joined(separator: "\n") + "\n"
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
