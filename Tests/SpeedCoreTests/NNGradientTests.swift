// Finite-difference gradient checks of the fused NN ops, losses, attention, dropout, casts and copies (fp64).
import Testing
import SpeedCore

@Suite struct NNGradientTests {
    @Test func softmaxAndLogSoftmax() {
        let x = randn64([2, 3, 5], seed: 300)
        expectGradientsMatch("softmax last axis", [x]) { $0[0].softmax() }
        expectGradientsMatch("logSoftmax last axis", [x]) { $0[0].logSoftmax(axis: -1) }
        expectGradientsMatch("softmax axis 1", [x]) { $0[0].softmax(axis: 1) }
        expectGradientsMatch("logSoftmax axis 0", [x]) { $0[0].logSoftmax(axis: 0) }
    }

    @Test func softmaxNonLastAxisNormalisesThatAxis() {
        let x = randn64([2, 3, 4], seed: 301)
        let s = x.softmax(axis: 1)
        expectClose(s.sum(axis: 1), Tensor.ones([2, 4], dtype: .float64), rtol: 1e-14, atol: 1e-14, "softmax axis 1 sums")
        let reference = (x - x.max(axis: 1, keepDims: true)).exp()
        expectClose(s, reference / reference.sum(axis: 1, keepDims: true), rtol: 1e-13, atol: 1e-15, "softmax axis 1 values")
        expectClose(x.logSoftmax(axis: 0).exp(), x.softmax(axis: 0), rtol: 1e-13, atol: 1e-15, "log-softmax vs softmax")
    }

    @Test func layerNormWithAndWithoutAffine() {
        let x = randn64([3, 6], seed: 310, scale: 2, shift: 0.5)
        let w = randn64([6], seed: 311), b = randn64([6], seed: 312)
        expectGradientsMatch("layerNorm weight+bias", [x, w, b]) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        expectGradientsMatch("layerNorm weight only", [x, w]) { $0[0].layerNorm(weight: $0[1], bias: nil) }
        expectGradientsMatch("layerNorm bias only", [x, b]) { $0[0].layerNorm(weight: nil, bias: $0[1]) }
        expectGradientsMatch("layerNorm plain", [x]) { $0[0].layerNorm(weight: nil, bias: nil, eps: 1e-3) }
        // Only the parameters need gradients (the kernel skips dx).
        let constant = randn64([3, 6], seed: 317)
        constant.requiresGrad = false
        expectGradientsMatch("layerNorm parameters only", [w, b]) { constant.layerNorm(weight: $0[0], bias: $0[1]) }
        let x3 = randn64([2, 2, 4], seed: 313)
        expectGradientsMatch("layerNorm rank 3", [x3]) { $0[0].layerNorm(weight: nil, bias: nil) }
    }

    @Test func layerNormMatchesComposedFormula() {
        let x = randn64([4, 5], seed: 314), w = randn64([5], seed: 315), b = randn64([5], seed: 316)
        let mu = x.mean(axis: -1, keepDims: true)
        let v = x.variance(axes: [-1], keepDims: true, correction: 0)
        let reference = (x - mu) / (v + 1e-5).sqrt() * w + b
        expectClose(x.layerNorm(weight: w, bias: b), reference, rtol: 1e-12, atol: 1e-12, "layerNorm")
    }

    @Test(arguments: [DType.int64, .int32])
    func embeddingWithRepeatedIds(_ idType: DType) {
        let weight = randn64([5, 3], seed: 320)
        let ids = Tensor([[1, 4, 1], [0, 1, 3]] as [[Int]], dtype: idType)
        let out = Tensor.embedding(weight, ids: ids)
        #expect(out.shape == [2, 3, 3])
        expectClose(out[0][1], weight[4], rtol: 0, atol: 0, "row of id 4")
        expectGradientsMatch("embedding \(idType)", [weight]) { Tensor.embedding($0[0], ids: ids) }
        // Id 1 appears three times: its gradient row is the sum of three upstream rows; id 2 is never used.
        weight.grad = nil
        out.sum().backward()
        #expect(weight.grad!.scalars(as: Double.self) == [1, 1, 1, 3, 3, 3, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    }

    @Test func dropoutMaskIsReproducibleAndScalesGradients() {
        let x = randn64([8, 16], seed: 330)
        let p = 0.25
        let rng = RandomStream(seed: 77)
        var r1 = rng, r2 = rng
        let y1 = x.dropout(p, rng: &r1), y2 = x.dropout(p, rng: &r2)
        #expect(y1.scalars(as: Double.self) == y2.scalars(as: Double.self), "same stream, same mask")
        #expect(r1.offset == UInt64(x.count), "the stream advances by the element count")
        var r3 = r1
        #expect(x.dropout(p, rng: &r3).scalars(as: Double.self) != y1.scalars(as: Double.self), "next draw differs")

        // Kept elements are scaled by 1/(1-p); dropped are exactly 0; about p are dropped.
        let xs = x.scalars(as: Double.self), ys = y1.scalars(as: Double.self)
        let kept = zip(xs, ys).map { $1 != 0 }
        for (xv, yv) in zip(xs, ys) where yv != 0 { #expect(Swift.abs(yv - xv / (1 - p)) < 1e-15) }
        let dropped = kept.filter { !$0 }.count
        #expect(dropped > 16 && dropped < 48, "dropped \(dropped) of 128 at p = 0.25")

        // The gradient is the same mask times 1/(1-p).
        x.grad = nil
        y1.sum().backward()
        let expected = kept.map { $0 ? 1 / (1 - p) : 0 }
        #expect(x.grad!.scalars(as: Double.self) == expected)
        expectGradientsMatch("dropout", [x]) { t in var r = rng; return t[0].dropout(p, rng: &r) }
        var r4 = rng
        #expect(x.dropout(0, rng: &r4) === x, "p = 0 is the identity")
    }

    @Test func whereAndMaskedFill() {
        let a = randn64([3, 4], seed: 340), b = randn64([4], seed: 341)
        let cond = Tensor([[1, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 0]] as [[Double]])
        let picked = Tensor.where(cond, a, b)
        let (av, bv, pv) = (a.scalars(as: Double.self), b.scalars(as: Double.self), picked.scalars(as: Double.self))
        for i in 0..<12 { #expect(pv[i] == (cond.scalars(as: Double.self)[i] != 0 ? av[i] : bv[i % 4])) }
        expectGradientsMatch("where", [a, b]) { Tensor.where(cond, $0[0], $0[1]) }
        let rowMask = Tensor([0, 1, 0, 1] as [Float])
        expectGradientsMatch("maskedFill", [a]) { $0[0].maskedFill(rowMask, -3) }
        let filled = a.maskedFill(rowMask, -3).scalars(as: Double.self)
        #expect(filled[1] == -3 && filled[3] == -3 && filled[0] == av[0] && filled[6] == av[6])
    }

    @Test(arguments: [DType.int64, .int32])
    func crossEntropyWithIgnoredRows(_ targetType: DType) {
        let logits = randn64([4, 5], seed: 350)
        let targets = Tensor([2, -100, 0, 4] as [Int], dtype: targetType)
        expectGradientsMatch("crossEntropy \(targetType)", [logits]) { $0[0].crossEntropy(targets: targets) }
        // Value: mean over the three non-ignored rows of -log softmax[target].
        let logp = logits.logSoftmax().scalars(as: Double.self)
        let expected = -(logp[0 * 5 + 2] + logp[2 * 5 + 0] + logp[3 * 5 + 4]) / 3
        #expect(Swift.abs(logits.crossEntropy(targets: targets).item() - expected) < 1e-13)
        // Ignored rows get no gradient.
        logits.grad = nil
        logits.crossEntropy(targets: targets).backward()
        #expect(logits.grad!.scalars(as: Double.self)[5..<10].allSatisfy { $0 == 0 })
        // A custom ignore index.
        let custom = Tensor([2, 1, 0, 1] as [Int], dtype: targetType)
        let loss = logits.crossEntropy(targets: custom, ignoreIndex: 1).item()
        #expect(Swift.abs(loss - (-(logp[2] + logp[10]) / 2)) < 1e-13)
    }

    @Test func crossEntropyRank3Logits() {
        let logits = randn64([2, 3, 4], seed: 351)
        let targets = Tensor([[0, 3, 1], [2, 2, -100]] as [[Int]])
        expectGradientsMatch("crossEntropy rank 3", [logits]) { $0[0].crossEntropy(targets: targets) }
        let flat = logits.reshape([6, 4]).crossEntropy(targets: targets.reshape([6]))
        #expect(Swift.abs(logits.crossEntropy(targets: targets).item() - flat.item()) < 1e-14)
    }

    @Test func mseLoss() {
        let prediction = randn64([3, 4], seed: 360), target = randn64([3, 4], seed: 361)
        expectGradientsMatch("mseLoss", [prediction, target]) { $0[0].mseLoss($0[1]) }
        let p = Tensor([1, 2, 3] as [Double]), t = Tensor([1, 0, 6] as [Double])
        #expect(p.mseLoss(t).item() == 13.0 / 3)
    }

    /// `softmax(q·kᵀ·scale + mask)·v` built from matmul, maskedFill and softmax.
    private func naiveAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, causal: Bool, scale: Double) -> Tensor {
        let t = q.shape[2]
        var scores = Tensor.matmul(q, k, transposeB: true) * scale
        if causal {
            let future = (0..<t * t).map { Double($0 % t > $0 / t ? 1 : 0) }
            scores = scores.maskedFill(Tensor(future, shape: [t, t]), -1e30)
        }
        return Tensor.matmul(scores.softmax(), v)
    }

    @Test(arguments: [true, false])
    func packedAttentionMatchesSeparateQKV(_ causal: Bool) {
        // [B, T, 3, H, D] in, [B, T, H, D] out, against the head-major op on permuted slices.
        let packed = randn64([2, 5, 3, 2, 3], seed: 380)
        let g = randn64([2, 5, 2, 3], seed: 381)
        (Tensor.attention(packed: packed, causal: causal) * g).sum().backward()
        let fused = packed.grad!
        packed.grad = nil
        let heads = packed.permute([2, 0, 3, 1, 4])   // [3, B, H, T, D]
        let separate = Tensor.attention(heads[0], heads[1], heads[2], causal: causal).permute([0, 2, 1, 3])
        expectClose(Tensor.attention(packed: packed, causal: causal), separate, rtol: 1e-13, atol: 1e-14, "packed forward")
        (separate * g).sum().backward()
        expectClose(fused, packed.grad!, rtol: 1e-12, atol: 1e-13, "packed backward causal=\(causal)")
        expectGradientsMatch("packed attention causal=\(causal)", [packed]) { Tensor.attention(packed: $0[0], causal: causal) }
    }

    @Test(arguments: [true, false])
    func attentionMatchesNaiveCompositionAndGradients(_ causal: Bool) {
        let q = randn64([2, 2, 5, 3], seed: 370), k = randn64([2, 2, 5, 3], seed: 371), v = randn64([2, 2, 5, 3], seed: 372)
        let scale = 1 / 3.0.squareRoot()
        let fused = Tensor.attention(q, k, v, causal: causal)
        let naive = naiveAttention(q, k, v, causal: causal, scale: scale)
        expectClose(fused, naive, rtol: 1e-12, atol: 1e-13, "attention forward causal=\(causal)")
        // The first query of a causal head sees only the first key: its output is v[0].
        if causal { expectClose(fused[1][0][0], v[1][0][0], rtol: 1e-14, atol: 1e-14, "causal first row") }
        expectGradientsMatch("attention causal=\(causal)", [q, k, v]) { Tensor.attention($0[0], $0[1], $0[2], causal: causal) }
        expectGradientsMatch("attention custom scale causal=\(causal)", [q, k, v]) {
            Tensor.attention($0[0], $0[1], $0[2], causal: causal, scale: 0.7)
        }
        // The fused backward equals the naive composition's backward.
        let g = randn64([2, 2, 5, 3], seed: 373)
        for t in [q, k, v] { t.grad = nil }
        (Tensor.attention(q, k, v, causal: causal) * g).sum().backward()
        let fusedGrads = [q, k, v].map { $0.grad! }
        for t in [q, k, v] { t.grad = nil }
        (naiveAttention(q, k, v, causal: causal, scale: scale) * g).sum().backward()
        for (name, (a, b)) in zip(["dq", "dk", "dv"], zip(fusedGrads, [q, k, v].map { $0.grad! })) {
            expectClose(a, b, rtol: 1e-11, atol: 1e-12, "attention \(name) causal=\(causal)")
        }
    }

    @Test func castGradientsFlowBetweenFp64AndFp32() {
        // fp64 leaf -> fp32 computation: the gradient comes back as fp64.
        let x = Tensor([1, -2, 3] as [Double], requiresGrad: true)
        let w32 = Tensor([0.5, 2, -1] as [Float])
        (x.cast(to: .float32) * w32).sum().backward()
        #expect(x.grad!.dtype == .float64)
        #expect(x.grad!.scalars(as: Double.self) == [0.5, 2, -1])
        // fp32 leaf -> fp64 computation: the gradient comes back as fp32.
        let y = Tensor([1, -2, 3] as [Float], requiresGrad: true)
        (y.cast(to: .float64).square() * 0.5).sum().backward()
        #expect(y.grad!.dtype == .float32)
        #expect(y.grad!.scalars == [1, -2, 3])
        #expect(x.cast(to: .float64) === x, "casting to the same dtype is the identity")
        // Round trip through fp32 is differentiable in fp64 (values exactly representable in fp32).
        let z = Tensor([0.5, -0.25, 2] as [Double], requiresGrad: true)
        let r = z.cast(to: .float32).cast(to: .float64)
        #expect(r.gradFnName == "cast")
        (r * r).sum().backward()
        #expect(z.grad!.scalars(as: Double.self) == [1, -0.5, 4])
    }

    @Test func copyAndToDevice() {
        let x = randn64([2, 3], seed: 380)
        expectGradientsMatch("copy", [x]) { $0[0].copy() * $0[0] }
        expectGradientsMatch("to(.cpu)", [x]) { $0[0].to(.cpu).square() }
        let c = x.copy()
        #expect(c.storage !== x.storage, "copy owns new storage")
        #expect(c.scalars(as: Double.self) == x.scalars(as: Double.self))
        #expect(c.gradFnName == "copy")
        // Every CPU device holds the same memory, so moving between them keeps the tensor.
        #expect(x.to(.cpu(threads: 1)).scalars(as: Double.self) == x.scalars(as: Double.self))
    }
}
