// Forward values of the CPU kernels against hand-computed numbers (reductions, NN ops, shape ops, unary maps).
import Testing
import SpeedCore

@Suite struct KernelTests {
    @Test func reductionsOverEachAxis() {
        let x = Tensor(Array(1...24).map(Double.init), shape: [2, 3, 4])
        #expect(x.sum().item() == 300)
        #expect(x.sum(axis: 0).scalars(as: Double.self) == (1...12).map { (i: Int) -> Double in Double(2 * i + 12) })
        #expect(x.sum(axis: 1).scalars(as: Double.self) == [15, 18, 21, 24, 51, 54, 57, 60])
        #expect(x.sum(axis: 2).scalars(as: Double.self) == [10, 26, 42, 58, 74, 90])
        #expect(x.sum(axes: [0, 2]).scalars(as: Double.self) == [68, 100, 132])
        #expect(x.mean(axes: [0, 1]).scalars(as: Double.self) == [11, 12, 13, 14])
        #expect(x.max(axis: 1).scalars(as: Double.self) == [9, 10, 11, 12, 21, 22, 23, 24])
        #expect(x.max(axes: [0, 2]).scalars(as: Double.self) == [16, 20, 24])
        #expect(x.max().item() == 24)
        // Unbiased and population variance of 1...4 are 5/3 and 5/4.
        let v = Tensor([1, 2, 3, 4] as [Double])
        #expect(Swift.abs(v.variance().item() - 5.0 / 3) < 1e-15)
        #expect(v.variance(correction: 0).item() == 1.25)
        // Max with negatives only, and over a long row split across threads.
        #expect(Tensor([-3, -1, -2] as [Float]).max().item() == -1)
        var big = [Float](repeating: -5, count: 100_000)
        big[77_777] = 3
        #expect(Tensor(big).max().item() == 3)
        #expect(Tensor(big, shape: [2, 50_000]).max(axis: 0).max().item() == 3)
    }

    @Test func softmaxKnownValues() {
        let x = Tensor([[0, Double.log(2), Double.log(5)], [1000, 1000, 1000]] as [[Double]])
        expectClose(x.softmax().scalars(as: Double.self), [0.125, 0.25, 0.625, 1.0 / 3, 1.0 / 3, 1.0 / 3],
                    rtol: 1e-15, atol: 1e-15, "softmax")
        expectClose(x.logSoftmax().scalars(as: Double.self)[0...2].map { $0 },
                    [Double.log(0.125), Double.log(0.25), Double.log(0.625)], rtol: 1e-14, atol: 1e-15, "logSoftmax")
        // Large logits are stable in fp32 too.
        let f = Tensor([[100, 100], [-100, -100]] as [[Float]]).softmax()
        #expect(f.scalars == [0.5, 0.5, 0.5, 0.5])
        // Masked (-inf) entries get exactly zero probability, in fp32 (SIMD exp) and fp64.
        for dtype in [DType.float32, .float64] {
            let masked = Tensor([[0, -.infinity, 0, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity]] as [[Double]],
                                dtype: dtype).softmax().scalars(as: Double.self)
            #expect(masked == [0.5, 0, 0.5, 0, 0, 0, 0, 0, 0], "\(dtype)")
        }
    }

    @Test func layerNormKnownValues() {
        // Row [1, 2, 3, 4]: mean 2.5, population variance 1.25.
        let x = Tensor([[1, 2, 3, 4]] as [[Double]])
        let w = Tensor([1, 2, 1, 0.5] as [Double]), b = Tensor([0, 1, 0, -1] as [Double])
        let rstd = 1 / (1.25 + 1e-5).squareRoot()
        let expected = [-1.5, -0.5, 0.5, 1.5].enumerated().map { i, d in d * rstd * [1, 2, 1, 0.5][i] + [0, 1, 0, -1][i] }
        expectClose(x.layerNorm(weight: w, bias: b).scalars(as: Double.self), expected, rtol: 1e-14, atol: 1e-14, "layerNorm")
        let plain = x.layerNorm(weight: nil, bias: nil, eps: 0)
        expectClose(plain.scalars(as: Double.self), [-1.5, -0.5, 0.5, 1.5].map { $0 / 1.25.squareRoot() },
                    rtol: 1e-14, atol: 1e-14, "layerNorm eps 0")
    }

    @Test func crossEntropyKnownValue() {
        // Uniform logits over 4 classes: loss = log 4 for every row.
        let logits = Tensor.zeros([3, 4], dtype: .float64)
        let loss = logits.crossEntropy(targets: Tensor([0, 3, 2] as [Int])).item()
        #expect(Swift.abs(loss - Double.log(4)) < 1e-15)
        // Every row ignored: the loss is 0, not NaN.
        let none = logits.crossEntropy(targets: Tensor([-100, -100, -100] as [Int])).item()
        #expect(none == 0)
        // The same in fp32 returns an fp32 scalar.
        let f = Tensor.zeros([2, 4]).crossEntropy(targets: Tensor([1, 1] as [Int32]))
        #expect(f.dtype == .float32 && f.shape == [])
        #expect(Swift.abs(f.item() - Double.log(4)) < 1e-6)
    }

    @Test func unaryKnownValues() {
        let x = Tensor([-2, -0.5, 0, 1, 3] as [Double])
        #expect((-x).scalars(as: Double.self) == [2, 0.5, 0, -1, -3])
        #expect(x.relu().scalars(as: Double.self) == [0, 0, 0, 1, 3])
        #expect(x.abs().scalars(as: Double.self) == [2, 0.5, 0, 1, 3])
        #expect(x.square().scalars(as: Double.self) == [4, 0.25, 0, 1, 9])
        #expect(x.sigmoid().scalars(as: Double.self)[2] == 0.5)
        expectClose(x.exp().scalars(as: Double.self), [-2, -0.5, 0, 1, 3].map { Double.exp($0) }, rtol: 1e-15, "exp")
        expectClose(x.tanh().scalars(as: Double.self), [-2, -0.5, 0, 1, 3].map { Double.tanh($0) }, rtol: 1e-15, "tanh")
        // GELU(1): exact 0.8413447460685429, tanh form 0.8411919906082768 (PyTorch values).
        #expect(Swift.abs(x.gelu(approximate: false).scalars(as: Double.self)[3] - 0.8413447460685429) < 1e-15)
        #expect(Swift.abs(x.gelu(approximate: true).scalars(as: Double.self)[3] - 0.8411919906082768) < 1e-15)
        let p = Tensor([4, 9, 0.25] as [Double])
        #expect(p.sqrt().scalars(as: Double.self) == [2, 3, 0.5])
        #expect(p.pow(0.5).scalars(as: Double.self) == [2, 3, 0.5])
        #expect(p.pow(-1).scalars(as: Double.self) == [0.25, 1.0 / 9, 4])
        #expect(p.log().scalars(as: Double.self)[0] == Double.log(4))
    }

    @Test func shapeOpValues() {
        let x = Tensor(Array(0..<6).map(Double.init), shape: [2, 3])
        #expect(x.transposed().scalars(as: Double.self) == [0, 3, 1, 4, 2, 5])
        #expect(x.transposed().shape == [3, 2])
        let y = Tensor(Array(0..<24).map(Double.init), shape: [2, 3, 4])
        let p = y.permute([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(p.scalars(as: Double.self)[0..<6].map { $0 } == [0, 4, 8, 12, 16, 20])
        #expect(x.slice(axis: 1, 1..<3).scalars(as: Double.self) == [1, 2, 4, 5])
        #expect(x.slice(axis: 0, 1..<2).scalars(as: Double.self) == [3, 4, 5])
        #expect(x[1].scalars(as: Double.self) == [3, 4, 5] && x[1].shape == [3])
        #expect(Tensor([1, 2] as [Double]).expand(to: [2, 2]).scalars(as: Double.self) == [1, 2, 1, 2])
        #expect(Tensor([[1], [2]] as [[Double]]).expand(to: [2, 3]).scalars(as: Double.self) == [1, 1, 1, 2, 2, 2])
        let c = Tensor.concat([x, Tensor([[9], [9]] as [[Double]])], axis: 1)
        #expect(c.shape == [2, 4] && c.scalars(as: Double.self) == [0, 1, 2, 9, 3, 4, 5, 9])
        let r = Tensor.concat([x, x], axis: 0)
        #expect(r.shape == [4, 3] && r.scalars(as: Double.self)[6...].map { $0 } == [0, 1, 2, 3, 4, 5])
        let parts = c.split([3, 1], axis: 1)
        #expect(parts[0].scalars(as: Double.self) == x.scalars(as: Double.self) && parts[1].scalars(as: Double.self) == [9, 9])
        let halves = y.chunk(2, axis: 2)
        #expect(halves.map(\.shape) == [[2, 3, 2], [2, 3, 2]])
        #expect(halves[1].scalars(as: Double.self)[0..<4].map { $0 } == [2, 3, 6, 7])
        #expect(y.flatten().shape == [24])
        let stacked = Tensor.stack([x, x * 2, x * 3])
        #expect(stacked.shape == [3, 2, 3])
        #expect(stacked[2].scalars(as: Double.self) == [0, 3, 6, 9, 12, 15])
    }

    @Test func whereSelectsWithBroadcastCondition() {
        let cond = Tensor([1, 0] as [Int32])  // integer condition, broadcast over rows
        let a = Tensor([[1, 2], [3, 4]] as [[Float]]), b = Tensor([[-1, -2], [-3, -4]] as [[Float]])
        #expect(Tensor.where(cond, a, b).scalars == [1, -2, 3, -4])
        #expect(a.maskedFill(Tensor([[0, 1], [1, 0]] as [[Float]]), 7).scalars == [1, 7, 7, 4])
    }

    @Test func emptyTensors() {
        let e = Tensor.zeros([2, 0])
        #expect(e.count == 0)
        #expect((e + e).shape == [2, 0])
        #expect((e * 2).exp().shape == [2, 0])
        #expect(e.sum(axis: 1).scalars == [0, 0])
        #expect(Tensor.arange(3, 3).shape == [0])
        #expect(Tensor([Float]()).count == 0)
    }
}
