// Matrix products: known values and finite-difference gradients for every rank pattern and transpose flag.
import Testing
import SpeedCore

/// Stored shape of an operand whose logical last two axes are `rows x cols`, transposed when `t`.
private func stored(_ batch: [Int], _ rows: Int, _ cols: Int, _ t: Bool) -> [Int] {
    batch + (t ? [cols, rows] : [rows, cols])
}

private let flagPairs: [(Bool, Bool)] = [(false, false), (true, false), (false, true), (true, true)]

@Suite struct MatmulGradientTests {
    @Test func knownValues() {
        let a = Tensor([[1, 2, 3], [4, 5, 6]] as [[Double]])
        let b = Tensor([[1, 0], [0, 1], [1, 1]] as [[Double]])
        #expect(Tensor.matmul(a, b).scalars(as: Double.self) == [4, 5, 10, 11])
        #expect(a.matmul(b).shape == [2, 2])
        // aᵀ·a is [3, 3]; a·aᵀ is [2, 2].
        #expect(Tensor.matmul(a, a, transposeA: true).scalars(as: Double.self) == [17, 22, 27, 22, 29, 36, 27, 36, 45])
        #expect(Tensor.matmul(a, a, transposeB: true).scalars(as: Double.self) == [14, 32, 32, 77])
        // bᵀ·aᵀ = (a·b)ᵀ.
        #expect(Tensor.matmul(b, a, transposeA: true, transposeB: true).scalars(as: Double.self) == [4, 10, 5, 11])
    }

    @Test func batchedKnownValuesMatchPerBatchProducts() {
        let a = randn64([3, 2, 4], seed: 200), b = randn64([3, 4, 5], seed: 201)
        let batched = Tensor.matmul(a, b)
        #expect(batched.shape == [3, 2, 5])
        for i in 0..<3 {
            expectClose(batched[i], Tensor.matmul(a[i], b[i]), rtol: 1e-14, atol: 1e-14, "batch \(i)")
        }
        // A rank-2 right operand broadcasts over the batch.
        let w = randn64([4, 5], seed: 202)
        let folded = Tensor.matmul(a, w)
        for i in 0..<3 { expectClose(folded[i], Tensor.matmul(a[i], w), rtol: 1e-14, atol: 1e-14, "folded \(i)") }
        // A rank-2 left operand broadcasts too.
        let m = randn64([2, 4], seed: 203)
        let left = Tensor.matmul(m, b)
        #expect(left.shape == [3, 2, 5])
        for i in 0..<3 { expectClose(left[i], Tensor.matmul(m, b[i]), rtol: 1e-14, atol: 1e-14, "left \(i)") }
    }

    @Test(arguments: flagPairs)
    func matrixTimesMatrix(_ flags: (Bool, Bool)) {
        let (ta, tb) = flags
        let a = randn64(stored([], 3, 4, ta), seed: 210), b = randn64(stored([], 4, 5, tb), seed: 211)
        let y = Tensor.matmul(a, b, transposeA: ta, transposeB: tb)
        #expect(y.shape == [3, 5])
        expectGradientsMatch("2-D tA=\(ta) tB=\(tb)", [a, b]) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
    }

    @Test(arguments: flagPairs)
    func batchedTimesBatched(_ flags: (Bool, Bool)) {
        let (ta, tb) = flags
        let a = randn64(stored([2], 3, 4, ta), seed: 220), b = randn64(stored([2], 4, 2, tb), seed: 221)
        expectGradientsMatch("batched tA=\(ta) tB=\(tb)", [a, b]) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
        let a4 = randn64(stored([2, 2], 2, 3, ta), seed: 222), b4 = randn64(stored([2, 2], 3, 2, tb), seed: 223)
        expectGradientsMatch("rank-4 tA=\(ta) tB=\(tb)", [a4, b4]) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
    }

    @Test(arguments: flagPairs)
    func rank3TimesRank2(_ flags: (Bool, Bool)) {
        let (ta, tb) = flags
        let a = randn64(stored([2], 3, 4, ta), seed: 230), b = randn64(stored([], 4, 5, tb), seed: 231)
        let y = Tensor.matmul(a, b, transposeA: ta, transposeB: tb)
        #expect(y.shape == [2, 3, 5])
        // Each batch equals the plain 2-D product.
        for i in 0..<2 {
            expectClose(y[i], Tensor.matmul(a[i], b, transposeA: ta, transposeB: tb), rtol: 1e-14, atol: 1e-14)
        }
        expectGradientsMatch("rank3 x rank2 tA=\(ta) tB=\(tb)", [a, b]) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
    }

    @Test(arguments: flagPairs)
    func rank2TimesRank3(_ flags: (Bool, Bool)) {
        let (ta, tb) = flags
        let a = randn64(stored([], 3, 4, ta), seed: 240), b = randn64(stored([2], 4, 2, tb), seed: 241)
        expectGradientsMatch("rank2 x rank3 tA=\(ta) tB=\(tb)", [a, b]) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
    }

    /// Products big enough that the backend splits one GEMM across threads (by rows when m >= n, else by
    /// columns), for every transpose pair, against a plain triple loop; bias accumulation (beta = 1) too.
    @Test(arguments: [(96, 64, 48), (40, 120, 64)], [1, 2, 3])
    func splitGemmMatchesTripleLoop(_ mnk: (Int, Int, Int), _ threads: Int) {
        let (m, n, k) = mnk
        let device = Device.cpu(threads: threads)
        let onDevice = { (t: Tensor) -> Tensor in let c = Tensor.zeros(t.shape, dtype: t.dtype, device: device); c.copyData(from: t); return c }
        for (ta, tb) in flagPairs {
            let a = onDevice(randn64(stored([], m, k, ta), seed: 260)), b = onDevice(randn64(stored([], k, n, tb), seed: 261))
            let (av, bv) = (a.scalars(as: Double.self), b.scalars(as: Double.self))
            var expected = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { for p in 0..<k {
                expected[i * n + j] += av[ta ? p * m + i : i * k + p] * bv[tb ? j * k + p : p * n + j]
            } } }
            expectClose(Tensor.matmul(a, b, transposeA: ta, transposeB: tb).scalars(as: Double.self), expected,
                        rtol: 1e-12, atol: 1e-12, "\(m)x\(n)x\(k) tA=\(ta) tB=\(tb) threads=\(threads)")
        }
        let x = onDevice(randn64([m, k], seed: 262)), w = onDevice(randn64([n, k], seed: 263)), bias = onDevice(randn64([n], seed: 264))
        expectClose(Tensor.linear(x, weight: w, bias: bias), Tensor.matmul(x, w, transposeB: true) + bias,
                    rtol: 1e-12, atol: 1e-12, "linear \(m)x\(n)x\(k) threads=\(threads)")
    }

    @Test func linearMatchesMatmulPlusBias() {
        let x = randn64([2, 3, 4], seed: 250), w = randn64([5, 4], seed: 251), b = randn64([5], seed: 252)
        let fused = Tensor.linear(x, weight: w, bias: b)
        #expect(fused.shape == [2, 3, 5])
        expectClose(fused, Tensor.matmul(x, w, transposeB: true) + b, rtol: 1e-13, atol: 1e-13, "linear")
        expectGradientsMatch("linear with bias", [x, w, b]) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }
        expectGradientsMatch("linear without bias", [x, w]) { Tensor.linear($0[0], weight: $0[1], bias: nil) }
        let x1 = randn64([4], seed: 254)
        expectGradientsMatch("linear rank-1 input", [x1, w, b]) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }
        let x2 = randn64([3, 4], seed: 253)
        expectGradientsMatch("linear rank-2 input", [x2, w, b]) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }
    }
}
