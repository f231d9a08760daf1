// `swiftspeed zero-to-fp32` on a tensor-parallel checkpoint: tiny-gpt2 sharded TP=2 × DP=2 (ZeRO-2, in-process ranks)
// and saved consolidates into one Hugging Face folder whose weights are exactly the unsharded model's.
// Invariant: the checkpoint is saved before any step, so the expected weights are the fixture's own.
import Foundation
import SwiftSpeed
import Testing

@Suite struct ZeroToFP32TensorParallelTests {
    @Test func tensorParallelCheckpointConsolidatesToTheUnshardedModel() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = PretrainedTrainTests.fixtures.appendingPathComponent("tiny-gpt2")
        let ckpt = dir.appendingPathComponent("ckpt").path
        _ = try LocalProcessGroup.run(size: 4) { world -> Int in
            let tp = try world.split(color: world.rank / 2, key: world.rank)
            let dp = try world.split(color: world.rank % 2, key: world.rank)
            let model = try GPT2LMHeadModel.fromPretrained(source)
            try model.applyTensorParallel(TensorParallelGroup(tp))
            let config = try DeepSpeedConfig.parse(#"{"train_micro_batch_size_per_gpu": 1, "optimizer": {"type": "Adam"}, "zero_optimization": {"stage": 2}}"#,
                                                   worldSize: dp.size)
            let (engine, _, _, _) = try initialize(model: model, config: config, processGroup: dp)
            engine.modelOrigin = (source.path, try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8))
            try engine.saveCheckpoint(ckpt, tag: "global_step0")
            return 0
        }
        let out = dir.appendingPathComponent("out")
        let r = try swiftspeed(["zero-to-fp32", ckpt, out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("(tensor-parallel 2 × ZeRO stage 2, 4 shards, saved in float32)"), "\(r.stdout)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path))
        let (weights, meta) = try Safetensors.read(out.appendingPathComponent("model.safetensors"))
        #expect(meta["format"] == "pt")
        let (expected, _) = try Safetensors.read(source.appendingPathComponent("model.safetensors"))
        #expect(Set(weights.keys) == Set(expected.keys.filter { $0 != "lm_head.weight" }))   // lm_head is tied, not stored
        for (name, w) in weights {
            #expect(w.shape == expected[name]?.shape && w.scalars == expected[name]?.scalars, "\(name)")
        }
    }
}
