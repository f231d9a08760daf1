// One stage's share of a PipelineModule as a Module: its built layers, its tied modules, and a forward that
// runs them in order with optional activation checkpointing every `interval` layers.
// Invariant: a tied module appears once in the parameters even when several local layers use it, so the engine's
// flat buffer holds each weight once and the tied layers' gradients accumulate into the same `.grad`.

import SpeedCore
import SpeedNN

/// The layers of one pipeline stage, trainable by an ``Engine`` like any module.
///
/// ```swift
/// let stage = module.build(stage: 0)
/// let hidden = stage(ids)                        // [B, T, C] on the first stage of a GPT
/// stage.module(forLayer: 0) as? Embedding        // the tied embedding
/// ```
public final class PipelineStage: Module, ActivationCheckpointable {
    public let stageID: Int
    /// The global layer indices this stage runs.
    public let layerRange: Range<Int>
    /// The built untied layers, in layer order (parameter names `layers.i.…`).
    public let layers: [Module]
    /// One module per tie key present on this stage, in ``tiedKeys`` order (parameter names `tiedModules.i.…`).
    public let tiedModules: [Module]
    /// The tie keys of ``tiedModules``.
    public let tiedKeys: [String]
    /// Checkpoint every `interval` consecutive layers (0 = off).
    public let activationCheckpointInterval: Int
    /// Enabled when `activationCheckpointInterval > 0`; the runtime's `activation_checkpointing` block sets
    /// `cpuCheckpointing` (saved chunk inputs kept on the CPU).
    public var activationCheckpointing: ActivationCheckpointing

    /// How each local layer runs.
    enum Step {
        case module(Module, (@Sendable (Module, Tensor) -> Tensor)?)
        case function(@Sendable (Tensor) -> Tensor)
    }
    /// (Underscored: Module reflection skips them, so shared modules are not found twice.)
    let _plan: [Step]
    /// Per local layer: the module that holds its state (nil for functions).
    let _owners: [Module?]

    init(module spec: PipelineModule, stage: Int) {
        stageID = stage
        layerRange = spec.layerRange(stage: stage)
        activationCheckpointInterval = spec.activationCheckpointInterval
        activationCheckpointing = ActivationCheckpointing(enabled: spec.activationCheckpointInterval > 0)
        var layers: [Module] = [], tied: [String: Module] = [:]
        var plan: [Step] = [], owners: [Module?] = []
        for i in layerRange {
            switch spec.layers[i] {
            case .layer(let s):
                let m = s.build()
                layers.append(m)
                plan.append(.module(m, s.forward))
                owners.append(m)
            case .tied(let s):
                let m = tied[s.key] ?? s.build()
                tied[s.key] = m
                plan.append(.module(m, s.forward))
                owners.append(m)
            case .function(_, let f):
                plan.append(.function(f))
                owners.append(nil)
            }
        }
        self.layers = layers
        tiedKeys = tied.keys.sorted()
        tiedModules = tiedKeys.map { tied[$0]! }
        _plan = plan
        _owners = owners
        super.init()
    }

    /// The module holding global layer `index`'s state (a tied layer's shared module), nil for a function
    /// layer or a layer of another stage.
    public func module(forLayer index: Int) -> Module? {
        layerRange.contains(index) ? _owners[index - layerRange.lowerBound] : nil
    }

    /// The shared module of tie `key` on this stage, if any.
    public func tiedModule(_ key: String) -> Module? { tiedKeys.firstIndex(of: key).map { tiedModules[$0] } }

    /// Runs local layers `range` (local indices) on `x`.
    func run(_ range: Range<Int>, _ x: Tensor) -> Tensor {
        var x = x
        for step in _plan[range] {
            switch step {
            case .module(let m, let forward): x = forward.map { $0(m, x) } ?? m(x)
            case .function(let f): x = f(x)
            }
        }
        return x
    }

    /// This stage's layers in order; with checkpointing, each run of `interval` layers that holds
    /// parameters is one ``checkpoint(_:saveInputsOn:preserving:parameters:_:)`` (its dropout streams replayed).
    public override func forward(_ x: Tensor) -> Tensor {
        let interval = activationCheckpointInterval
        guard interval > 0, activationCheckpointing.enabled else { return run(0..<_plan.count, x) }
        var x = x
        for start in stride(from: 0, to: _plan.count, by: interval) {
            let range = start..<Swift.min(start + interval, _plan.count)
            var seen = Set<ObjectIdentifier>()
            let modules = _owners[range].compactMap { $0 }.filter { seen.insert(ObjectIdentifier($0)).inserted }
            let parameters = modules.flatMap { $0.parameters() }
            guard !parameters.isEmpty else { x = run(range, x); continue }
            let streams = modules.flatMap { $0.namedModules().compactMap { $0.1 as? Dropout } }.map { d in
                PreservedState(get: { d.rng }, set: { d.rng = $0 })
            }
            x = checkpoint([x], saveInputsOn: activationCheckpointing.saveInputsOn, preserving: streams,
                           parameters: parameters) { xs in self.run(range, xs[0]) }
        }
        return x
    }
}
