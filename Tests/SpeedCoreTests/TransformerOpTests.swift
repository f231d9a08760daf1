// The decoder-family kernels (RMSNorm, rotary, SiLU/SwiGLU, masked grouped-query attention): finite-difference
// gradients in fp64, fused vs composed references, fp32 vs fp64, and half precision vs fp32 rounded once.
import Foundation
import Testing
import SpeedCore

@Suite struct TransformerOpTests {
    // MARK: RMSNorm

    /// HF's LlamaRMSNorm from generic ops.
    private func composedRMSNorm(_ x: Tensor, _ w: Tensor?, eps: Double) -> Tensor {
        let normed = x / (x.square().mean(axis: -1, keepDims: true) + eps).sqrt()
        return w.map { $0 * normed } ?? normed
    }

    @Test func rmsNormGradientsAndComposedReference() {
        let x = randn64([3, 2, 7], seed: 900, scale: 1.5, shift: 0.3), w = randn64([7], seed: 901)
        expectGradientsMatch("rmsNorm weight", [x, w]) { $0[0].rmsNorm(weight: $0[1], eps: 1e-5) }
        expectGradientsMatch("rmsNorm plain", [x]) { $0[0].rmsNorm(weight: nil, eps: 1e-3) }
        let constant = randn64([3, 2, 7], seed: 902)
        constant.requiresGrad = false
        expectGradientsMatch("rmsNorm weight only", [w]) { constant.rmsNorm(weight: $0[0]) }
        expectClose(x.rmsNorm(weight: w, eps: 1e-5), composedRMSNorm(x, w, eps: 1e-5), rtol: 1e-13, atol: 1e-14, "rmsNorm value")
        // Fused backward == composed backward.
        let g = randn64([3, 2, 7], seed: 903)
        x.grad = nil; w.grad = nil
        (x.rmsNorm(weight: w, eps: 1e-5) * g).sum().backward()
        let (dx, dw) = (x.grad!, w.grad!)
        x.grad = nil; w.grad = nil
        (composedRMSNorm(x, w, eps: 1e-5) * g).sum().backward()
        expectClose(dx, x.grad!, rtol: 1e-11, atol: 1e-12, "rmsNorm dx")
        expectClose(dw, w.grad!, rtol: 1e-11, atol: 1e-12, "rmsNorm dw")
    }

    @Test func rmsNormFp32MatchesFp64() {
        let x = randn32([37, 300], seed: 904, scale: 2), w = randn32([300], seed: 905), g = randn32([37, 300], seed: 906)
        var results: [[Tensor]] = []
        for dtype in [DType.float32, .float64] {
            let (xi, wi) = (x.cast(to: dtype).detach(), w.cast(to: dtype).detach())
            xi.requiresGrad = true; wi.requiresGrad = true
            let y = xi.rmsNorm(weight: wi)
            (y * g.cast(to: dtype)).sum().backward()
            results.append([y, xi.grad!, wi.grad!])
        }
        for (i, name) in ["y", "dx", "dw"].enumerated() { expectNormClose(results[0][i], results[1][i], rtol: 1e-5, "rmsNorm \(name)") }
    }

    // MARK: Rotary

    /// Tables `[B, T, D/2]` for positions `offset + t`.
    private func tables(batch: Int, tokens: Int, half: Int, offset: Int = 0, dtype: DType = .float64) -> (Tensor, Tensor) {
        var c: [Double] = [], s: [Double] = []
        for b in 0..<batch {
            for t in 0..<tokens {
                for j in 0..<half {
                    let angle = Double(offset + t + 3 * b) / Foundation.pow(10000, Double(2 * j) / Double(2 * half))
                    c.append(Foundation.cos(angle)); s.append(Foundation.sin(angle))
                }
            }
        }
        return (Tensor(c, shape: [batch, tokens, half]).cast(to: dtype), Tensor(s, shape: [batch, tokens, half]).cast(to: dtype))
    }

    /// `x·cos + rotate_half(x)·sin` as transformers writes it, tables repeated to `[B, T, 1, D]`.
    private func composedRotary(_ x: Tensor, _ cos: Tensor, _ sin: Tensor) -> Tensor {
        let d = x.shape[3], half = d / 2
        let (b, t) = (x.shape[0], x.shape[1])
        let c = Tensor.concat([cos, cos], axis: 2).reshape([b, t, 1, d])
        let s = Tensor.concat([sin, sin], axis: 2).reshape([b, t, 1, d])
        let rotated = Tensor.concat([x.slice(axis: 3, half..<d) * -1, x.slice(axis: 3, 0..<half)], axis: 3)
        return x * c + rotated * s
    }

    @Test func rotaryGradientsComposedReferenceAndInverse() {
        let x = randn64([2, 3, 2, 6], seed: 910)
        let (cos, sin) = tables(batch: 2, tokens: 3, half: 3, offset: 5)
        expectGradientsMatch("rotary", [x]) { $0[0].rotary(cos: cos, sin: sin) }
        let y = x.rotary(cos: cos, sin: sin)
        expectClose(y, composedRotary(x, cos, sin), rtol: 1e-14, atol: 1e-15, "rotary value")
        // A rotation keeps each (j, j + D/2) pair's norm, and the backward pass (the inverse rotation) undoes it.
        expectClose(y.square().sum(), x.square().sum(), rtol: 1e-13, atol: 0, "rotary keeps the norm")
        x.grad = nil
        y.backward(y.detach())
        expectClose(x.grad!, x, rtol: 1e-13, atol: 1e-14, "the transposed rotation inverts it")
        // fp32 tables on fp32 input against fp64.
        let x32 = randn32([2, 5, 4, 8], seed: 911)
        let (c64, s64) = tables(batch: 2, tokens: 5, half: 4)
        expectNormClose(x32.rotary(cos: c64.cast(to: .float32), sin: s64.cast(to: .float32)),
                        x32.cast(to: .float64).rotary(cos: c64, sin: s64), rtol: 1e-6, "rotary fp32")
    }

    // MARK: SiLU and SwiGLU

    @Test func siluAndSwiGLU() {
        let x = randn64([4, 9], seed: 920, scale: 3)
        expectGradientsMatch("silu", [x]) { $0[0].silu() }
        expectClose(x.silu(), x * x.sigmoid(), rtol: 1e-14, atol: 1e-15, "silu value")
        let gate = randn64([3, 11], seed: 921, scale: 2), up = randn64([3, 11], seed: 922)
        expectGradientsMatch("swiglu", [gate, up]) { Tensor.swiglu(gate: $0[0], up: $0[1]) }
        expectClose(Tensor.swiglu(gate: gate, up: up), gate * gate.sigmoid() * up, rtol: 1e-14, atol: 1e-15, "swiglu value")
        // fp32 (vectorised exp) against fp64, values and gradients.
        let g32 = randn32([1000], seed: 923, scale: 4), u32 = randn32([1000], seed: 924), dy = randn32([1000], seed: 925)
        var results: [[Tensor]] = []
        for dtype in [DType.float32, .float64] {
            let (g, u) = (g32.cast(to: dtype).detach(), u32.cast(to: dtype).detach())
            g.requiresGrad = true; u.requiresGrad = true
            let y = Tensor.swiglu(gate: g, up: u), s = g.silu()
            ((y + s) * dy.cast(to: dtype)).sum().backward()
            results.append([y, s, g.grad!, u.grad!])
        }
        for (i, name) in ["swiglu", "silu", "dgate", "dup"].enumerated() {
            expectClose(results[0][i], results[1][i], rtol: 1e-5, atol: 1e-6, "\(name) fp32")
        }
    }

    // MARK: Masked grouped-query attention

    /// `softmax(q·kᵀ·scale, masked)·v` from generic ops with K/V heads repeated for their groups; rows that see no
    /// key give zeros. `q [B, H, Tq, D]`, `k, v [B, Hkv, Tk, D]`, `keep [B·Tk]`.
    private func naive(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ mask: AttentionMask, keep: [Int]?) -> Tensor {
        let (b, h, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]), (hk, tk) = (k.shape[1], k.shape[2])
        func repeated(_ x: Tensor) -> Tensor {
            x.reshape([b, hk, 1, tk, d]).expand(to: [b, hk, h / hk, tk, d]).reshape([b, h, tk, d])
        }
        var blocked = [Double](repeating: 0, count: b * tq * tk)
        for bi in 0..<b {
            for i in 0..<tq {
                for j in 0..<tk where !mask.allows(query: i, key: j, offset: tk - tq) || keep?[bi * tk + j] == 0 {
                    blocked[(bi * tq + i) * tk + j] = 1
                }
            }
        }
        let blockedT = Tensor(blocked, shape: [b, 1, tq, tk])
        let scores = (Tensor.matmul(q, repeated(k), transposeB: true) / Double(d).squareRoot()).maskedFill(blockedT, -1e30)
        let probs = scores.softmax() * (1 - blockedT)
        return Tensor.matmul(probs, repeated(v))
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String, heads: Int, kvHeads: Int, tq: Int, tk: Int, causal: Bool, window: Int?, padded: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "GQA 4/2 causal", heads: 4, kvHeads: 2, tq: 6, tk: 6, causal: true, window: nil, padded: false),
        Case(name: "MQA 3/1 non-causal", heads: 3, kvHeads: 1, tq: 5, tk: 5, causal: false, window: nil, padded: false),
        Case(name: "key padding non-causal", heads: 2, kvHeads: 2, tq: 5, tk: 5, causal: false, window: nil, padded: true),
        Case(name: "key padding causal GQA", heads: 4, kvHeads: 2, tq: 6, tk: 6, causal: true, window: nil, padded: true),
        Case(name: "sliding window 2", heads: 2, kvHeads: 1, tq: 7, tk: 7, causal: true, window: 2, padded: false),
        Case(name: "window 3 + padding", heads: 2, kvHeads: 2, tq: 6, tk: 6, causal: true, window: 3, padded: true),
        Case(name: "cached: 2 queries of 7 keys", heads: 4, kvHeads: 2, tq: 2, tk: 7, causal: true, window: nil, padded: false),
        Case(name: "cached window", heads: 2, kvHeads: 1, tq: 3, tk: 8, causal: true, window: 4, padded: true),
    ]

    /// Batch 0 keeps every key; batch 1 pads its last two keys and its first key (left and right padding), so the
    /// causal cases have a query row that sees nothing.
    private func keep(_ c: Case) -> [Int]? {
        c.padded ? [Int](repeating: 1, count: c.tk) + (0..<c.tk).map { $0 == 0 || $0 >= c.tk - 2 ? 0 : 1 } : nil
    }

    @Test(arguments: cases)
    func maskedAttentionMatchesNaiveAndGradients(_ c: Case) {
        let q = randn64([2, c.heads, c.tq, 4], seed: 930), k = randn64([2, c.kvHeads, c.tk, 4], seed: 931)
        let v = randn64([2, c.kvHeads, c.tk, 4], seed: 932)
        let keep = keep(c)
        let mask = AttentionMask(causal: c.causal, window: c.window, keyPadding: keep.map { Tensor($0, shape: [2, c.tk]) })
        let fused = Tensor.attention(q, k, v, mask: mask)
        expectClose(fused, naive(q, k, v, mask, keep: keep), rtol: 1e-12, atol: 1e-13, "\(c.name) forward")
        expectGradientsMatch("\(c.name)", [q, k, v]) { Tensor.attention($0[0], $0[1], $0[2], mask: mask) }
        let g = randn64(q.shape, seed: 933)
        for t in [q, k, v] { t.grad = nil }
        (Tensor.attention(q, k, v, mask: mask) * g).sum().backward()
        let fusedGrads = [q, k, v].map { $0.grad! }
        for t in [q, k, v] { t.grad = nil }
        (naive(q, k, v, mask, keep: keep) * g).sum().backward()
        for (name, (a, b)) in zip(["dq", "dk", "dv"], zip(fusedGrads, [q, k, v].map { $0.grad! })) {
            expectClose(a, b, rtol: 1e-11, atol: 1e-12, "\(c.name) \(name)")
        }
        // Token-major operands (the projections' own layout) give the same values and gradients, permuted.
        let (qt, kt, vt) = (q.permute([0, 2, 1, 3]).detach(), k.permute([0, 2, 1, 3]).detach(), v.permute([0, 2, 1, 3]).detach())
        for t in [qt, kt, vt] { t.requiresGrad = true }
        let tokenMajor = Tensor.attention(qt, kt, vt, mask: mask, tokenMajor: true)
        expectClose(tokenMajor.permute([0, 2, 1, 3]), fused, rtol: 1e-14, atol: 1e-15, "\(c.name) token-major")
        (tokenMajor * g.permute([0, 2, 1, 3])).sum().backward()
        for (name, (a, b)) in zip(["dq", "dk", "dv"], zip([qt, kt, vt].map { $0.grad!.permute([0, 2, 1, 3]) }, fusedGrads)) {
            expectClose(a, b, rtol: 1e-13, atol: 1e-14, "\(c.name) token-major \(name)")
        }
    }

    @Test func fullyMaskedRowsAreZeroWithoutGradient() {
        let q = randn64([1, 2, 4, 3], seed: 940), k = randn64([1, 2, 4, 3], seed: 941), v = randn64([1, 2, 4, 3], seed: 942)
        // Keys 0 and 1 padded: causal queries 0 and 1 see no key.
        let mask = AttentionMask(causal: true, keyPadding: Tensor([0, 0, 1, 1] as [Int32], shape: [1, 4]))
        let y = Tensor.attention(q, k, v, mask: mask)
        let values = y.scalars(as: Double.self)
        #expect(values.allSatisfy { $0.isFinite })
        for h in 0..<2 { for i in 0..<2 { for j in 0..<3 { #expect(values[(h * 4 + i) * 3 + j] == 0) } } }
        // Query 2 sees only key 2: its output is v[2].
        expectClose(y[0][0][2], v[0][0][2], rtol: 1e-15, atol: 1e-15, "one visible key")
        let g = Tensor.ones([1, 2, 4, 3], dtype: .float64)
        (y * g).sum().backward()
        let finite = q.grad!.scalars(as: Double.self).allSatisfy { $0.isFinite } && k.grad!.scalars(as: Double.self).allSatisfy { $0.isFinite }
        #expect(finite)
        let dq = q.grad!.scalars(as: Double.self)
        #expect(dq[0..<6].allSatisfy { $0 == 0 } && dq[12..<18].allSatisfy { $0 == 0 }, "masked rows pass no gradient to q")
        let dk = k.grad!.scalars(as: Double.self)
        #expect(dk[0..<6].allSatisfy { $0 == 0 }, "padded keys get no gradient")
        expectGradientsMatch("fully masked rows", [q, k, v]) { Tensor.attention($0[0], $0[1], $0[2], mask: mask) }
    }

    @Test func packedAttentionWithPaddingMatchesSeparate() {
        let packed = randn64([2, 5, 3, 2, 3], seed: 950)
        let mask = AttentionMask(keyPadding: Tensor([1, 1, 1, 1, 1, 1, 1, 1, 0, 0] as [Int], shape: [2, 5]))
        let heads = packed.permute([2, 0, 3, 1, 4])
        expectClose(Tensor.attention(packed: packed, mask: mask),
                    Tensor.attention(heads[0], heads[1], heads[2], mask: mask).permute([0, 2, 1, 3]), rtol: 1e-13, atol: 1e-14,
                    "packed + padding")
        expectGradientsMatch("packed + padding", [packed]) { Tensor.attention(packed: $0[0], mask: mask) }
    }

    @Test func maskedAttentionFp32MatchesFp64() {
        let q = randn32([2, 4, 70, 16], seed: 960), k = randn32([2, 2, 70, 16], seed: 961), v = randn32([2, 2, 70, 16], seed: 962)
        let g = randn32([2, 4, 70, 16], seed: 963)
        let keep = Tensor((0..<140).map { $0 >= 70 && $0 % 70 >= 60 ? 0 : 1 } as [Int], shape: [2, 70])
        for mask in [AttentionMask(causal: true, window: 20), AttentionMask(keyPadding: keep),
                     AttentionMask(causal: true, window: 33, keyPadding: keep)] {
            var results: [[Tensor]] = []
            for dtype in [DType.float32, .float64] {
                let ins = [q, k, v].map { $0.cast(to: dtype).detach() }
                for t in ins { t.requiresGrad = true }
                let out = Tensor.attention(ins[0], ins[1], ins[2], mask: mask)
                (out * g.cast(to: dtype)).sum().backward()
                results.append([out] + ins.map { $0.grad! })
            }
            for (i, name) in ["out", "dq", "dk", "dv"].enumerated() {
                expectNormClose(results[0][i], results[1][i], rtol: 1e-5, "attention \(name) window \(String(describing: mask.window))")
            }
        }
    }

    /// Half inputs compute in fp32 on promoted copies and round once: the fp32 result of the same inputs, rounded.
    @Test(arguments: [(DType.bfloat16, 0x1p-8), (DType.float16, 0x1p-11)])
    func halfPrecisionAgreesWithFp32(_ config: (DType, Double)) {
        let (dtype, halfUlp) = config
        let x = randn32([6, 4, 16], seed: 970).cast(to: dtype), x32 = x.cast(to: .float32)
        let check = { (name: String, half: Tensor, full: Tensor) in
            #expect(half.dtype == dtype, "\(name) keeps \(dtype)")
            expectClose(half.scalars(as: Double.self), full.scalars(as: Double.self), rtol: halfUlp * 1.0001, atol: 1e-30,
                        "\(name) \(dtype)")
        }
        let w = randn32([16], seed: 971).cast(to: dtype)
        check("rmsNorm", x.rmsNorm(weight: w), x32.rmsNorm(weight: w.cast(to: .float32)))
        let (c, s) = tables(batch: 2, tokens: 3, half: 8, dtype: .float32)
        check("rotary", x.reshape([2, 3, 4, 16]).rotary(cos: c, sin: s), x32.reshape([2, 3, 4, 16]).rotary(cos: c, sin: s))
        check("silu", x.silu(), x32.silu())
        let up = randn32([6, 4, 16], seed: 972).cast(to: dtype)
        check("swiglu", Tensor.swiglu(gate: x, up: up), Tensor.swiglu(gate: x32, up: up.cast(to: .float32)))
        let q = x.reshape([2, 4, 3, 16]), kv = x.reshape([2, 4, 3, 16]).slice(axis: 1, 0..<2)
        let mask = AttentionMask(causal: true, keyPadding: Tensor([1, 1, 1, 0, 1, 1] as [Int], shape: [2, 3]))
        check("attention GQA + padding", Tensor.attention(q, kv, kv, mask: mask),
              Tensor.attention(q.cast(to: .float32), kv.cast(to: .float32), kv.cast(to: .float32), mask: mask))
        // Backward: close to fp32 normwise (the saved output is rounded to the half type, so delta = Σ dO·O differs
        // by about one rounding and dq, a cancellation, is not the fp32 dq rounded once).
        let (qh, kh) = (q.detach(), kv.detach()), (q32, k32) = (q.cast(to: .float32).detach(), kv.cast(to: .float32).detach())
        for t in [qh, kh, q32, k32] { t.requiresGrad = true }
        Tensor.attention(qh, kh, kh, mask: mask).sum().backward()
        Tensor.attention(q32, k32, k32, mask: mask).sum().backward()
        #expect(qh.grad!.dtype == dtype)
        expectNormClose(qh.grad!, q32.grad!, rtol: 4 * halfUlp, "attention dq \(dtype)")
    }
}
