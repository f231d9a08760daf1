// Hugging Face folders as pipelines against one process: GPT-2 (tied head), Llama (untied, GQA), Qwen2 (q/k/v biases,
// tied) and Mistral (sliding window) split over 2 and 3 in-process stages train with the unsplit model's losses and
// global gradient norms (clipping active) for the same global batch.
import Foundation
import SpeedComm
import SpeedCore
import SpeedIO
import SpeedNN
@testable import SpeedPipeline
@testable import SpeedRuntime
import SpeedTransformers
import Testing

@Suite struct HFPipeTests {
    static func fixture(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SpeedTransformersTests/Fixtures/\(name)")
    }

    /// The fixture folder, or for GPT-2 (whose fixture trains with dropout 0.1) a copy with every dropout off, so
    /// the two runs are deterministic and comparable.
    static func folder(_ name: String) throws -> URL {
        guard name == "tiny-gpt2" else { return fixture(name) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hfpipe-gpt2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture(name).appendingPathComponent("config.json"))) as! [String: Any]
        for key in ["attn_pdrop", "embd_pdrop", "resid_pdrop"] { config[key] = 0.0 }
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: fixture(name).appendingPathComponent("model.safetensors"),
                                         to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    /// Global micro-batch `k`: ids `[2, 12]` in 0..<100 (every fixture's vocabulary), labels = ids (HF shifts them).
    static func batch(_ k: Int) -> MicroBatch {
        let ids = (0..<24).map { i in Int(RandomStream.bits(seed: 99 &+ UInt64(k), counter: UInt64(i)) % 100) }
        let t = Tensor(ids, shape: [2, 12])
        return MicroBatch(input: t, target: t)
    }

    static func config(gas: Int) throws -> DeepSpeedConfig {
        try DeepSpeedConfig.parse("""
            {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": \(gas), "gradient_clipping": 0.5,
             "optimizer": {"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.01}}}
            """, worldSize: 1)
    }

    /// The unsplit model through the ordinary engine: (per-step losses, global norms).
    static func reference(_ name: String, url: URL, steps: Int, gas: Int) throws -> ([Double], [Double]) {
        let model: Module = switch name {
        case "tiny-gpt2": try GPT2LMHeadModel.fromPretrained(url)
        case "tiny-qwen2": try Qwen2ForCausalLM.fromPretrained(url)
        case "tiny-mistral": try MistralForCausalLM.fromPretrained(url)
        default: try LlamaForCausalLM.fromPretrained(url)
        }
        let engine = try initialize(model: model, config: config(gas: gas)).engine
        var losses: [Double] = [], norms: [Double] = []
        for s in 0..<steps {
            for m in 0..<gas {
                let b = batch(s * gas + m)
                try engine.backward(engine(["input_ids": b.input, "labels": b.target]).loss!)
                try engine.step()
            }
            losses.append(engine.lastLoss!)
            norms.append(engine.globalGradNorm!)
        }
        return (losses, norms)
    }

    @Test(arguments: [("tiny-gpt2", 2), ("tiny-llama", 2), ("tiny-llama", 3), ("tiny-qwen2", 2), ("tiny-mistral", 3)])
    func pipelineTrainsLikeTheUnsplitModel(_ name: String, _ stages: Int) throws {
        let (steps, gas) = (3, 4)
        let url = try Self.folder(name)
        defer { if url != Self.fixture(name) { try? FileManager.default.removeItem(at: url) } }
        let (losses, norms) = try Self.reference(name, url: url, steps: steps, gas: gas)
        #expect(norms.allSatisfy { $0 > 0.5 }, "clipping must be active for the norm to matter: \(norms)")
        let ranks = try LocalProcessGroup.run(size: stages, timeout: 60) { world -> [[Double]] in
            let module = try HFPipe.module(folder: url, numStages: stages)
            let engine = try PipelineEngine(module: module, config: try Self.config(gas: gas), world: world)
            var k = 0, out: [[Double]] = [[], []]
            for _ in 0..<steps {
                out[0].append(try engine.trainBatch { defer { k += 1 }; return Self.batch(k) })
                out[1].append(engine.globalGradNorm ?? .nan)
            }
            return out
        }
        for (rank, r) in ranks.enumerated() {
            for (a, b) in zip(r[0], losses) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "\(name) rank \(rank): loss \(a) vs \(b)") }
            for (a, b) in zip(r[1], norms) { #expect(abs(a - b) <= 1e-5 * b, "\(name) rank \(rank): norm \(a) vs \(b)") }
        }
    }

    /// A pipeline checkpoint of a Hugging Face model consolidates into one folder (the model's names, its config.json)
    /// that the model class loads strictly, with the trained pipeline's loss.
    @Test(arguments: ["tiny-gpt2", "tiny-llama"]) func checkpointConsolidatesIntoALoadableFolder(_ name: String) throws {
        let url = try Self.folder(name)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hfpipe-ckpt-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: root)
            if url != Self.fixture(name) { try? FileManager.default.removeItem(at: url) }
        }
        let checkpoints = root.appendingPathComponent("ckpt").path
        let evalLoss = try LocalProcessGroup.run(size: 2, timeout: 60) { world -> Double in
            let engine = try PipelineEngine(module: try HFPipe.module(folder: url, numStages: 2),
                                            config: try Self.config(gas: 2), world: world)
            var k = 0
            for _ in 0..<2 { _ = try engine.trainBatch { defer { k += 1 }; return Self.batch(k) } }
            _ = try engine.saveCheckpoint(checkpoints)
            return try engine.evalBatch { Self.batch(100) }
        }[0]
        let origin = try #require(try PipelineCheckpoint.modelOrigin(directory: checkpoints))
        #expect(origin.source == url.standardizedFileURL.path)
        let out = root.appendingPathComponent("consolidated")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let weights = try PipelineCheckpoint.fp32Weights(directory: checkpoints)
        try Safetensors.write(weights.map { ($0.name, $0.tensor) }, metadata: ["format": "pt"], to: out.appendingPathComponent("model.safetensors"))
        try Data(origin.config.utf8).write(to: out.appendingPathComponent("config.json"))
        let model: Module = name == "tiny-gpt2" ? try GPT2LMHeadModel.fromPretrained(out) : try LlamaForCausalLM.fromPretrained(out)
        model.eval()
        let b = Self.batch(100)
        let loss = noGrad { model(["input_ids": b.input, "labels": b.target]).loss!.item() }
        #expect(abs(loss - evalLoss) <= 1e-5 * max(1, evalLoss), "\(name): consolidated loss \(loss) vs the pipeline's \(evalLoss)")
    }

    @Test func aFolderWithoutALayersWeightsIsRefusedByName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hfpipe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // tiny-llama's config with one more layer than its weights hold.
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixture("tiny-llama").appendingPathComponent("config.json"))) as! [String: Any]
        config["num_hidden_layers"] = 3
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: Self.fixture("tiny-llama").appendingPathComponent("model.safetensors"),
                                         to: dir.appendingPathComponent("model.safetensors"))
        #expect { try HFPipe.module(folder: dir, numStages: 2) } throws: { "\($0)".contains("model.layers.2.*") }
    }
}
