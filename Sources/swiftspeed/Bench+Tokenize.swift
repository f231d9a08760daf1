// B8: `swiftspeed bench tokenize --tokenizer PATH --corpus FILE`: tokens per second of `encodeBatch` over a corpus's lines.
// Invariant: the timed call is exactly what a data pipeline runs (encodeBatch, special tokens on, no padding), and
// the warm-up pass fills the BPE word cache as HF's own warm-up run would.
import ArgumentParser
import Foundation
import SwiftSpeed

extension Bench {
    struct TokenizeThroughput: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tokenize",
            abstract: "B8: encodeBatch over a corpus's non-empty lines (e.g. Debian's fortunes), tokens per second.")

        @Option(help: "A tokenizer.json, a folder with one, or a folder with GPT-2's vocab.json + merges.txt.")
        var tokenizer: String
        @Option(help: "A UTF-8 text file; each non-empty line is one input.") var corpus: String
        @Option(help: "Threads (B8 uses 2).") var threads: Int = 2
        @Option(help: "Timed repetitions after one warm-up.") var repeats: Int = 3
        @Flag(help: "Print one JSON line.") var json = false

        func run() throws {
            let tok = try Tokenize.load(tokenizer)
            let text: String
            do { text = try String(contentsOf: URL(fileURLWithPath: corpus), encoding: .utf8) } catch {
                throw ValidationError("cannot read the corpus \(corpus): \(error.localizedDescription); pass a UTF-8 text file")
            }
            // Split by code point: "\r\n" is one Character, and its "\r" is part of the line (as in Python).
            let lines = text.unicodeScalars.split(separator: "\n").map { String(String.UnicodeScalarView($0)) }
            _ = tok.encodeBatch(lines, threads: threads)
            var best = Double.infinity, tokens = 0
            for _ in 0..<max(1, repeats) {
                let t0 = now()
                let out = tok.encodeBatch(lines, threads: threads)
                best = min(best, now() - t0)
                tokens = out.reduce(0) { $0 + $1.count }
            }
            let rate = Double(tokens) / best
            if json {
                print("{\"case\":\"B8\",\"tokenizer\":\"\(tokenizer)\",\"lines\":\(lines.count),\"tokens\":\(tokens),\"threads\":\(threads),\"seconds\":\(best),\"tokens_per_s\":\(rate)}")
            } else {
                print(String(format: "B8 %@: %d lines, %d tokens in %.3f s on %d threads: %.2f M tokens/s",
                             tokenizer, lines.count, tokens, best, threads, rate / 1e6))
            }
        }
    }
}
