// The optimizer contract: pure math over one flat slice of (param, grad, state buffers).
// Invariant: an update reads and writes only the slice it is given, so ZeRO can run the same
// optimizer on a rank's shard, on the CPU (offload) or on a GPU, with no subclass per stage.

import SpeedCore

/// An optimizer as pure per-buffer math, like DeepSpeed's fused optimizers.
///
/// The caller (the engine, or a plain training loop) owns the buffers: it allocates the state
/// with ``makeState(count:device:)`` (one fp32 tensor per name in ``stateNames``, with the
/// slice's element count) and calls ``update(param:grad:state:step:lowPrecisionCopy:)`` once
/// per optimizer step for every flat slice. Everything but Lamb is elementwise, so any split
/// of a buffer into slices gives the same result; Lamb's trust ratio is taken over the slice
/// it is given (DeepSpeed takes it per parameter tensor: call it once per parameter view).
///
/// ```swift
/// let adam = AdamW(lr: 3e-4, weightDecay: 0.1)
/// let state = adam.makeState(count: p.count, device: p.device)
/// adam.update(param: p, grad: p.grad!, state: state, step: 1)
/// ```
public protocol Optimizer: AnyObject {
    /// DeepSpeed's type name, lower-cased ("adam", "adamw", "sgd", "lamb", "adagrad", "lion").
    var typeName: String { get }
    /// The learning rate used by the next update (LR schedules set it).
    var lr: Double { get set }
    /// (beta1, beta2) for optimizers that have them; OneCycle's momentum cycling sets beta1.
    /// Setting it on an optimizer without betas (SGD, Adagrad) does nothing.
    var betas: (Double, Double)? { get set }
    /// Names of per-element state buffers, e.g. `["exp_avg", "exp_avg_sq"]` (checkpoint keys).
    var stateNames: [String] { get }
    /// Hyper-parameters for logs and checkpoints (flags as 0 or 1).
    var hyperparameters: [String: Double] { get }
    /// Fresh state for a slice of `count` elements: one fp32 tensor per ``stateNames`` entry,
    /// zero-filled unless the optimizer starts elsewhere (Adagrad's `initialAccumulatorValue`).
    func makeState(count: Int, device: Device) -> [Tensor]
    /// True when the update is not elementwise over a slice and must be applied once per parameter
    /// tensor (Lamb's trust ratio is per tensor in DeepSpeed); the engine then calls ``update`` per
    /// parameter view of the flat buffers instead of once per slice.
    var updatesPerTensor: Bool { get }
    /// One update of a flat slice. `param` and every `state` tensor are fp32, `grad` is fp32 (or
    /// bf16/fp16), all with the same count; `step` is the 1-based optimizer step (bias
    /// correction, SGD's first momentum step). When `lowPrecisionCopy` (bf16/fp16) is given, the
    /// updated values are also written to it, rounded to nearest-even.
    func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?)
}

extension Optimizer {
    public func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int) {
        update(param: param, grad: grad, state: state, step: step, lowPrecisionCopy: nil)
    }

    public var updatesPerTensor: Bool { false }

    public func makeState(count: Int, device: Device) -> [Tensor] {
        stateNames.map { _ in Tensor.zeros([count], device: device) }
    }

    /// Zero-filled state on the CPU.
    public func makeState(count: Int) -> [Tensor] { makeState(count: count, device: .cpu) }

    /// Checks the ``update(param:grad:state:step:lowPrecisionCopy:)`` contract (caller bugs).
    func checkSlice(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?) {
        let n = param.count
        precondition(step >= 1, "\(typeName): step is 1-based, got \(step)")
        precondition(param.dtype == .float32, "\(typeName): param must be float32 (master weights), got \(param.dtype)")
        precondition(grad.dtype == .float32 || grad.dtype.isHalf,
                     "\(typeName): grad must be float32, bfloat16 or float16, got \(grad.dtype)")
        precondition(grad.count == n, "\(typeName): grad has \(grad.count) elements, param \(n)")
        precondition(state.count == stateNames.count,
                     "\(typeName): expected \(stateNames.count) state tensors \(stateNames), got \(state.count)")
        for (name, s) in zip(stateNames, state) {
            precondition(s.dtype == .float32 && s.count == n,
                         "\(typeName): state '\(name)' must be float32 with \(n) elements, got \(s.dtype) with \(s.count)")
        }
        if let copy = lowPrecisionCopy {
            precondition(copy.dtype.isHalf && copy.count == n,
                         "\(typeName): lowPrecisionCopy must be bfloat16 or float16 with \(n) elements, got \(copy.dtype) with \(copy.count)")
        }
    }
}

/// Shared range checks for constructor arguments (PyTorch raises ValueError on the same).
enum Check {
    static func nonNegative(_ value: Double, _ name: String, _ type: String) {
        precondition(value >= 0, "\(type): \(name) must be >= 0, got \(value)")
    }

    static func beta(_ value: Double, _ name: String, _ type: String) {
        precondition(value >= 0 && value < 1, "\(type): \(name) must be in [0, 1), got \(value)")
    }
}

/// Helpers for the optimizers composed from tensor ops (SGD, Adagrad, Lion, Lamb).
enum Slice {
    /// The gradient as fp32 (a half gradient is widened once).
    static func fp32(_ grad: Tensor) -> Tensor { grad.dtype == .float32 ? grad : grad.cast(to: .float32) }

    /// Writes the updated parameters into the optional 16-bit copy (round to nearest-even).
    static func writeCopy(_ param: Tensor, _ copy: Tensor?) { copy?.copyData(from: param) }
}
