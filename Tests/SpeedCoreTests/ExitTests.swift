// Misuse stops the process with a precondition failure (Swift Testing exit tests; each spawns a process).
import Testing
import SpeedCore

@Suite struct ExitTests {
    @Test func secondBackwardThroughAFreedGraphStops() async {
        await #expect(processExitsWith: .failure) {
            let x = Tensor([1, 2] as [Double], requiresGrad: true)
            let y = (x * x).sum()
            y.backward()
            y.backward()
        }
    }

    @Test func broadcastShapeMismatchInAddStops() async {
        await #expect(processExitsWith: .failure) {
            _ = Tensor.zeros([3, 4]) + Tensor.zeros([3])
        }
    }

    @Test func matmulInnerDimensionMismatchStops() async {
        await #expect(processExitsWith: .failure) {
            _ = Tensor.matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5]))
        }
    }
}
