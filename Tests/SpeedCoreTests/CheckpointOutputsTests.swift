// The several-output checkpoint: gradients equal the plain graph's and finite differences, one recompute
// per backward, integer outputs pass through, unused outputs cost nothing. Invariant: every comparison runs
// the same fp64 function plainly and checkpointed on the same leaves, clearing their gradients in between.
import Testing
import SpeedCore

/// A block with three outputs sharing a subgraph: hidden states, a scalar, and an int32 index tensor.
private func threeOutputs(_ x: Tensor, _ mask: Tensor, _ w: Tensor, _ b: Tensor) -> [Tensor] {
    let h = (Tensor.matmul(x * mask, w) + b).tanh()
    let score = (h * h).mean()
    let ids = noGrad { h.greater(Tensor.zeros(h.shape, dtype: h.dtype)).cast(to: .int32) }
    return [h, score, ids]
}

@Suite struct CheckpointOutputsTests {
    @Test func gradientsEqualThePlainGraphWhenSeveralOutputsReachTheLoss() {
        let w = randn64([5, 5], seed: 1, scale: 0.5), b = randn64([5], seed: 2)
        let x = randn64([3, 5], seed: 3)
        let mask = noGrad { Tensor.ones([3, 5], dtype: .float64) }
        let weights = randn64([3, 5], seed: 4)
        // w is also read outside the checkpoint, so its gradient arrives in two parts.
        func loss(_ outs: [Tensor]) -> Tensor { (outs[0] * weights).sum() + outs[1] * 3 + w.sum() }
        loss(threeOutputs(x, mask, w, b)).backward()
        let plain = [x, w, b].map { $0.grad!.scalars(as: Double.self) }
        for t in [x, w, b] { t.grad = nil }

        let outs = checkpoint([x, mask]) { xs in threeOutputs(xs[0], xs[1], w, b) }
        #expect(outs.map(\.gradFnName) == ["checkpoint_output", "checkpoint_output", nil])
        #expect(outs[2].dtype == .int32 && !outs[2].requiresGrad)
        loss(outs).backward()
        for (t, expected) in zip([x, w, b], plain) {
            expectClose(t.grad!.scalars(as: Double.self), expected, rtol: 1e-13, atol: 1e-15)
        }
        #expect(mask.grad == nil)
    }

    @Test func gradientsMatchFiniteDifferences() {
        let w = randn64([4, 4], seed: 11, scale: 0.5), b = randn64([4], seed: 12)
        let x = randn64([3, 4], seed: 13), z = randn64([3, 4], seed: 14)
        expectGradientsMatch("several-output checkpoint", [x, z, w, b]) { t in
            let outs = checkpoint([t[0], t[1]]) { xs in threeOutputs(xs[0], xs[1], t[2], t[3]) }
            return outs[0] * outs[1] + outs[0]
        }
    }

    @Test func oneBackwardRecomputesOnceAndAnOutputTheLossIgnoresCostsNothing() {
        let w = randn64([4, 4], seed: 21), b = randn64([4], seed: 22)
        let x = randn64([2, 4], seed: 23)
        final class Counter { var calls = 0 }
        let counter = Counter()
        let outs = checkpoint([x]) { xs in
            counter.calls += 1
            return threeOutputs(xs[0], Tensor.ones([2, 4], dtype: .float64), w, b)
        }
        #expect(counter.calls == 1)
        (outs[0].sum() + outs[1]).backward()
        #expect(counter.calls == 2)
        let both = x.grad!.scalars(as: Double.self)

        // Only the scalar reaches the loss: still one recompute, and the gradient is the scalar's alone.
        x.grad = nil; w.grad = nil; b.grad = nil
        let again = checkpoint([x]) { xs in threeOutputs(xs[0], Tensor.ones([2, 4], dtype: .float64), w, b) }
        again[1].backward()
        let scoreOnly = x.grad!.scalars(as: Double.self)
        x.grad = nil
        threeOutputs(x, Tensor.ones([2, 4], dtype: .float64), w, b)[1].backward()
        expectClose(scoreOnly, x.grad!.scalars(as: Double.self), rtol: 1e-13, atol: 1e-15)
        #expect(both != scoreOnly)
    }

    @Test func preservedStateReplaysTheMasksForEveryOutput() {
        let w = randn64([6, 6], seed: 31, scale: 0.5)
        let x = randn64([4, 6], seed: 32)
        final class Box { var rng = RandomStream(seed: 8) }
        func block(_ t: Tensor, _ box: Box) -> [Tensor] {
            let h = Tensor.matmul(t.dropout(0.5, rng: &box.rng), w).tanh()
            return [h, h.dropout(0.3, rng: &box.rng).sum()]
        }
        let plainBox = Box()
        let p = block(x, plainBox)
        (p[0].square().sum() + p[1]).backward()
        let (gx, gw) = (x.grad!.scalars(as: Double.self), w.grad!.scalars(as: Double.self))
        x.grad = nil; w.grad = nil

        let box = Box()
        let c = checkpoint([x], preserving: [PreservedState(get: { box.rng }, set: { box.rng = $0 })]) { xs in block(xs[0], box) }
        #expect(c[1].item() == p[1].item())
        (c[0].square().sum() + c[1]).backward()
        #expect(x.grad!.scalars(as: Double.self) == gx)
        #expect(w.grad!.scalars(as: Double.self) == gw)
        #expect(box.rng == plainBox.rng)
    }

    @Test func underNoGradTheBodyJustRuns() {
        let x = randn64([2, 3], seed: 41)
        let outs = noGrad { checkpoint([x]) { xs in [xs[0].tanh(), xs[0].sum()] } }
        #expect(outs.allSatisfy { !$0.requiresGrad && $0.gradFnName == nil })
    }
}
