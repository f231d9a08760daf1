// Adagrad with PyTorch's formula (DeepSpeed uses torch.optim.Adagrad, or its CPU Adagrad when offloading).
// Invariant: the accumulator starts at `initialAccumulatorValue`, which only `makeState` can set, so state
// must come from `makeState` (zero-filled state is right only for the default 0).

import SpeedCore

/// `torch.optim.Adagrad`: `lr` 1e-2, `lr_decay` 0, `weight_decay` 0, `initial_accumulator_value` 0,
/// `eps` 1e-10. Per element at step t: `d = g + wd·p; sum += d²;
/// p −= lr / (1 + (t − 1)·lr_decay) · d / (sqrt(sum) + eps)`.
///
/// ```swift
/// let opt = Adagrad(lr: 0.01, initialAccumulatorValue: 0.1)
/// let state = opt.makeState(count: p.count, device: p.device)   // ["sum"], filled with 0.1
/// opt.update(param: p, grad: g, state: state, step: 1)
/// ```
public final class Adagrad: Optimizer {
    public var lr: Double
    public var lrDecay: Double
    public var weightDecay: Double
    public let initialAccumulatorValue: Double
    public var eps: Double

    public init(lr: Double = 1e-2, lrDecay: Double = 0, weightDecay: Double = 0,
                initialAccumulatorValue: Double = 0, eps: Double = 1e-10) {
        Check.nonNegative(lr, "lr", "Adagrad"); Check.nonNegative(lrDecay, "lr_decay", "Adagrad")
        Check.nonNegative(weightDecay, "weight_decay", "Adagrad"); Check.nonNegative(eps, "eps", "Adagrad")
        Check.nonNegative(initialAccumulatorValue, "initial_accumulator_value", "Adagrad")
        self.lr = lr; self.lrDecay = lrDecay; self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue; self.eps = eps
    }

    public var typeName: String { "adagrad" }
    public var betas: (Double, Double)? { get { nil } set {} }
    public var stateNames: [String] { ["sum"] }

    public var hyperparameters: [String: Double] {
        ["lr": lr, "lr_decay": lrDecay, "weight_decay": weightDecay,
         "initial_accumulator_value": initialAccumulatorValue, "eps": eps]
    }

    public func makeState(count: Int, device: Device) -> [Tensor] {
        [Tensor.full([count], initialAccumulatorValue, device: device)]
    }

    public func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?) {
        checkSlice(param: param, grad: grad, state: state, step: step, lowPrecisionCopy: lowPrecisionCopy)
        // Any shape is accepted: work on flat views (they share storage with the caller's tensors).
        let (param, grad, lowPrecisionCopy) = (param.reshape([-1]), grad.reshape([-1]), lowPrecisionCopy?.reshape([-1]))
        noGrad {
            var d = Slice.fp32(grad)
            if weightDecay != 0 { d = d + param * weightDecay }
            let sum = state[0]
            sum.copyData(from: sum + d * d)
            let clr = lr / (1 + Double(step - 1) * lrDecay)
            param.copyData(from: param - d / (sum.sqrt() + eps) * clr)
            Slice.writeCopy(param, lowPrecisionCopy)
        }
    }
}
