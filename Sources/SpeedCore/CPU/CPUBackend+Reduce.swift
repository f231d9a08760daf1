// CPU reductions over [outer, count, inner] and GEMM through OpenBLAS.
// Invariant: partial sums are combined in a fixed order, so results do not depend on thread timing.

import CSpeedShims

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
                    ys.value[o] = op == .sum ? parts.reduce(0, +) : parts.reduce(-T.infinity) { Swift.max($0, $1) }
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
                dst.update(from: src, count: n)
                for c in 1..<Swift.max(count, 1) {
                    let row = src + c * inner
                    if op == .sum { for j in 0..<n { dst[j] += row[j] } }
                    else { for j in 0..<n where row[j] > dst[j] || row[j].isNaN { dst[j] = row[j] } }
                }
                if count == 0 { dst.update(repeating: op == .sum ? 0 : -T.infinity, count: n) }
            }
        }
    }

    /// Sum (in Double for accuracy) or max of `n` contiguous values.
    @inline(__always)
    static func reduceRun<T: CPUFloat>(_ op: ReduceOp, _ p: UnsafeMutablePointer<T>, _ n: Int) -> T {
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

    public func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, _ s: GemmShape) {
        if let (i, o) = promoted([a, b], [c]) { gemm(i[0]!, i[1]!, into: o[0]!, s); return finish(o, [c]) }
        useBLASThreads(threads)
        let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
        let ta = Int32(s.transA ? SSCblasTrans.rawValue : SSCblasNoTrans.rawValue)
        let tb = Int32(s.transB ? SSCblasTrans.rawValue : SSCblasNoTrans.rawValue)
        let order = Int32(SSCblasRowMajor.rawValue)
        for i in 0..<s.batch {
            switch c.dtype {
            case .float32:
                cblas_sgemm(order, ta, tb, Int32(s.m), Int32(s.n), Int32(s.k), Float(s.alpha),
                            a.pointer(as: Float.self) + i * s.strideA, Int32(lda),
                            b.pointer(as: Float.self) + i * s.strideB, Int32(ldb), Float(s.beta),
                            c.pointer(as: Float.self) + i * s.strideC, Int32(s.n))
            case .float64:
                cblas_dgemm(order, ta, tb, Int32(s.m), Int32(s.n), Int32(s.k), s.alpha,
                            a.pointer(as: Double.self) + i * s.strideA, Int32(lda),
                            b.pointer(as: Double.self) + i * s.strideB, Int32(ldb), s.beta,
                            c.pointer(as: Double.self) + i * s.strideC, Int32(s.n))
            default: preconditionFailure("gemm: unsupported dtype \(c.dtype)")
            }
        }
    }

    /// OpenBLAS's thread count is process-wide; set it to what this call needs.
    func useBLASThreads(_ n: Int) {
        if openblas_get_num_threads() != Int32(n) { openblas_set_num_threads(Int32(n)) }
    }
}
