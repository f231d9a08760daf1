// Parameter groups (per-parameter weight decay) through the engine: against a plain per-parameter optimizer loop for
// every optimizer with weight decay, and ZeRO 1/2/3 (with and without offload) on 2 in-process ranks against 1 process.
// Invariant: the decay groups here are HF's — weights decay, biases and LayerNorm parameters do not.

import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Testing

/// Linear → LayerNorm → Linear: 47 parameters, so a 2-rank shard boundary (24) falls inside a no-decay run.
final class GroupNet: Module {
    let fc1: Linear
    let norm: LayerNorm
    let fc2: Linear

    init(seed: UInt64 = 11) {
        var rng = RandomStream(seed: seed)
        fc1 = Linear(4, 5, rng: &rng)
        norm = LayerNorm(5)
        fc2 = Linear(5, 2, rng: &rng)
        super.init()
        // A non-trivial norm, so a wrong decay on it shows.
        noGrad {
            norm.weight.copyData(from: Tensor.uniform([5], low: 0.5, high: 1.5, rng: &rng))
            norm.bias.copyData(from: Tensor.uniform([5], low: -0.5, high: 0.5, rng: &rng))
        }
    }

    override func forward(_ x: Tensor) -> Tensor { fc2(norm(fc1(x))) }

    /// HF's groups: decay on the two Linear weights only.
    func groups(_ decay: Double) -> [ParameterGroup] {
        [ParameterGroup(parameters: [fc1.weight, fc2.weight], weightDecay: decay),
         ParameterGroup(parameters: [fc1.bias!, norm.weight, norm.bias, fc2.bias!], weightDecay: 0)]
    }
}

private let decay = 0.3

/// Rows `rows` of fixed regression data.
private func data(_ rows: Range<Int>) -> (Tensor, Tensor) {
    var rng = RandomStream(seed: 5)
    let x = Tensor.randn([8, 4], rng: &rng), y = Tensor.randn([8, 2], rng: &rng)
    return (x.slice(axis: 0, rows).copy(), y.slice(axis: 0, rows).copy())
}

/// The reference: each parameter is its own optimizer (its group's decay) with its own state, stepped by hand.
private func referenceWeights(_ optimizer: String, steps: Int, rows: Range<Int>) -> [Float] {
    let model = GroupNet()
    let decays = [decay, 0, 0, 0, decay, 0]   // fc1.weight, fc1.bias, norm.weight, norm.bias, fc2.weight, fc2.bias
    let params = model.namedParameters().map(\.1)
    let optimizers = decays.map { makeTestOptimizer(optimizer, weightDecay: $0) }
    let states = zip(optimizers, params).map { $0.makeState(count: $1.count, device: $1.device) }
    let (x, y) = data(rows)
    for step in 1...steps {
        for p in params { p.grad = nil }
        model(x).mseLoss(y).backward()
        for (i, p) in params.enumerated() {
            optimizers[i].update(param: p, grad: p.grad!, state: states[i], step: step)
        }
    }
    return weights(model)
}

func makeTestOptimizer(_ name: String, weightDecay: Double) -> any Optimizer {
    switch name {
    case "adamw": return AdamW(lr: 0.05, weightDecay: weightDecay)
    case "adam_l2": return Adam(lr: 0.05, weightDecay: weightDecay, adamWMode: false)
    case "sgd": return SGD(lr: 0.1, momentum: 0.9, weightDecay: weightDecay)
    case "adagrad": return Adagrad(lr: 0.1, weightDecay: weightDecay, initialAccumulatorValue: 0.1)
    case "lion": return Lion(lr: 0.01, betas: (0.9, 0.99), weightDecay: weightDecay)
    case "lamb": return Lamb(lr: 0.05, weightDecay: weightDecay)
    default: fatalError(name)
    }
}

private func engineConfig(stage: Int, offload: Bool, micro: Int, world: Int) throws -> DeepSpeedConfig {
    let off = offload ? #", "offload_optimizer": {"device": "cpu"}"# + (stage == 3 ? #", "offload_param": {"device": "cpu"}"# : "") : ""
    return try config(#"{"train_micro_batch_size_per_gpu": \#(micro), "gradient_clipping": 0, "zero_optimization": {"stage": \#(stage), "stage3_param_persistence_threshold": 0\#(off)}}"#,
                      worldSize: world)
}

/// Trains GroupNet `steps` steps through the engine with HF-style groups; returns the (gathered) weights.
private func engineWeights(_ optimizer: String, stage: Int, offload: Bool, steps: Int, group: (any ProcessGroup)?,
                           rows: Range<Int>) throws -> [Float] {
    let model = GroupNet()
    let world = group?.size ?? 1
    let engine = try initialize(model: model, config: try engineConfig(stage: stage, offload: offload, micro: rows.count, world: world),
                                optimizer: makeTestOptimizer(optimizer, weightDecay: 0.77), processGroup: group,
                                parameterGroups: model.groups(decay)).engine
    let (x, y) = data(rows)
    for _ in 0..<steps {
        try engine.backward(engine(x).mseLoss(y))
        try engine.step()
    }
    // The optimizer's own decay is restored after every run.
    #expect((engine.optimizer as? any WeightDecaying)?.weightDecay == 0.77)
    return try engine.withGatheredParameters { weights(model) }
}

private func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

@Suite struct EngineParameterGroupTests {
    @Test func decayRunsTileThePartitionAndCrossShardBoundaries() {
        // Sizes 4, 2, 3 with decays 0.1, 0, 0.1; 2 partitions of 5 (one padding element).
        var rng = RandomStream(seed: 0)
        let named = [4, 2, 3].enumerated().map { ("p\($0)", Tensor.randn([$1], rng: &rng)) }
        let flat = FlatParameters(named, dtype: .float32, gradDType: .float32, partitions: 2)
        #expect(DecayRun.runs(decays: [0.1, 0, 0.1], flat: flat, partition: 0..<10)
                == [DecayRun(range: 0..<4, weightDecay: 0.1), DecayRun(range: 4..<6, weightDecay: 0), DecayRun(range: 6..<10, weightDecay: 0.1)])
        #expect(DecayRun.runs(decays: [0.1, 0, 0.1], flat: flat, partition: 0..<5)
                == [DecayRun(range: 0..<4, weightDecay: 0.1), DecayRun(range: 4..<5, weightDecay: 0)])
        #expect(DecayRun.runs(decays: [0.1, 0, 0.1], flat: flat, partition: 5..<10)
                == [DecayRun(range: 0..<1, weightDecay: 0), DecayRun(range: 1..<5, weightDecay: 0.1)])
        // Equal neighbours merge into one run.
        #expect(DecayRun.runs(decays: [0, 0, 0.1], flat: flat, partition: 0..<10)
                == [DecayRun(range: 0..<6, weightDecay: 0), DecayRun(range: 6..<10, weightDecay: 0.1)])
    }

    @Test(arguments: ["adamw", "adam_l2", "sgd", "adagrad", "lion", "lamb"])
    func groupsGiveEachParameterItsOwnDecay(_ optimizer: String) throws {
        let want = referenceWeights(optimizer, steps: 3, rows: 0..<4)
        let got = try engineWeights(optimizer, stage: 0, offload: false, steps: 3, group: nil, rows: 0..<4)
        #expect(maxDiff(got, want) <= 2e-6, "\(optimizer): \(maxDiff(got, want))")
        // And the groups matter: one decay for everything is a different result.
        let model = GroupNet()
        let engine = try initialize(model: model, config: try engineConfig(stage: 0, offload: false, micro: 4, world: 1),
                                    optimizer: makeTestOptimizer(optimizer, weightDecay: decay)).engine
        let (x, y) = data(0..<4)
        for _ in 0..<3 { try engine.backward(engine(x).mseLoss(y)); try engine.step() }
        #expect(maxDiff(weights(model), want) > 1e-4, "\(optimizer): decay on every parameter matched the groups")
    }

    @Test(arguments: [(1, false), (2, false), (3, false), (1, true), (2, true), (3, true)])
    func zeroOnTwoRanksMatchesOneProcess(_ stage: Int, _ offload: Bool) throws {
        for optimizer in ["adamw", "sgd", "lion"] {
            let one = try engineWeights(optimizer, stage: 0, offload: false, steps: 3, group: nil, rows: 0..<4)
            let ranks = try LocalProcessGroup.run(size: 2) { group in
                try engineWeights(optimizer, stage: stage, offload: offload, steps: 3, group: group,
                                  rows: (2 * group.rank)..<(2 * group.rank + 2))
            }
            for (r, w) in ranks.enumerated() {
                #expect(maxDiff(w, one) <= 2e-6, "\(optimizer) stage \(stage) offload \(offload) rank \(r): \(maxDiff(w, one))")
            }
            #expect(ranks[0] == ranks[1])
        }
    }

    @Test func groupErrorsNameTheProblem() throws {
        let model = GroupNet()
        let cfg = try engineConfig(stage: 0, offload: false, micro: 4, world: 1)
        var rng = RandomStream(seed: 1)
        let stranger = Tensor.randn([3], rng: &rng)
        stranger.requiresGrad = true
        #expect(throws: InitializeError.self) {
            try initialize(model: model, config: cfg, optimizer: AdamW(),
                           parameterGroups: [ParameterGroup(parameters: [stranger], weightDecay: 0)])
        }
        let twice = GroupNet()
        let error = #expect(throws: InitializeError.self) {
            try initialize(model: twice, config: cfg, optimizer: AdamW(),
                           parameterGroups: [ParameterGroup(parameters: [twice.fc1.weight], weightDecay: 0),
                                             ParameterGroup(parameters: [twice.fc1.weight], weightDecay: 0.1)])
        }
        #expect(error?.description.contains("fc1.weight is in two parameter groups") == true)
    }
}
