// Parameter groups: per-parameter weight decay (HF's Trainer: none on biases and LayerNorm weights), and the optimizers
// that take it. Invariant: every update is elementwise in the decay (Lamb: per tensor), so the engine can apply a group's
// decay by setting `weightDecay` before the update of the flat run its parameters occupy, and restoring it after.

import SpeedCore

/// An optimizer whose weight decay can be changed between updates: the engine sets it per run of parameters
/// that share a ``ParameterGroup``'s decay. Adam/AdamW, Lamb, SGD, Adagrad and Lion conform.
///
/// ```swift
/// let opt: any WeightDecaying = AdamW(lr: 1e-3, weightDecay: 0.1)
/// opt.weightDecay = 0          // the next update of a bias run does not decay
/// ```
public protocol WeightDecaying: Optimizer {
    /// The decay the next ``Optimizer/update(param:grad:state:step:lowPrecisionCopy:)`` applies.
    var weightDecay: Double { get set }
}

extension Adam: WeightDecaying {}
extension Lamb: WeightDecaying {}
extension SGD: WeightDecaying {}
extension Adagrad: WeightDecaying {}
extension Lion: WeightDecaying {}

/// Parameters that share a weight decay (torch's param group `{"params": [...], "weight_decay": wd}`).
/// Parameters in no group use the optimizer's own `weightDecay`.
///
/// ```swift
/// let groups = [ParameterGroup(parameters: [fc.weight], weightDecay: 0.01),
///               ParameterGroup(parameters: [fc.bias!, norm.weight, norm.bias], weightDecay: 0)]
/// let (engine, _, _, _) = try SwiftSpeed.initialize(model: model, config: config, parameterGroups: groups)
/// ```
public struct ParameterGroup {
    public var parameters: [Tensor]
    public var weightDecay: Double

    public init(parameters: [Tensor], weightDecay: Double) {
        precondition(weightDecay >= 0, "ParameterGroup: weight_decay must be >= 0, got \(weightDecay)")
        self.parameters = parameters
        self.weightDecay = weightDecay
    }
}
