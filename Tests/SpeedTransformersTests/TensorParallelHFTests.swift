// The Hugging Face models' AutoTP rules against one process: each tiny fixture, loaded from its folder and sharded over
// 2 (and 4 where its sizes split) in-process ranks, gives the unsharded model's loss, logits and, slice for slice,
// every gradient (fp32, 1e-5), padding masks and grouped-query attention included; sizes that do not split are refused
// by layer name with the model left whole.
// Invariant: the expected cut of every parameter is written out here per architecture (not read from the code under
// test), and the sharded model must report exactly those layouts.

import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
import SpeedIO
import SpeedRuntime
import SpeedTestSupport
import Testing
@testable import SpeedTransformers

@Suite struct TensorParallelHFTests {
    /// A fixture's integer inputs as plain values (tensors do not cross into the rank threads).
    struct Inputs: Sendable {
        var fields: [(name: String, values: [Int], shape: [Int])] = []

        init(_ fixture: String) throws {
            let data = try Data(contentsOf: fixtures.appendingPathComponent(fixture).appendingPathComponent("expected.json"))
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            guard let inputs = object?["inputs"] as? [String: Any] else { throw TensorParallelError("\(fixture): expected.json has no inputs") }
            for name in inputs.keys.sorted() {
                fields.append((name, Expected.flatten(inputs[name]!).map { Int($0) }, Expected.shape(inputs[name]!)))
            }
        }

        var tensors: ModuleInputs { ModuleInputs(fields.map { ($0.name, Tensor($0.values, shape: $0.shape)) }) }
    }

    /// What one process computed, as plain values.
    struct Reference: Sendable {
        var loss: Double
        var output: [Float]
        /// Per rank: every parameter's expected gradient shard (nil: the whole model's parameter got no gradient).
        var grads: [[String: (shape: [Int], values: [Float])?]]
        var layouts: [String: TensorParallelLayout]
    }

    static func load(_ fixture: String) throws -> Module {
        let model: Module = try AutoModel.fromPretrained(fixtures.appendingPathComponent(fixture))
        model.eval()
        return model
    }

    /// The loss with labels, else (BertModel) a fixed function of both outputs.
    static func loss(_ out: ModuleOutputs) -> Tensor {
        if let loss = out.loss { return loss }
        let h = out.lastHiddenState!, p = out["pooler_output"]!
        return (h * h).mean() + (p * p).mean()
    }

    static func config(_ fixture: String) throws -> [String: Int] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent(fixture).appendingPathComponent("config.json"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return object.compactMapValues { ($0 as? NSNumber)?.intValue }
    }

    /// How the AutoTP rules must cut parameter `name` (nil: replicated), written out per architecture.
    static func expectedLayout(_ name: String, _ shape: [Int], _ c: [String: Int]) -> TensorParallelLayout? {
        let bias = name.hasSuffix(".bias")
        func column(unit: Int = 1) -> TensorParallelLayout { TensorParallelLayout(axis: 0, blocks: [shape[0]], unit: unit) }
        func row(unit: Int = 1) -> TensorParallelLayout? { bias ? nil : TensorParallelLayout(axis: 1, blocks: [shape[1]], unit: unit) }
        if name.hasSuffix("wte.weight") || name.hasSuffix("embed_tokens.weight") || name == "lm_head.weight" {
            return TensorParallelLayout(axis: 0, blocks: [shape[0]], uneven: true)
        }
        if let n = c["n_embd"], let h = c["n_head"] {                                 // GPT-2: Conv1D weights [in, out]
            if name.contains(".attn.c_attn.") { return TensorParallelLayout(axis: bias ? 0 : 1, blocks: [n, n, n], unit: n / h) }
            if name.contains(".attn.c_proj.") { return bias ? nil : TensorParallelLayout(axis: 0, blocks: [n], unit: n / h) }
            if name.contains(".mlp.c_fc.") { return TensorParallelLayout(axis: bias ? 0 : 1, blocks: [shape[bias ? 0 : 1]]) }
            if name.contains(".mlp.c_proj.") { return bias ? nil : TensorParallelLayout(axis: 0, blocks: [shape[0]]) }
            return nil
        }
        if let n = c["dim"], let h = c["n_heads"] {                                   // DistilBERT
            if name.contains(".attention.q_lin.") || name.contains(".attention.k_lin.") || name.contains(".attention.v_lin.") {
                return column(unit: n / h)
            }
            if name.contains(".attention.out_lin.") { return row(unit: n / h) }
            if name.contains(".ffn.lin1.") { return column() }
            if name.contains(".ffn.lin2.") { return row() }
            return nil
        }
        let d = c["head_dim"] ?? c["hidden_size"]! / c["num_attention_heads"]!
        if name.contains(".attention.self.") { return column(unit: d) }                // BERT, RoBERTa
        if name.contains(".attention.output.dense.") { return row(unit: d) }
        if name.contains(".intermediate.dense.") { return column() }
        if name.contains("encoder.layer.") && name.contains(".output.dense.") { return row() }
        if name.contains("_attn.q_proj.") || name.contains("_attn.k_proj.") || name.contains("_attn.v_proj.") {
            return column(unit: d)                                                     // Llama / Mistral / Qwen2
        }
        if name.contains("_attn.o_proj.") { return row(unit: d) }
        if name.contains(".mlp.gate_proj.") || name.contains(".mlp.up_proj.") { return column() }
        if name.contains(".mlp.down_proj.") { return row() }
        return nil
    }

    /// Shards `fixture` over `parts` in-process ranks; returns each rank's problems (empty: all equal at 1e-5).
    static func compare(_ fixture: String, parts: Int) throws -> [[String]] {
        let whole = try load(fixture)
        let inputs = try Inputs(fixture)
        let out = whole(inputs.tensors)
        let loss = Self.loss(out)
        loss.backward()
        let c = try config(fixture)
        var layouts: [String: TensorParallelLayout] = [:]
        var grads = Array(repeating: [String: (shape: [Int], values: [Float])?](), count: parts)
        for (name, p) in whole.namedParameters() {
            let layout = expectedLayout(name, p.shape, c)
            layouts[name] = layout
            for rank in 0..<parts {
                grads[rank][name] = try p.grad.map { g in
                    let s = try layout?.shard(g, rank: rank, parts: parts, name: name) ?? g
                    return (s.shape, s.scalars)
                } ?? nil
            }
        }
        let reference = Reference(loss: loss.item(), output: (out.logits ?? out.lastHiddenState!).scalars, grads: grads,
                                  layouts: layouts.compactMapValues { $0 })
        return try LocalProcessGroup.run(size: parts) { group -> [String] in
            let model = try load(fixture)
            try model.applyTensorParallel(TensorParallelGroup(group))
            var problems: [String] = []
            if model.tensorParallelLayouts() != reference.layouts {
                problems.append("layouts \(model.tensorParallelLayouts().keys.sorted()) vs expected \(reference.layouts.keys.sorted())")
            }
            let out = model(inputs.tensors)
            let output = (out.logits ?? out.lastHiddenState!).scalars
            if output.count != reference.output.count {
                problems.append("output has \(output.count) values, one process \(reference.output.count)")
            } else if let worst = zip(output, reference.output).map({ abs($0 - $1) }).max(), worst > 1e-5 {
                problems.append("logits differ by \(worst)")
            }
            let l = Self.loss(out)
            if abs(l.item() - reference.loss) > 1e-5 { problems.append("loss \(l.item()) vs \(reference.loss)") }
            l.backward()
            for (name, p) in model.namedParameters() {
                guard let entry = reference.grads[group.rank][name] else { problems.append("\(name): not in the whole model"); continue }
                guard let want = entry else {
                    if p.grad != nil { problems.append("\(name): a gradient where one process has none") }
                    continue
                }
                guard let g = p.grad, g.shape == want.shape else {
                    problems.append("\(name): gradient \(p.grad?.shape ?? []) vs \(want.shape)")
                    continue
                }
                let diff = zip(g.scalars, want.values).map { abs($0 - $1) }.max() ?? 0
                if diff > 1e-5 { problems.append("\(name): gradient differs by \(diff)") }
            }
            return problems
        }
    }

    @Test(arguments: [
        ("tiny-gpt2", 2), ("tiny-gpt2", 4),                     // fused c_attn, tied vocab-parallel head, padding mask
        ("tiny-bert-cls", 2), ("tiny-bert-cls", 4),             // padding mask, token types, pooler + classifier whole
        ("tiny-bert-mlm", 2),                                   // MLM head whole
        ("tiny-bert-padded", 2), ("tiny-bert-padded", 4),       // three padded lengths
        ("tiny-roberta-cls", 2), ("tiny-roberta-mlm", 2),       // BERT's rules under roberta., the <s> head whole
        ("tiny-distilbert-cls", 2), ("tiny-distilbert-mlm", 4), // q_lin/k_lin/v_lin, out_lin, lin1/lin2
        ("tiny-llama", 2),                                      // GQA 4 over 2 kv heads, untied lm_head
        ("tiny-mistral-window", 2),                             // sliding window 3, padded row
        ("tiny-qwen2-gqa", 2), ("tiny-qwen2-gqa", 4),           // 8 over 4 kv heads, q/k/v biases, tied, vocab 101
    ])
    func shardedModelMatchesOneProcess(fixture: String, parts: Int) throws {
        let results = try Self.compare(fixture, parts: parts)
        #expect(results.count == parts)
        for (rank, problems) in results.enumerated() { #expect(problems.isEmpty, "\(fixture) rank \(rank) of \(parts): \(problems)") }
    }

    /// The Qwen2 GQA fixture made for these tests is what transformers computes (so the comparison above is of a real
    /// Qwen2 forward): logits and loss at 1e-4.
    @Test func qwen2GQAFixtureMatchesTransformers() throws {
        let expected = try Expected("tiny-qwen2-gqa")
        let model = try Self.load("tiny-qwen2-gqa")
        #expect(model is Qwen2ForCausalLM)
        let out = model(try Inputs("tiny-qwen2-gqa").tensors)
        #expect(maxAbsDiff(out.logits!, try expected.output("logits")) < 1e-4)
        #expect(abs(out.loss!.item() - (try expected.output("loss"))[0]) < 1e-4)
    }

    @Test(arguments: [
        ("tiny-llama", 4, "model.layers.0.self_attn.k_proj: 2 key/value heads do not split into 4 tensor-parallel shards"),
        ("tiny-qwen2", 2, "model.layers.0.self_attn.k_proj: 1 key/value heads do not split into 2 tensor-parallel shards"),
        ("tiny-gpt2", 3, "transformer.h.0.attn.c_attn: 4 attention heads do not split into 3 tensor-parallel shards"),
        ("tiny-bert-cls", 3, "bert.encoder.layer.0.attention.self.query: 4 attention heads do not split into 3 tensor-parallel shards"),
    ])
    func sizesThatDoNotSplitAreRefusedByLayer(fixture: String, parts: Int, message: String) throws {
        let shapes = try Self.load(fixture).namedParameters().map(\.1.shape)
        let results = try LocalProcessGroup.run(size: parts) { group -> (String, Bool) in
            let model = try Self.load(fixture)
            do {
                try model.applyTensorParallel(TensorParallelGroup(group))
                return ("no error", false)
            } catch {
                // Refused before any change: the model is whole and unsharded.
                let whole = model.namedParameters().map(\.1.shape) == shapes && model.tensorParallelCommunicator() == nil
                return ("\(error)", whole)
            }
        }
        for (text, whole) in results {
            #expect(text.hasPrefix(message), "\(text)")
            #expect(whole)
        }
    }

    /// A sharded model's savePretrained gathers the shards into the unsharded folder (the fixture's own weights,
    /// exactly); the plain form refuses, since its state dict is one rank's shards.
    @Test func shardedModelSavesTheUnshardedFolder() throws {
        let dir = IOTestDirectory()
        let out = dir.url.appendingPathComponent("saved")
        let fixture = "tiny-qwen2-gqa"           // uneven vocabulary shards, fused-free q/k/v with biases
        let refusals = try LocalProcessGroup.run(size: 2) { group -> String in
            let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(fixture))
            try model.applyTensorParallel(TensorParallelGroup(group))
            var refusal = "no error"
            do { try model.savePretrained(out) } catch { refusal = "\(error)" }
            try model.savePretrained(out, tensorParallelWriter: group.rank == 0)
            return refusal
        }
        #expect(refusals.allSatisfy { $0.contains("Qwen2ForCausalLM is tensor-parallel sharded over 2 ranks") }, "\(refusals)")
        let (saved, _) = try Safetensors.read(out.appendingPathComponent("model.safetensors"))
        let (original, _) = try Safetensors.read(fixtures.appendingPathComponent(fixture).appendingPathComponent("model.safetensors"))
        #expect(Set(saved.keys) == Set(original.keys.filter { $0 != "lm_head.weight" }))   // tied: not stored
        for (name, w) in saved { #expect(w.shape == original[name]?.shape && w.scalars == original[name]?.scalars, "\(name)") }
    }

    @Test func aModelWithoutRulesIsRefusedByType() throws {
        let results = try LocalProcessGroup.run(size: 2) { group -> String in
            var rng = RandomStream(seed: 0)
            do { try SimpleModel(inFeatures: 4, hidden: 8, rng: &rng).applyTensorParallel(TensorParallelGroup(group)); return "no error" }
            catch { return "\(error)" }
        }
        #expect(results.allSatisfy { $0.contains("SimpleModel has no tensor-parallel rules") && $0.contains("TensorParallelPlan") }, "\(results)")
    }
}
