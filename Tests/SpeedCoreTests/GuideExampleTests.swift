// The values docs/SpeedCore.md promises for its examples, so the user guide stays true.
import Testing
import SpeedCore

@Suite struct GuideExampleTests {
    @Test func makingAndReadingTensors() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect(a.shape == [2, 3] && a.dtype == .float32 && a.count == 6)
        #expect(Tensor([[1, 2, 3]]).dtype == .int64 && Tensor([[1, 2, 3]]).shape == [1, 3])
        #expect(Tensor([[1, 2], [3, 4]] as [[Double]]).dtype == .float64)
        #expect(Tensor(scalar: 2.5).rank == 0 && Tensor(scalar: 2.5).dtype == .float32)
        #expect(Tensor.full([2, 2], 7).dtype == .float32)
        #expect(Tensor.arange(0, 6).scalars == [0, 1, 2, 3, 4, 5])
        #expect(a.sum().item() == 21)
        #expect(a.description == "tensor([[1.0000, 2.0000, 3.0000],\n        [4.0000, 5.0000, 6.0000]], shape=[2, 3], dtype=float32)")
        var rng = RandomStream(seed: 0)
        let u = Tensor.uniform([10], low: -1, high: 1, rng: &rng)
        #expect(u.scalars.allSatisfy { $0 >= -1 && $0 < 1 })
    }

    @Test func arithmeticReductionsShapes() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect((a + Tensor.ones([3])).scalars == [2, 3, 4, 5, 6, 7])
        #expect((a * 2 - 1).shape == [2, 3])
        #expect(a.maximum(Tensor.ones([3])).scalars == a.scalars)
        #expect(a.sum().rank == 0)
        #expect(a.sum(axes: [1]).scalars == [6, 15])
        #expect(a.mean(axis: 0, keepDims: true).shape == [1, 3])
        #expect(a.max(axis: 0).scalars == [4, 5, 6])
        #expect(a.reshape([3, -1]).storage === a.storage)
        #expect(a.transposed().shape == [3, 2])
        #expect(a[1].scalars == [4, 5, 6])
        #expect(a.slice(axis: 1, 0..<2).scalars == [1, 2, 4, 5])
        #expect(Tensor.concat([a, a], axis: 0).shape == [4, 3])
        #expect(a.split([1, 2], axis: 1).map(\.shape) == [[2, 1], [2, 2]])
        #expect(a.chunk(3, axis: 1).count == 3)
        let base = Tensor.zeros([2, 3])
        base.reshape([6]).fill(7)
        #expect(base.scalars == [7, 7, 7, 7, 7, 7])
    }

    @Test func nnOps() {
        var rng = RandomStream(seed: 0)
        let x = Tensor.randn([8, 16], rng: &rng)
        let weight = Tensor.randn([32, 16], std: 0.02, rng: &rng)
        #expect(Tensor.matmul(x, weight, transposeB: true).shape == [8, 32])
        #expect(Tensor.linear(x, weight: weight, bias: Tensor.zeros([32])).shape == [8, 32])
        #expect(x.matmul(Tensor.ones([16, 4])).shape == [8, 4])
        #expect(Tensor.embedding(Tensor.randn([100, 16], rng: &rng), ids: Tensor([[3, 1, 4]])).shape == [1, 3, 16])
        let logits = Tensor([[2, 0, 0], [0, 0, 2]] as [[Float]])
        let loss = logits.crossEntropy(targets: Tensor([0, 2] as [Int32])).item()
        #expect(Swift.abs(loss - 0.2395) < 5e-5)
        let q = Tensor.randn([1, 2, 4, 8], rng: &rng)
        #expect(Tensor.attention(q, q, q, causal: true).shape == [1, 2, 4, 8])
        let qkv = Tensor.randn([1, 4, 3, 2, 8], rng: &rng)   // [B, T, 3, H, D]
        #expect(Tensor.attention(packed: qkv).shape == [1, 4, 2, 8])
        let normed = x.rmsNorm(weight: Tensor.ones([16]), eps: 1e-6)
        #expect(Swift.abs(normed.square().mean(axis: -1).scalars[0] - 1) < 1e-4, "unit mean square")
        #expect(Tensor.swiglu(gate: x, up: x).shape == [8, 16])
        let (cos, sin) = (Tensor.ones([1, 4, 4]), Tensor.zeros([1, 4, 4]))
        let qh = Tensor.randn([1, 4, 4, 8], rng: &rng).rotary(cos: cos, sin: sin)
        let kv = Tensor.randn([1, 4, 2, 8], rng: &rng)
        #expect(Tensor.attention(qh, kv, kv, mask: AttentionMask(causal: true, window: 3), tokenMajor: true).shape == [1, 4, 4, 8])
        let padded = Tensor.attention(q, q, q, mask: AttentionMask(keyPadding: Tensor([[1, 1, 1, 0]] as [[Int32]])))
        #expect(padded.shape == [1, 2, 4, 8] && padded.scalars.allSatisfy { $0.isFinite })
    }

    @Test func autogradWalkthrough() {
        let p = Tensor([0.5, -1.0] as [Float], requiresGrad: true)
        let loss = (p * p * 3).sum()
        #expect(loss.gradFnName == "sum")
        loss.backward()
        #expect(p.grad!.scalars == [3, -6])
        (p * p * 3).sum().backward()
        #expect(p.grad!.scalars == [6, -12])
        p.grad = nil
        (p * 2).backward(Tensor([1, 10] as [Float]))
        #expect(p.grad!.scalars == [2, 20])
        #expect(!noGrad { p * 2 }.requiresGrad)
        noGrad { p.addInPlace(p.grad!, scale: -0.1) }
        expectClose(p.scalars(as: Double.self), [0.3, -3], rtol: 1e-6, "SGD step")
        let h = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3]).cast(to: .bfloat16)
        #expect(h.dtype.byteSize == 2 && h.scalars == [1, 2, 3, 4, 5, 6])
        let target = Tensor.zeros([2, 3], dtype: .float16)
        target.copyData(from: h)
        #expect(target.scalars == [1, 2, 3, 4, 5, 6])
    }

    @Test func devicesAndRandomStreams() {
        let t = Tensor.zeros([1024], device: .cpu(threads: 1))
        #expect(t.to(Device.cpu(threads: 1)) === t)
        #expect(t.to(.cpu) === t, "CPU devices compare equal regardless of thread count")
        var g1 = RandomStream(seed: 7), g2 = RandomStream(seed: 7)
        #expect(Tensor.randn([4], rng: &g1).scalars == Tensor.randn([4], rng: &g2).scalars)
        #expect(g1.offset == 4)
    }
}
