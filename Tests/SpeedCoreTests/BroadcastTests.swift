// NumPy broadcasting: shape rules, strides, forward values of broadcast ops, and sumToShape.
import Testing
import SpeedCore

@Suite struct BroadcastTests {
    @Test func shapeRules() {
        #expect(Shape.broadcast([3, 4], [4]) == [3, 4])
        #expect(Shape.broadcast([3, 1], [1, 4]) == [3, 4])
        #expect(Shape.broadcast([], [2, 3]) == [2, 3])
        #expect(Shape.broadcast([2, 1, 4], [3, 1]) == [2, 3, 4])
        #expect(Shape.broadcast([5], [1]) == [5])
        #expect(Shape.broadcast([3, 4], [3]) == nil)
        #expect(Shape.broadcast([2, 3], [3, 2]) == nil)
        #expect(Shape.broadcastStrides([3, 1], to: [2, 3, 4]) == [0, 1, 0])
        #expect(Shape.broadcastStrides([4], to: [3, 4]) == [0, 1])
        #expect(Shape.strides([2, 3, 4]) == [12, 4, 1])
        #expect(Shape.count([]) == 1 && Shape.count([2, 0]) == 0)
        #expect(Shape.axis(-1, rank: 3, op: "test") == 2)
    }

    @Test func rowAndColumnBroadcastValues() {
        let column = Tensor([[1], [2], [3]] as [[Float]])          // [3, 1]
        let row = Tensor([10, 20, 30, 40] as [Float])              // [4]
        #expect((column + row).shape == [3, 4])
        #expect((column + row).scalars == [11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43])
        #expect((row - column).scalars == [9, 19, 29, 39, 8, 18, 28, 38, 7, 17, 27, 37])
        #expect((column * row.reshape([1, 4])).scalars == [10, 20, 30, 40, 20, 40, 60, 80, 30, 60, 90, 120])
        #expect((row / column).scalars[4...7] == [5, 10, 15, 20])
        let scalar = Tensor(scalar: 2)
        #expect((row * scalar).scalars == [20, 40, 60, 80])
        #expect((scalar - row).scalars == [-8, -18, -28, -38])
        #expect(row.pow(scalar).scalars == [100, 400, 900, 1600])
    }

    @Test func middleAxisAndRankGapBroadcast() {
        let a = Tensor(Array(0..<8).map(Double.init), shape: [2, 1, 4])
        let b = Tensor([100, 200, 300] as [Double], shape: [3, 1])
        let c = a + b
        #expect(c.shape == [2, 3, 4])
        let v = c.scalars(as: Double.self)
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 {
            #expect(v[i * 12 + j * 4 + k] == Double(i * 4 + k) + Double(100 * (j + 1)))
        } } }
    }

    @Test func comparisonAndExtremumOps() {
        let a = Tensor([1, 5, 3, -2] as [Float]), b = Tensor([2] as [Float])
        #expect(a.maximum(b).scalars == [2, 5, 3, 2])
        #expect(a.minimum(b).scalars == [1, 2, 2, -2])
        #expect(a.greater(b).scalars == [0, 1, 1, 0])
        #expect(a.equal(Tensor([1, 0, 3, 0] as [Float])).scalars == [1, 0, 1, 0])
    }

    @Test func sumToShapeReducesBroadcastAxes() {
        let g = Tensor(Array(1...24).map(Double.init), shape: [2, 3, 4])
        #expect(g.sumToShape([2, 3, 4]) === g)
        #expect(g.sumToShape([4]).scalars(as: Double.self) == [66, 72, 78, 84])
        #expect(g.sumToShape([3, 1]).scalars(as: Double.self) == [68, 100, 132])
        #expect(g.sumToShape([2, 1, 1]).scalars(as: Double.self) == [78, 222])
        #expect(g.sumToShape([]).item() == 300)
        #expect(g.sumToShape([1, 3, 4]).shape == [1, 3, 4])
    }

    @Test func broadcastGradientsAreSummedBack() {
        let a = Tensor([[1, 2, 3], [4, 5, 6]] as [[Double]], requiresGrad: true)
        let b = Tensor([10, 20, 30] as [Double], requiresGrad: true)
        let s = Tensor(scalar: 2, dtype: .float64)
        s.requiresGrad = true
        (a * b * s).sum().backward()
        #expect(a.grad!.scalars(as: Double.self) == [20, 40, 60, 20, 40, 60])
        #expect(b.grad!.shape == [3])
        #expect(b.grad!.scalars(as: Double.self) == [10, 14, 18])
        #expect(s.grad!.shape == [])
        #expect(s.grad!.item() == 10 + 40 + 90 + 40 + 100 + 180)
    }
}
