// The fused Adam/AdamW backend kernel against the formula on AdamHyper, its thread-count invariance, and its half copies.
import Testing
import SpeedCore

/// One Adam step in fp64, exactly as documented on ``AdamHyper``.
private func referenceAdam(_ p: [Double], _ g: [Double], _ m: [Double], _ v: [Double], _ h: AdamHyper)
    -> (p: [Double], m: [Double], v: [Double]) {
    var (p, m, v) = (p, m, v)
    for i in p.indices {
        var gi = g[i] * h.gradScale
        if !h.decoupled { gi += h.weightDecay * p[i] }
        m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi
        v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi
        let denom = v[i].squareRoot() / h.biasCorrection2Sqrt + h.eps
        if h.decoupled { p[i] -= h.lr * h.weightDecay * p[i] }
        p[i] -= h.lr / h.biasCorrection1 * m[i] / denom
    }
    return (p, m, v)
}

private let hypers: [AdamHyper] = [
    AdamHyper(lr: 1e-2, weightDecay: 0.1, step: 3),                                  // AdamW
    AdamHyper(lr: 3e-3, beta1: 0.8, beta2: 0.99, weightDecay: 0.01, decoupled: false, step: 1),  // Adam + L2
    AdamHyper(lr: 1e-3, eps: 1e-6, step: 10, biasCorrection: false, gradScale: 0.25),  // scaled gradients
]

@Suite struct OptimizerKernelTests {
    @Test func hyperConstants() {
        let h = AdamHyper(lr: 3e-4, weightDecay: 0.1, step: 2)
        #expect(Swift.abs(h.biasCorrection1 - (1 - 0.81)) < 1e-15)
        #expect(Swift.abs(h.biasCorrection2Sqrt - (1 - 0.999 * 0.999).squareRoot()) < 1e-15)
        let off = AdamHyper(lr: 1, step: 5, biasCorrection: false)
        #expect(off.biasCorrection1 == 1 && off.biasCorrection2Sqrt == 1)
    }

    @Test(arguments: [1, 7, 8, 9, 33, 70_001], [DType.float32, .bfloat16, .float16])
    func stepMatchesTheFormula(_ n: Int, _ gradType: DType) {
        for (i, h) in hypers.enumerated() {
            let p = randn32([n], seed: 600), g = randn32([n], seed: 601).cast(to: gradType)
            let m = randn32([n], seed: 602, scale: 0.1)
            let v = randn32([n], seed: 603, scale: 0.1).square()
            let (rp, rm, rv) = referenceAdam(p.scalars(as: Double.self), g.scalars(as: Double.self),
                                             m.scalars(as: Double.self), v.scalars(as: Double.self), h)
            Device.cpu.backend.adamStep(param: p, grad: g, expAvg: m, expAvgSq: v, hyper: h, lowPrecisionCopy: nil)
            expectClose(p.scalars(as: Double.self), rp, rtol: 1e-5, atol: 1e-7, "param hyper \(i) n=\(n) grad \(gradType)")
            // m = beta1·m + (1 - beta1)·g can cancel: its fp32 error is ~1 ulp of the terms (|terms| < 1).
            expectClose(m.scalars(as: Double.self), rm, rtol: 1e-5, atol: 1e-7, "expAvg hyper \(i) n=\(n)")
            expectClose(v.scalars(as: Double.self), rv, rtol: 1e-5, atol: 1e-10, "expAvgSq hyper \(i) n=\(n)")
        }
    }

    @Test func resultsDoNotDependOnThreadCount() {
        let n = 100_003
        var bits: [[UInt32]] = []
        for threads in [1, 2, 3] {
            let device = Device.cpu(threads: threads)
            let load = { (t: Tensor) -> Tensor in let c = Tensor.zeros(t.shape, device: device); c.copyData(from: t); return c }
            let p = load(randn32([n], seed: 610)), g = load(randn32([n], seed: 611))
            let m = load(randn32([n], seed: 612, scale: 0.1)), v = load(randn32([n], seed: 613, scale: 0.1).square())
            device.backend.adamStep(param: p, grad: g, expAvg: m, expAvgSq: v, hyper: hypers[0], lowPrecisionCopy: nil)
            bits.append(p.scalars.map(\.bitPattern) + m.scalars.map(\.bitPattern) + v.scalars.map(\.bitPattern))
        }
        #expect(bits[0] == bits[1])
        #expect(bits[0] == bits[2])
    }

    /// With lr = 0 the parameters stay put, so the half copy must equal a plain cast of them — across
    /// ties, subnormals, overflow, inf and NaN, in both the 8-lane body and the tail.
    @Test(arguments: [DType.bfloat16, .float16])
    func lowPrecisionCopyRoundsLikeACast(_ copyType: DType) {
        var values: [Float] = [0, -0.0, 1, -2.5, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-20,
                               65504, 65519, 65520, 70000, -1e6, 0x1p-14, 0x1p-15, 3e-8, 0x1p-25, 0x1p-24, 1e-30,
                               6.1e-5, .infinity, -.infinity, .nan, 1e38, 3.4e38, 0x1.fep127]
        values += randn32([37], seed: 620, scale: 100).scalars
        let n = values.count
        let p = Tensor(values), g = Tensor.zeros([n]), m = Tensor.zeros([n]), v = Tensor.zeros([n])
        let copy = Tensor.zeros([n], dtype: copyType)
        Device.cpu.backend.adamStep(param: p, grad: g, expAvg: m, expAvgSq: v, hyper: AdamHyper(lr: 0, step: 1),
                                    lowPrecisionCopy: copy)
        #expect(p.scalars.map(\.bitPattern) == values.map(\.bitPattern), "lr = 0 leaves the parameters unchanged")
        let expected = Tensor(values).cast(to: copyType).scalars
        let actual = copy.scalars
        for i in 0..<n {
            let same = actual[i].bitPattern == expected[i].bitPattern || (actual[i].isNaN && expected[i].isNaN)
            #expect(same, "\(values[i]) -> \(actual[i]), a cast gives \(expected[i])")
        }
    }

    @Test func halfGradientsAreReadExactly() {
        // Gradients that are exact in fp16 (incl. subnormals) and bf16 give the same update as their fp32 values.
        let values: [Float] = [1, -0.5, 0x1p-24, -0x1p-20, 0x1p-14, 65504, 3, -7, 0.1, 1e-3, 2, 5, -0.25]
        for dtype in [DType.float16, .bfloat16] {
            let g32 = Tensor(values).cast(to: dtype).cast(to: .float32)
            let results = [g32, g32.cast(to: dtype)].map { g -> [Float] in
                let p = Tensor.ones([values.count]), m = Tensor.zeros([values.count]), v = Tensor.zeros([values.count])
                Device.cpu.backend.adamStep(param: p, grad: g, expAvg: m, expAvgSq: v, hyper: hypers[0], lowPrecisionCopy: nil)
                return p.scalars + m.scalars + v.scalars
            }
            #expect(results[0] == results[1], "\(dtype) gradients")
        }
    }
}
