// CPU fused causal attention: per (batch, head, block of query rows) S = QKᵀ·scale → masked softmax → PV, recomputed
// in backward; a causal block only meets the keys up to its last row.
// Invariant: only lse [B, H, T] survives the forward pass; P is rebuilt from it (flash-attention style),
// and heads run in parallel, each worker with its own scratch buffers.

import COpenBLAS

extension CPUBackend {
    public func attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, causal: Bool, scale: Double,
                          into out: Tensor, lse: Tensor) {
        if let (i, o) = promoted([q, k, v], [out]) {
            attention(q: i[0]!, k: i[1]!, v: i[2]!, layout: layout, causal: causal, scale: scale, into: o[0]!, lse: lse)
            return finish(o, [out])
        }
        switch q.dtype {
        case .float32: attentionForward(Float.self, q, k, v, layout, causal, scale, out, lse)
        default: attentionForward(Double.self, q, k, v, layout, causal, scale, out, lse)
        }
    }

    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, gradOut: Tensor,
                                  layout: AttentionLayout, causal: Bool, scale: Double,
                                  into gradQ: Tensor, gradK: Tensor, gradV: Tensor) {
        if q.dtype.isHalf {
            // fp32 gradients as contiguous [B, H, T, D] (they may share one storage, e.g. packed q/k/v, so they
            // cannot be promoted in place), then rounded and scattered into `layout.grad`.
            let (i, _) = promoted([q, k, v, out, gradOut], [])!
            let shape = [layout.batch, layout.heads, layout.tokens, layout.headDim]
            var wide = layout
            wide.grad = AttentionLayout.headMajor(batch: layout.batch, heads: layout.heads, tokens: layout.tokens,
                                                  headDim: layout.headDim).grad
            let g32 = (0..<3).map { _ in Tensor(empty: shape, dtype: .float32, device: q.device) }
            attentionBackward(q: i[0]!, k: i[1]!, v: i[2]!, out: i[3]!, lse: lse, gradOut: i[4]!, layout: wide,
                              causal: causal, scale: scale, into: g32[0], gradK: g32[1], gradV: g32[2])
            let g = layout.grad
            for (wideGrad, dst) in zip(g32, [gradQ, gradK, gradV]) {
                let narrow = Tensor(empty: shape, dtype: dst.dtype, device: dst.device)
                cast(wideGrad, into: narrow)
                copy(narrow, layout: .contiguous(shape), into: dst,
                     outLayout: Layout(shape: shape, strides: [g.batch, g.head, g.token, 1]), accumulate: false)
            }
            return
        }
        switch q.dtype {
        case .float32: attentionBackwardKernel(Float.self, q, k, v, out, lse, gradOut, layout, causal, scale, gradQ, gradK, gradV)
        default: attentionBackwardKernel(Double.self, q, k, v, out, lse, gradOut, layout, causal, scale, gradQ, gradK, gradV)
        }
    }

    /// Query rows per block: a causal block of rows [r0, r1) only meets keys [0, r1), so the masked upper triangle
    /// is (mostly) never computed.
    static let attentionBlock = 32

    /// Runs `body(head, scratch)` for every (batch, head) with `scratchCount` [T, T] scratch matrices per worker.
    private func forEachHead<T: CPUFloat>(_: T.Type, heads: Int, t: Int, scratchCount: Int,
                                          _ body: (Int, [UnsafeMutablePointer<T>]) -> Void) {
        parallel.forEach(heads) { range in
            let scratch = (0..<scratchCount).map { _ in UnsafeMutablePointer<T>.allocate(capacity: t * t) }
            defer { scratch.forEach { $0.deallocate() } }
            for h in range { body(h, scratch) }
        }
    }

    /// The query-row blocks of one head: (first row, rows, keys they see).
    private static func attentionBlocks(t: Int, causal: Bool) -> [(r0: Int, rows: Int, keys: Int)] {
        let bq = causal ? attentionBlock : t
        return stride(from: 0, to: t, by: bq).map { r0 in
            let rows = min(bq, t - r0)
            return (r0, rows, causal ? r0 + rows : t)
        }
    }

    private func attentionForward<T: CPUFloat>(_: T.Type, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ layout: AttentionLayout,
                                               _ causal: Bool, _ scale: Double, _ out: Tensor, _ lse: Tensor) {
        layout.checkOperands(inputs: [q, k, v], outputs: [out])
        let (h, t, d) = (layout.heads, layout.tokens, layout.headDim)
        let (si, so) = (layout.input, layout.output)
        let qs = Unchecked(q.pointer(as: T.self)), ks = Unchecked(k.pointer(as: T.self))
        let vs = Unchecked(v.pointer(as: T.self)), os = Unchecked(out.pointer(as: T.self))
        let ls = Unchecked(lse.pointer(as: T.self))
        let blocks = Self.attentionBlocks(t: t, causal: causal)
        forEachHead(T.self, heads: layout.batch * h, t: t, scratchCount: 1) { head, scratch in
            let (bi, hi) = head.quotientAndRemainder(dividingBy: h)
            let ib = bi * si.batch + hi * si.head, ob = bi * so.batch + hi * so.head, s = scratch[0]
            let (qh, kh, vh, oh) = (qs.value + ib, ks.value + ib, vs.value + ib, os.value + ob)
            for (r0, rows, keys) in blocks {
                // S = scale · Q[r0 ..< r0 + rows] K[0 ..< keys]ᵀ   [rows, keys]
                Self.gemm(T.self, transA: false, transB: true, m: rows, n: keys, k: d, alpha: scale,
                          qh + r0 * si.token, si.token, kh, si.token, beta: 0, s, keys)
                for i in 0..<rows {
                    let row = s + i * keys, n = causal ? r0 + i + 1 : t
                    let m = Self.reduceRun(.max, row, n)
                    let sum = Self.expShifted(row, row, n, shift: m)
                    ls.value[head * t + r0 + i] = m + T.log(sum)
                    let inv = 1 / sum
                    for j in 0..<n { row[j] *= inv }
                    for j in n..<keys { row[j] = 0 }
                }
                // O[r0 ..< r0 + rows] = P V[0 ..< keys]   [rows, D]
                Self.gemm(T.self, transA: false, transB: false, m: rows, n: d, k: keys, alpha: 1,
                          s, keys, vh, si.token, beta: 0, oh + r0 * so.token, so.token)
            }
        }
    }

    private func attentionBackwardKernel<T: CPUFloat>(_: T.Type, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ out: Tensor,
                                                      _ lse: Tensor, _ gradOut: Tensor, _ layout: AttentionLayout,
                                                      _ causal: Bool, _ scale: Double,
                                                      _ gq: Tensor, _ gk: Tensor, _ gv: Tensor) {
        layout.checkOperands(inputs: [q, k, v], outputs: [out, gradOut], grads: [gq, gk, gv])
        let (h, t, d) = (layout.heads, layout.tokens, layout.headDim)
        let (si, so, sg) = (layout.input, layout.output, layout.grad)
        let qs = Unchecked(q.pointer(as: T.self)), ks = Unchecked(k.pointer(as: T.self))
        let vs = Unchecked(v.pointer(as: T.self)), os = Unchecked(out.pointer(as: T.self))
        let ls = Unchecked(lse.pointer(as: T.self)), gs = Unchecked(gradOut.pointer(as: T.self))
        let dq = Unchecked(gq.pointer(as: T.self)), dk = Unchecked(gk.pointer(as: T.self))
        let dv = Unchecked(gv.pointer(as: T.self))
        let blocks = Self.attentionBlocks(t: t, causal: causal)
        forEachHead(T.self, heads: layout.batch * h, t: t, scratchCount: 2) { head, scratch in
            let (bi, hi) = head.quotientAndRemainder(dividingBy: h)
            let ib = bi * si.batch + hi * si.head, ob = bi * so.batch + hi * so.head, gb = bi * sg.batch + hi * sg.head
            let p = scratch[0], dp = scratch[1]
            let qh = qs.value + ib, kh = ks.value + ib, vh = vs.value + ib
            let oh = os.value + ob, go = gs.value + ob
            let dqh = dq.value + gb, dkh = dk.value + gb, dvh = dv.value + gb
            // dK and dV collect every block's contribution.
            for r in 0..<t {
                (dkh + r * sg.token).update(repeating: 0, count: d)
                (dvh + r * sg.token).update(repeating: 0, count: d)
            }
            for (r0, rows, keys) in blocks {
                let qb = qh + r0 * si.token, gob = go + r0 * so.token
                // Rebuild P [rows, keys] from lse.
                Self.gemm(T.self, transA: false, transB: true, m: rows, n: keys, k: d, alpha: scale, qb, si.token,
                          kh, si.token, beta: 0, p, keys)
                for i in 0..<rows {
                    let row = p + i * keys, n = causal ? r0 + i + 1 : t
                    _ = Self.expShifted(row, row, n, shift: ls.value[head * t + r0 + i])
                    for j in n..<keys { row[j] = 0 }
                }
                // dV[0 ..< keys] += Pᵀ dO ; dP = dO Vᵀ
                Self.gemm(T.self, transA: true, transB: false, m: keys, n: d, k: rows, alpha: 1, p, keys, gob, so.token,
                          beta: 1, dvh, sg.token)
                Self.gemm(T.self, transA: false, transB: true, m: rows, n: keys, k: d, alpha: 1, gob, so.token,
                          vh, si.token, beta: 0, dp, keys)
                // dS = P ∘ (dP − rowsum(dO ∘ O))
                for i in 0..<rows {
                    let gr = gob + i * so.token, orow = oh + (r0 + i) * so.token
                    var delta: T = 0
                    for j in 0..<d { delta += gr[j] * orow[j] }
                    let pr = p + i * keys, dr = dp + i * keys
                    for j in 0..<keys { dr[j] = pr[j] * (dr[j] - delta) }
                }
                // dQ = scale · dS K ; dK[0 ..< keys] += scale · dSᵀ Q
                Self.gemm(T.self, transA: false, transB: false, m: rows, n: d, k: keys, alpha: scale, dp, keys,
                          kh, si.token, beta: 0, dqh + r0 * sg.token, sg.token)
                Self.gemm(T.self, transA: true, transB: false, m: keys, n: d, k: rows, alpha: scale, dp, keys,
                          qb, si.token, beta: 1, dkh, sg.token)
            }
        }
    }

    /// Row-major GEMM on raw pointers through OpenBLAS (which runs single-threaded: see `init`).
    @inline(__always)
    static func gemm<T: CPUFloat>(_: T.Type, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                                  _ a: UnsafeMutablePointer<T>, _ lda: Int, _ b: UnsafeMutablePointer<T>, _ ldb: Int,
                                  beta: Double, _ c: UnsafeMutablePointer<T>, _ ldc: Int) {
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        if T.self == Float.self {
            cblas_sgemm(CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), Float(alpha),
                        UnsafeMutableRawPointer(a).assumingMemoryBound(to: Float.self), blasint(lda),
                        UnsafeMutableRawPointer(b).assumingMemoryBound(to: Float.self), blasint(ldb), Float(beta),
                        UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), blasint(ldc))
        } else {
            cblas_dgemm(CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), alpha,
                        UnsafeMutableRawPointer(a).assumingMemoryBound(to: Double.self), blasint(lda),
                        UnsafeMutableRawPointer(b).assumingMemoryBound(to: Double.self), blasint(ldb), beta,
                        UnsafeMutableRawPointer(c).assumingMemoryBound(to: Double.self), blasint(ldc))
        }
    }
}
