// fp32 kernels (SIMD FastMath with scalar tails, threaded chunks, BLAS) against the same computation in fp64.
import Testing
import SpeedCore

/// Lengths around the 8-lane SIMD width, and past the parallel threshold (1 << 14 per chunk) with ragged tails.
private let lengths = [1, 7, 8, 9, 1000, 70_000, 70_003]

/// Runs `op` on fp32 `x` and on `x` widened to fp64; returns (fp32 result, fp64 reference).
private func both(_ x: Tensor, _ op: (Tensor) -> Tensor) -> (Tensor, Tensor) {
    (op(x), op(x.cast(to: .float64)))
}

@Suite struct FastPathTests {
    /// Unary maps: |fp32 - fp64| <= 1e-5·|fp64| + atol. atol is 0 except where fp32 itself cancels:
    /// GELU's negative tail 0.5·x·(1 + tanh(·)) with tanh ≈ -1 (1 ulp of 1 is 6e-8), and x·1.5 - 0.25 ≈ 0.
    @Test(arguments: lengths)
    func unaryOps(_ n: Int) {
        let x = randn32([n], seed: UInt64(n), scale: 3)
        let positive = x.abs() + 0.1
        let cases: [(String, Tensor, (Tensor) -> Tensor, Double)] = [
            ("exp", x, { $0.exp() }, 0),
            ("tanh", x, { $0.tanh() }, 0),
            ("sigmoid", x, { $0.sigmoid() }, 0),
            ("gelu", x, { $0.gelu() }, 1e-6),
            ("geluExact", x, { $0.gelu(approximate: false) }, 1e-6),
            ("neg", x, { -$0 }, 0),
            ("relu", x, { $0.relu() }, 0),
            ("abs", x, { $0.abs() }, 0),
            ("square", x, { $0.square() }, 0),
            ("affine", x, { $0 * 1.5 - 0.25 }, 1e-6),
            ("log", positive, { $0.log() }, 1e-6),
            ("sqrt", positive, { $0.sqrt() }, 0),
            ("pow(1.5)", positive, { $0.pow(1.5) }, 0),
        ]
        for (name, input, op, atol) in cases {
            let (f, d) = both(input, op)
            #expect(f.dtype == .float32)
            expectClose(f.scalars(as: Double.self), d.scalars(as: Double.self), rtol: 1e-5, atol: atol, "\(name) n=\(n)")
        }
    }

    /// Unary backward passes (GELU's is vectorised with a scalar tail), with upstream gradients in [-1, 1).
    /// atol: tanh' = 1 - y² and GELU' contain 1 - tanh², which cancels near |tanh| = 1; fp32 tanh's
    /// ~2e-7 absolute error becomes ~4e-7 there, times 0.5·|x|·(d inner/dx) ≲ 9 for GELU (|x| ≈ 5).
    @Test(arguments: lengths)
    func unaryBackward(_ n: Int) {
        let x = randn32([n], seed: UInt64(n) + 1, scale: 3)
        var rng = RandomStream(seed: UInt64(n) + 2)
        let g = Tensor.uniform([n], low: -1, high: 1, rng: &rng)
        for (name, op, atol) in [("gelu", { (t: Tensor) in t.gelu() }, 4e-6), ("geluExact", { $0.gelu(approximate: false) }, 1e-6),
                                 ("tanh", { $0.tanh() }, 5e-7), ("sigmoid", { $0.sigmoid() }, 1e-7),
                                 ("exp", { $0.exp() }, 0)] as [(String, (Tensor) -> Tensor, Double)] {
            let x32 = x.copy(), x64 = x.cast(to: .float64)
            x32.requiresGrad = true; x64.requiresGrad = true
            (op(x32) * g).sum().backward()
            (op(x64) * g.cast(to: .float64)).sum().backward()
            expectClose(x32.grad!.scalars(as: Double.self), x64.grad!.scalars(as: Double.self), rtol: 1e-5, atol: atol,
                        "\(name)' n=\(n)")
        }
    }

    /// exp over fp32's whole range: like expf it overflows to inf and underflows through subnormals to 0.
    @Test func fastExpRange() {
        let x: [Float] = [0, 1, -1, 88, 88.7, 88.8, 100, .infinity, -87, -90, -100, -104, -200, -.infinity, .nan, 1e-30]
        let y = Tensor(x).exp().scalars
        for (xv, yv) in zip(x, y) where !xv.isNaN {
            let reference = Float(Double.exp(Double(xv)))   // correctly rounded fp32 (inf / 0 at the ends)
            if reference.isInfinite || reference == 0 {
                #expect(yv == reference, "exp(\(xv)) = \(yv), expected \(reference)")
            } else if reference < Float.leastNormalMagnitude {
                // Subnormal results carry fewer digits: within a few subnormal steps.
                #expect(Swift.abs(yv - reference) <= 4 * Float.leastNonzeroMagnitude, "exp(\(xv)) = \(yv) vs \(reference)")
            } else {
                #expect(Swift.abs(Double(yv) / Double(reference) - 1) < 1e-6, "exp(\(xv)) = \(yv) vs \(reference)")
            }
        }
        #expect(y[14].isNaN, "NaN in, NaN out")
        #expect(y[15] == 1)
        let t = Tensor([50, -50, .infinity, -.infinity, .nan] as [Float]).tanh().scalars
        #expect(t[0] == 1 && t[1] == -1 && t[2] == 1 && t[3] == -1 && t[4].isNaN)
        let s = Tensor([200, -200, .infinity, -.infinity] as [Float]).sigmoid().scalars
        #expect(s == [1, 0, 1, 0])
    }

    /// tanh near zero keeps its relative accuracy (1 − 2/(e^{2x}+1) alone would cancel to 0 for tiny x).
    @Test func fastTanhNearZero() {
        let x: [Float] = [1e-8, -3e-6, 1e-4, 0.01, -0.3, 0.6, 0.624, 0.626, 0, -0.0]
        let y = Tensor(x).tanh().scalars
        for (xv, yv) in zip(x, y) {
            let reference = Double.tanh(Double(xv))
            #expect(Swift.abs(Double(yv) - reference) <= 2e-7 * Swift.abs(reference), "tanh(\(xv)) = \(yv) vs \(reference)")
        }
        let g = Tensor([1e-6, -1e-3] as [Float]).gelu().scalars
        #expect(Swift.abs(Double(g[0]) - 0.5e-6) < 1e-12 && Swift.abs(Double(g[1]) + 0.000_499_601) < 1e-9)
    }

    @Test(arguments: [1, 7, 8, 9, 1000])
    func softmaxRows(_ n: Int) {
        let x = randn32([5, n], seed: UInt64(n) + 10, scale: 4)
        for log in [false, true] {
            // log-softmax is x - lse: where they nearly cancel the fp32 error is ~1 ulp of lse (|lse| ≲ 16 here).
            let (f, d) = both(x) { log ? $0.logSoftmax() : $0.softmax() }
            expectClose(f.scalars(as: Double.self), d.scalars(as: Double.self), rtol: 1e-5, atol: log ? 2e-6 : 1e-7,
                        "softmax log=\(log) n=\(n)")
            // Backward.
            let g = randn32([5, n], seed: 99)
            let x32 = x.copy(), x64 = x.cast(to: .float64)
            x32.requiresGrad = true; x64.requiresGrad = true
            ((log ? x32.logSoftmax() : x32.softmax()) * g).sum().backward()
            ((log ? x64.logSoftmax() : x64.softmax()) * g.cast(to: .float64)).sum().backward()
            if n == 1 {
                // A one-element softmax is constant: its gradient is exactly zero.
                #expect(x32.grad!.scalars.allSatisfy { $0 == 0 } && x64.grad!.scalars(as: Double.self).allSatisfy { $0 == 0 })
            } else {
                expectNormClose(x32.grad!, x64.grad!, rtol: 1e-5, "softmax' log=\(log) n=\(n)")
            }
        }
    }

    @Test(arguments: [1, 7, 9, 1000])
    func crossEntropyForwardBackward(_ v: Int) {
        let logits = randn32([6, v], seed: UInt64(v) + 20, scale: 3)
        let targets = Tensor((0..<6).map { $0 == 4 ? -100 : ($0 * 7) % v } as [Int])
        let l32 = logits.copy(), l64 = logits.cast(to: .float64)
        l32.requiresGrad = true; l64.requiresGrad = true
        let loss32 = l32.crossEntropy(targets: targets), loss64 = l64.crossEntropy(targets: targets)
        #expect(Swift.abs(loss32.item() - loss64.item()) <= 1e-5 * Swift.abs(loss64.item()) + 1e-7, "CE value V=\(v)")
        loss32.backward(); loss64.backward()
        expectClose(l32.grad!.scalars(as: Double.self), l64.grad!.scalars(as: Double.self), rtol: 1e-5, atol: 1e-7, "CE grad V=\(v)")
    }

    @Test(arguments: [1, 8, 13, 768])
    func layerNormForwardBackward(_ c: Int) {
        let x = randn32([7, c], seed: UInt64(c) + 30, scale: 2, shift: 1)
        let w = randn32([c], seed: 31), b = randn32([c], seed: 32), g = randn32([7, c], seed: 33)
        var grads: [[Tensor]] = []
        var outs: [Tensor] = []
        for dtype in [DType.float32, .float64] {
            let (xi, wi, bi) = (x.cast(to: dtype).detach(), w.cast(to: dtype).detach(), b.cast(to: dtype).detach())
            for t in [xi, wi, bi] { t.requiresGrad = true }
            let y = xi.layerNorm(weight: wi, bias: bi)
            outs.append(y)
            (y * g.cast(to: dtype)).sum().backward()
            grads.append([xi.grad!, wi.grad!, bi.grad!])
        }
        expectNormClose(outs[0], outs[1], rtol: 1e-5, "layerNorm C=\(c)")
        if c > 1 {
            expectNormClose(grads[0][0], grads[1][0], rtol: 1e-5, "layerNorm dx C=\(c)")
            expectNormClose(grads[0][1], grads[1][1], rtol: 1e-5, "layerNorm dw C=\(c)")
        } else {
            // One feature normalises to 0: y = bias, so dx and dw are exactly zero.
            #expect(grads[0][0].scalars.allSatisfy { $0 == 0 } && grads[0][1].scalars.allSatisfy { $0 == 0 })
            #expect(outs[0].scalars == [Float](repeating: b.scalars[0], count: 7))
        }
        expectNormClose(grads[0][2], grads[1][2], rtol: 1e-5, "layerNorm db C=\(c)")
    }

    @Test(arguments: [true, false])
    func attentionForwardBackward(_ causal: Bool) {
        let shape = [2, 3, 17, 8]
        let q = randn32(shape, seed: 40), k = randn32(shape, seed: 41), v = randn32(shape, seed: 42), g = randn32(shape, seed: 43)
        var results: [[Tensor]] = []
        for dtype in [DType.float32, .float64] {
            let ins = [q, k, v].map { $0.cast(to: dtype).detach() }
            for t in ins { t.requiresGrad = true }
            let out = Tensor.attention(ins[0], ins[1], ins[2], causal: causal)
            (out * g.cast(to: dtype)).sum().backward()
            results.append([out] + ins.map { $0.grad! })
        }
        for (i, name) in ["out", "dq", "dk", "dv"].enumerated() {
            expectNormClose(results[0][i], results[1][i], rtol: 1e-5, "attention \(name) causal=\(causal)")
        }
    }

    @Test func sumOf100kElements() {
        // Positive values, so the relative error of each sum is meaningful.
        var rng = RandomStream(seed: 50)
        let x = Tensor.uniform([100_000], low: 0, high: 1, dtype: .float32, rng: &rng)
        let x64 = x.cast(to: .float64)
        let total = x.sum().item(), reference = x64.sum().item()
        #expect(Swift.abs(total - reference) <= 1e-5 * reference, "contiguous sum \(total) vs \(reference)")
        // Down a column (strided accumulation) and across rows.
        let tall = x.reshape([50_000, 2]), tall64 = x64.reshape([50_000, 2])
        expectClose(tall.sum(axis: 0).scalars(as: Double.self), tall64.sum(axis: 0).scalars(as: Double.self), rtol: 1e-5, atol: 0,
                    "column sums")
        expectClose(x.reshape([4, 25_000]).sum(axis: 1).scalars(as: Double.self),
                    x64.reshape([4, 25_000]).sum(axis: 1).scalars(as: Double.self), rtol: 1e-5, atol: 0, "row sums")
        #expect(Swift.abs(x.mean().item() - 0.5) < 0.01)
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmMatchesFp64(_ flags: (Bool, Bool)) {
        let (ta, tb) = flags
        let a = randn32(ta ? [48, 64] : [64, 48], seed: 60), b = randn32(tb ? [80, 48] : [48, 80], seed: 61)
        let (f, d) = (Tensor.matmul(a, b, transposeA: ta, transposeB: tb),
                      Tensor.matmul(a.cast(to: .float64), b.cast(to: .float64), transposeA: ta, transposeB: tb))
        #expect(f.shape == [64, 80])
        expectNormClose(f, d, rtol: 1e-5, "gemm tA=\(ta) tB=\(tb)")
        // Batched, and rank-3 x rank-2.
        let ab = randn32([3, 16, 24], seed: 62), bb = randn32([3, 24, 8], seed: 63), w = randn32([24, 8], seed: 64)
        expectNormClose(Tensor.matmul(ab, bb), Tensor.matmul(ab.cast(to: .float64), bb.cast(to: .float64)), rtol: 1e-5, "batched gemm")
        expectNormClose(Tensor.matmul(ab, w), Tensor.matmul(ab.cast(to: .float64), w.cast(to: .float64)), rtol: 1e-5, "folded gemm")
    }
}
