// Straightforward fp64 scalar implementations of each optimizer's formula, the tests' ground truth.
// Invariant: written from the formulas (PyTorch's optimizer docs, DeepSpeed's FusedAdam/FusedLamb/Lion kernels), never from the code
// under test; one element at a time, no shared helpers with SpeedOptim.

import Foundation
import SpeedCore
import SpeedOptim
import Testing

enum Reference {
    static func adam(p: inout [Double], g: [Double], m: inout [Double], v: inout [Double], step t: Int,
                     lr: Double, beta1: Double, beta2: Double, eps: Double, wd: Double,
                     decoupled: Bool, biasCorrection: Bool = true) {
        let bc1 = biasCorrection ? 1 - pow(beta1, Double(t)) : 1
        let bc2 = biasCorrection ? 1 - pow(beta2, Double(t)) : 1
        for i in p.indices {
            var gi = g[i]
            if !decoupled { gi += wd * p[i] }
            m[i] = beta1 * m[i] + (1 - beta1) * gi
            v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
            let denom = v[i].squareRoot() / bc2.squareRoot() + eps
            if decoupled { p[i] -= lr * wd * p[i] }
            p[i] -= lr / bc1 * m[i] / denom
        }
    }

    static func sgd(p: inout [Double], g: [Double], buf: inout [Double], step t: Int, lr: Double,
                    momentum: Double, dampening: Double, wd: Double, nesterov: Bool) {
        for i in p.indices {
            var d = g[i] + wd * p[i]
            if momentum != 0 {
                buf[i] = t == 1 ? d : momentum * buf[i] + (1 - dampening) * d
                d = nesterov ? d + momentum * buf[i] : buf[i]
            }
            p[i] -= lr * d
        }
    }

    static func adagrad(p: inout [Double], g: [Double], sum: inout [Double], step t: Int, lr: Double,
                        lrDecay: Double, wd: Double, eps: Double) {
        let clr = lr / (1 + Double(t - 1) * lrDecay)
        for i in p.indices {
            let d = g[i] + wd * p[i]
            sum[i] += d * d
            p[i] -= clr * d / (sum[i].squareRoot() + eps)
        }
    }

    static func lion(p: inout [Double], g: [Double], m: inout [Double], lr: Double, beta1: Double,
                     beta2: Double, wd: Double) {
        for i in p.indices {
            let c = beta1 * m[i] + (1 - beta1) * g[i]
            let sign: Double = c > 0 ? 1 : (c < 0 ? -1 : 0)
            p[i] = p[i] * (1 - lr * wd) - lr * sign
            m[i] = beta2 * m[i] + (1 - beta2) * g[i]
        }
    }

    /// Returns the trust ratio applied.
    @discardableResult
    static func lamb(p: inout [Double], g: [Double], m: inout [Double], v: inout [Double], step t: Int,
                     lr: Double, beta1: Double, beta2: Double, eps: Double, wd: Double,
                     biasCorrection: Bool = true, epsInsideSqrt: Bool = false,
                     minCoeff: Double = 0.01, maxCoeff: Double = 10) -> Double {
        var u = [Double](repeating: 0, count: p.count)
        var pNorm2 = 0.0, uNorm2 = 0.0
        for i in p.indices {
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            let denom = epsInsideSqrt ? (v[i] + eps).squareRoot() : v[i].squareRoot() + eps
            u[i] = m[i] / denom + wd * p[i]
            pNorm2 += p[i] * p[i]
            uNorm2 += u[i] * u[i]
        }
        let pNorm = pNorm2.squareRoot(), uNorm = uNorm2.squareRoot()
        var ratio = 1.0
        if pNorm != 0 && uNorm != 0 { ratio = min(maxCoeff, max(minCoeff, pNorm / uNorm)) }
        let stepSize = biasCorrection
            ? lr * (1 - pow(beta2, Double(t))).squareRoot() / (1 - pow(beta1, Double(t))) : lr
        for i in p.indices { p[i] -= stepSize * ratio * u[i] }
        return ratio
    }
}

// MARK: Inputs and comparison

/// Seeded fp32 values, read back as Double (the exact inputs both sides start from).
func seeded(_ n: Int, seed: UInt64, std: Double = 1, mean: Double = 0) -> [Double] {
    var rng = RandomStream(seed: seed)
    return Tensor.randn([n], mean: mean, std: std, rng: &rng).scalars(as: Double.self)
}

/// An fp32 tensor holding `xs` (rounded to fp32).
func tensor32(_ xs: [Double]) -> Tensor { Tensor(xs.map { Float($0) }) }

/// Elementwise `|a − e| <= atol + rtol·|e|`, reporting the first mismatch.
func expectAllClose(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): counts \(actual.count) vs \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    for i in actual.indices {
        let (a, e) = (actual[i], expected[i])
        if Swift.abs(a - e) > atol + rtol * Swift.abs(e) || a.isNaN != e.isNaN {
            Issue.record("\(what): element \(i) is \(a), expected \(e) (rtol \(rtol), atol \(atol))",
                         sourceLocation: sourceLocation)
            return
        }
    }
}
