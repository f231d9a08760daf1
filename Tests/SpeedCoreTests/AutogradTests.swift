// Autograd semantics: accumulation, noGrad, detach, fan-out, gradient-ready hooks, graph freeing and retainGraph.
import Testing
import SpeedCore

/// Counts hook calls per leaf (the hook is a non-Sendable closure on one thread).
private final class HookLog {
    var calls: [String] = []
    var gradsSeen: [[Double]] = []
}

@Suite struct AutogradTests {
    @Test func gradientsAccumulateAcrossBackwardCalls() {
        let x = Tensor([1, 2, 3] as [Double], requiresGrad: true)
        (x * x).sum().backward()
        #expect(x.grad!.scalars(as: Double.self) == [2, 4, 6])
        (x * 3).sum().backward()
        #expect(x.grad!.scalars(as: Double.self) == [5, 7, 9])
        x.grad = nil
        x.sum().backward()
        #expect(x.grad!.scalars(as: Double.self) == [1, 1, 1])
    }

    @Test func explicitUpstreamGradient() {
        let x = Tensor([1, 2] as [Double], requiresGrad: true)
        let y = x * x
        y.backward(Tensor([10, -1] as [Double]))
        #expect(x.grad!.scalars(as: Double.self) == [20, -4])
        // Backward on a leaf accumulates the seed directly and fires its hook.
        let leaf = Tensor([1, 1] as [Double], requiresGrad: true)
        let log = HookLog()
        leaf.onGradReady = { _ in log.calls.append("leaf") }
        leaf.backward(Tensor([3, 4] as [Double]))
        #expect(leaf.grad!.scalars(as: Double.self) == [3, 4])
        #expect(log.calls == ["leaf"])
    }

    @Test func noGradRecordsNothing() {
        let x = Tensor([1, 2] as [Float], requiresGrad: true)
        let y = noGrad { (x * 2).exp().sum() }
        #expect(!y.requiresGrad)
        #expect(y.gradFnName == nil)
        #expect(y.isLeaf)
        #expect(noGrad { GradMode.isEnabled } == false)
        #expect(GradMode.isEnabled)
        // Outside the scope recording resumes.
        let z = (x * 2).sum()
        #expect(z.requiresGrad && z.gradFnName == "sum")
        // Ops on tensors that need no gradient record nothing either.
        let c = Tensor([1, 2] as [Float])
        #expect(!(c * 2).requiresGrad && (c * 2).gradFnName == nil)
    }

    @Test func detachCutsTheGraphButSharesData() {
        let x = Tensor([1, 2, 3] as [Double], requiresGrad: true)
        let y = x * 2
        let d = y.detach()
        #expect(!d.requiresGrad && d.isLeaf)
        #expect(d.storage === y.storage)
        #expect(d.scalars(as: Double.self) == [2, 4, 6])
        // Gradient flows only through the attached branch.
        (y * d).sum().backward()
        #expect(x.grad!.scalars(as: Double.self) == [4, 8, 12])
    }

    @Test func fanOutSumsGradientsFromEveryUse() {
        let x = Tensor([1, 2] as [Double], requiresGrad: true)
        let h = x.exp()                 // used three times below
        let y = (h * h + h.doubled()).sum()
        y.backward()
        let e = [1.0, 2.0].map { Double.exp($0) }
        // d/dx [e^{2x} + 2 e^x] = 2 e^{2x} + 2 e^x.
        expectClose(x.grad!.scalars(as: Double.self), e.map { 2 * $0 * $0 + 2 * $0 }, rtol: 1e-14, "fan-out")
        // x used directly twice in one op.
        let z = Tensor([3] as [Double], requiresGrad: true)
        (z * z * z).sum().backward()
        #expect(z.grad!.item() == 27)
    }

    @Test func onGradReadyFiresOncePerLeafPerBackward() {
        let a = Tensor([1, 2] as [Double], requiresGrad: true)
        let b = Tensor([3, 4] as [Double], requiresGrad: true)
        let unused = Tensor([5] as [Double], requiresGrad: true)
        let log = HookLog()
        a.onGradReady = { t in log.calls.append("a"); log.gradsSeen.append(t.grad!.scalars(as: Double.self)) }
        b.onGradReady = { _ in log.calls.append("b") }
        unused.onGradReady = { _ in log.calls.append("unused") }
        // a is used three times (fan-out); the hook must see its final gradient, once.
        let loss = ((a * b) + a.square() + a * 2).sum()
        loss.backward()
        #expect(log.calls.filter { $0 == "a" }.count == 1)
        #expect(log.calls.filter { $0 == "b" }.count == 1)
        #expect(!log.calls.contains("unused"))
        let expected: [[Double]] = [[7, 10]]  // b + 2a + 2
        #expect(log.gradsSeen == expected)
        // A second backward fires again, with the accumulated gradient.
        ((a * b) + a.square() + a * 2).sum().backward()
        #expect(log.calls.filter { $0 == "a" }.count == 2)
        #expect(log.gradsSeen.last == [14, 20])
    }

    @Test func retainGraphAllowsASecondBackward() {
        let x = Tensor([1, 2] as [Double], requiresGrad: true)
        let y = (x.exp() * x).sum()
        y.backward(retainGraph: true)
        let first = x.grad!.scalars(as: Double.self)
        y.backward()
        expectClose(x.grad!.scalars(as: Double.self), first.map { 2 * $0 }, rtol: 1e-15, "second backward doubles")
    }

    @Test func nonLeafTensorsGetNoGrad() {
        let x = Tensor([1, 2] as [Double], requiresGrad: true)
        let h = x * 2
        (h * h).sum().backward()
        #expect(h.grad == nil)
        #expect(!h.isLeaf && h.gradFnName == "affine")
        #expect(x.grad!.scalars(as: Double.self) == [8, 16])
    }

    @Test func onlyInputsThatNeedGradientsGetThem() {
        let a = Tensor([1, 2] as [Double], requiresGrad: true)
        let b = Tensor([3, 4] as [Double])
        (Tensor.matmul(a.reshape([1, 2]), b.reshape([2, 1]))).sum().backward()
        #expect(a.grad!.scalars(as: Double.self) == [3, 4])
        #expect(b.grad == nil)
    }

    @Test func gradientDTypeFollowsTheLeaf() {
        let x = Tensor([1, 2] as [Float], requiresGrad: true)
        (x.cast(to: .float64) * 2).sum().backward()
        #expect(x.grad!.dtype == .float32)
        #expect(x.grad!.scalars == [2, 2])
        // An existing .grad keeps its own dtype: fp32 accumulation for a bf16 weight keeps small steps
        // that bf16 accumulation would round away (1 + 2^-9 is not a bf16 value).
        let w = Tensor([1, 1] as [Float], dtype: .bfloat16, requiresGrad: true)
        w.grad = Tensor.ones([2])
        (w * Tensor.full([2], 0x1p-9, dtype: .bfloat16)).sum().backward()
        #expect(w.grad!.dtype == .float32)
        #expect(w.grad!.scalars == [1 + 0x1p-9, 1 + 0x1p-9])
    }
}

private extension Tensor {
    /// `2·self`, via a second use of the same tensor (another path for fan-out).
    func doubled() -> Tensor { self + self }
}
