// Tensor basics: creation, views that share storage, reading values, printing, and seeded random draws.
import Testing
import SpeedCore

@Suite struct TensorTests {
    @Test func constantsAndRanges() {
        let z = Tensor.zeros([2, 3])
        #expect(z.shape == [2, 3] && z.dtype == .float32 && z.count == 6 && z.rank == 2)
        #expect(z.scalars == [Float](repeating: 0, count: 6))
        #expect(Tensor.ones([4], dtype: .float64).scalars(as: Double.self) == [1, 1, 1, 1])
        #expect(Tensor.full([2, 2], -1.5, dtype: .float64).scalars(as: Double.self) == [-1.5, -1.5, -1.5, -1.5])
        #expect(Tensor.full([3], 7, dtype: .int32).scalars(as: Int32.self) == [7, 7, 7])
        #expect(Tensor.full([2], 1e10, dtype: .int64).scalars(as: Int.self) == [10_000_000_000, 10_000_000_000])
        #expect(Tensor.zeros([3], requiresGrad: true).requiresGrad)
        #expect(Tensor.arange(0, 5).scalars == [0, 1, 2, 3, 4])
        #expect(Tensor.arange(1, 2, step: 0.25).scalars == [1, 1.25, 1.5, 1.75])
        #expect(Tensor.arange(5, 0, step: -2, dtype: .int64).scalars(as: Int.self) == [5, 3, 1])
        #expect(Tensor.arange(0, 1, step: 0.3).count == 4)
        #expect(Tensor.zeros([]).count == 1 && Tensor.zeros([]).rank == 0)
    }

    @Test func fromArraysAndScalars() {
        let f = Tensor([1, 2, 3] as [Float])
        #expect(f.dtype == .float32 && f.shape == [3] && f.scalars == [1, 2, 3])
        let d = Tensor([1.5, 2.5] as [Double])
        #expect(d.dtype == .float64 && d.scalars(as: Double.self) == [1.5, 2.5])
        #expect(Tensor([1, -2] as [Int32]).dtype == .int32)
        let i = Tensor([4, 5, 6, 7] as [Int], shape: [2, 2])
        #expect(i.dtype == .int64 && i.shape == [2, 2] && i.scalars(as: Int.self) == [4, 5, 6, 7])
        // Converting on the way in.
        let converted = Tensor([1, 2] as [Int], dtype: .float32)
        #expect(converted.dtype == .float32 && converted.scalars == [1, 2])
        let m = Tensor([[1, 2, 3], [4, 5, 6]] as [[Float]])
        #expect(m.shape == [2, 3] && m.scalars == [1, 2, 3, 4, 5, 6])
        #expect(m.size(0) == 2 && m.size(-1) == 3)
        let s = Tensor(scalar: 3.5)
        #expect(s.shape == [] && s.rank == 0 && s.item() == 3.5)
        #expect(Tensor(scalar: 2, dtype: .float64).dtype == .float64)
        #expect(Tensor([[7]] as [[Double]]).item() == 7)
        #expect(Tensor([42] as [Int32]).item() == 42)
        #expect(m.scalars(as: Int.self) == [1, 2, 3, 4, 5, 6])
    }

    @Test func reshapeSharesStorage() {
        let x = Tensor(Array(0..<12).map(Float.init), shape: [3, 4])
        let y = x.reshape([-1, 6])
        #expect(y.shape == [2, 6])
        #expect(y.storage === x.storage)
        y.pointer(as: Float.self)[7] = 100
        #expect(x.scalars[7] == 100, "a write through the reshaped view is visible in the original")
        #expect(x.reshape([2, -1, 3]).shape == [2, 2, 3])
        #expect(x.reshape([3, 4]) === x, "reshape to the same shape is the identity")
        #expect(x.flatten().storage === x.storage)
    }

    @Test func outerSliceIsAViewInnerSliceIsACopy() {
        let x = Tensor(Array(0..<12).map(Float.init), shape: [4, 3])
        let rows = x.slice(axis: 0, 1..<3)
        #expect(rows.storage === x.storage && rows.offset == 3)
        #expect(rows.scalars == [3, 4, 5, 6, 7, 8])
        rows.fill(-1)
        #expect(x.scalars == [0, 1, 2, -1, -1, -1, -1, -1, -1, 9, 10, 11], "outer-axis slices write through")
        let row = x[3]
        row.pointer(as: Float.self)[0] = 42
        #expect(x.scalars[9] == 42, "subscript is a view")
        let cols = x.slice(axis: 1, 0..<1)
        #expect(cols.storage !== x.storage)
        cols.fill(7)
        #expect(x.scalars[0] == 0, "inner-axis slices are copies")
        // After unit leading axes, an inner slice is a view too.
        let y = Tensor(Array(0..<6).map(Float.init), shape: [1, 6])
        #expect(y.slice(axis: 1, 2..<4).storage === y.storage)
    }

    @Test func copyDataAndFillInPlace() {
        let x = Tensor.zeros([2, 2])
        x.copyData(from: Tensor([1, 2, 3, 4] as [Double]))
        #expect(x.dtype == .float32 && x.scalars == [1, 2, 3, 4])
        x.addInPlace(Tensor([1, 1, 1, 1] as [Float], shape: [2, 2]), scale: 0.5)
        #expect(x.scalars == [1.5, 2.5, 3.5, 4.5])
        x.scale(by: -2)
        #expect(x.scalars == [-3, -5, -7, -9])
        x.fill(9)
        #expect(x.scalars == [9, 9, 9, 9])
    }

    @Test func printingASmallTensor() {
        let m = Tensor([[1, -2.5], [0.125, 1000]] as [[Float]])
        #expect(m.description == """
            tensor([[1.0000, -2.5000],
                    [0.1250, 1000.0000]], shape=[2, 2], dtype=float32)
            """)
        #expect(Tensor(scalar: 3).description == "tensor(3.0000, shape=[], dtype=float32)")
        #expect(Tensor([1, -2] as [Int]).description == "tensor([1, -2], shape=[2], dtype=int64)")
        // Magnitudes below 1e-4 or from 1e6 up print in exponent form; the rest with four decimals.
        #expect(Tensor([0.00001, 1234567, -0.000025, -0.00025] as [Double]).description
                == "tensor([1.0000e-05, 1.2346e+06, -2.5000e-05, -0.0003], shape=[4], dtype=float64)")
        #expect(Tensor([.nan, .infinity, -.infinity, 0] as [Float]).description
                == "tensor([nan, inf, -inf, 0.0000], shape=[4], dtype=float32)")
        let leaf = Tensor([1] as [Float], requiresGrad: true)
        #expect(leaf.description == "tensor([1.0000], shape=[1], dtype=float32, requires_grad=true)")
        #expect((leaf * 2).description == "tensor([2.0000], shape=[1], dtype=float32, grad_fn=affine)")
    }

    @Test func printingRoundsMantissaCarries() {
        // 9999999 is 9.9999990e+06: the mantissa rounds to 10, which must carry into the exponent.
        #expect(Tensor([9_999_999, 0.000099999999] as [Double]).description
                == "tensor([1.0000e+07, 1.0000e-04], shape=[2], dtype=float64)")
    }

    @Test func printingALargeTensorElides() {
        let big = Tensor.arange(0, 100).reshape([10, 10])
        let text = big.description
        #expect(text.contains("..."))
        #expect(text.hasPrefix("tensor([[0.0000, 1.0000, 2.0000, ..., 7.0000, 8.0000, 9.0000],"))
        #expect(text.contains("[90.0000, 91.0000, 92.0000, ..., 97.0000, 98.0000, 99.0000]]"))
        #expect(!text.contains("45.0000"))
        #expect(text.hasSuffix("shape=[10, 10], dtype=float32)"))
        #expect(text.split(separator: "\n").count == 7, "3 rows, an ellipsis row, 3 rows")
    }

    @Test func randnIsDeterministicPerSeed() {
        var a = RandomStream(seed: 7), b = RandomStream(seed: 7), c = RandomStream(seed: 8)
        let x = Tensor.randn([1000], rng: &a), y = Tensor.randn([1000], rng: &b), z = Tensor.randn([1000], rng: &c)
        #expect(x.scalars == y.scalars)
        #expect(x.scalars != z.scalars)
        #expect(a.offset == 1000)
        // The next draw continues the stream: different values, and drawing in two parts equals one draw.
        let next = Tensor.randn([1000], rng: &a)
        #expect(next.scalars != x.scalars)
        var whole = RandomStream(seed: 9), parts = RandomStream(seed: 9)
        let one = Tensor.randn([100], dtype: .float64, rng: &whole)
        let two = Tensor.concat([Tensor.randn([40], dtype: .float64, rng: &parts),
                                 Tensor.randn([60], dtype: .float64, rng: &parts)], axis: 0)
        #expect(one.scalars(as: Double.self) == two.scalars(as: Double.self))
        // dtype only changes the rounding: the fp32 draw is the fp64 draw rounded.
        var r32 = RandomStream(seed: 9)
        #expect(Tensor.randn([100], rng: &r32).scalars == one.scalars(as: Double.self).map { Float($0) })
    }

    @Test func randomValuesDoNotDependOnThreadCount() {
        let n = 100_003  // several parallel chunks with a ragged end
        var r1 = RandomStream(seed: 11), r2 = RandomStream(seed: 11), r3 = RandomStream(seed: 11)
        let one = Tensor.randn([n], device: .cpu(threads: 1), rng: &r1)
        let two = Tensor.randn([n], device: .cpu(threads: 2), rng: &r2)
        let four = Tensor.randn([n], device: .cpu(threads: 4), rng: &r3)
        let bits = { (t: Tensor) in t.scalars.map(\.bitPattern) }
        #expect(bits(one) == bits(two))
        #expect(bits(one) == bits(four))
        var u1 = RandomStream(seed: 12), u2 = RandomStream(seed: 12)
        #expect(bits(Tensor.uniform([n], device: .cpu(threads: 1), rng: &u1))
                == bits(Tensor.uniform([n], device: .cpu(threads: 2), rng: &u2)))
        // Dropout masks too.
        let x = Tensor.ones([n], device: .cpu(threads: 1)), x2 = Tensor.ones([n], device: .cpu(threads: 2))
        var d1 = RandomStream(seed: 13), d2 = RandomStream(seed: 13)
        #expect(bits(x.dropout(0.3, rng: &d1)) == bits(x2.dropout(0.3, rng: &d2)))
    }

    @Test func randnAndUniformStatistics() {
        var rng = RandomStream(seed: 21)
        let x = Tensor.randn([100_000], mean: 2, std: 3, dtype: .float64, rng: &rng).scalars(as: Double.self)
        let mean = x.reduce(0, +) / Double(x.count)
        let std = (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count - 1)).squareRoot()
        // Standard errors: 3/sqrt(1e5) ≈ 0.0095 for the mean, ≈ 0.0067 for the std; allow ~4 of each.
        #expect(Swift.abs(mean - 2) < 0.04, "mean \(mean)")
        #expect(Swift.abs(std - 3) < 0.03, "std \(std)")
        let within1 = Double(x.filter { Swift.abs($0 - 2) < 3 }.count) / Double(x.count)
        #expect(Swift.abs(within1 - 0.6827) < 0.01, "fraction within one std \(within1)")
        let u = Tensor.uniform([100_000], low: -1, high: 3, dtype: .float64, rng: &rng).scalars(as: Double.self)
        #expect(u.allSatisfy { $0 >= -1 && $0 < 3 })
        #expect(Swift.abs(u.reduce(0, +) / Double(u.count) - 1) < 0.02)
    }

    @Test func drawsFromOneStreamAreIndependent() {
        // A normal draw followed by a uniform draw on the same stream must not reuse its random bits:
        // the squared normal is -2·log(u1)·cos²(2πu2), so a reused u1 shows up as a strong correlation.
        var rng = RandomStream(seed: 31)
        let n = 20_000
        let z = Tensor.randn([n], dtype: .float64, rng: &rng).scalars(as: Double.self)
        let u = Tensor.uniform([n], dtype: .float64, rng: &rng).scalars(as: Double.self)
        // Had normal i used counters 2i and 2i + 1 (outside its reservation), uniform j (counter n + j) would
        // share u1 with normal (n + j) / 2 for even j: pair exactly those.
        let a = (0..<n / 2).map { z[n / 2 + $0] * z[n / 2 + $0] }, b = (0..<n / 2).map { Double.log(u[2 * $0]) }
        #expect(Swift.abs(correlation(a, b)) < 0.05, "correlation \(correlation(a, b))")
    }

    @Test func splitStreamsDiffer() {
        var parent = RandomStream(seed: 5)
        var child = parent.split()
        #expect(parent.offset == 1)
        #expect(child.seed != parent.seed)
        var same = RandomStream(seed: 5)
        #expect(same.split() == child)
        #expect(Tensor.randn([8], rng: &child).scalars != Tensor.randn([8], rng: &parent).scalars)
    }

    @Test func deviceBasics() {
        #expect(Device.cpu.isCPU && Device.cpu.description == "cpu")
        #expect(Device.cpu(threads: 3) == Device.cpu)
        #expect(Device.cpu(threads: 1).backend.name == "cpu (1 thread, OpenBLAS)")
        #expect(Device.cpu(threads: 2).backend.name == "cpu (2 threads, OpenBLAS)")
        #expect(Tensor.zeros([2]).device == .cpu)
    }
}

/// Pearson correlation of two equal-length samples.
private func correlation(_ a: [Double], _ b: [Double]) -> Double {
    let n = Double(a.count)
    let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
    return sab / (saa * sbb).squareRoot()
}
