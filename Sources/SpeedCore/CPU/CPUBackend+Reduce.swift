// CPU reductions over [outer, count, inner] and GEMM through OpenBLAS.
// Invariant: partial sums are combined in a fixed order, so results do not depend on thread timing.


extension CPUBackend {
    public func reduce(_ op: ReduceOp, _ x: Tensor, outer: Int, count: Int, inner: Int, into out: Tensor) {
        precondition(outer * count * inner == x.count && outer * inner == out.count,
                     "reduce: [\(outer), \(count), \(inner)] does not match \(x.shape) -> \(out.shape)")
        if let (i, o) = promoted([x], [out]) {
            reduce(op, i[0]!, outer: outer, count: count, inner: inner, into: o[0]!); return finish(o, [out])
        }
        switch x.dtype {
        case .float32: reduceKernel(Float.self, op, x, outer, count, inner, out)
        case .float64: reduceKernel(Double.self, op, x, outer, count, inner, out)
        default: preconditionFailure("reduce: integer tensors are not supported (dtype \(x.dtype))")
        }
    }

    private func reduceKernel<T: CPUFloat>(_: T.Type, _ op: ReduceOp, _ x: Tensor, _ outer: Int, _ count: Int,
                                           _ inner: Int, _ out: Tensor) {
        let xs = Unchecked(x.pointer(as: T.self)), ys = Unchecked(out.pointer(as: T.self))
        if inner == 1 {
            if outer >= parallel.threads || count < 1 << 15 {
                parallel.forEach(outer, grain: Swift.max(1, 8192 / Swift.max(count, 1))) { r in
                    for o in r { ys.value[o] = Self.reduceRun(op, xs.value + o * count, count) }
                }
            } else {
                // Few long rows: split each row, combine partials in order.
                for o in 0..<outer {
                    let row = xs.value + o * count
                    let parts = parallel.map(count, grain: 1 << 14) { r in Self.reduceRun(op, row + r.lowerBound, r.count) }
                    ys.value[o] = op == .max ? parts.reduce(-T.infinity) { Swift.max($0, $1) } : parts.reduce(0, +)
                }
            }
            return
        }
        // Strided: accumulate whole rows of `inner` (vectorises), splitting over outer and inner.
        let columnsPerTask = Swift.max(256, inner / Swift.max(1, parallel.threads))
        let tasksPerOuter = (inner + columnsPerTask - 1) / columnsPerTask
        parallel.forEach(outer * tasksPerOuter) { r in
            for task in r {
                let o = task / tasksPerOuter, lo = (task % tasksPerOuter) * columnsPerTask
                let n = Swift.min(columnsPerTask, inner - lo)
                let dst = ys.value + o * inner + lo
                let src = xs.value + o * count * inner + lo
                if op == .sumOfSquares { for j in 0..<n { dst[j] = src[j] * src[j] } } else { dst.update(from: src, count: n) }
                for c in 1..<Swift.max(count, 1) {
                    let row = src + c * inner
                    switch op {
                    case .sum: for j in 0..<n { dst[j] += row[j] }
                    case .sumOfSquares: for j in 0..<n { dst[j] += row[j] * row[j] }
                    case .max: for j in 0..<n where row[j] > dst[j] || row[j].isNaN { dst[j] = row[j] }
                    }
                }
                if count == 0 { dst.update(repeating: op == .max ? -T.infinity : 0, count: n) }
            }
        }
    }

    /// Sum or sum of squares (in Double for accuracy), or max, of `n` contiguous values.
    @inline(__always)
    static func reduceRun<T: CPUFloat>(_ op: ReduceOp, _ p: UnsafeMutablePointer<T>, _ n: Int) -> T {
        if op == .sumOfSquares {
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            var i = 0
            while i + 4 <= n {
                let a = Double(p[i]), b = Double(p[i + 1]), c = Double(p[i + 2]), d = Double(p[i + 3])
                s0 += a * a; s1 += b * b; s2 += c * c; s3 += d * d
                i += 4
            }
            while i < n { let a = Double(p[i]); s0 += a * a; i += 1 }
            return T((s0 + s1) + (s2 + s3))
        }
        if op == .sum {
            // Four Double accumulators: accurate and still pipelined.
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            var i = 0
            while i + 4 <= n {
                s0 += Double(p[i]); s1 += Double(p[i + 1]); s2 += Double(p[i + 2]); s3 += Double(p[i + 3])
                i += 4
            }
            while i < n { s0 += Double(p[i]); i += 1 }
            return T((s0 + s1) + (s2 + s3))
        }
        var m = -T.infinity
        for i in 0..<n { let v = p[i]; if v > m || v.isNaN { m = v } }
        return m
    }

    /// GEMM with OpenBLAS pinned to one thread per call: this backend splits the work itself
    /// (batches, else rows of C, else columns), so BLAS never spins idle threads that would steal
    /// the cores from the elementwise kernels that follow.
    public func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, _ s: GemmShape, bias: Tensor?) {
        if let bias { return gemmBroadcastingBias(a, b, into: c, s, bias: bias) }
        if let (i, o) = promoted([a, b], [c]) { gemm(i[0]!, i[1]!, into: o[0]!, s); return finish(o, [c]) }
        switch c.dtype {
        case .float32: gemmKernel(Float.self, a, b, c, s)
        case .float64: gemmKernel(Double.self, a, b, c, s)
        default: preconditionFailure("gemm: unsupported dtype \(c.dtype)")
        }
    }

    private func gemmKernel<T: CPUFloat>(_: T.Type, _ a: Tensor, _ b: Tensor, _ c: Tensor, _ s: GemmShape) {
        let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
        let pa = Unchecked(a.pointer(as: T.self)), pb = Unchecked(b.pointer(as: T.self))
        let pc = Unchecked(c.pointer(as: T.self))
        let flops = 2 * s.m * s.n * s.k
        if s.batch >= parallel.threads || flops < 1 << 18 {
            parallel.forEach(s.batch) { r in
                for i in r {
                    Self.gemm(T.self, transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: s.alpha,
                              pa.value + i * s.strideA, lda, pb.value + i * s.strideB, ldb, beta: s.beta,
                              pc.value + i * s.strideC, s.n)
                }
            }
            return
        }
        let splitRows = s.m >= s.n
        for i in 0..<s.batch {
            let a0 = pa.value + i * s.strideA, b0 = pb.value + i * s.strideB, c0 = pc.value + i * s.strideC
            parallel.forEach(splitRows ? s.m : s.n, grain: 16) { r in
                if splitRows {
                    let ap = s.transA ? a0 + r.lowerBound : a0 + r.lowerBound * s.k
                    Self.gemm(T.self, transA: s.transA, transB: s.transB, m: r.count, n: s.n, k: s.k, alpha: s.alpha,
                              ap, lda, b0, ldb, beta: s.beta, c0 + r.lowerBound * s.n, s.n)
                } else {
                    let bp = s.transB ? b0 + r.lowerBound * s.k : b0 + r.lowerBound
                    Self.gemm(T.self, transA: s.transA, transB: s.transB, m: s.m, n: r.count, k: s.k, alpha: s.alpha,
                              a0, lda, bp, ldb, beta: s.beta, c0 + r.lowerBound, s.n)
                }
            }
        }
    }
}
