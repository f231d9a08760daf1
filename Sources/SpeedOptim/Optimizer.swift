// The optimizer contract: pure math over one flat slice of (param, grad, state buffers).
// Invariant: an update reads and writes only the slice it is given, so ZeRO can run the same
// optimizer on a rank's shard, on the CPU (offload) or on a GPU, with no subclass per stage.

import SpeedCore

/// An optimizer as pure per-buffer math, like DeepSpeed's fused optimizers.
///
/// The caller (the engine, or a plain training loop) owns the buffers: it allocates one fp32
/// state tensor per name in ``stateNames`` with the parameter's element count (zero-filled),
/// and calls ``update(param:grad:state:step:)`` once per optimizer step for every flat slice.
///
/// ```swift
/// let adam = AdamW(lr: 3e-4, weightDecay: 0.1)
/// let state = adam.stateNames.map { _ in Tensor.zeros([p.count]) }
/// adam.update(param: p, grad: p.grad!, state: state, step: 1)
/// ```
public protocol Optimizer: AnyObject {
    /// DeepSpeed's type name, lower-cased ("adam", "adamw", "sgd", "lamb", "adagrad", "lion").
    var typeName: String { get }
    /// The learning rate used by the next update (LR schedules set it).
    var lr: Double { get set }
    /// (beta1, beta2) for optimizers that have them; OneCycle's momentum cycling sets beta1.
    var betas: (Double, Double)? { get set }
    /// Names of per-element state buffers, e.g. `["exp_avg", "exp_avg_sq"]` (checkpoint keys).
    var stateNames: [String] { get }
    /// Hyper-parameters for logs and checkpoints.
    var hyperparameters: [String: Double] { get }
    /// One update of a flat slice. `param`, `grad` and every `state` tensor are 1-D with the
    /// same count; `step` is the 1-based optimizer step (bias correction). `param` may be fp32
    /// master weights; when `lowPrecisionCopy` is given, the updated values are also written
    /// to it (bf16/fp16) in the same pass.
    func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?)
}

extension Optimizer {
    public func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int) {
        update(param: param, grad: grad, state: state, step: step, lowPrecisionCopy: nil)
    }
}
