// Pipeline checkpoints: DeepSpeed's per-layer files, an exact resume at the same partition (also on another
// data-parallel size), and the weights loading at 1 and 4 stages into the same model.
import Foundation
import SpeedComm
import SpeedCore
import SpeedIO
import SpeedNN
@testable import SpeedPipeline
@testable import SpeedRuntime
import Testing

@Suite(.serialized) struct PipelineCheckpointTests {
    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-pipe-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Trains steps `from ..< to` on `stages × dp` ranks, loading `load` first and saving to `save` at the end.
    func train(stages: Int, dp: Int, from: Int, to: Int, load: String? = nil, loadModuleOnly: Bool = false,
               save: String? = nil) throws -> [RunResult] {
        try LocalProcessGroup.run(size: stages * dp, timeout: 60) { world in
            let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: stages)
            let gas = 4 / dp
            let engine = try PipelineEngine(module: module, config: try pipeConfig(gas: gas, dataParallel: dp, zeroStage: 1), world: world)
            if let load { _ = try engine.loadCheckpoint(load, loadModuleOnly: loadModuleOnly) }
            let data = RankData(dp: engine.grid.dataParallelID, dataParallel: dp, gas: gas)
            data.step = from
            var out = RunResult()
            for _ in from..<to {
                out.losses.append(try engine.trainBatch { data.next() })
                data.endStep()
            }
            if let save { try engine.saveCheckpoint(save) }
            out.weights = gptWeights(of: engine.stage)
            return out
        }
    }

    func union(_ ranks: [RunResult]) -> [String: [Float]] {
        ranks.reduce(into: [:]) { all, r in all.merge(r.weights) { a, _ in a } }
    }

    @Test func layerFilesFollowDeepSpeedsLayoutAndAResumeIsExact() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let uninterrupted = try train(stages: 2, dp: 1, from: 0, to: 4)
        let first = try train(stages: 2, dp: 1, from: 0, to: 2, save: dir.path)
        let tag = dir.appendingPathComponent("global_step2")
        let files = try FileManager.default.contentsOfDirectory(atPath: tag.path).sorted()
        // 8 layers: the head (layer 7) is the tied embedding, stored once as layer 00.
        #expect(files == (0..<7).map { PipelineEngine.layerFileName($0) } + ["pipe_stage_00", "pipe_stage_01", "pipeline.json"])
        #expect(try String(contentsOf: dir.appendingPathComponent("latest"), encoding: .utf8) == "global_step2")
        let blocks = try Safetensors.read(tag.appendingPathComponent("layer_03-model_states.safetensors")).tensors
        #expect(blocks["attn.qkv.weight"]?.scalars == union(first)["blocks.1.attn.qkv.weight"])
        // Same partition: losses continue exactly, on 2 stages and on 2 stages × 2 data-parallel ranks (ZeRO-1 reshards).
        let resumed = try train(stages: 2, dp: 1, from: 2, to: 4, load: dir.path)
        #expect(resumed[0].losses == Array(uninterrupted[0].losses[2...]))
        let wider = try train(stages: 2, dp: 2, from: 2, to: 4, load: dir.path)
        for (a, b) in zip(wider[0].losses, uninterrupted[0].losses[2...]) { #expect(abs(a - b) <= 1e-5 * b) }
    }

    @Test func theWeightsLoadAtOneAndFourStages() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let saved = union(try train(stages: 2, dp: 1, from: 0, to: 2, save: dir.path))
        for stages in [1, 4] {
            let loaded = union(try train(stages: stages, dp: 1, from: 0, to: 0, load: dir.path))
            #expect(loaded == saved, "\(stages) stages")
        }
        // The same partition can also load weights only.
        #expect(union(try train(stages: 2, dp: 1, from: 0, to: 0, load: dir.path, loadModuleOnly: true)) == saved)
    }

    /// zero_to_fp32 for pipelines: the fp32 masters of every stage (2 × 2, ZeRO-1 shards) under GPT's own names,
    /// each once, equal to the trained weights, and loadable into a plain GPT.
    @Test func theCheckpointConsolidatesIntoOneGPTStateDict() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trained = union(try train(stages: 2, dp: 2, from: 0, to: 2, save: dir.path))
        let weights = try PipelineCheckpoint.fp32Weights(directory: dir.path)
        var rng = RandomStream(seed: 99)
        let gpt = GPT(smallGPT, rng: &rng)
        #expect(weights.map(\.name).sorted() == gpt.namedParameters().map(\.0).sorted())
        for (name, t) in weights { #expect(t.scalars == trained[name], "\(name)") }
        try gpt.load(stateDict: Dictionary(uniqueKeysWithValues: weights.map { ($0.name, $0.tensor) }))
        #expect(gpt.wte.weight.scalars == trained["wte.weight"])
        #expect(try PipelineCheckpoint.folder(directory: dir.appendingPathComponent("nothing").path) == nil)
    }

    @Test func anotherModelsCheckpointIsRefused() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try train(stages: 2, dp: 1, from: 0, to: 1, save: dir.path)
        let other = GPTConfig(vocabSize: 64, contextLength: 16, layers: 2, heads: 2, embedDim: 32)
        let errors = try LocalProcessGroup.run(size: 2) { world -> String in
            let engine = try PipelineEngine(module: try GPTPipe.module(other, seed: 1, numStages: 2),
                                            config: try pipeConfig(gas: 1, dataParallel: 1), world: world)
            do { _ = try engine.loadCheckpoint(dir.path); return "loaded" } catch { return "\(error)" }
        }
        #expect(errors.allSatisfy { $0.contains("holds layers [\"Embedding\", \"GPTPositions\", \"Block\", \"Block\", \"Block\", \"Block\"") }, "\(errors)")
    }
}
