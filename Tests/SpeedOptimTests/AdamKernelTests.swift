// The CPU `adamStep` kernel: exact against a scalar fp32 mirror across vector/thread boundaries, close to
// the fp64 reference, and its bf16/fp16 copies equal to rounding the fp32 result.
// Invariant: the mirror repeats the kernel's documented operation order in scalar Float arithmetic, so any
// difference is a lane, tail, alignment or threading bug, never rounding.

import Foundation
import SpeedCore
import SpeedOptim
import Testing

/// ``AdamHyper``'s formula one element at a time in Float, in the kernel's operation order.
func mirrorAdam(p: inout [Float], g: [Float], m: inout [Float], v: inout [Float], _ h: AdamHyper) {
    let b1 = Float(h.beta1), c1 = Float(1 - h.beta1), b2 = Float(h.beta2), c2 = Float(1 - h.beta2)
    let eps = Float(h.eps), inv2 = Float(1 / h.biasCorrection2Sqrt), stepSize = Float(h.lr / h.biasCorrection1)
    let decay: Float = h.decoupled ? Float(1 - h.lr * h.weightDecay) : 1
    let l2 = !h.decoupled && h.weightDecay != 0, wd = Float(h.weightDecay), scale = Float(h.gradScale)
    for i in p.indices {
        var gi = g[i] * scale
        if l2 { gi = gi + wd * p[i] }
        m[i] = b1 * m[i] + c1 * gi
        v[i] = b2 * v[i] + c2 * (gi * gi)
        let denom = v[i].squareRoot() * inv2 + eps
        p[i] = p[i] * decay - stepSize * (m[i] / denom)
    }
}

@Suite struct AdamKernelTests {
    static let sizes = [1, 7, 8, 9, 1000, 100_003]

    /// Three steps on `threads` threads; checks exact equality with the mirror and closeness to fp64.
    @Test(arguments: sizes, [1, 2])
    func kernelMatchesMirrorAndReference(n: Int, threads: Int) {
        let device = Device.cpu(threads: threads)
        let p0 = seeded(n, seed: 20), hyperBase = (lr: 1e-2, wd: 0.1)
        let param = tensor32(p0).to(device), m = Tensor.zeros([n], device: device), v = Tensor.zeros([n], device: device)
        var (mp, mm, mv) = (p0.map { Float($0) }, [Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
        var (rp, rm, rv) = (p0, [Double](repeating: 0, count: n), [Double](repeating: 0, count: n))
        for step in 1...3 {
            let g = seeded(n, seed: 20 + UInt64(step))
            let h = AdamHyper(lr: hyperBase.lr, weightDecay: hyperBase.wd, step: step)
            device.backend.adamStep(param: param, grad: tensor32(g), expAvg: m, expAvgSq: v, hyper: h, lowPrecisionCopy: nil)
            mirrorAdam(p: &mp, g: g.map { Float($0) }, m: &mm, v: &mv, h)
            Reference.adam(p: &rp, g: g, m: &rm, v: &rv, step: step, lr: hyperBase.lr, beta1: 0.9, beta2: 0.999,
                           eps: 1e-8, wd: hyperBase.wd, decoupled: true)
        }
        #expect(param.scalars == mp, "n \(n), threads \(threads): param differs from the scalar mirror")
        #expect(m.scalars == mm && v.scalars == mv, "n \(n), threads \(threads): moments differ from the mirror")
        expectAllClose(param.scalars(as: Double.self), rp, rtol: 2e-5, atol: 1e-6, "n \(n), threads \(threads)")
    }

    /// L2 mode, no bias correction and a gradient scale, on a slice that starts off a vector boundary.
    @Test func l2ModeGradScaleOnUnalignedSlice() {
        let n = 1003, device = Device.cpu(threads: 2)
        let base = tensor32(seeded(n + 5, seed: 30)).to(device)
        let param = base.slice(axis: 0, 3..<(n + 3))
        var mp = param.scalars
        let m = Tensor.zeros([n], device: device), v = Tensor.zeros([n], device: device)
        var (mm, mv) = ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
        for step in 1...2 {
            let g = seeded(n, seed: 30 + UInt64(step)).map { Float($0) }
            let h = AdamHyper(lr: 1e-3, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.05, decoupled: false,
                              step: step, biasCorrection: false, gradScale: 0.25)
            device.backend.adamStep(param: param, grad: Tensor(g), expAvg: m, expAvgSq: v, hyper: h, lowPrecisionCopy: nil)
            mirrorAdam(p: &mp, g: g, m: &mm, v: &mv, h)
        }
        #expect(param.scalars == mp)
        let all = base.scalars, original = tensor32(seeded(n + 5, seed: 30)).scalars
        #expect(Array(all[0..<3]) == Array(original[0..<3]) && Array(all[(n + 3)...]) == Array(original[(n + 3)...]),
                "elements outside the slice must not change")
    }

    /// The 16-bit copy written in the pass equals rounding the updated fp32 weights.
    @Test(arguments: [DType.bfloat16, .float16], [7, 9, 100_003])
    func lowPrecisionCopyEqualsRoundedResult(dtype: DType, n: Int) {
        let device = Device.cpu(threads: 2)
        let opt = AdamW(lr: 1e-2, weightDecay: 0.1)
        let param = tensor32(seeded(n, seed: 40, std: 3)).to(device)
        let state = opt.makeState(count: n, device: device)
        let copy = Tensor.zeros([n], dtype: dtype, device: device)
        for step in 1...2 {
            opt.update(param: param, grad: tensor32(seeded(n, seed: 40 + UInt64(step))).to(device), state: state,
                       step: step, lowPrecisionCopy: copy)
        }
        #expect(halfBits(copy) == roundedBits(param.scalars, dtype))
    }

    /// From 2²¹ elements the copy is written with streaming stores (CPUBackend.streamingMinimum); the
    /// odd tail still goes through the ordinary path.
    @Test(arguments: [DType.bfloat16, .float16])
    func streamedCopyEqualsRoundedResult(dtype: DType) {
        let n = (1 << 21) + 9, device = Device.cpu(threads: 2)
        var rng = RandomStream(seed: 45)
        let param = Tensor.uniform([n], low: -2, high: 2, device: device, rng: &rng)
        let grad = Tensor.uniform([n], low: -1, high: 1, device: device, rng: &rng)
        let copy = Tensor.zeros([n], dtype: dtype, device: device)
        device.backend.adamStep(param: param, grad: grad, expAvg: Tensor.zeros([n], device: device),
                                expAvgSq: Tensor.zeros([n], device: device), hyper: AdamHyper(lr: 1e-2, step: 1),
                                lowPrecisionCopy: copy)
        let expected = param.cast(to: dtype)
        #expect(memcmp(copy.rawPointer, expected.rawPointer, 2 * n) == 0)
    }

    /// NaN weights give the same 16-bit NaN on every path (the F16C / AVX2 vector groups, where the hardware
    /// would keep an fp16 payload, and the scalar tail): fp16 0x7e00 with the sign, bf16 the top half, quieted.
    @Test(arguments: [DType.bfloat16, .float16])
    func nanCopiesMatchSwiftsConversion(dtype: DType) {
        let payload = Float(bitPattern: 0x7fa0_1234), negative = Float(bitPattern: 0xffc0_0001)
        var xs: [Float] = []
        for i in 0..<37 {
            if i % 5 == 0 { xs.append(payload) } else if i % 7 == 0 { xs.append(negative) } else { xs.append(Float(i) * 0.37) }
        }
        let n = xs.count, copy = Tensor.zeros([n], dtype: dtype)
        Device.cpu.backend.adamStep(param: Tensor(xs), grad: Tensor.zeros([n]), expAvg: Tensor.zeros([n]),
                                    expAvgSq: Tensor.zeros([n]), hyper: AdamHyper(lr: 0, step: 1), lowPrecisionCopy: copy)
        let want = xs.map { x -> UInt16 in
            guard x.isNaN else { return roundedBits([x], dtype)[0] }
            let top = UInt16(truncatingIfNeeded: x.bitPattern >> 16)
            return dtype == .float16 ? (top & 0x8000) | 0x7e00 : top | 0x40
        }
        #expect(halfBits(copy) == want)
    }

    /// Rounding edge cases (ties, subnormals, overflow, inf, NaN, signed zero) with lr = 0, so p is unchanged.
    @Test(arguments: [DType.bfloat16, .float16])
    func lowPrecisionCopyRoundingEdgeCases(dtype: DType) {
        var xs: [Float] = [0, -0.0, 1, -1, 65504, 65519.996, 65520, 65536, 1e6, -1e6, .infinity, -.infinity,
                           6.1035156e-05, 6.0975552e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 1e-9, -3e-6,
                           1.0009766, 1.0004883, 1.0014648, 1.00390625, 1.0078125, 1.01171875, 3.0e38, 1.2e-38,
                           .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0.1, -0.7, 1234.5678]
        var rng = RandomStream(seed: 41)
        xs += Tensor.randn([200], std: 1000, rng: &rng).scalars + Tensor.randn([200], std: 1e-5, rng: &rng).scalars
        let n = xs.count, param = Tensor(xs)
        let copy = Tensor.zeros([n], dtype: dtype)
        let hyper = AdamHyper(lr: 0, step: 1)
        Device.cpu.backend.adamStep(param: param, grad: Tensor.zeros([n]), expAvg: Tensor.zeros([n]),
                                    expAvgSq: Tensor.zeros([n]), hyper: hyper, lowPrecisionCopy: copy)
        #expect(param.scalars == xs)
        let got = halfBits(copy), want = roundedBits(xs, dtype)
        for i in 0..<n where got[i] != want[i] {
            Issue.record("\(dtype) copy of \(xs[i]): got 0x\(String(got[i], radix: 16)), want 0x\(String(want[i], radix: 16))")
        }
        // NaN stays NaN.
        let nanCopy = Tensor.zeros([9], dtype: dtype)
        Device.cpu.backend.adamStep(param: Tensor([Float](repeating: .nan, count: 9)), grad: Tensor.zeros([9]),
                                    expAvg: Tensor.zeros([9]), expAvgSq: Tensor.zeros([9]), hyper: hyper,
                                    lowPrecisionCopy: nanCopy)
        #expect(nanCopy.scalars.allSatisfy { $0.isNaN })
    }

    /// bf16/fp16 gradients are widened exactly: same result as the fp32 run on the widened values.
    @Test(arguments: [DType.bfloat16, .float16])
    func halfGradientsEqualWidenedFP32(dtype: DType) {
        let n = 1001, h = AdamHyper(lr: 1e-2, weightDecay: 0.1, step: 1)
        let gHalf = tensor32(seeded(n, seed: 50)).cast(to: dtype), gWide = gHalf.cast(to: .float32)
        func run(_ g: Tensor) -> [Float] {
            let p = tensor32(seeded(n, seed: 51))
            Device.cpu(threads: 2).backend.adamStep(param: p, grad: g, expAvg: Tensor.zeros([n]),
                                                    expAvgSq: Tensor.zeros([n]), hyper: h, lowPrecisionCopy: nil)
            return p.scalars
        }
        #expect(run(gHalf) == run(gWide))
    }
}

/// The raw 16-bit patterns of a bf16/fp16 tensor.
func halfBits(_ t: Tensor) -> [UInt16] {
    Array(UnsafeBufferPointer(start: t.rawPointer.assumingMemoryBound(to: UInt16.self), count: t.count))
}

/// Swift's own round-to-nearest-even conversion of each value.
func roundedBits(_ xs: [Float], _ dtype: DType) -> [UInt16] {
    xs.map { dtype == .bfloat16 ? BFloat16($0).bitPattern : Float16($0).bitPattern }
}
