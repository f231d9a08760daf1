// End-to-end: `swiftspeed train --checkpoint-activations` prints the same losses as a plain run and a
// lower `peak_mem_bytes`. Invariant: both runs use one seed and config, so only checkpointing differs.
import Foundation
import Testing

/// Each JSON line's fields, in step order.
private func records(_ stdout: String) throws -> [[String: Any]] {
    try stdout.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}

@Suite(.serialized) struct TrainCheckpointActivationsTests {
    @Test func checkpointingKeepsTheLossesAndLowersThePeakMemory() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds.json")
        try #"""
            {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1,
             "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
             "activation_checkpointing": {"cpu_checkpointing": false}}
            """#.write(to: cfg, atomically: true, encoding: .utf8)
        let common = ["train", "--model", "gpt-mini", "--config", cfg.path, "--synthetic", "--json", "--steps", "2",
                      "--seed", "5"]
        let plain = try swiftspeed(common), ckpt = try swiftspeed(common + ["--checkpoint-activations"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(ckpt.status == 0, "\(ckpt.stderr)")
        let (a, b) = (try records(plain.stdout), try records(ckpt.stdout))
        #expect(a.count == 2 && b.count == 2)
        #expect(a.map { $0["loss"] as? Double } == b.map { $0["loss"] as? Double })
        let peakA = try #require(a.last?["peak_mem_bytes"] as? Int), peakB = try #require(b.last?["peak_mem_bytes"] as? Int)
        let resident = a.last!["mem_params_bytes"] as! Int + (a.last!["mem_grads_bytes"] as! Int)
            + (a.last!["mem_optim_bytes"] as! Int)
        #expect(peakA > resident && peakB > resident, "the peak includes weights, gradients and optimizer state")
        #expect(peakB < peakA, "checkpointed peak \(peakB) vs plain \(peakA)")
        // The activations above the resident buffers shrink by more than a fifth (the logits and the
        // loss are not checkpointed, so they stay).
        #expect(Double(peakB - resident) < 0.8 * Double(peakA - resident), "activations \(peakB - resident) vs \(peakA - resident)")
    }

    @Test func theFlagIsForGPTModelsOnly() throws {
        let r = try swiftspeed(["train", "--model", "simple", "--config", "/nonexistent.json", "--synthetic",
                                "--checkpoint-activations"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--checkpoint-activations applies to the GPT models"))
    }
}
