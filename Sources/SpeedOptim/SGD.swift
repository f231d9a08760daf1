// Stochastic gradient descent with PyTorch's formulas (DeepSpeed hands "SGD" to torch.optim.SGD).
// Invariant: the momentum buffer is set to the first step's (decayed) gradient, not blended with zeros,
// so `step` must be 1 exactly on the first update of a slice.

import SpeedCore

/// `torch.optim.SGD`: `lr` 1e-3, `momentum` 0, `dampening` 0, `weight_decay` 0, `nesterov` false.
/// Per element: `d = g + wd·p`; with momentum, `buf = d` at step 1, else
/// `buf = momentum·buf + (1 − dampening)·d`, then `d = nesterov ? d + momentum·buf : buf`;
/// finally `p −= lr·d`.
///
/// ```swift
/// let sgd = SGD(lr: 0.1, momentum: 0.9, nesterov: true)
/// let state = sgd.makeState(count: p.count, device: p.device)   // ["momentum_buffer"]
/// sgd.update(param: p, grad: g, state: state, step: 1)
/// ```
public final class SGD: Optimizer {
    public var lr: Double
    public var momentum: Double
    public var dampening: Double
    public var weightDecay: Double
    public let nesterov: Bool

    public init(lr: Double = 1e-3, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                nesterov: Bool = false) {
        Check.nonNegative(lr, "lr", "SGD"); Check.nonNegative(momentum, "momentum", "SGD")
        Check.nonNegative(weightDecay, "weight_decay", "SGD")
        precondition(!nesterov || (momentum > 0 && dampening == 0),
                     "SGD: nesterov needs momentum > 0 and dampening 0, got momentum \(momentum), dampening \(dampening)")
        self.lr = lr; self.momentum = momentum; self.dampening = dampening
        self.weightDecay = weightDecay; self.nesterov = nesterov
    }

    public var typeName: String { "sgd" }
    public var betas: (Double, Double)? { get { nil } set {} }
    /// One buffer with momentum, none without (as PyTorch, which stores no buffer then).
    public var stateNames: [String] { momentum != 0 ? ["momentum_buffer"] : [] }

    public var hyperparameters: [String: Double] {
        ["lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weightDecay,
         "nesterov": nesterov ? 1 : 0]
    }

    public func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?) {
        checkSlice(param: param, grad: grad, state: state, step: step, lowPrecisionCopy: lowPrecisionCopy)
        // Any shape is accepted: work on flat views (they share storage with the caller's tensors).
        let (param, grad, lowPrecisionCopy) = (param.reshape([-1]), grad.reshape([-1]), lowPrecisionCopy?.reshape([-1]))
        noGrad {
            var d = Slice.fp32(grad)
            if weightDecay != 0 { d = d + param * weightDecay }
            if momentum != 0 {
                let buf = state[0]
                buf.copyData(from: step == 1 ? d : buf * momentum + d * (1 - dampening))
                d = nesterov ? d + buf * momentum : buf
            }
            param.copyData(from: param - d * lr)
            Slice.writeCopy(param, lowPrecisionCopy)
        }
    }
}
