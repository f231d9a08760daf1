// CPU fused causal attention: per (batch, head) S = QKᵀ·scale → masked softmax → PV, recomputed in backward.
// Invariant: only lse [B, H, T] survives the forward pass; P is rebuilt from it (flash-attention style),
// and heads run in parallel, each worker with its own scratch buffers.

import CSpeedShims

extension CPUBackend {
    public func attention(q: Tensor, k: Tensor, v: Tensor, causal: Bool, scale: Double, into out: Tensor, lse: Tensor) {
        if let (i, o) = promoted([q, k, v], [out]) {
            attention(q: i[0]!, k: i[1]!, v: i[2]!, causal: causal, scale: scale, into: o[0]!, lse: lse)
            return finish(o, [out])
        }
        switch q.dtype {
        case .float32: attentionForward(Float.self, q, k, v, causal, scale, out, lse)
        default: attentionForward(Double.self, q, k, v, causal, scale, out, lse)
        }
    }

    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, gradOut: Tensor,
                                  causal: Bool, scale: Double, into gradQ: Tensor, gradK: Tensor, gradV: Tensor) {
        if let (i, o) = promoted([q, k, v, out, gradOut], [gradQ, gradK, gradV]) {
            attentionBackward(q: i[0]!, k: i[1]!, v: i[2]!, out: i[3]!, lse: lse, gradOut: i[4]!, causal: causal,
                              scale: scale, into: o[0]!, gradK: o[1]!, gradV: o[2]!)
            return finish(o, [gradQ, gradK, gradV])
        }
        switch q.dtype {
        case .float32: attentionBackwardKernel(Float.self, q, k, v, out, lse, gradOut, causal, scale, gradQ, gradK, gradV)
        default: attentionBackwardKernel(Double.self, q, k, v, out, lse, gradOut, causal, scale, gradQ, gradK, gradV)
        }
    }

    /// Runs `body(head, scratch)` for every (batch, head) with one [T, T] scratch matrix per worker.
    private func forEachHead<T: CPUFloat>(_: T.Type, heads: Int, t: Int, scratchCount: Int,
                                          _ body: (Int, [UnsafeMutablePointer<T>]) -> Void) {
        parallel.forEach(heads) { range in
            let scratch = (0..<scratchCount).map { _ in UnsafeMutablePointer<T>.allocate(capacity: t * t) }
            defer { scratch.forEach { $0.deallocate() } }
            for h in range { body(h, scratch) }
        }
    }

    private func attentionForward<T: CPUFloat>(_: T.Type, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ causal: Bool,
                                               _ scale: Double, _ out: Tensor, _ lse: Tensor) {
        let (b, h, t, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let qs = Unchecked(q.pointer(as: T.self)), ks = Unchecked(k.pointer(as: T.self))
        let vs = Unchecked(v.pointer(as: T.self)), os = Unchecked(out.pointer(as: T.self))
        let ls = Unchecked(lse.pointer(as: T.self))
        forEachHead(T.self, heads: b * h, t: t, scratchCount: 1) { head, scratch in
            let base = head * t * d, s = scratch[0]
            // S = scale · Q Kᵀ   [T, T]
            Self.gemm(T.self, transA: false, transB: true, m: t, n: t, k: d, alpha: scale,
                      qs.value + base, d, ks.value + base, d, beta: 0, s, t)
            for i in 0..<t {
                let row = s + i * t, n = causal ? i + 1 : t
                let m = Self.reduceRun(.max, row, n)
                let sum = Self.expShifted(row, row, n, shift: m)
                ls.value[head * t + i] = m + T.log(sum)
                let inv = 1 / sum
                for j in 0..<n { row[j] *= inv }
                for j in n..<t { row[j] = 0 }
            }
            // O = P V   [T, D]
            Self.gemm(T.self, transA: false, transB: false, m: t, n: d, k: t, alpha: 1,
                      s, t, vs.value + base, d, beta: 0, os.value + base, d)
        }
    }

    private func attentionBackwardKernel<T: CPUFloat>(_: T.Type, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ out: Tensor,
                                                      _ lse: Tensor, _ gradOut: Tensor, _ causal: Bool, _ scale: Double,
                                                      _ gq: Tensor, _ gk: Tensor, _ gv: Tensor) {
        let (b, h, t, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let qs = Unchecked(q.pointer(as: T.self)), ks = Unchecked(k.pointer(as: T.self))
        let vs = Unchecked(v.pointer(as: T.self)), os = Unchecked(out.pointer(as: T.self))
        let ls = Unchecked(lse.pointer(as: T.self)), gs = Unchecked(gradOut.pointer(as: T.self))
        let dq = Unchecked(gq.pointer(as: T.self)), dk = Unchecked(gk.pointer(as: T.self))
        let dv = Unchecked(gv.pointer(as: T.self))
        forEachHead(T.self, heads: b * h, t: t, scratchCount: 2) { head, scratch in
            let base = head * t * d, p = scratch[0], dp = scratch[1]
            let qh = qs.value + base, kh = ks.value + base, vh = vs.value + base
            let oh = os.value + base, go = gs.value + base
            // Rebuild P from lse.
            Self.gemm(T.self, transA: false, transB: true, m: t, n: t, k: d, alpha: scale, qh, d, kh, d, beta: 0, p, t)
            for i in 0..<t {
                let row = p + i * t, n = causal ? i + 1 : t
                _ = Self.expShifted(row, row, n, shift: ls.value[head * t + i])
                for j in n..<t { row[j] = 0 }
            }
            // dV = Pᵀ dO ; dP = dO Vᵀ
            Self.gemm(T.self, transA: true, transB: false, m: t, n: d, k: t, alpha: 1, p, t, go, d, beta: 0, dv.value + base, d)
            Self.gemm(T.self, transA: false, transB: true, m: t, n: t, k: d, alpha: 1, go, d, vh, d, beta: 0, dp, t)
            // dS = P ∘ (dP − rowsum(dO ∘ O))
            for i in 0..<t {
                var delta: T = 0
                for j in 0..<d { delta += go[i * d + j] * oh[i * d + j] }
                let pr = p + i * t, dr = dp + i * t
                for j in 0..<t { dr[j] = pr[j] * (dr[j] - delta) }
            }
            // dQ = scale · dS K ; dK = scale · dSᵀ Q
            Self.gemm(T.self, transA: false, transB: false, m: t, n: d, k: t, alpha: scale, dp, t, kh, d, beta: 0, dq.value + base, d)
            Self.gemm(T.self, transA: true, transB: false, m: t, n: d, k: t, alpha: scale, dp, t, qh, d, beta: 0, dk.value + base, d)
        }
    }

    /// Row-major GEMM on raw pointers through OpenBLAS (which runs single-threaded: see `init`).
    @inline(__always)
    static func gemm<T: CPUFloat>(_: T.Type, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                                  _ a: UnsafeMutablePointer<T>, _ lda: Int, _ b: UnsafeMutablePointer<T>, _ ldb: Int,
                                  beta: Double, _ c: UnsafeMutablePointer<T>, _ ldc: Int) {
        let ta = Int32(transA ? SSCblasTrans.rawValue : SSCblasNoTrans.rawValue)
        let tb = Int32(transB ? SSCblasTrans.rawValue : SSCblasNoTrans.rawValue)
        let order = Int32(SSCblasRowMajor.rawValue)
        if T.self == Float.self {
            cblas_sgemm(order, ta, tb, Int32(m), Int32(n), Int32(k), Float(alpha),
                        UnsafeMutableRawPointer(a).assumingMemoryBound(to: Float.self), Int32(lda),
                        UnsafeMutableRawPointer(b).assumingMemoryBound(to: Float.self), Int32(ldb), Float(beta),
                        UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), Int32(ldc))
        } else {
            cblas_dgemm(order, ta, tb, Int32(m), Int32(n), Int32(k), alpha,
                        UnsafeMutableRawPointer(a).assumingMemoryBound(to: Double.self), Int32(lda),
                        UnsafeMutableRawPointer(b).assumingMemoryBound(to: Double.self), Int32(ldb), beta,
                        UnsafeMutableRawPointer(c).assumingMemoryBound(to: Double.self), Int32(ldc))
        }
    }
}
