// LAMB with DeepSpeed's FusedLamb semantics: Adam moments, decay added to the update, a clamped trust ratio.
// Invariant: the trust ratio is ‖p‖/‖u‖ over the whole slice given to one `update` call (DeepSpeed: one
// parameter tensor), with ‖p‖ taken *before* the step; it is 1 when either norm is 0.

import SpeedCore

/// DeepSpeed's `Lamb` (`FusedLamb`): `lr` 1e-3, `betas` (0.9, 0.999), `eps` 1e-8,
/// `weight_decay` 0, `bias_correction` true, `eps_inside_sqrt` false, `max_coeff` 10,
/// `min_coeff` 0.01. At step t:
///
///     m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
///     u = m / (sqrt(v) + eps) + wd·p            (sqrt(v + eps) with epsInsideSqrt)
///     ratio = clamp(‖p‖ / ‖u‖, minCoeff, maxCoeff), or 1 when ‖p‖ or ‖u‖ is 0
///     p −= lr · sqrt(1 − b2ᵗ)/(1 − b1ᵗ) · ratio · u     (lr alone without bias correction)
///
/// The moments enter `u` uncorrected; the corrections are folded into the step size, as in
/// DeepSpeed's kernel. The last ratio is kept in ``lastTrustRatio`` (DeepSpeed's `get_lamb_coeffs`).
///
/// ```swift
/// let lamb = Lamb(lr: 1e-3, weightDecay: 0.01)
/// let state = lamb.makeState(count: w.count, device: w.device)   // exp_avg, exp_avg_sq
/// lamb.update(param: w, grad: w.grad!, state: state, step: 1)
/// lamb.lastTrustRatio                                              // in [0.01, 10]
/// ```
public final class Lamb: Optimizer {
    public var lr: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    public let biasCorrection: Bool
    public let epsInsideSqrt: Bool
    public var maxCoeff: Double
    public var minCoeff: Double
    /// The trust ratio the last ``update(param:grad:state:step:lowPrecisionCopy:)`` applied.
    public private(set) var lastTrustRatio: Double = 1

    public init(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, biasCorrection: Bool = true, epsInsideSqrt: Bool = false,
                maxCoeff: Double = 10, minCoeff: Double = 0.01) {
        Check.nonNegative(lr, "lr", "Lamb"); Check.nonNegative(eps, "eps", "Lamb")
        Check.nonNegative(weightDecay, "weight_decay", "Lamb")
        Check.beta(betas.0, "betas[0]", "Lamb"); Check.beta(betas.1, "betas[1]", "Lamb")
        precondition(minCoeff >= 0 && minCoeff <= maxCoeff,
                     "Lamb: need 0 <= min_coeff <= max_coeff, got min_coeff \(minCoeff), max_coeff \(maxCoeff)")
        self.lr = lr; (beta1, beta2) = betas; self.eps = eps; self.weightDecay = weightDecay
        self.biasCorrection = biasCorrection; self.epsInsideSqrt = epsInsideSqrt
        self.maxCoeff = maxCoeff; self.minCoeff = minCoeff
    }

    /// The trust ratio is per parameter tensor, as in DeepSpeed's FusedLamb.
    public var updatesPerTensor: Bool { true }

    public var typeName: String { "lamb" }

    public var betas: (Double, Double)? {
        get { (beta1, beta2) }
        set { if let newValue { (beta1, beta2) = newValue } }
    }

    public var stateNames: [String] { ["exp_avg", "exp_avg_sq"] }

    public var hyperparameters: [String: Double] {
        ["lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weightDecay,
         "bias_correction": biasCorrection ? 1 : 0, "eps_inside_sqrt": epsInsideSqrt ? 1 : 0,
         "max_coeff": maxCoeff, "min_coeff": minCoeff]
    }

    /// The clamped trust ratio for the two norms (1 when either is 0).
    public func trustRatio(paramNorm: Double, updateNorm: Double) -> Double {
        guard paramNorm != 0 && updateNorm != 0 else { return 1 }
        return Swift.min(maxCoeff, Swift.max(minCoeff, paramNorm / updateNorm))
    }

    public func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?) {
        checkSlice(param: param, grad: grad, state: state, step: step, lowPrecisionCopy: lowPrecisionCopy)
        // Any shape is accepted: work on flat views (they share storage with the caller's tensors).
        let (param, grad, lowPrecisionCopy) = (param.reshape([-1]), grad.reshape([-1]), lowPrecisionCopy?.reshape([-1]))
        let (m, v) = (state[0], state[1])
        noGrad {
            let g = Slice.fp32(grad)
            m.copyData(from: m * beta1 + g * (1 - beta1))
            v.copyData(from: v * beta2 + g * g * (1 - beta2))
            let denom = epsInsideSqrt ? (v + eps).sqrt() : v.sqrt() + eps
            var u = m / denom
            if weightDecay != 0 { u = u + param * weightDecay }
            let paramNorm = (param * param).sum().item().squareRoot()
            let updateNorm = (u * u).sum().item().squareRoot()
            let ratio = trustRatio(paramNorm: paramNorm, updateNorm: updateNorm)
            var stepSize = lr
            if biasCorrection {
                let t = Double(step)
                stepSize = lr * (1 - Double.pow(beta2, t)).squareRoot() / (1 - Double.pow(beta1, t))
            }
            param.copyData(from: param - u * (stepSize * ratio))
            lastTrustRatio = ratio
            Slice.writeCopy(param, lowPrecisionCopy)
        }
    }
}
