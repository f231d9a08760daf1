// Adam and AdamW with DeepSpeed's semantics, running the backend's fused `adamStep` kernel.
// Invariant: "Adam" is decoupled (AdamW) unless `adamWMode: false`, exactly as DeepSpeed's `adam_w_mode`
// default; `AdamW` is always decoupled.

import SpeedCore

/// DeepSpeed's `Adam`: `lr` 1e-3, `betas` (0.9, 0.999), `eps` 1e-8, `weight_decay` 0,
/// `bias_correction` true, `adam_w_mode` **true**. With `adamWMode` the decay is decoupled
/// (`p −= lr·wd·p`, as AdamW); without it `wd·p` is added to the gradient (L2, as `torch.optim.Adam`).
/// Per element at step t (see ``AdamHyper``):
/// `m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; p −= lr/(1−b1ᵗ) · m / (sqrt(v)/sqrt(1−b2ᵗ) + eps)`.
///
/// ```swift
/// let adam = Adam(lr: 1e-3, weightDecay: 0.01, adamWMode: false)   // torch.optim.Adam semantics
/// let state = adam.makeState(count: p.count, device: p.device)     // exp_avg, exp_avg_sq
/// adam.update(param: p, grad: g, state: state, step: 1)
/// ```
public class Adam: Optimizer {
    public var lr: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    public let biasCorrection: Bool
    /// Decoupled weight decay (AdamW) when true; L2 added to the gradient when false.
    public let adamWMode: Bool

    public init(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, biasCorrection: Bool = true, adamWMode: Bool = true) {
        let type = "Adam"
        Check.nonNegative(lr, "lr", type); Check.nonNegative(eps, "eps", type)
        Check.nonNegative(weightDecay, "weight_decay", type)
        Check.beta(betas.0, "betas[0]", type); Check.beta(betas.1, "betas[1]", type)
        self.lr = lr; (beta1, beta2) = betas; self.eps = eps; self.weightDecay = weightDecay
        self.biasCorrection = biasCorrection; self.adamWMode = adamWMode
    }

    public var typeName: String { "adam" }

    public var betas: (Double, Double)? {
        get { (beta1, beta2) }
        set { if let newValue { (beta1, beta2) = newValue } }
    }

    public var stateNames: [String] { ["exp_avg", "exp_avg_sq"] }

    public var hyperparameters: [String: Double] {
        ["lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weightDecay,
         "bias_correction": biasCorrection ? 1 : 0, "adam_w_mode": adamWMode ? 1 : 0]
    }

    /// The kernel constants for `step` (what ``update(param:grad:state:step:lowPrecisionCopy:)`` runs).
    public func hyper(step: Int) -> AdamHyper {
        AdamHyper(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
                  decoupled: adamWMode, step: step, biasCorrection: biasCorrection)
    }

    public func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?) {
        checkSlice(param: param, grad: grad, state: state, step: step, lowPrecisionCopy: lowPrecisionCopy)
        param.device.backend.adamStep(param: param, grad: grad, expAvg: state[0], expAvgSq: state[1],
                                      hyper: hyper(step: step), lowPrecisionCopy: lowPrecisionCopy)
    }
}

/// DeepSpeed's `AdamW` (`torch.optim.AdamW`'s formula): ``Adam`` with decoupled weight decay always.
/// Defaults as DeepSpeed's: `weight_decay` 0 (PyTorch's AdamW defaults to 0.01).
///
/// ```swift
/// let opt = AdamW(lr: 3e-4, weightDecay: 0.1)
/// let state = opt.makeState(count: p.count, device: p.device)
/// opt.update(param: p, grad: g, state: state, step: 1, lowPrecisionCopy: bf16Weights)
/// ```
public final class AdamW: Adam {
    public init(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, biasCorrection: Bool = true) {
        super.init(lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, biasCorrection: biasCorrection,
                   adamWMode: true)
    }

    public override var typeName: String { "adamw" }
}
