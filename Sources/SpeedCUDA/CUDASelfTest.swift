// The GPU self-test's machinery: run one computation on the CPU reference and on the GPU from identical inputs,
// forward and backward, and compare every output and gradient under a per-dtype tolerance.
// Invariant: inputs are drawn once on the CPU (and rounded to the dtype there), then copied, so both devices
// see the same bits; a NaN matches only a NaN.

import SpeedCore

/// One comparison of the self-test.
public struct SelfTestResult: Sendable, Codable, CustomStringConvertible {
    /// The case, e.g. `matmul [3,17,19]x[19,23] grad a`.
    public var name: String
    public var dtype: String
    /// The largest error relative to the tolerance (≤ 1 passes).
    public var worst: Double
    /// The tolerance used: `|gpu − cpu| ≤ atol + rtol·|cpu|`.
    public var rtol: Double
    public var atol: Double
    public var passed: Bool
    /// Where the worst element was and its two values.
    public var detail: String

    public var description: String {
        let verdict = passed ? "ok  " : "FAIL"
        let ratio = worst.isFinite ? String(format: "%.3g", worst) : "\(worst)"
        return "\(verdict) \(name) [\(dtype)] err/tol \(ratio) (rtol \(rtol), atol \(atol))\(passed ? "" : ": " + detail)"
    }
}

/// How closely a result must match: bit for bit, to the last bits of pointwise math, or to the rounding of a
/// different accumulation order (relative to max(1, the reference's largest magnitude)).
public enum SelfTestTolerance: Sendable {
    case exact, pointwise, accumulated

    /// (rtol, atol) for `dtype`; `scale` is the reference's largest magnitude (accumulated only).
    func bounds(_ dtype: DType, scale: Double) -> (Double, Double) {
        switch self {
        case .exact: return (0, 0)
        case .pointwise:
            // rtol: a few ulps of the dtype (libdevice vs the CPU's polynomials, then one rounding); atol: fp32
            // compute error where a formula cancels (tanh' = 1 − y² near |y| = 1, GELU far left), a few ulps of 1.
            let floor = max(scale, 1)
            switch dtype {
            case .float64: return (1e-12, 1e-15 * floor)
            case .float32: return (4e-6, 6e-7 * floor)
            case .bfloat16: return (8e-3, 6e-7 * floor)
            case .float16: return (1e-3, 6e-7 * floor)
            default: return (0, 0)
            }
        case .accumulated:
            let r: Double = switch dtype {
            case .float64: 1e-11
            case .float32: 3e-5
            case .bfloat16: 2e-2
            case .float16: 4e-3
            default: 0
            }
            // Inputs are O(1), so an error is judged against max(1, the reference's largest magnitude): a result
            // that cancels to ~0 (e.g. attention's dQ with one key) is not held to a zero absolute tolerance.
            return (r, r * max(scale, 1))
        }
    }
}

/// Compares the CUDA backend with the CPU reference, op by op, forward and backward.
///
/// ```swift
/// let test = SelfTest(device: try .cuda(0))
/// let results = test.run { print($0) }
/// exit(results.allSatisfy(\.passed) ? 0 : 1)
/// ```
public struct SelfTest {
    public let device: Device
    public let reference: Device
    /// Only cases whose name contains this string run (nil: all).
    public var filter: String?

    public init(device: Device, reference: Device = .cpu, filter: String? = nil) {
        self.device = device
        self.reference = reference
        self.filter = filter
    }

    /// Runs every case, calling `report` as each comparison finishes.
    public func run(_ report: @escaping (SelfTestResult) -> Void = { _ in }) -> [SelfTestResult] {
        var results: [SelfTestResult] = []
        var runner = Runner(test: self) { r in results.append(r); report(r) }
        runner.runAllCases()
        return results
    }

    /// Compares two tensors elementwise (both copied to the CPU as fp64).
    public static func compare(_ name: String, gpu: Tensor, cpu: Tensor, tolerance: SelfTestTolerance) -> SelfTestResult {
        precondition(gpu.shape == cpu.shape, "selftest \(name): shapes \(gpu.shape) and \(cpu.shape) differ")
        let a = noGrad { gpu.to(.cpu).cast(to: .float64).scalars(as: Double.self) }
        let b = noGrad { cpu.cast(to: .float64).scalars(as: Double.self) }
        let scale = b.reduce(0) { $1.isFinite ? max($0, Swift.abs($1)) : $0 }
        let (rtol, atol) = tolerance.bounds(cpu.dtype, scale: scale)
        var worst = 0.0, detail = "all \(b.count) elements match"
        for i in b.indices {
            let (x, y) = (a[i], b[i])
            let e: Double
            if x.isNaN || y.isNaN { e = x.isNaN && y.isNaN ? 0 : .infinity }
            else if x == y { e = 0 }
            else if x.isInfinite || y.isInfinite { e = .infinity }
            else { let bound = atol + rtol * Swift.abs(y); e = bound == 0 ? .infinity : Swift.abs(x - y) / bound }
            if e > worst || (e.isNaN && !worst.isNaN) {
                worst = e
                detail = "element \(i) of \(b.count): gpu \(x), cpu \(y)"
            }
        }
        return SelfTestResult(name: name, dtype: cpu.dtype.rawValue, worst: worst, rtol: rtol, atol: atol,
                              passed: worst <= 1, detail: detail)
    }
}

/// Runs cases and collects results.
struct Runner {
    let test: SelfTest
    let report: (SelfTestResult) -> Void
    var rng = RandomStream(seed: 20261123)

    init(test: SelfTest, report: @escaping (SelfTestResult) -> Void) {
        self.test = test
        self.report = report
    }

    func wanted(_ name: String) -> Bool { test.filter.map { name.contains($0) } ?? true }

    /// Random CPU input of `dtype` (drawn in fp32 and rounded, so every dtype sees the same values).
    mutating func input(_ shape: [Int], _ dtype: DType, low: Double? = nil, high: Double? = nil) -> Tensor {
        let x = low.map { Tensor.uniform(shape, low: $0, high: high!, rng: &rng) } ?? Tensor.randn(shape, rng: &rng)
        return dtype == .float32 ? x : x.cast(to: dtype)
    }

    /// Runs `body` on both devices from `inputs` (CPU tensors); compares the output and, when `grad` is set, the
    /// gradients of the inputs that are floating point, for a random output gradient.
    mutating func check(_ name: String, _ inputs: [Tensor], tolerance: SelfTestTolerance, grad: Bool = true,
                        gradTolerance: SelfTestTolerance = .accumulated, _ body: ([Tensor]) -> Tensor) {
        guard wanted(name) else { return }
        func run(on device: Device) -> (Tensor, [Tensor]) {
            let xs = inputs.map { x -> Tensor in
                let t = noGrad { x.to(device).copy() }
                t.requiresGrad = grad && x.dtype.isFloatingPoint
                return t
            }
            return (body(xs), xs)
        }
        let (yc2, xc) = run(on: test.reference)
        let (yg, xg) = run(on: test.device)
        if grad && yc2.requiresGrad {
            let seed = input(yc2.shape, yc2.dtype)
            yc2.backward(seed)
            yg.backward(noGrad { seed.to(test.device) })
        }
        let (gc2, gg) = (xc.map(\.grad), xg.map(\.grad))
        report(SelfTest.compare(name, gpu: yg, cpu: yc2, tolerance: tolerance))
        for i in inputs.indices {
            guard let c = gc2[i] else { continue }
            guard let g = gg[i] else {
                report(SelfTestResult(name: "\(name) grad \(i)", dtype: c.dtype.rawValue, worst: .infinity, rtol: 0, atol: 0,
                                      passed: false, detail: "no gradient on the GPU"))
                continue
            }
            report(SelfTest.compare("\(name) grad \(i)", gpu: g, cpu: c, tolerance: gradTolerance))
        }
    }

    /// Runs a backend kernel directly on both devices: `body(device, inputs)` returns the tensors to compare.
    mutating func direct(_ name: String, _ dtype: DType, _ inputs: [Tensor], tolerance: SelfTestTolerance,
                         _ body: (Device, [Tensor]) -> [Tensor]) {
        guard wanted(name) else { return }
        let cpu = body(test.reference, inputs.map { x in noGrad { x.copy() } })
        let gpu = body(test.device, inputs.map { x in noGrad { x.to(test.device).copy() } })
        for (i, (g, c)) in zip(gpu, cpu).enumerated() {
            report(SelfTest.compare(cpu.count == 1 ? name : "\(name) out \(i)", gpu: g, cpu: c, tolerance: tolerance))
        }
    }
}
