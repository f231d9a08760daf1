// `swiftspeed config` end to end: the JSON report on stdout, did-you-mean warnings on stderr, status 1 on errors.
// Invariant: stdout carries only the JSON document, so it can be piped.
import Foundation
import SwiftSpeed
import Testing

@Suite struct ConfigCommandTests {
    func write(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ds_\(UUID().uuidString).json")
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func printsJSONAndWarnings() throws {
        let url = try write(#"{"train_batch_size": 16, "gradient_acumulation_steps": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.5}}}"#)
        defer { try? FileManager.default.removeItem(at: url) }
        let r = try swiftspeed(["config", url.path, "--world-size", "2", "--lr-steps", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONValue.parse(r.stdout)
        guard case .object(let o) = json else { Issue.record("stdout is not a JSON object: \(r.stdout)"); return }
        #expect(o["train_micro_batch_size_per_gpu"] == 8 && o["optimizer"] == "sgd" && o["lr"] == [0.5, 0.5])
        #expect(r.stderr.contains(#"did you mean "gradient_accumulation_steps""#))
    }

    @Test func invalidConfigExitsWithStatus1() throws {
        let url = try write(#"{"train_batch_size": 24, "train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2}"#)
        defer { try? FileManager.default.removeItem(at: url) }
        let r = try swiftspeed(["config", url.path, "--world-size", "2"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("train_batch_size 24 != 3 * 2 * 2"))
    }
}
