// The engine with named inputs: a two-input model (ids + mask + labels → loss, logits) trains to the same
// losses at ZeRO-3 as at ZeRO-0, plain or checkpointed, on one rank and on two in-process ranks; inputs are
// cast by kind and buffers stay out of the flat buffers. Invariant: every compared run builds its model from
// the same seed and feeds the same batches, so only the stage (and checkpointing) differs.
import SpeedComm
import SpeedIO
import SpeedTestSupport
import SpeedCore
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Testing

/// An encoder layer with its own parameter and two outputs that both carry gradient: ZeRO-3 must wrap both.
final class GatedLayer: Module {
    @ModuleInfo var dense: Linear
    @ParameterInfo(key: "gate") var gate: Tensor

    init(rng: inout RandomStream) {
        _dense.wrappedValue = Linear(8, 8, rng: &rng)
        _gate.wrappedValue = Tensor.uniform([8], low: 0.5, high: 1.5, rng: &rng)
        super.init()
        gate.requiresGrad = true
    }

    override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = inputs["hidden_states"]!
        let mask = inputs.attentionMask!
        let (b, t) = (mask.shape[0], mask.shape[1])
        let m = mask.cast(to: h.dtype).reshape([b, t, 1])
        // Two paths that meet only at the input, each reading `gate`: whichever output's wrap runs
        // first in backward, the other path's gate read needs the gather too.
        let pooled = (h * m).sum(axis: 1) / m.sum(axis: 1) * gate
        return ["hidden_states": dense(h).tanh() * gate, "pooled": pooled]
    }
}

/// ids + token types + mask + labels in; logits, hidden states and loss out. The layer is called
/// with named inputs, checkpointed or not.
final class TwoInputClassifier: Module {
    @ModuleInfo(key: "word_embeddings") var words: Embedding
    @ModuleInfo(key: "token_type_embeddings") var types: Embedding
    @ModuleInfo(key: "layer") var layer: GatedLayer
    @ModuleInfo(key: "dropout") var drop: Dropout
    @ModuleInfo(key: "classifier") var head: Linear
    @BufferInfo(key: "scale") var scale = Tensor([0.5] as [Float])
    @BufferInfo(key: "position_ids", persistent: false) var positionIds = Tensor((0..<5).map { Int32($0) })
    let checkpointLayer: Bool

    init(seed: UInt64 = 21, checkpointLayer: Bool = false) {
        var rng = RandomStream(seed: seed)
        self.checkpointLayer = checkpointLayer
        super.init()
        words = Embedding(11, 8, std: 0.5, rng: &rng)
        types = Embedding(2, 8, std: 0.5, rng: &rng)
        layer = GatedLayer(rng: &rng)
        drop = Dropout(0.1, rng: &rng)
        head = Linear(8, 3, rng: &rng)
    }

    override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = drop(words(inputs.inputIds!) + types(inputs.tokenTypeIds!) * scale)
        let layerInputs: ModuleInputs = ["hidden_states": h, "attention_mask": inputs.attentionMask!]
        let encoded = checkpointLayer ? layer.checkpointed(layerInputs) : layer(layerInputs)
        var out = ModuleOutputs()
        out.logits = head(encoded["pooled"]!)
        out.hiddenStates = encoded["hidden_states"]!
        if let labels = inputs.labels {
            out.loss = out.logits!.crossEntropy(targets: labels) + out.hiddenStates!.square().mean() * 0.1
        }
        return out
    }
}

/// Batch `step` of rank `rank`: ids, token types, a mask hiding a different tail per row, labels.
private func batch(_ step: Int, rank: Int = 0) -> ModuleInputs {
    let salt = step * 5 + rank * 17
    let ids = Tensor((0..<10).map { Int32(($0 * 7 + salt + 1) % 11) }, shape: [2, 5])
    let types = Tensor((0..<10).map { Int32(($0 + salt) / 3 % 2) }, shape: [2, 5])
    let mask = Tensor((0..<10).map { Int32($0 % 5 < 3 + (salt + $0 / 5) % 3 ? 1 : 0) }, shape: [2, 5])
    let labels = Tensor([Int32(salt % 3), Int32((salt + 2) % 3)], shape: [2])
    return ModuleInputs(inputIds: ids, attentionMask: mask, tokenTypeIds: types, labels: labels)
}

private func json(stage: Int, extra: String = "") -> String {
    #"{"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "optimizer": {"type": "AdamW", "params": {"lr": 0.02, "weight_decay": 0.01}}, "zero_optimization": {"stage": \#(stage), "stage3_param_persistence_threshold": 0}\#(extra)}"#
}

/// Losses of `steps` engine steps on `model`.
private func train(_ model: Module, stage: Int, steps: Int = 4, group: (any ProcessGroup)? = nil) throws -> [Double] {
    let size = group?.size ?? 1
    let engine = try initialize(model: model, config: try config(json(stage: stage), worldSize: size),
                                processGroup: group).engine
    var losses: [Double] = []
    for step in 0..<steps {
        let out = engine(batch(step, rank: group?.rank ?? 0))
        #expect(out.keys == ["logits", "hidden_states", "loss"])
        losses.append(out.loss!.item())
        try engine.backward(out.loss!)
        try engine.step()
    }
    return losses
}

private func expectClose(_ a: [Double], _ b: [Double], rtol: Double = 0, _ what: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) values", sourceLocation: sourceLocation)
    for (i, (x, y)) in zip(a, b).enumerated() {
        #expect(Swift.abs(x - y) <= rtol * Swift.max(1, Swift.abs(y)), "\(what) step \(i): \(x) vs \(y)", sourceLocation: sourceLocation)
    }
}

@Suite struct EngineModuleInputsTests {
    @Test func zero3TrainsATwoOutputLayerToTheZero0LossesPlainAndCheckpointed() throws {
        let reference = try train(TwoInputClassifier(), stage: 0)
        let stage3 = try train(TwoInputClassifier(), stage: 3)
        expectClose(stage3, reference, "stage 3")
        let checkpointed = try train(TwoInputClassifier(checkpointLayer: true), stage: 3)
        expectClose(checkpointed, reference, "stage 3, checkpointed layer")
        let checkpointed0 = try train(TwoInputClassifier(checkpointLayer: true), stage: 0)
        #expect(checkpointed0 == reference)
    }

    @Test func zero3OnTwoRanksMatchesZero0OnTwoRanks() throws {
        func run(_ stage: Int, checkpoint: Bool) throws -> [[Double]] {
            try LocalProcessGroup.run(size: 2) { group in
                try train(TwoInputClassifier(checkpointLayer: checkpoint), stage: stage, steps: 3, group: group)
            }
        }
        let reference = try run(0, checkpoint: false)
        for checkpoint in [false, true] {
            let stage3 = try run(3, checkpoint: checkpoint)
            for r in 0..<2 { expectClose(stage3[r], reference[r], "rank \(r), checkpoint \(checkpoint)") }
        }
    }

    @Test func zero3GathersEachModuleOncePerPassAndReleasesAfterForward() throws {
        let model = TwoInputClassifier()
        let engine = try initialize(model: model, config: try config(json(stage: 3))).engine
        let total = model.parameterCount
        let out = engine(batch(0))
        // Forward gathered every parameter once and released them all again.
        #expect(engine.stage3Gathers?.elements == total)
        #expect(model.layer.gate.storage.byteCount == 0 && model.head.weight.storage.byteCount == 0)
        // Both of the layer's outputs were wrapped; backward gathers each module's parameters once.
        #expect(out.hiddenStates!.gradFnName == "zero3_gather")
        try engine.backward(out.loss!)
        #expect(engine.stage3Gathers?.elements == 2 * total)
        #expect(model.layer.gate.storage.byteCount == 0)
        try engine.step()
    }

    @Test func namedInputsAreCastByKindAndBuffersStayOutOfTheFlatBuffers() throws {
        final class Probe: Module {
            @ModuleInfo var fc: Linear
            @BufferInfo var table = Tensor([1, 2] as [Float])
            @BufferInfo var steps = Tensor([3] as [Int32])
            var seen: [String: DType] = [:]
            override init() {
                var rng = RandomStream(seed: 0)
                _fc.wrappedValue = Linear(2, 1, rng: &rng)
                super.init()
            }
            override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
                for (key, t) in inputs { seen[key] = t.dtype }
                return ["logits": fc(inputs["inputs_embeds"]! * table)]
            }
        }
        let probe = Probe()
        let engine = try initialize(model: probe, config: try config(json(stage: 0, extra: #", "bf16": {"enabled": true}"#))).engine
        #expect(engine.flat.names == ["fc.weight", "fc.bias"])
        #expect(probe.table.dtype == .bfloat16 && probe.steps.dtype == .int32)
        let out = engine(["inputs_embeds": Tensor.ones([3, 2]), "attention_mask": Tensor.ones([3], dtype: .int64),
                          "labels": Tensor.zeros([3], dtype: .int32)])
        #expect(probe.seen == ["inputs_embeds": .bfloat16, "attention_mask": .int64, "labels": .int32])
        #expect(out.logits!.dtype == .bfloat16)
    }

    @Test(arguments: [0, 3]) func persistentBuffersRoundTripThroughACheckpointAndZeroToFP32(stage: Int) throws {
        /// A running count in a persistent buffer (a BatchNorm-like statistic) and a non-persistent one.
        final class Counter: Module {
            @ModuleInfo var fc: Linear
            @BufferInfo(key: "running_mean") var runningMean = Tensor([0, 0] as [Float])
            @BufferInfo(key: "calls") var calls = Tensor([0] as [Int32])
            @BufferInfo(key: "scratch", persistent: false) var scratch = Tensor([7] as [Float])
            override init() {
                var rng = RandomStream(seed: 3)
                _fc.wrappedValue = Linear(2, 1, rng: &rng)
                super.init()
            }
            override func forward(_ x: Tensor) -> Tensor {
                noGrad {
                    runningMean.copyData(from: runningMean * 0.9 + x.mean(axis: 0) * 0.1)
                    calls.copyData(from: Tensor([calls.scalars(as: Int32.self)[0] + 1]))
                }
                return fc(x).square().mean()
            }
        }
        let dir = IOTestDirectory()
        let model = Counter()
        let engine = try initialize(model: model, config: try config(json(stage: stage))).engine
        for step in 0..<3 {
            let loss = engine(Tensor((0..<8).map { Float($0 + step) }, shape: [4, 2]))
            try engine.backward(loss)
            try engine.step()
        }
        let savedMean = model.runningMean.scalars
        #expect(model.calls.scalars(as: Int32.self) == [3])
        try engine.saveCheckpoint(dir.url.path)
        let fresh = Counter()
        let restored = try initialize(model: fresh, config: try config(json(stage: stage))).engine
        try restored.loadCheckpoint(dir.url.path)
        #expect(fresh.runningMean.scalars == savedMean)
        #expect(fresh.calls.scalars(as: Int32.self) == [3])
        #expect(fresh.scratch.scalars == [7])
        let buffers = try ZeroCheckpoint(directory: dir.url.path).persistentBuffers()
        #expect(Set(buffers.keys) == ["running_mean", "calls"])
        #expect(buffers["running_mean"]!.scalars == savedMean)
        // A checkpoint of a model without that buffer names it as unexpected instead of dropping it.
        final class Plain: Module {
            @ModuleInfo var fc: Linear
            override init() { var rng = RandomStream(seed: 3); _fc.wrappedValue = Linear(2, 1, rng: &rng); super.init() }
            override func forward(_ x: Tensor) -> Tensor { fc(x).square().mean() }
        }
        let plain = try initialize(model: Plain(), config: try config(json(stage: stage))).engine
        #expect { try plain.loadCheckpoint(dir.url.path) } throws: { "\($0)".contains("unexpected") && "\($0)".contains("running_mean") }
    }
}
