// Checkpoints: DeepSpeed's layout, bit-exact resume (weights, Adam state, schedule, loss scale,
// dropout streams), and refusal of truncated or mismatched checkpoints without touching the engine.
import Foundation
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Testing

@Suite struct EngineCheckpointTests {
    static let json = #"{"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.1}}, "scheduler": {"type": "WarmupLR", "params": {"warmup_max_lr": 0.01, "warmup_num_steps": 4}}}"#

    func makeEngine(_ json: String = json) throws -> Engine {
        var rng = RandomStream(seed: 30)
        let cfg = GPTConfig(vocabSize: 16, contextLength: 8, layers: 1, heads: 2, embedDim: 8, dropout: 0.1)
        return try initialize(model: GPT(cfg, rng: &rng), config: try config(json)).engine
    }

    /// Runs optimizer steps `range` with batches that depend only on the step index.
    func train(_ engine: Engine, steps range: Range<Int>) throws -> [Double] {
        var losses: [Double] = []
        for step in range {
            for micro in 0..<2 {
                let ids = (0..<16).map { Int32(($0 * 5 + step * 3 + micro) % 16) }
                let input = Tensor(ids, shape: [2, 8])
                let target = Tensor(ids.map { ($0 + 1) % 16 }, shape: [2, 8])
                try engine.backward(engine(input).crossEntropy(targets: target))
                try engine.step()
            }
            losses.append(engine.lastLoss!)
        }
        return losses
    }

    func tempDir() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-ckpt-\(UInt64.random(in: 0...UInt64.max))").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func resumeGivesBitIdenticalLosses() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let uninterrupted = try train(try makeEngine(), steps: 0..<6)
        let first = try makeEngine()
        let head = try train(first, steps: 0..<3)
        let path = try first.saveCheckpoint(dir, clientState: ["epoch": 7])
        #expect(path.hasSuffix("global_step3"))
        let files = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        #expect(files == ["mp_rank_00_model_states.safetensors", "zero_pp_rank_0_mp_rank_00_optim_states.safetensors"])
        #expect(try String(contentsOfFile: dir + "/latest", encoding: .utf8) == "global_step3")

        let resumed = try makeEngine()
        let (loaded, client) = try resumed.loadCheckpoint(dir)
        #expect(loaded == path)
        #expect(client?["epoch"] == 7)
        #expect(resumed.globalSteps == 3 && resumed.microSteps == 6 && resumed.globalSamples == 12)
        let tail = try train(resumed, steps: 3..<6)
        #expect(head + tail == uninterrupted)
    }

    @Test func missingCheckpointReturnsNil() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, client) = try makeEngine().loadCheckpoint(dir)
        #expect(path == nil && client == nil)
    }

    @Test func aTruncatedCheckpointIsRefusedAndChangesNothing() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try makeEngine()
        _ = try train(engine, steps: 0..<2)
        let path = try engine.saveCheckpoint(dir)
        let optim = path + "/zero_pp_rank_0_mp_rank_00_optim_states.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: optim))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: optim))
        let fresh = try makeEngine()
        let before = weights(fresh.module)
        #expect(throws: (any Error).self) { try fresh.loadCheckpoint(dir) }
        #expect(weights(fresh.module) == before)
        #expect(fresh.globalSteps == 0)
        // Module-only loading does not need the optimizer file.
        let (loaded, _) = try fresh.loadCheckpoint(dir, loadModuleOnly: true)
        #expect(loaded == path)
        #expect(weights(fresh.module) == weights(engine.module))
        #expect(fresh.globalSteps == 0)
    }

    @Test func aCheckpointOfAnotherModelIsRefusedWithTheMismatch() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try makeEngine()
        try engine.saveCheckpoint(dir, tag: "mine")
        var rng = RandomStream(seed: 31)
        let other = try initialize(model: Linear(3, 3, rng: &rng), config: try config(Self.json)).engine
        do {
            try other.loadCheckpoint(dir)
            Issue.record("expected an error")
        } catch let e as CheckpointError {
            #expect(e.description.contains("does not match the model"))
            #expect(e.description.contains("missing weight"))
        }
    }
}

@Suite struct EngineCheckpointReplaceTests {
    @Test func savingATagAgainReplacesItWholeAndLeavesNoPartialFolders() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-rs-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = RandomStream(seed: 50)
        let model = Linear(4, 2, rng: &rng)
        let (engine, _, _, _) = try initialize(model: model, config: try config(#"{"train_batch_size": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.5}}}"#))
        try engine.saveCheckpoint(dir, tag: "same")
        let x = Tensor.ones([2, 4]), y = Tensor.zeros([2, 2])
        try engine.backward(engine(x).mseLoss(y))
        try engine.step()
        try engine.saveCheckpoint(dir, tag: "same")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["latest", "same"])
        var rng2 = RandomStream(seed: 51)
        let fresh = try initialize(model: Linear(4, 2, rng: &rng2), config: try config(#"{"train_batch_size": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.5}}}"#)).engine
        try fresh.loadCheckpoint(dir)
        #expect(fresh.globalSteps == 1)
        #expect(weights(fresh.module) == weights(model))
        // The model-states metadata carries the resolved config.
        let (_, meta) = try Safetensors.read(URL(fileURLWithPath: dir + "/same/mp_rank_00_model_states.safetensors"))
        #expect(meta["swiftspeed"]?.contains("train_batch_size") == true || meta["swiftspeed"]?.contains("trainBatchSize") == true)
    }
}

@Suite struct EngineFrozenParameterTests {
    @Test func frozenParametersFollowTheModelDTypeInBF16() throws {
        var rng = RandomStream(seed: 52)
        let model = Sequential(Linear(4, 4, rng: &rng), ReLU(), Linear(4, 2, rng: &rng))
        let first = model.layers[0] as! Linear
        let (engine, _, _, _) = try initialize(
            model: model, config: try config(#"{"train_batch_size": 2, "bf16": {"enabled": true}, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#),
            modelParameters: (model.layers[2] as! Linear).parameters())
        #expect(first.weight.dtype == .bfloat16)
        #expect(!first.weight.requiresGrad)
        let frozen = first.weight.scalars
        let x = Tensor.ones([2, 4]), y = Tensor.zeros([2, 2])
        try engine.backward(engine(x).mseLoss(y))
        try engine.step()
        #expect(first.weight.scalars == frozen)
        #expect(engine.flat.count == 4 * 2 + 2)
    }
}
