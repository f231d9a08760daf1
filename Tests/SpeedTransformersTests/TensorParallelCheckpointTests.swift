// Tensor-parallel checkpoints in DeepSpeed's layout: saved at TP=2 (× DP=2 with ZeRO-2, in-process ranks), loaded at
// TP=1 and TP=4 with the same logits, loss and — through the resharded Adam state — the same next step; consolidated
// by TensorParallelCheckpoint (swiftspeed zero-to-fp32) into the unsharded model's state dict.
// Invariant: the reference values come from the saving run itself (before the save), the expected cuts from the
// rules written out in TensorParallelHFTests, never from the reader under test.
//
// transformers check (done locally with /tmp/hfenv, transformers 5.25.0): the folder `zero-to-fp32` wrote from a
// TP=2 × ZeRO-2 checkpoint of tiny-qwen2-gqa and of tiny-gpt2 (model.safetensors + config.json, as in
// `consolidatedFolderHasTheUnshardedStateDict`) loaded with `scripts/make_hf_fixtures.py --check DIR`:
// Qwen2ForCausalLM and GPT2LMHeadModel, no missing, unexpected or mismatched keys.

import Foundation
import SpeedComm
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedRuntime
import SpeedTestSupport
import Testing
@testable import SpeedTransformers

@Suite struct TensorParallelCheckpointTests {
    /// fp32 Adam without clipping (the clipping norm over tensor-parallel shards is the runtime's part), one
    /// micro-batch per step on each data-parallel rank.
    static func config(dataParallel: Int, stage: Int) throws -> DeepSpeedConfig {
        try DeepSpeedConfig.parse("""
            {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "gradient_clipping": 0,
             "optimizer": {"type": "Adam", "params": {"lr": 0.01}}, "zero_optimization": {"stage": \(stage)}}
            """, worldSize: dataParallel)
    }

    /// Loads `fixture`, shards it over `tp` (nil: whole) and wraps it in an engine over `dp`.
    static func engine(_ fixture: String, tp: (any ProcessGroup)?, dp: any ProcessGroup, stage: Int) throws -> Engine {
        let model = try TensorParallelHFTests.load(fixture)
        if let tp { try model.applyTensorParallel(TensorParallelGroup(tp)) }
        let (engine, _, _, _) = try initialize(model: model, config: try config(dataParallel: dp.size, stage: stage),
                                               processGroup: dp)
        let folder = fixtures.appendingPathComponent(fixture)
        engine.modelOrigin = (folder.path, try String(contentsOf: folder.appendingPathComponent("config.json"), encoding: .utf8))
        return engine
    }

    /// Trains `steps` steps on the fixture's batch.
    static func train(_ engine: Engine, _ inputs: TensorParallelHFTests.Inputs, steps: Int) throws {
        engine.train()
        for _ in 0..<steps {
            let out = engine(inputs.tensors)
            try engine.backward(out.loss!)
            try engine.step()
        }
        engine.eval()
    }

    /// Loss and logits on the fixture's batch (no gradient).
    static func evaluate(_ engine: Engine, _ inputs: TensorParallelHFTests.Inputs) -> (loss: Double, logits: [Float]) {
        noGrad {
            let out = engine(inputs.tensors)
            return (out.loss!.item(), out.logits!.scalars)
        }
    }

    static func worst(_ a: [Float], _ b: [Float]) -> Float {
        a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity
    }

    /// Saves `fixture` trained 2 steps at TP=2 × DP=2 (ZeRO-2) into `dir`; returns what it computed before the save
    /// (loss, logits) and after one more step (the loss).
    static func saveAtTP2(_ fixture: String, into dir: URL) throws -> (loss: Double, logits: [Float], next: Double) {
        let inputs = try TensorParallelHFTests.Inputs(fixture)
        let path = dir.path
        let results = try LocalProcessGroup.run(size: 4) { world -> (loss: Double, logits: [Float], next: Double) in
            let tp = try world.split(color: world.rank / 2, key: world.rank)   // adjacent ranks: one tensor-parallel group
            let dp = try world.split(color: world.rank % 2, key: world.rank)
            let engine = try Self.engine(fixture, tp: tp, dp: dp, stage: 2)
            try Self.train(engine, inputs, steps: 2)
            try engine.saveCheckpoint(path, tag: "tp2")
            let saved = Self.evaluate(engine, inputs)
            try Self.train(engine, inputs, steps: 1)
            return (saved.loss, saved.logits, Self.evaluate(engine, inputs).loss)
        }
        for r in results.dropFirst() {
            #expect(abs(r.loss - results[0].loss) < 1e-6 && abs(r.next - results[0].next) < 1e-6, "ranks disagree: \(results.map(\.loss))")
        }
        return results[0]
    }

    @Test func savedAtTP2LoadsAtTP1AndTP4() throws {
        let dir = IOTestDirectory()
        let fixture = "tiny-qwen2-gqa"      // 8 heads over 4 kv heads, q/k/v biases, tied, vocabulary 101 (uneven)
        let reference = try Self.saveAtTP2(fixture, into: dir.url)
        let files = (try FileManager.default.contentsOfDirectory(atPath: dir.url.appendingPathComponent("tp2").path)).sorted()
        #expect(files == ["mp_rank_00_model_states.safetensors", "mp_rank_01_model_states.safetensors",
                          "zero_pp_rank_0_mp_rank_00_optim_states.safetensors", "zero_pp_rank_0_mp_rank_01_optim_states.safetensors",
                          "zero_pp_rank_1_mp_rank_00_optim_states.safetensors", "zero_pp_rank_1_mp_rank_01_optim_states.safetensors"])
        let inputs = try TensorParallelHFTests.Inputs(fixture)

        // TP = 1: one process.
        let one = try Self.engine(fixture, tp: nil, dp: SingleProcessGroup(), stage: 0)
        try one.loadCheckpoint(dir.url.path)
        let loaded = Self.evaluate(one, inputs)
        #expect(abs(loaded.loss - reference.loss) < 1e-5, "TP=1 loss \(loaded.loss) vs saved \(reference.loss)")
        #expect(Self.worst(loaded.logits, reference.logits) < 1e-5)
        try Self.train(one, inputs, steps: 1)
        let next = Self.evaluate(one, inputs).loss
        #expect(abs(next - reference.next) < 1e-5, "TP=1 next step \(next) vs \(reference.next): the Adam state was not resharded")

        // TP = 4, ZeRO-1 on one data-parallel rank per tensor-parallel rank.
        let path = dir.url.path
        let four = try LocalProcessGroup.run(size: 4) { tp -> (Double, [Float], Double) in
            let engine = try Self.engine(fixture, tp: tp, dp: SingleProcessGroup(), stage: 1)
            try engine.loadCheckpoint(path)
            let loaded = Self.evaluate(engine, inputs)
            try Self.train(engine, inputs, steps: 1)
            return (loaded.loss, loaded.logits, Self.evaluate(engine, inputs).loss)
        }
        for (rank, (loss, logits, next)) in four.enumerated() {
            #expect(abs(loss - reference.loss) < 1e-5, "TP=4 rank \(rank) loss \(loss) vs saved \(reference.loss)")
            #expect(Self.worst(logits, reference.logits) < 1e-5, "TP=4 rank \(rank) logits")
            #expect(abs(next - reference.next) < 1e-5, "TP=4 rank \(rank) next step \(next) vs \(reference.next)")
        }
    }

    /// The same tensor-parallel size resumes from its own mp_rank files (at another data-parallel size: 2 → 1).
    @Test func savedAtTP2ResumesAtTP2() throws {
        let dir = IOTestDirectory()
        let fixture = "tiny-gpt2"
        let reference = try Self.saveAtTP2(fixture, into: dir.url)
        let inputs = try TensorParallelHFTests.Inputs(fixture)
        let path = dir.url.path
        let two = try LocalProcessGroup.run(size: 2) { tp -> (Double, Double) in
            let engine = try Self.engine(fixture, tp: tp, dp: SingleProcessGroup(), stage: 0)
            try engine.loadCheckpoint(path)
            let loss = Self.evaluate(engine, inputs).loss
            try Self.train(engine, inputs, steps: 1)
            return (loss, Self.evaluate(engine, inputs).loss)
        }
        for (loss, next) in two {
            #expect(abs(loss - reference.loss) < 1e-5)
            #expect(abs(next - reference.next) < 1e-5)
        }
    }

    /// zero-to-fp32 of an untrained TP=2 × ZeRO-2 save is exactly the fixture's (unsharded) state dict; of a trained
    /// one, it cuts into exactly the shards every rank held, and the folder loads as a Hugging Face model again.
    @Test(arguments: ["tiny-gpt2", "tiny-qwen2-gqa"])
    func consolidatedFolderHasTheUnshardedStateDict(fixture: String) throws {
        let dir = IOTestDirectory()
        let path = dir.url.path
        let inputs = try TensorParallelHFTests.Inputs(fixture)
        let held = try LocalProcessGroup.run(size: 4) { world -> [String: [Float]] in
            let tp = try world.split(color: world.rank / 2, key: world.rank)
            let dp = try world.split(color: world.rank % 2, key: world.rank)
            let engine = try Self.engine(fixture, tp: tp, dp: dp, stage: 2)
            try engine.saveCheckpoint(path, tag: "untrained")
            try Self.train(engine, inputs, steps: 2)
            try engine.saveCheckpoint(path, tag: "trained")
            return Dictionary(uniqueKeysWithValues: engine.module.namedParameters().map { ($0.0, $0.1.scalars) })
        }
        let whole = try TensorParallelHFTests.load(fixture)
        let untrained = try TensorParallelCheckpoint(directory: path, tag: "untrained")
        #expect(untrained.size == 2)
        let fp32 = Dictionary(uniqueKeysWithValues: try untrained.fp32Parameters().map { ($0.name, $0.tensor) })
        #expect(Set(fp32.keys) == Set(whole.namedParameters().map(\.0)))
        for (name, p) in whole.namedParameters() {
            #expect(fp32[name]?.shape == p.shape && fp32[name]?.scalars == p.scalars, "\(name)")
        }

        let trained = try TensorParallelCheckpoint(directory: path, tag: "trained")
        let out = dir.url.appendingPathComponent("hf")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try trained.writeFP32(to: out.appendingPathComponent("model.safetensors"))
        try #require(trained.modelConfig).write(to: out.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let c = try TensorParallelHFTests.config(fixture)
        let reloaded: Module = try AutoModel.fromPretrained(out)
        for (name, p) in reloaded.namedParameters() {
            let layout = TensorParallelHFTests.expectedLayout(name, p.shape, c)
            for world in 0..<4 {           // world rank w is tensor-parallel rank w % 2
                let mine = try layout?.shard(p, rank: world % 2, parts: 2, name: name) ?? p
                #expect(mine.scalars == held[world][name], "\(name) on world rank \(world)")
            }
        }
        #expect(held.count == 4 && held[0].count == reloaded.namedParameters().count)
    }

    /// A tensor-parallel checkpoint is not read as a whole model by the plain ZeRO reader (it would be rank 0's shards).
    @Test func zeroReaderRefusesATensorParallelCheckpoint() throws {
        let dir = IOTestDirectory()
        let path = dir.url.path
        _ = try LocalProcessGroup.run(size: 2) { tp -> Int in
            try Self.engine("tiny-gpt2", tp: tp, dp: SingleProcessGroup(), stage: 0).saveCheckpoint(path, tag: "t")
            return 0
        }
        #expect(throws: CheckpointError.self) { try ZeroCheckpoint(directory: path) }
        do { _ = try ZeroCheckpoint(directory: path) } catch {
            #expect("\(error)".contains("tensor-parallel checkpoint (autotp_size 2)"), "\(error)")
        }
        let rank1 = try ZeroCheckpoint(directory: path, mpRank: 1)
        #expect(rank1.tensorParallelRank == 1 && rank1.tensorParallelSize == 2)
        #expect(rank1.parameterShapes.first { $0 == [32, 48] } != nil)    // c_attn [32, 96] cut in half (whole heads)

        // A layout edited out of range is refused by name, by the reader and by a load at another size (no trap).
        for mp in 0..<2 {
            let file = dir.url.appendingPathComponent("t").appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp))
            let (tensors, saved) = try Safetensors.read(file)
            var metadata = saved
            metadata.removeValue(forKey: Safetensors.checksumKey)
            let text = try #require(metadata["swiftspeed"])
            metadata["swiftspeed"] = text.replacingOccurrences(of: #""axis":1"#, with: #""axis":7"#)
            #expect(metadata["swiftspeed"] != text)
            try Safetensors.write(tensors, metadata: metadata, checksums: true, to: file)
        }
        #expect(throws: CheckpointError.self) { try TensorParallelCheckpoint(directory: path) }
        do { _ = try TensorParallelCheckpoint(directory: path) } catch {
            #expect("\(error)".contains("does not fit its saved parameters"), "\(error)")
        }
        let one = try Self.engine("tiny-gpt2", tp: nil, dp: SingleProcessGroup(), stage: 0)
        #expect(throws: CheckpointError.self) { try one.loadCheckpoint(path) }
    }
}
