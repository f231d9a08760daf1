// CPU fused attention: per (batch, head, block of query rows) S = QKᵀ·scale → masked softmax → PV, recomputed in
// backward; a block only meets the keys its rows may see (causal, sliding window), K/V heads shared by a group.
// Invariant: only lse [B, H, T] survives the forward pass; P is rebuilt from it (flash-attention style). Forward
// runs query heads in parallel; backward runs K/V heads in parallel (each sums its group's dK/dV), each worker with
// its own scratch. A row that sees no key gets out = 0, lse = −∞ and no gradient.

import COpenBLAS

extension CPUBackend {
    public func attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, mask: AttentionMask, scale: Double,
                          into out: Tensor, lse: Tensor) {
        mask.check(layout, device: q.device)
        if let (i, o) = promoted([q, k, v], [out]) {
            attention(q: i[0]!, k: i[1]!, v: i[2]!, layout: layout, mask: mask, scale: scale, into: o[0]!, lse: lse)
            return finish(o, [out])
        }
        switch q.dtype {
        case .float32: attentionForward(Float.self, q, k, v, layout, mask, scale, out, lse)
        default: attentionForward(Double.self, q, k, v, layout, mask, scale, out, lse)
        }
    }

    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, gradOut: Tensor,
                                  layout: AttentionLayout, mask: AttentionMask, scale: Double,
                                  into gradQ: Tensor, gradK: Tensor, gradV: Tensor) {
        mask.check(layout, device: q.device)
        if q.dtype.isHalf {
            // fp32 gradients as contiguous [B, H, T, D] / [B, Hkv, Tk, D] (they may share one storage, e.g. packed
            // q/k/v, so they cannot be promoted in place), then rounded and scattered into `layout.grad`/`keyGrad`.
            let (i, _) = promoted([q, k, v, out, gradOut], [])!
            let l = layout
            let qShape = [l.batch, l.heads, l.tokens, l.headDim], kShape = [l.batch, l.kvHeads, l.keyTokens, l.headDim]
            var wide = layout
            let contiguous = AttentionLayout.headMajor(batch: l.batch, heads: l.heads, tokens: l.tokens, headDim: l.headDim,
                                                       kvHeads: l.kvHeads, keyTokens: l.keyTokens)
            (wide.grad, wide.keyGrad) = (contiguous.grad, contiguous.keyGrad)
            let g32 = [qShape, kShape, kShape].map { Tensor(empty: $0, dtype: .float32, device: q.device) }
            attentionBackward(q: i[0]!, k: i[1]!, v: i[2]!, out: i[3]!, lse: lse, gradOut: i[4]!, layout: wide,
                              mask: mask, scale: scale, into: g32[0], gradK: g32[1], gradV: g32[2])
            for (n, (wideGrad, dst)) in zip(g32, [gradQ, gradK, gradV]).enumerated() {
                let shape = n == 0 ? qShape : kShape, s = n == 0 ? l.grad : l.keyGrad
                let narrow = Tensor(empty: shape, dtype: dst.dtype, device: dst.device)
                cast(wideGrad, into: narrow)
                copy(narrow, layout: .contiguous(shape), into: dst,
                     outLayout: Layout(shape: shape, strides: [s.batch, s.head, s.token, 1]), accumulate: false)
            }
            return
        }
        switch q.dtype {
        case .float32: attentionBackwardKernel(Float.self, q, k, v, out, lse, gradOut, layout, mask, scale, gradQ, gradK, gradV)
        default: attentionBackwardKernel(Double.self, q, k, v, out, lse, gradOut, layout, mask, scale, gradQ, gradK, gradV)
        }
    }

    /// Query rows per block when the mask limits which keys a row sees: a block of rows [r0, r1) only meets the
    /// keys its rows may see, so the masked triangle (and what lies outside a window) is mostly never computed.
    static let attentionBlock = 32

    /// Runs `body(item, scratch)` for every item with `scratchCount` scratch buffers of `scratchSize` per worker.
    private func forEachHead<T: CPUFloat>(_: T.Type, items: Int, scratchSize: Int, scratchCount: Int,
                                          _ body: (Int, [UnsafeMutablePointer<T>]) -> Void) {
        parallel.forEach(items) { range in
            let scratch = (0..<scratchCount).map { _ in UnsafeMutablePointer<T>.allocate(capacity: Swift.max(scratchSize, 1)) }
            defer { scratch.forEach { $0.deallocate() } }
            for h in range { body(h, scratch) }
        }
    }

    /// The query-row blocks of one head: (first row, rows, first key, keys) — the keys any row of the block sees.
    private static func attentionBlocks(_ l: AttentionLayout, _ mask: AttentionMask) -> [(r0: Int, rows: Int, k0: Int, keys: Int)] {
        let bq = mask.causal || mask.window != nil ? attentionBlock : Swift.max(l.tokens, 1)
        return stride(from: 0, to: l.tokens, by: bq).map { r0 in
            let rows = min(bq, l.tokens - r0)
            let first = mask.keyRange(query: r0, offset: l.queryOffset, keys: l.keyTokens)
            let last = mask.keyRange(query: r0 + rows - 1, offset: l.queryOffset, keys: l.keyTokens)
            return (r0, rows, first.lowerBound, Swift.max(0, last.upperBound - first.lowerBound))
        }
    }

    /// Sets the scores row `i` of a block may not see to −∞ (outside its key range, or padded); returns whether any
    /// key is left.
    @inline(__always)
    private static func maskRow<T: CPUFloat>(_ row: UnsafeMutablePointer<T>, keys: Int, k0: Int, range: Range<Int>,
                                             keep: UnsafeMutablePointer<Int32>?) -> Bool {
        var any = false
        for j in 0..<keys {
            let kj = k0 + j
            if !range.contains(kj) || keep?[kj] == 0 { row[j] = -T.infinity } else { any = true }
        }
        return any
    }

    private func attentionForward<T: CPUFloat>(_: T.Type, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ l: AttentionLayout,
                                               _ mask: AttentionMask, _ scale: Double, _ out: Tensor, _ lse: Tensor) {
        l.checkOperands(inputs: [q, k, v], outputs: [out])
        let (h, t, tk, d, group, off) = (l.heads, l.tokens, l.keyTokens, l.headDim, l.group, l.queryOffset)
        let (si, sk, so) = (l.input, l.key, l.output)
        let qs = Unchecked(q.pointer(as: T.self)), ks = Unchecked(k.pointer(as: T.self))
        let vs = Unchecked(v.pointer(as: T.self)), os = Unchecked(out.pointer(as: T.self))
        let ls = Unchecked(lse.pointer(as: T.self)), keep = Unchecked(mask.keyPadding?.pointer(as: Int32.self))
        let blocks = Self.attentionBlocks(l, mask)
        let bq = blocks.map(\.rows).max() ?? 0
        forEachHead(T.self, items: l.batch * h, scratchSize: bq * tk, scratchCount: 1) { head, scratch in
            let (bi, hi) = head.quotientAndRemainder(dividingBy: h)
            let kb = bi * sk.batch + (hi / group) * sk.head, s = scratch[0]
            let qh = qs.value + bi * si.batch + hi * si.head, kh = ks.value + kb, vh = vs.value + kb
            let oh = os.value + bi * so.batch + hi * so.head, keepRow = keep.value.map { $0 + bi * tk }
            for (r0, rows, k0, keys) in blocks {
                if keys == 0 {
                    for i in 0..<rows { (oh + (r0 + i) * so.token).update(repeating: 0, count: d); ls.value[head * t + r0 + i] = -T.infinity }
                    continue
                }
                // S = scale · Q[r0 ..< r0 + rows] K[k0 ..< k0 + keys]ᵀ   [rows, keys]
                Self.gemm(T.self, transA: false, transB: true, m: rows, n: keys, k: d, alpha: scale,
                          qh + r0 * si.token, si.token, kh + k0 * sk.token, sk.token, beta: 0, s, keys)
                for i in 0..<rows {
                    let row = s + i * keys
                    let range = mask.keyRange(query: r0 + i, offset: off, keys: tk)
                    guard Self.maskRow(row, keys: keys, k0: k0, range: range, keep: keepRow) else {
                        row.update(repeating: 0, count: keys)
                        ls.value[head * t + r0 + i] = -T.infinity
                        continue
                    }
                    let m = Self.reduceRun(.max, row, keys)
                    var sum = Self.expShifted(row, row, keys, shift: m)
                    if keys > range.count || keepRow != nil {
                        // exp(−∞) is 0 (or a subnormal in the fp32 polynomial): clear the masked keys exactly.
                        sum = 0
                        for j in 0..<keys {
                            let kj = k0 + j
                            if !range.contains(kj) || keepRow?[kj] == 0 { row[j] = 0 } else { sum += row[j] }
                        }
                    }
                    ls.value[head * t + r0 + i] = m + T.log(sum)
                    let inv = 1 / sum
                    for j in 0..<keys { row[j] *= inv }
                }
                // O[r0 ..< r0 + rows] = P V[k0 ..< k0 + keys]   [rows, D]
                Self.gemm(T.self, transA: false, transB: false, m: rows, n: d, k: keys, alpha: 1,
                          s, keys, vh + k0 * sk.token, sk.token, beta: 0, oh + r0 * so.token, so.token)
            }
        }
    }

    private func attentionBackwardKernel<T: CPUFloat>(_: T.Type, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ out: Tensor,
                                                      _ lse: Tensor, _ gradOut: Tensor, _ l: AttentionLayout,
                                                      _ mask: AttentionMask, _ scale: Double,
                                                      _ gq: Tensor, _ gk: Tensor, _ gv: Tensor) {
        l.checkOperands(inputs: [q, k, v], outputs: [out, gradOut], grads: [gq, gk, gv])
        let (h, t, tk, d, group, off) = (l.heads, l.tokens, l.keyTokens, l.headDim, l.group, l.queryOffset)
        let (si, sk, so, sg, skg) = (l.input, l.key, l.output, l.grad, l.keyGrad)
        let qs = Unchecked(q.pointer(as: T.self)), ks = Unchecked(k.pointer(as: T.self))
        let vs = Unchecked(v.pointer(as: T.self)), os = Unchecked(out.pointer(as: T.self))
        let ls = Unchecked(lse.pointer(as: T.self)), gs = Unchecked(gradOut.pointer(as: T.self))
        let dq = Unchecked(gq.pointer(as: T.self)), dk = Unchecked(gk.pointer(as: T.self))
        let dv = Unchecked(gv.pointer(as: T.self)), keep = Unchecked(mask.keyPadding?.pointer(as: Int32.self))
        let blocks = Self.attentionBlocks(l, mask)
        let bq = blocks.map(\.rows).max() ?? 0
        forEachHead(T.self, items: l.batch * l.kvHeads, scratchSize: bq * tk, scratchCount: 2) { kvHead, scratch in
            let (bi, ki) = kvHead.quotientAndRemainder(dividingBy: l.kvHeads)
            let p = scratch[0], dp = scratch[1]
            let kh = ks.value + bi * sk.batch + ki * sk.head, vh = vs.value + bi * sk.batch + ki * sk.head
            let dkh = dk.value + bi * skg.batch + ki * skg.head, dvh = dv.value + bi * skg.batch + ki * skg.head
            let keepRow = keep.value.map { $0 + bi * tk }
            // dK and dV collect every block's contribution, from every query head of the group.
            for r in 0..<tk {
                (dkh + r * skg.token).update(repeating: 0, count: d)
                (dvh + r * skg.token).update(repeating: 0, count: d)
            }
            for hi in (ki * group)..<((ki + 1) * group) {
                let head = bi * h + hi
                let qh = qs.value + bi * si.batch + hi * si.head
                let oh = os.value + bi * so.batch + hi * so.head, go = gs.value + bi * so.batch + hi * so.head
                let dqh = dq.value + bi * sg.batch + hi * sg.head
                for (r0, rows, k0, keys) in blocks {
                    if keys == 0 {
                        for i in 0..<rows { (dqh + (r0 + i) * sg.token).update(repeating: 0, count: d) }
                        continue
                    }
                    let qb = qh + r0 * si.token, gob = go + r0 * so.token
                    let kb = kh + k0 * sk.token, vb = vh + k0 * sk.token
                    // Rebuild P [rows, keys] from lse.
                    Self.gemm(T.self, transA: false, transB: true, m: rows, n: keys, k: d, alpha: scale, qb, si.token,
                              kb, sk.token, beta: 0, p, keys)
                    for i in 0..<rows {
                        let row = p + i * keys, rowLSE = ls.value[head * t + r0 + i]
                        let range = mask.keyRange(query: r0 + i, offset: off, keys: tk)
                        guard rowLSE > -T.infinity else { row.update(repeating: 0, count: keys); continue }
                        _ = Self.expShifted(row, row, keys, shift: rowLSE)
                        for j in 0..<keys where !range.contains(k0 + j) || keepRow?[k0 + j] == 0 { row[j] = 0 }
                    }
                    // dV[k0 ..< k0 + keys] += Pᵀ dO ; dP = dO Vᵀ
                    Self.gemm(T.self, transA: true, transB: false, m: keys, n: d, k: rows, alpha: 1, p, keys, gob, so.token,
                              beta: 1, dvh + k0 * skg.token, skg.token)
                    Self.gemm(T.self, transA: false, transB: true, m: rows, n: keys, k: d, alpha: 1, gob, so.token,
                              vb, sk.token, beta: 0, dp, keys)
                    // dS = P ∘ (dP − rowsum(dO ∘ O))
                    for i in 0..<rows {
                        let gr = gob + i * so.token, orow = oh + (r0 + i) * so.token
                        var delta: T = 0
                        for j in 0..<d { delta += gr[j] * orow[j] }
                        let pr = p + i * keys, dr = dp + i * keys
                        for j in 0..<keys { dr[j] = pr[j] * (dr[j] - delta) }
                    }
                    // dQ = scale · dS K ; dK[k0 ..< k0 + keys] += scale · dSᵀ Q
                    Self.gemm(T.self, transA: false, transB: false, m: rows, n: d, k: keys, alpha: scale, dp, keys,
                              kb, sk.token, beta: 0, dqh + r0 * sg.token, sg.token)
                    Self.gemm(T.self, transA: true, transB: false, m: keys, n: d, k: rows, alpha: scale, dp, keys,
                              qb, si.token, beta: 1, dkh + k0 * skg.token, skg.token)
                }
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
