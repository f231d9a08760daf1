// Activation checkpointing in SpeedCore: gradients equal the plain graph's and finite differences,
// RNG replay, nesting, saved-input copies; and the CPU backend's memory counters. Invariant: each test
// that reads memory counters uses its own CPUBackend, so tests running in parallel do not disturb it.
import Testing
import SpeedCore

/// A mutable random stream that closures can share (what a Dropout layer is to SpeedNN).
private final class StreamBox {
    var rng: RandomStream
    init(seed: UInt64) { rng = RandomStream(seed: seed) }
    var preserved: PreservedState { PreservedState(get: { self.rng }, set: { self.rng = $0 }) }
}

/// Two layers reading a captured weight `w`: the kind of function a transformer block is.
private func twoLayers(_ x: Tensor, _ w: Tensor, _ b: Tensor) -> Tensor {
    let h = (Tensor.matmul(x, w) + b).tanh()
    return (Tensor.matmul(h, w) * h).sigmoid()
}

@Suite struct CheckpointTests {
    @Test func gradientsEqualThePlainGraphForInputsAndCapturedWeights() {
        let w = randn64([6, 6], seed: 1, scale: 0.5), b = randn64([6], seed: 2)
        let x = randn64([4, 6], seed: 3)
        let weights = randn64([4, 6], seed: 4)
        // A weight is also used outside the checkpoint, so its gradient arrives in two parts.
        (twoLayers(x, w, b) * weights + w.sum()).sum().backward()
        let plain = [x, w, b].map { $0.grad!.scalars(as: Double.self) }
        for t in [x, w, b] { t.grad = nil }

        let y = checkpoint([x]) { xs in twoLayers(xs[0], w, b) }
        #expect(y.gradFnName == "checkpoint")
        (y * weights + w.sum()).sum().backward()
        for (t, expected) in zip([x, w, b], plain) {
            expectClose(t.grad!.scalars(as: Double.self), expected, rtol: 1e-13, atol: 1e-15)
        }
    }

    @Test func gradientsMatchFiniteDifferences() {
        let w = randn64([5, 5], seed: 11, scale: 0.5), b = randn64([5], seed: 12)
        let x = randn64([3, 5], seed: 13), z = randn64([3, 5], seed: 14)
        // Inputs and captured weights, two inputs, and the output used twice downstream.
        expectGradientsMatch("checkpoint", [x, z, w, b]) { t in
            let y = checkpoint([t[0], t[1]]) { xs in twoLayers(xs[0] * xs[1], t[2], t[3]) }
            return y * y + y
        }
    }

    @Test func inputsThatNeedNoGradientGetNoneButWeightsStillDo() {
        let w = randn64([4, 4], seed: 21), b = randn64([4], seed: 22)
        let data = noGrad { randn64([2, 4], seed: 23).detach() }
        let mask = randn64([2, 4], seed: 24)
        mask.requiresGrad = false
        #expect(!data.requiresGrad)
        // No input requires grad: `parameters` makes the output require it, so w and b get theirs.
        let y = checkpoint([data, mask], parameters: [w, b]) { xs in twoLayers(xs[0] + xs[1], w, b) }
        #expect(y.requiresGrad)
        y.sum().backward()
        #expect(data.grad == nil && mask.grad == nil)
        let (gw, gb) = (w.grad!.scalars(as: Double.self), b.grad!.scalars(as: Double.self))
        w.grad = nil; b.grad = nil
        twoLayers(data + mask, w, b).sum().backward()
        expectClose(gw, w.grad!.scalars(as: Double.self), rtol: 1e-13, atol: 1e-15)
        expectClose(gb, b.grad!.scalars(as: Double.self), rtol: 1e-13, atol: 1e-15)
    }

    @Test func underNoGradOrWithoutGradientsTheBodyJustRuns() {
        let x = randn64([2, 3], seed: 31)
        var calls = 0
        let y = noGrad { checkpoint([x]) { xs in calls += 1; return xs[0].exp() } }
        #expect(!y.requiresGrad && y.gradFnName == nil && calls == 1)
        let plain = Tensor([1, 2] as [Double])
        let z = checkpoint([plain]) { xs in xs[0] * 2 }
        #expect(!z.requiresGrad && z.scalars(as: Double.self) == [2, 4])
    }

    @Test func preservedRandomStateReplaysDropoutMasksExactly() {
        let x = randn64([8, 32], seed: 41)
        let w = randn64([32, 32], seed: 42, scale: 0.2)
        func block(_ t: Tensor, _ box: StreamBox) -> Tensor {
            Tensor.matmul(t.dropout(0.5, rng: &box.rng), w).gelu().dropout(0.3, rng: &box.rng)
        }
        let plainBox = StreamBox(seed: 7)
        block(x, plainBox).square().sum().backward()
        let plain = (x.grad!.scalars(as: Double.self), w.grad!.scalars(as: Double.self))
        x.grad = nil; w.grad = nil

        let box = StreamBox(seed: 7)
        let y = checkpoint([x], preserving: [box.preserved]) { xs in block(xs[0], box) }
        let afterForward = box.rng
        #expect(afterForward == plainBox.rng)
        y.square().sum().backward()
        #expect(x.grad!.scalars(as: Double.self) == plain.0)
        #expect(w.grad!.scalars(as: Double.self) == plain.1)
        #expect(box.rng == afterForward, "the recompute must leave the stream where it found it")
        x.grad = nil; w.grad = nil

        // Control: without preserving the stream, the recompute draws other masks.
        let unpreserved = StreamBox(seed: 7)
        checkpoint([x]) { xs in block(xs[0], unpreserved) }.square().sum().backward()
        #expect(x.grad!.scalars(as: Double.self) != plain.0)
        x.grad = nil; w.grad = nil
    }

    @Test func stateIsRestoredToWhatItIsWhenBackwardRuns() {
        // Draws between forward and backward (a later layer) must not be rewound by the recompute.
        let x = randn64([4, 4], seed: 51)
        let box = StreamBox(seed: 9)
        let y = checkpoint([x], preserving: [box.preserved]) { xs in xs[0].dropout(0.5, rng: &box.rng) }
        let z = y.dropout(0.5, rng: &box.rng)
        let beforeBackward = box.rng
        z.sum().backward()
        #expect(box.rng == beforeBackward)
    }

    @Test func nestedCheckpointsAndARetainedGraphGiveThePlainGradients() {
        let w = randn64([4, 4], seed: 61, scale: 0.5), b = randn64([4], seed: 62)
        let x = randn64([3, 4], seed: 63)
        twoLayers(twoLayers(x, w, b), w, b).sum().backward()
        let plain = (x.grad!.scalars(as: Double.self), w.grad!.scalars(as: Double.self))
        x.grad = nil; w.grad = nil; b.grad = nil

        let y = checkpoint([x]) { xs in
            let inner = checkpoint([xs[0]]) { ys in twoLayers(ys[0], w, b) }
            return twoLayers(inner, w, b)
        }
        let loss = y.sum()
        loss.backward(retainGraph: true)
        expectClose(x.grad!.scalars(as: Double.self), plain.0, rtol: 1e-13, atol: 1e-15)
        expectClose(w.grad!.scalars(as: Double.self), plain.1, rtol: 1e-13, atol: 1e-15)
        // The retained checkpoint recomputes again: gradients double.
        loss.backward()
        expectClose(x.grad!.scalars(as: Double.self), plain.0.map { 2 * $0 }, rtol: 1e-13, atol: 1e-15)
    }

    @Test func checkpointsInAChainBackPropagateThroughEachOther() {
        let ws = (0..<4).map { randn64([5, 5], seed: 70 + UInt64($0), scale: 0.5) }
        let b = randn64([5], seed: 79)
        let x = randn64([2, 5], seed: 80)
        var h = x
        for w in ws { h = twoLayers(h, w, b) }
        h.sum().backward()
        let plain = ([x, b] + ws).map { $0.grad!.scalars(as: Double.self) }
        for t in [x, b] + ws { t.grad = nil }
        h = x
        for w in ws { h = checkpoint([h], parameters: [w, b]) { xs in twoLayers(xs[0], w, b) } }
        h.sum().backward()
        for (t, expected) in zip([x, b] + ws, plain) {
            expectClose(t.grad!.scalars(as: Double.self), expected, rtol: 1e-13, atol: 1e-15)
        }
    }

    @Test func savedInputsOnADeviceAreACopyTheRecomputeUses() {
        let w = randn64([4, 4], seed: 91)
        let x = randn64([3, 4], seed: 92)
        twoLayers(x, w, w[0]).sum().backward()
        let plain = (x.grad!.scalars(as: Double.self), w.grad!.scalars(as: Double.self))
        x.grad = nil; w.grad = nil

        let y = checkpoint([x], saveInputsOn: .cpu) { xs in twoLayers(xs[0], w, w[0]) }
        // Changing the input after the forward does not reach the recompute: it reads the saved copy.
        noGrad { x.addInPlace(Tensor.ones([3, 4], dtype: .float64)) }
        y.sum().backward()
        expectClose(x.grad!.scalars(as: Double.self), plain.0, rtol: 1e-13, atol: 1e-15)
        expectClose(w.grad!.scalars(as: Double.self), plain.1, rtol: 1e-13, atol: 1e-15)
        noGrad { x.addInPlace(Tensor.ones([3, 4], dtype: .float64), scale: -1) }

        // Without a saved copy the recompute reads the changed input (why cpu_checkpointing copies).
        x.grad = nil; w.grad = nil
        let z = checkpoint([x]) { xs in twoLayers(xs[0], w, w[0]) }
        noGrad { x.addInPlace(Tensor.ones([3, 4], dtype: .float64)) }
        z.sum().backward()
        #expect(x.grad!.scalars(as: Double.self) != plain.0)
    }

    @Test func leafGradientsKeepTheirDtypeAndHooksFire() {
        let w = Tensor.ones([3, 3], requiresGrad: true)
        var fired = 0
        w.onGradReady = { _ in fired += 1 }
        let x = Tensor.full([2, 3], 0.5, requiresGrad: true)
        checkpoint([x]) { xs in Tensor.matmul(xs[0], w).relu() }.sum().backward()
        #expect(fired == 1)
        #expect(w.grad?.dtype == .float32 && x.grad?.dtype == .float32)
        #expect(x.grad!.scalars == [3, 3, 3, 3, 3, 3])
    }
}

@Suite struct CheckpointGuideTests {
    /// docs/SpeedCore.md, "Activation checkpointing" and "Devices and threads".
    @Test func theGuideExamplesHold() {
        var rng = RandomStream(seed: 3)
        let w = Tensor.randn([16, 16], std: 0.3, rng: &rng); w.requiresGrad = true
        let x = Tensor.randn([8, 16], rng: &rng); x.requiresGrad = true
        final class Stream { var rng = RandomStream(seed: 9) }
        let drop = Stream()
        let y = checkpoint([x], preserving: [PreservedState(get: { drop.rng }, set: { drop.rng = $0 })]) { xs in
            Tensor.matmul(xs[0], w).gelu().dropout(0.1, rng: &drop.rng).matmul(w).tanh()
        }
        #expect(y.gradFnName == "checkpoint")
        y.sum().backward()
        #expect(x.grad != nil && w.grad != nil)

        let backend = CPUBackend(threads: 1)
        let device = Device(backend: backend, kind: "cpu")
        backend.resetPeakMemory()
        var t: Tensor? = Tensor.zeros([1 << 18], device: device)
        t = nil
        #expect(t == nil)
        #expect(backend.memoryStats.allocatedBytes == 0)
        #expect(backend.memoryStats.reservedBytes == 1_048_576)
        #expect(backend.memoryStats.peakAllocatedBytes == 1_048_576)
    }
}

@Suite struct MemoryStatsTests {
    @Test func cpuBackendCountsLiveBytesPeakAndCache() {
        let backend = CPUBackend(threads: 1)
        let device = Device(backend: backend, kind: "cpu")
        #expect(backend.memoryStats == MemoryStats(allocatedBytes: 0, reservedBytes: 0, peakAllocatedBytes: 0))
        var big: Tensor? = Tensor.zeros([1 << 18], device: device)       // 1 MiB: a cached size
        var small: Tensor? = Tensor.zeros([10], device: device)          // 40 B: rounded to a 4 KiB page
        #expect(backend.memoryStats.allocatedBytes == (1 << 20) + 4096)
        #expect(backend.memoryStats.peakAllocatedBytes == (1 << 20) + 4096)
        big = nil
        #expect(backend.memoryStats.allocatedBytes == 4096)
        #expect(backend.memoryStats.reservedBytes == 4096 + (1 << 20), "the freed MiB stays cached")
        #expect(backend.memoryStats.peakAllocatedBytes == (1 << 20) + 4096)
        backend.resetPeakMemory()
        #expect(backend.memoryStats.peakAllocatedBytes == 4096)
        big = Tensor.zeros([1 << 18], device: device)                     // reuses the cached block
        #expect(backend.memoryStats.reservedBytes == backend.memoryStats.allocatedBytes)
        big = nil; small = nil
        backend.emptyCache()
        #expect(backend.memoryStats.allocatedBytes == 0 && backend.memoryStats.reservedBytes == 0)
        _ = (big, small)
    }

    @Test func countersStayExactUnderConcurrentAllocation() async {
        let backend = CPUBackend(threads: 2)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for i in 0..<200 {
                        let p = backend.allocate(byteCount: (i % 3 + 1) << 16)
                        backend.deallocate(p, byteCount: (i % 3 + 1) << 16)
                    }
                }
            }
        }
        #expect(backend.memoryStats.allocatedBytes == 0)
        #expect(backend.memoryStats.peakAllocatedBytes >= 1 << 16)
        #expect(backend.memoryStats.peakAllocatedBytes <= 4 * 3 << 16)
    }

    @Test func checkpointingLowersPeakMemoryOfAChain() {
        let backend = CPUBackend(threads: 1)
        let device = Device(backend: backend, kind: "cpu")
        var rng = RandomStream(seed: 5)
        let ws = (0..<6).map { _ in Tensor.randn([64, 64], std: 0.1, device: device, rng: &rng) }
        for w in ws { w.requiresGrad = true }
        let x = Tensor.randn([512, 64], device: device, rng: &rng)
        func peak(checkpointed: Bool) -> Int {
            for w in ws { w.grad = nil }
            backend.resetPeakMemory()
            var h = x
            for w in ws {
                let layer: ([Tensor]) -> Tensor = { xs in
                    Tensor.matmul(xs[0], w).gelu().tanh().sigmoid() + xs[0]
                }
                h = checkpointed ? checkpoint([h], parameters: [w], layer) : layer([h])
            }
            h.sum().backward()
            return backend.memoryStats.peakAllocatedBytes
        }
        let plain = peak(checkpointed: false), saved = peak(checkpointed: true)
        #expect(Double(saved) < 0.6 * Double(plain), "checkpointed peak \(saved) vs plain \(plain)")
    }
}
