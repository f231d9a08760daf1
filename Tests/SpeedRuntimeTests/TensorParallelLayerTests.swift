// Tensor-parallel layers against one process: GPT sharded over 2 and 4 in-process ranks gives the unsharded loss,
// logits and, slice for slice, the unsharded gradients. Invariant: both sides build the model from the same seed.

import SpeedComm
import SpeedCore
import SpeedNN
import SpeedRuntime
import Testing

@Suite struct TensorParallelLayerTests {
    /// Uneven vocabulary (51 rows over 2 or 4 ranks), 4 heads, bias everywhere.
    static let config = GPTConfig(vocabSize: 51, contextLength: 16, layers: 2, heads: 4, embedDim: 32)

    static func batch() -> (Tensor, Tensor) {
        let ids = (0..<(2 * 12)).map { Int32(($0 * 17 + 3) % config.vocabSize) }
        var targets = (0..<(2 * 12)).map { Int32(($0 * 29 + 50) % config.vocabSize) }
        targets[5] = -100   // an ignored position
        return (Tensor(ids, shape: [2, 12]), Tensor(targets, shape: [2, 12]))
    }

    /// Rank `rank`'s expected slice of the whole model's tensor `name` (the GPT rules' split).
    static func expectedShard(_ name: String, _ whole: Tensor, rank: Int, parts: Int) throws -> Tensor {
        let c = config.embedDim, d = c / config.heads
        if name.hasSuffix("attn.qkv.weight") || name.hasSuffix("attn.qkv.bias") {
            return try TensorParallelSplit.shard(whole, axis: 0, blocks: [c, c, c], unit: d, rank: rank, parts: parts, layer: name)
        }
        if name.hasSuffix("mlp.fc.weight") || name.hasSuffix("mlp.fc.bias") {
            return try TensorParallelSplit.shard(whole, axis: 0, blocks: [whole.shape[0]], rank: rank, parts: parts, layer: name)
        }
        if name.hasSuffix("proj.weight") {
            return try TensorParallelSplit.shard(whole, axis: 1, blocks: [whole.shape[1]], rank: rank, parts: parts, layer: name)
        }
        if name == "wte.weight" { return whole.slice(axis: 0, TensorParallelSplit.ranges(whole.shape[0], parts: parts)[rank]).copy() }
        return whole
    }

    @Test(arguments: [2, 4]) func gptShardsMatchOneProcess(parts: Int) throws {
        let (ids, targets) = Self.batch()
        var rng = RandomStream(seed: 1)
        let whole = GPT(Self.config, rng: &rng)
        let logits = noGrad { whole(ids) }
        let loss = whole.loss(ids, targets: targets)
        loss.backward()
        // Each rank's expected gradient shards, as plain values (tensors do not cross into the rank threads).
        let expected: [[String: (shape: [Int], values: [Float])]] = try (0..<parts).map { rank in
            Dictionary(uniqueKeysWithValues: try whole.namedParameters().map { name, p in
                let g = try Self.expectedShard(name, p.grad!, rank: rank, parts: parts)
                return (name, (g.shape, g.scalars))
            })
        }
        let reference = (loss: loss.item(), logits: logits.scalars)

        let results = try LocalProcessGroup.run(size: parts) { group -> [String] in
            let (ids, targets) = Self.batch()
            var rng = RandomStream(seed: 1)
            let model = GPT(Self.config, rng: &rng)
            try model.shardForTensorParallel(TensorParallelGroup(group))
            var problems: [String] = []
            let shardedLogits = noGrad { model(ids) }
            let worst = zip(shardedLogits.scalars, reference.logits).map { abs($0 - $1) }.max()!
            if worst > 1e-5 { problems.append("logits differ by \(worst)") }
            let l = model.loss(ids, targets: targets)
            if abs(l.item() - reference.loss) > 1e-5 { problems.append("loss \(l.item()) vs \(reference.loss)") }
            l.backward()
            for (name, p) in model.namedParameters() {
                let want = expected[group.rank][name]!
                guard want.shape == p.shape else { problems.append("\(name): shape \(p.shape) vs \(want.shape)"); continue }
                let diff = zip(p.grad!.scalars, want.values).map { abs($0 - $1) }.max() ?? 0
                if diff > 1e-5 { problems.append("\(name): gradient differs by \(diff)") }
            }
            return problems
        }
        for (rank, problems) in results.enumerated() { #expect(problems.isEmpty, "rank \(rank): \(problems)") }
    }

    /// The layouts a sharded GPT reports cut the whole weights into exactly the shards each rank holds, and join back.
    @Test func layoutsShardAndMergeTheWholeWeights() throws {
        var rng = RandomStream(seed: 1)
        let whole = Dictionary(uniqueKeysWithValues: GPT(Self.config, rng: &rng).namedParameters().map { ($0.0, $0.1) })
        let ranks = try LocalProcessGroup.run(size: 2) { group -> [String: TensorParallelLayout] in
            var rng = RandomStream(seed: 1)
            let model = GPT(Self.config, rng: &rng)
            try model.shardForTensorParallel(TensorParallelGroup(group))
            return model.tensorParallelLayouts()
        }
        #expect(ranks[0] == ranks[1])
        let layouts = ranks[0]
        #expect(Set(layouts.keys) == Set(whole.keys.filter { $0.contains("qkv") || $0.contains("mlp.fc") || $0.hasSuffix("proj.weight") || $0 == "wte.weight" }))
        for (name, layout) in layouts {
            let w = whole[name]!
            let shards = try (0..<2).map { try layout.shard(w, rank: $0, parts: 2, name: name) }
            for (rank, s) in shards.enumerated() {
                #expect(s.scalars == (try Self.expectedShard(name, w, rank: rank, parts: 2)).scalars, "\(name) rank \(rank)")
            }
            #expect(layout.merge(shards).scalars == w.scalars, "\(name)")
        }
    }

    @Test func headsThatDoNotSplitAreRefusedByName() throws {
        let results = try LocalProcessGroup.run(size: 3) { group -> String in
            var rng = RandomStream(seed: 1)
            let model = GPT(Self.config, rng: &rng)
            do { try model.shardForTensorParallel(TensorParallelGroup(group)); return "no error" } catch { return "\(error)" }
        }
        #expect(results.allSatisfy { $0.contains("4 attention heads") && $0.contains("3 tensor-parallel shards") }, "\(results)")
    }
}
