// Lion (sign momentum) with DeepSpeed's formula: decoupled weight decay, update ±lr from the sign of a blend.
// Invariant: the step and the stored momentum are two different blends of the *old* m (b1 for the step,
// b2 for the new m), so the step's blend is formed before m is overwritten.

import SpeedCore

/// DeepSpeed's `Lion` (`FusedLion` / `DeepSpeedCPULion`): `lr` 1e-3, `betas` (0.9, 0.999) (DeepSpeed's
/// default; the paper suggests 0.99), `weight_decay` 0. Per element:
/// `c = b1·m + (1−b1)·g; p = p·(1 − lr·wd) − lr·sign(c); m = b2·m + (1−b2)·g`, with sign(0) = 0
/// (DeepSpeed's two kernels disagree at exactly 0: the CUDA one gives +lr, the CPU one −lr).
///
/// ```swift
/// let lion = Lion(lr: 1e-4, betas: (0.9, 0.99), weightDecay: 1.0)
/// let state = lion.makeState(count: p.count, device: p.device)   // ["exp_avg"]
/// lion.update(param: p, grad: g, state: state, step: 1)
/// ```
public final class Lion: Optimizer {
    public var lr: Double
    public var beta1: Double
    public var beta2: Double
    public var weightDecay: Double

    public init(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), weightDecay: Double = 0) {
        Check.nonNegative(lr, "lr", "Lion"); Check.nonNegative(weightDecay, "weight_decay", "Lion")
        Check.beta(betas.0, "betas[0]", "Lion"); Check.beta(betas.1, "betas[1]", "Lion")
        self.lr = lr; (beta1, beta2) = betas; self.weightDecay = weightDecay
    }

    public var typeName: String { "lion" }

    public var betas: (Double, Double)? {
        get { (beta1, beta2) }
        set { if let newValue { (beta1, beta2) = newValue } }
    }

    public var stateNames: [String] { ["exp_avg"] }

    public var hyperparameters: [String: Double] {
        ["lr": lr, "beta1": beta1, "beta2": beta2, "weight_decay": weightDecay]
    }

    public func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?) {
        checkSlice(param: param, grad: grad, state: state, step: step, lowPrecisionCopy: lowPrecisionCopy)
        // Any shape is accepted: work on flat views (they share storage with the caller's tensors).
        let (param, grad, lowPrecisionCopy) = (param.reshape([-1]), grad.reshape([-1]), lowPrecisionCopy?.reshape([-1]))
        noGrad {
            let g = Slice.fp32(grad), m = state[0]
            let c = m * beta1 + g * (1 - beta1)
            let zero = Tensor(scalar: 0, device: param.device)
            let sign = c.greater(zero) - zero.greater(c)
            let decayed = weightDecay != 0 ? param * (1 - lr * weightDecay) : param
            param.copyData(from: decayed - sign * lr)
            m.copyData(from: m * beta2 + g * (1 - beta2))
            Slice.writeCopy(param, lowPrecisionCopy)
        }
    }
}
