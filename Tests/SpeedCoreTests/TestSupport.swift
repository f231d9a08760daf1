// Shared test helpers: seeded fp64 inputs, closeness checks, and the central finite-difference gradient checker.
import Testing
import SpeedCore

// MARK: Inputs

/// A fp64 leaf drawn from N(shift, scale²) with its own seed.
func randn64(_ shape: [Int], seed: UInt64, scale: Double = 1, shift: Double = 0) -> Tensor {
    var rng = RandomStream(seed: seed)
    let t = noGrad { Tensor.randn(shape, mean: shift, std: scale, dtype: .float64, rng: &rng) }
    t.requiresGrad = true
    return t
}

/// A fp64 leaf with values in [low, high) (for log, sqrt, pow, division).
func uniform64(_ shape: [Int], seed: UInt64, low: Double = 0.5, high: Double = 2) -> Tensor {
    var rng = RandomStream(seed: seed)
    let t = Tensor.uniform(shape, low: low, high: high, dtype: .float64, rng: &rng)
    t.requiresGrad = true
    return t
}

/// A fp64 leaf with every |value| >= `gap` (for relu/abs, whose derivative jumps at 0).
func awayFromZero64(_ shape: [Int], seed: UInt64, gap: Double = 0.2) -> Tensor {
    let values = randn64(shape, seed: seed).scalars(as: Double.self).map { $0 >= 0 ? $0 + gap : $0 - gap }
    return Tensor(values, shape: shape, requiresGrad: true)
}

/// Seeded fp32 values (not a leaf).
func randn32(_ shape: [Int], seed: UInt64, scale: Double = 1, shift: Double = 0) -> Tensor {
    var rng = RandomStream(seed: seed)
    return Tensor.randn(shape, mean: shift, std: scale, dtype: .float32, rng: &rng)
}

// MARK: Closeness

/// The first index where `|actual - expected| > atol + rtol * |expected|`, or nil.
func firstMismatch(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double) -> Int? {
    if actual.count != expected.count { return -1 }
    for i in actual.indices {
        let (a, e) = (actual[i], expected[i])
        if a.isNaN != e.isNaN { return i }
        if a.isNaN { continue }
        if a.isInfinite || e.isInfinite { if a != e { return i } else { continue } }
        if Swift.abs(a - e) > atol + rtol * Swift.abs(e) { return i }
    }
    return nil
}

/// Elementwise `|actual - expected| <= atol + rtol * |expected|`.
func expectClose(_ actual: [Double], _ expected: [Double], rtol: Double = 1e-12, atol: Double = 1e-12,
                 _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    if let i = firstMismatch(actual, expected, rtol: rtol, atol: atol) {
        let detail = i < 0 ? "counts \(actual.count) vs \(expected.count)"
                           : "element \(i): \(actual[i]) vs expected \(expected[i]) (rtol \(rtol), atol \(atol))"
        Issue.record("\(what) mismatch at \(detail)", sourceLocation: sourceLocation)
    }
}

/// Elementwise closeness of two tensors' values (any dtypes), read as Double.
func expectClose(_ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-12, atol: Double = 1e-12,
                 _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "\(what) shape", sourceLocation: sourceLocation)
    expectClose(actual.scalars(as: Double.self), expected.scalars(as: Double.self), rtol: rtol, atol: atol, what,
                sourceLocation: sourceLocation)
}

/// Normwise closeness: `max|actual - expected| <= rtol * max|expected|` (for results that cross zero).
func expectNormClose(_ actual: Tensor, _ expected: Tensor, rtol: Double, _ what: String = "",
                     sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "\(what) shape", sourceLocation: sourceLocation)
    let a = actual.scalars(as: Double.self), e = expected.scalars(as: Double.self)
    let scale = e.map(Swift.abs).max() ?? 0
    let err = zip(a, e).map { Swift.abs($0 - $1) }.max() ?? 0
    #expect(scale > 0, "\(what): reference is all zeros", sourceLocation: sourceLocation)
    #expect(err <= rtol * scale, "\(what): max error \(err) > \(rtol) * \(scale)", sourceLocation: sourceLocation)
}

// MARK: Gradient checking

/// What `gradientCheck` found.
struct GradientCheckReport {
    /// One line per element whose analytic and numeric derivatives disagree (or per input with no gradient).
    var failures: [String] = []
    /// Elements compared.
    var checked = 0
    /// Largest |analytic gradient| seen, so a check cannot pass vacuously on all-zero gradients.
    var largestGradient = 0.0
}

/// Compares `backward()` against central finite differences of `f` for every element of every fp64 input.
///
/// The output is projected to a scalar with fixed random weights, so every output element carries a
/// distinct upstream gradient. `f` must be deterministic (draw any randomness from a copied stream).
func gradientCheck(_ inputs: [Tensor], eps: Double = 1e-6, rtol: Double = 1e-6, atol: Double = 1e-8,
                   _ f: ([Tensor]) -> Tensor) -> GradientCheckReport {
    var report = GradientCheckReport()
    precondition(inputs.allSatisfy { $0.dtype == .float64 && $0.isLeaf }, "gradientCheck: inputs must be fp64 leaves")
    let probe = noGrad { f(inputs) }
    var rng = RandomStream(seed: 0x5EED)
    let weights = Tensor.randn(probe.shape, dtype: .float64, rng: &rng)
    func objective() -> Tensor { (f(inputs) * weights).sum() }

    for x in inputs { x.requiresGrad = true; x.grad = nil }
    objective().backward()
    let analytic = inputs.map { $0.grad?.scalars(as: Double.self) }

    for (i, x) in inputs.enumerated() {
        guard let a = analytic[i] else { report.failures.append("input \(i) \(x.shape): no gradient"); continue }
        guard x.grad?.dtype == .float64, a.count == x.count else {
            report.failures.append("input \(i): gradient \(String(describing: x.grad?.shape)) \(String(describing: x.grad?.dtype))")
            continue
        }
        let p = x.pointer(as: Double.self)
        for j in 0..<x.count {
            let original = p[j]
            let (up, down) = (original + eps, original - eps)
            p[j] = up
            let lossUp = noGrad { objective() }.item()
            p[j] = down
            let lossDown = noGrad { objective() }.item()
            p[j] = original
            let numeric = (lossUp - lossDown) / (up - down)
            report.checked += 1
            report.largestGradient = Swift.max(report.largestGradient, Swift.abs(a[j]))
            if !(Swift.abs(a[j] - numeric) <= atol + rtol * Swift.abs(numeric)) {
                report.failures.append("input \(i) \(x.shape) element \(j): analytic \(a[j]) numeric \(numeric)")
            }
        }
    }
    return report
}

/// `gradientCheck` as an expectation: every element agrees and the gradient is not identically zero.
func expectGradientsMatch(_ what: String, _ inputs: [Tensor], eps: Double = 1e-6, rtol: Double = 1e-6,
                          atol: Double = 1e-8, sourceLocation: SourceLocation = #_sourceLocation,
                          _ f: ([Tensor]) -> Tensor) {
    let report = gradientCheck(inputs, eps: eps, rtol: rtol, atol: atol, f)
    #expect(report.failures.isEmpty, "\(what): \(report.failures.count) of \(report.checked) elements differ; first: \(report.failures.prefix(3))",
            sourceLocation: sourceLocation)
    #expect(report.checked == inputs.reduce(0) { $0 + $1.count }, "\(what): not every element was checked",
            sourceLocation: sourceLocation)
    #expect(report.largestGradient > 1e-6, "\(what): gradients are all zero", sourceLocation: sourceLocation)
}
