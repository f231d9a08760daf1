// `swiftspeed train --model DIR` against the real DeepSpeed engine training the real transformers model: the same
// rows, ds_config (accumulation, clipping, AdamW, WarmupLR) and dropout-free configs give DeepSpeed's losses and LRs.
// Invariant: the fixture (scripts/make_train_reference.py) carries each config.json it trained with; the weights are
// the committed tiny models', so only the training code differs between the two sides.
import Foundation
import Testing

@Suite(.serialized) struct PretrainedReferenceTests {
    static let fixtures = PretrainedTrainTests.fixtures

    static func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("train-reference.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    @Test(arguments: ["tiny-gpt2", "tiny-bert-cls", "tiny-llama"], [0, 2])
    func lossesAndLearningRatesMatchDeepSpeedAndTransformers(model: String, stage: Int) throws {
        let reference = try Self.reference()
        let cases = reference["cases"] as! [[String: Any]]
        let ref = try #require(cases.first { $0["model"] as? String == model })
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The model folder: the committed weights with the fixture's dropout-free config.json.
        let folder = dir.appendingPathComponent(model)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent(model).appendingPathComponent("model.safetensors"),
                                         to: folder.appendingPathComponent("model.safetensors"))
        try JSONSerialization.data(withJSONObject: ref["config"]!).write(to: folder.appendingPathComponent("config.json"))
        var ds = reference["ds_config"] as! [String: Any]
        ds["zero_optimization"] = ["stage": stage]
        let cfg = dir.appendingPathComponent("ds.json")
        try JSONSerialization.data(withJSONObject: ds).write(to: cfg)
        let rows = try (ref["rows"] as! [[String: Any]]).map {
            String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self)
        }
        let data = dir.appendingPathComponent("rows.jsonl")
        try (rows.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let steps = reference["steps"] as! Int
        let r = try swiftspeed(["train", "--model", folder.path, "--config", cfg.path, "--data", data.path, "--no-shuffle",
                                "--steps", String(steps), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try r.stdout.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        let expectedLosses = ref["losses"] as! [Double], expectedLRs = ref["lr"] as! [Double]
        try #require(lines.count == steps, "\(r.stdout)")
        for (i, line) in lines.enumerated() {
            let loss = line["loss"] as! Double, lr = line["lr"] as! Double
            #expect(Swift.abs(loss - expectedLosses[i]) <= 2e-5 * Swift.max(1, expectedLosses[i]),
                    "\(model) stage \(stage) step \(i + 1): loss \(loss), DeepSpeed \(expectedLosses[i])")
            #expect(Swift.abs(lr - expectedLRs[i]) <= 1e-12, "\(model) step \(i + 1): lr \(lr), DeepSpeed \(expectedLRs[i])")
        }
    }
}
