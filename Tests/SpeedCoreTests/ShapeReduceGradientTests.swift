// Finite-difference gradient checks of reductions (every axis pattern, keepDims) and shape ops (fp64).
import Testing
import SpeedCore

/// Axis sets over a [2, 3, 4] input: single axes (incl. negative), adjacent, non-adjacent, all.
private let axisSets: [[Int]?] = [[0], [1], [-1], [0, 1], [1, 2], [0, 2], [2, 0], nil]

@Suite struct ShapeReduceGradientTests {
    @Test(arguments: axisSets, [false, true])
    func sumMeanMaxVariance(_ axes: [Int]?, _ keepDims: Bool) {
        let x = randn64([2, 3, 4], seed: 100)
        let label = "axes \(String(describing: axes)) keepDims \(keepDims)"
        expectGradientsMatch("sum \(label)", [x]) { $0[0].sum(axes: axes, keepDims: keepDims) }
        expectGradientsMatch("mean \(label)", [x]) { $0[0].mean(axes: axes, keepDims: keepDims) }
        expectGradientsMatch("max \(label)", [x]) { $0[0].max(axes: axes, keepDims: keepDims) }
        expectGradientsMatch("variance \(label)", [x]) { $0[0].variance(axes: axes, keepDims: keepDims) }
        expectGradientsMatch("population variance \(label)", [x]) {
            $0[0].variance(axes: axes, keepDims: keepDims, correction: 0)
        }
    }

    @Test func singleAxisConveniences() {
        let x = randn64([3, 4], seed: 101)
        expectGradientsMatch("sum(axis:)", [x]) { $0[0].sum(axis: 1) }
        expectGradientsMatch("mean(axis:keepDims:)", [x]) { $0[0].mean(axis: 0, keepDims: true) }
        expectGradientsMatch("max(axis:)", [x]) { $0[0].max(axis: -1) }
    }

    @Test func reductionShapes() {
        let x = Tensor.zeros([2, 3, 4])
        #expect(x.sum(axes: [0, 2]).shape == [3])
        #expect(x.sum(axes: [0, 2], keepDims: true).shape == [1, 3, 1])
        #expect(x.mean().shape == [])
        #expect(x.max(axes: nil, keepDims: true).shape == [1, 1, 1])
        #expect(x.variance(axes: [-1]).shape == [2, 3])
    }

    @Test func maxSharesGradientAmongTies() {
        let x = Tensor([[1, 3, 3], [2, 0, -1]] as [[Double]], requiresGrad: true)
        x.max(axis: 1).sum().backward()
        #expect(x.grad!.scalars(as: Double.self) == [0, 0.5, 0.5, 1, 0, 0])
    }

    @Test func permuteAndTranspose() {
        let x = randn64([2, 3, 4], seed: 110)
        expectGradientsMatch("permute [2,0,1]", [x]) { $0[0].permute([2, 0, 1]) }
        expectGradientsMatch("permute [1,0,2]", [x]) { $0[0].permute([1, 0, 2]) }
        expectGradientsMatch("transposed()", [x]) { $0[0].transposed() }
        expectGradientsMatch("transposed(0, 2)", [x]) { $0[0].transposed(0, 2) }
    }

    @Test func reshapeAndFlatten() {
        let x = randn64([2, 3, 4], seed: 111)
        expectGradientsMatch("reshape [-1, 4]", [x]) { $0[0].reshape([-1, 4]) * $0[0].reshape([6, 4]).exp() }
        expectGradientsMatch("reshape [4, 6]", [x]) { $0[0].reshape([4, 6]).softmax() }
        expectGradientsMatch("flatten", [x]) { $0[0].flatten().square() }
    }

    @Test func expand() {
        let row = randn64([4], seed: 120), column = randn64([3, 1], seed: 121), scalar = randn64([], seed: 122)
        expectGradientsMatch("expand [4] -> [3, 4]", [row]) { $0[0].expand(to: [3, 4]) }
        expectGradientsMatch("expand [3, 1] -> [2, 3, 4]", [column]) { $0[0].expand(to: [2, 3, 4]) }
        expectGradientsMatch("expand [] -> [2, 2]", [scalar]) { $0[0].expand(to: [2, 2]) }
    }

    @Test func sliceOuterAxisIsAViewInnerAxisACopy() {
        let x = randn64([4, 3], seed: 130)
        expectGradientsMatch("slice axis 0 (view)", [x]) { $0[0].slice(axis: 0, 1..<3) }
        expectGradientsMatch("slice axis 1 (copy)", [x]) { $0[0].slice(axis: 1, 1..<3) }
        expectGradientsMatch("slice axis -1", [x]) { $0[0].slice(axis: -1, 0..<1) }
        let y = randn64([1, 5, 3], seed: 131)
        expectGradientsMatch("slice after a unit axis (view)", [y]) { $0[0].slice(axis: 1, 2..<5) }
        // Both uses of a sliced input accumulate into one gradient.
        expectGradientsMatch("two overlapping slices", [x]) { $0[0].slice(axis: 0, 0..<2) * $0[0].slice(axis: 0, 1..<3) }
    }

    @Test func subscriptRow() {
        let x = randn64([3, 2, 2], seed: 140)
        expectGradientsMatch("subscript", [x]) { $0[0][1] * $0[0][2] }
    }

    @Test func concatSplitChunk() {
        let a = randn64([2, 3], seed: 150), b = randn64([1, 3], seed: 151), c = randn64([2, 2], seed: 152)
        expectGradientsMatch("concat axis 0", [a, b]) { Tensor.concat([$0[0], $0[1], $0[0]], axis: 0) }
        expectGradientsMatch("concat axis 1", [a, c]) { Tensor.concat([$0[1], $0[0]], axis: 1).square() }
        expectGradientsMatch("stack", [a, b.expand(to: [2, 3]).detach()]) { Tensor.stack([$0[0], $0[1].exp(), $0[0]]) }
        let x = randn64([4, 6], seed: 153)
        expectGradientsMatch("split axis 1", [x]) { t in
            let parts = t[0].split([1, 2, 3], axis: 1)
            return parts[0].sum() + (parts[1] * 2).square().sum() + parts[2].exp().sum()
        }
        expectGradientsMatch("chunk axis 0", [x]) { t in
            let parts = t[0].chunk(2, axis: 0)
            return parts[0] * parts[1]
        }
    }
}

@Suite struct SumOfSquaresTests {
    @Test func sumOfSquaresMatchesSquareThenSumAndHasTheRightGradient() {
        let x = randn64([3, 5], seed: 77)
        expectClose(x.sumOfSquares(), x.square().sum())
        expectGradientsMatch("sumOfSquares", [x]) { $0[0].sumOfSquares() }
        // fp32 over a long buffer (the parallel path) against fp64.
        let big = randn32([100_003], seed: 78)
        let exact = big.cast(to: .float64).square().sum().item()
        #expect(Swift.abs(big.sumOfSquares().item() - exact) < 1e-5 * exact)
    }
}
