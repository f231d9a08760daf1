// Fused scaled-dot-product attention (SIMT, flash-attention style), forward and backward: grouped K/V heads, fewer
// queries than keys (KV cache), causal / sliding-window / key-padding masks (SSAttnMask in common.cuh).
// Forward: an online softmax over key tiles held in shared memory, saving lse; backward: P recomputed from lse.
// Invariant: no [T, T] matrix is ever stored; fp32 accumulation for fp32/bf16/fp16 inputs; the backward pass is
// deterministic (dK/dV per key tile of one K/V head, summed over its query heads, and dQ per query tile, each owned
// by one block: no atomics); 256 threads; a query row that sees no key gets out = 0, lse = -inf, no gradient.
// Entry points: `ss_attention_fwd_<T>_d<D>`, `ss_attention_bwd_preprocess_<T>`, `ss_attention_bwd_dkdv_<T>_d<D>`,
//   `ss_attention_bwd_dq_<T>_d<D>` for T in f32, bf16, f16 and D in 32, 64, 128 (the head dimension d may be
//   smaller than D: the tile is zero-padded).
#include "common.cuh"

// ===== family: attention =====
// Thread layout (256 threads): tx = threadIdx.x % 16, ty = threadIdx.x / 16. A [rows x cols] tile product gives
// thread (ty, tx) rows ty + 16 i and columns tx + 16 j, so the 16 lanes sharing a row sit in one half-warp and
// row reductions are shuffles over xor offsets 8, 4, 2, 1. Shared tiles are fp32 with rows padded to D + 1 (and
// BC + 1) floats, which keeps the column reads conflict-free. Dynamic shared memory sizes: docs/SpeedCUDA-kernels.md.

#define SS_ATT_THREADS 256

/// dst[r][col] = src[(r0 + r) * ld + col] as fp32 for r < ROWS, col < D; zero outside [0, t) x [0, d).
template <typename T, int D, int ROWS>
__device__ __forceinline__ void ss_att_load(float* dst, const T* src, int r0, int t, int d, ss_i64 ld) {
    constexpr int LD = D + 1;
    for (int e = threadIdx.x; e < ROWS * D; e += SS_ATT_THREADS) {
        const int r = e / D, col = e - r * D;
        const int gr = r0 + r;
        float val = 0.0f;
        if (gr < t && col < d) val = ss_to_float(src[(ss_i64)gr * ld + col]);
        dst[r * LD + col] = val;
    }
}

/// out = softmax(scale * q k^T + mask) v and lse = rowwise log-sum-exp of the scaled scores.
/// Grid: (ceil(t / BR), min(B * H, 65535)); block: 256; both grid axes are grid-stride loops.
template <typename T, int D, int BR, int BC>
__device__ __forceinline__ void ss_att_fwd(const T* q, const T* k, const T* v, T* out, float* lse, ss_i64 bh_count,
                                           int t, int d, float scale, SSAttnMask M, SSAttnLayout L) {
    constexpr int LD = D + 1, LP = BC + 1, RI = BR / 16, CJ = BC / 16, DJ = D / 16;
    extern __shared__ float ss_att_smem[];
    float* Qs = ss_att_smem;
    float* Ks = Qs + BR * LD;
    float* Vs = Ks + BC * LD;
    float* Ps = Vs + BC * LD;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const float ninf = -ss_inf_f();
    const int ntiles = (t + BR - 1) / BR;
    for (ss_i64 bh = blockIdx.y; bh < bh_count; bh += gridDim.y) {
        const ss_i64 ib = L.q(bh), kb = L.k(bh), ob = L.o(bh), b = bh / L.heads;
        for (int qt = blockIdx.x; qt < ntiles; qt += gridDim.x) {
            const int q0 = qt * BR;
            __syncthreads();
            ss_att_load<T, D, BR>(Qs, q + ib, q0, t, d, L.qt);
            float m[RI], l[RI], o[RI][DJ];
#pragma unroll
            for (int i = 0; i < RI; ++i) {
                m[i] = ninf;
                l[i] = 0.0f;
#pragma unroll
                for (int jj = 0; jj < DJ; ++jj) o[i][jj] = 0.0f;
            }
            const int kend = M.key_end(q0, BR);
            for (int k0 = M.key_begin(q0, BC); k0 < kend; k0 += BC) {
                __syncthreads();
                ss_att_load<T, D, BC>(Ks, k + kb, k0, M.tk, d, L.kt);
                ss_att_load<T, D, BC>(Vs, v + kb, k0, M.tk, d, L.kt);
                __syncthreads();
                float s[RI][CJ];
#pragma unroll
                for (int i = 0; i < RI; ++i) {
#pragma unroll
                    for (int j = 0; j < CJ; ++j) s[i][j] = 0.0f;
                }
#pragma unroll 4
                for (int dd = 0; dd < D; ++dd) {
                    float qv[RI], kv[CJ];
#pragma unroll
                    for (int i = 0; i < RI; ++i) qv[i] = Qs[(ty + 16 * i) * LD + dd];
#pragma unroll
                    for (int j = 0; j < CJ; ++j) kv[j] = Ks[(tx + 16 * j) * LD + dd];
#pragma unroll
                    for (int i = 0; i < RI; ++i) {
#pragma unroll
                        for (int j = 0; j < CJ; ++j) s[i][j] = fmaf(qv[i], kv[j], s[i][j]);
                    }
                }
                // Online softmax, one row at a time; P goes to shared memory for the P V product.
#pragma unroll
                for (int i = 0; i < RI; ++i) {
                    const int r = q0 + ty + 16 * i;
                    float mx = ninf;
#pragma unroll
                    for (int j = 0; j < CJ; ++j) {
                        const int c = k0 + tx + 16 * j;
                        s[i][j] = M.ok(b, r, c) ? s[i][j] * scale : ninf;
                        mx = fmaxf(mx, s[i][j]);
                    }
#pragma unroll
                    for (int off = 8; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(SS_FULL_MASK, mx, off));
                    const float mnew = fmaxf(m[i], mx);
                    const bool none = mnew == ninf;
                    const float alpha = none ? 1.0f : expf(m[i] - mnew);
                    float rs = 0.0f;
#pragma unroll
                    for (int j = 0; j < CJ; ++j) {
                        const float p = none ? 0.0f : expf(s[i][j] - mnew);
                        s[i][j] = p;
                        rs += p;
                    }
#pragma unroll
                    for (int off = 8; off > 0; off >>= 1) rs += __shfl_xor_sync(SS_FULL_MASK, rs, off);
                    l[i] = l[i] * alpha + rs;
                    m[i] = mnew;
#pragma unroll
                    for (int jj = 0; jj < DJ; ++jj) o[i][jj] *= alpha;
#pragma unroll
                    for (int j = 0; j < CJ; ++j) Ps[(ty + 16 * i) * LP + tx + 16 * j] = s[i][j];
                }
                __syncthreads();
#pragma unroll 4
                for (int c = 0; c < BC; ++c) {
                    float pv[RI];
#pragma unroll
                    for (int i = 0; i < RI; ++i) pv[i] = Ps[(ty + 16 * i) * LP + c];
#pragma unroll
                    for (int jj = 0; jj < DJ; ++jj) {
                        const float vv = Vs[c * LD + tx + 16 * jj];
#pragma unroll
                        for (int i = 0; i < RI; ++i) o[i][jj] = fmaf(pv[i], vv, o[i][jj]);
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < RI; ++i) {
                const int r = q0 + ty + 16 * i;
                if (r < t) {
                    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
#pragma unroll
                    for (int jj = 0; jj < DJ; ++jj) {
                        const int col = tx + 16 * jj;
                        if (col < d) out[ob + (ss_i64)r * L.ot + col] = ss_st<T>(o[i][jj] * inv);
                    }
                    if (tx == 0) lse[bh * t + r] = l[i] > 0.0f ? m[i] + logf(l[i]) : ninf;
                }
            }
        }
    }
}

/// delta[row] = sum over the head dimension of gradOut * out, for every row (b h, t) of [B * H * T]: one warp per
/// row; out and gradOut follow the layout's o strides.
template <typename T>
__device__ __forceinline__ void ss_att_bwd_pre(const T* out, const T* gout, float* delta, ss_i64 rows, int t, int d,
                                               SSAttnLayout L) {
    const int lane = threadIdx.x & 31;
    const ss_i64 warps = SS_STRIDE >> 5;
    for (ss_i64 row = SS_TID >> 5; row < rows; row += warps) {
        const ss_i64 at = L.o(row / t) + (row % t) * L.ot;
        float s = 0.0f;
        for (int c = lane; c < d; c += 32) s += ss_to_float(out[at + c]) * ss_to_float(gout[at + c]);
        s = ss_warp_sum(s);
        if (lane == 0) delta[row] = s;
    }
}

/// S and dP = gradOut V^T for one (query tile, key tile): rows ty + 16 i of Qs/Gs against rows tx + 16 j of Ks/Vs.
template <int D, int RI, int CJ>
__device__ __forceinline__ void ss_att_s_dp(const float* Qs, const float* Gs, const float* Ks, const float* Vs,
                                            float (&s)[RI][CJ], float (&dp)[RI][CJ]) {
    constexpr int LD = D + 1;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int i = 0; i < RI; ++i) {
#pragma unroll
        for (int j = 0; j < CJ; ++j) {
            s[i][j] = 0.0f;
            dp[i][j] = 0.0f;
        }
    }
#pragma unroll 2
    for (int dd = 0; dd < D; ++dd) {
        float qv[RI], gv[RI], kv[CJ], vv[CJ];
#pragma unroll
        for (int i = 0; i < RI; ++i) {
            qv[i] = Qs[(ty + 16 * i) * LD + dd];
            gv[i] = Gs[(ty + 16 * i) * LD + dd];
        }
#pragma unroll
        for (int j = 0; j < CJ; ++j) {
            kv[j] = Ks[(tx + 16 * j) * LD + dd];
            vv[j] = Vs[(tx + 16 * j) * LD + dd];
        }
#pragma unroll
        for (int i = 0; i < RI; ++i) {
#pragma unroll
            for (int j = 0; j < CJ; ++j) {
                s[i][j] = fmaf(qv[i], kv[j], s[i][j]);
                dp[i][j] = fmaf(gv[i], vv[j], dp[i][j]);
            }
        }
    }
}

/// dK = scale * dS^T Q and dV = P^T dO for one key tile of one K/V head per block, looping over the group's query
/// heads and the query tiles that see it; dS = P * (dP - delta), P = exp(scale * q k - lse).
/// Grid: (ceil(tk / BC), min(B * Hkv, 65535)); block: 256.
template <typename T, int D, int BR, int BC>
__device__ __forceinline__ void ss_att_bwd_dkdv(const T* q, const T* k, const T* v, const T* gout, const float* lse,
                                                const float* delta, T* gk, T* gv, ss_i64 bh_count, int t, int d,
                                                float scale, SSAttnMask M, SSAttnLayout L) {
    constexpr int LD = D + 1, LP = BC + 1, RI = BR / 16, CJ = BC / 16, KI = BC / 16, DJ = D / 16;
    extern __shared__ float ss_att_smem[];
    float* Ks = ss_att_smem;
    float* Vs = Ks + BC * LD;
    float* Qs = Vs + BC * LD;
    float* Gs = Qs + BR * LD;
    float* Ps = Gs + BR * LD;
    float* Ss = Ps + BR * LP;
    float* Ls = Ss + BR * LP;
    float* Dl = Ls + BR;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int ntiles = (M.tk + BC - 1) / BC;
    const ss_i64 kv_count = bh_count / L.group;
    for (ss_i64 bkv = blockIdx.y; bkv < kv_count; bkv += gridDim.y) {
        const ss_i64 kb = L.kv(bkv), kgb = L.kg(bkv), b = bkv / (L.heads / L.group);
        for (int kt = blockIdx.x; kt < ntiles; kt += gridDim.x) {
            const int k0 = kt * BC;
            __syncthreads();
            ss_att_load<T, D, BC>(Ks, k + kb, k0, M.tk, d, L.kt);
            ss_att_load<T, D, BC>(Vs, v + kb, k0, M.tk, d, L.kt);
            float dk[KI][DJ], dv[KI][DJ];
#pragma unroll
            for (int i = 0; i < KI; ++i) {
#pragma unroll
                for (int jj = 0; jj < DJ; ++jj) {
                    dk[i][jj] = 0.0f;
                    dv[i][jj] = 0.0f;
                }
            }
            const int qend = M.query_end(k0, BC);
            for (ss_i64 gi = 0; gi < L.group; ++gi) {
                const ss_i64 bh = b * L.heads + (bkv % (L.heads / L.group)) * L.group + gi;
                const ss_i64 ib = L.q(bh), ob = L.o(bh);
                for (int q0 = M.query_begin(k0, BR); q0 < qend; q0 += BR) {
                    __syncthreads();
                    ss_att_load<T, D, BR>(Qs, q + ib, q0, t, d, L.qt);
                    ss_att_load<T, D, BR>(Gs, gout + ob, q0, t, d, L.ot);
                    for (int r = threadIdx.x; r < BR; r += SS_ATT_THREADS) {
                        const bool in = q0 + r < t;
                        Ls[r] = in ? lse[bh * t + q0 + r] : 0.0f;
                        Dl[r] = in ? delta[bh * t + q0 + r] : 0.0f;
                    }
                    __syncthreads();
                    float s[RI][CJ], dp[RI][CJ];
                    ss_att_s_dp<D, RI, CJ>(Qs, Gs, Ks, Vs, s, dp);
#pragma unroll
                    for (int i = 0; i < RI; ++i) {
                        const int rl = ty + 16 * i, r = q0 + rl;
                        const float li = Ls[rl], di = Dl[rl];
#pragma unroll
                        for (int j = 0; j < CJ; ++j) {
                            const int cl = tx + 16 * j, c = k0 + cl;
                            const float p = M.ok(b, r, c) ? expf(s[i][j] * scale - li) : 0.0f;
                            Ps[rl * LP + cl] = p;
                            Ss[rl * LP + cl] = p * (dp[i][j] - di);
                        }
                    }
                    __syncthreads();
#pragma unroll 2
                    for (int rr = 0; rr < BR; ++rr) {
                        float pv[KI], sv[KI];
#pragma unroll
                        for (int i = 0; i < KI; ++i) {
                            pv[i] = Ps[rr * LP + ty + 16 * i];
                            sv[i] = Ss[rr * LP + ty + 16 * i];
                        }
#pragma unroll
                        for (int jj = 0; jj < DJ; ++jj) {
                            const float go = Gs[rr * LD + tx + 16 * jj], qq = Qs[rr * LD + tx + 16 * jj];
#pragma unroll
                            for (int i = 0; i < KI; ++i) {
                                dv[i][jj] = fmaf(pv[i], go, dv[i][jj]);
                                dk[i][jj] = fmaf(sv[i], qq, dk[i][jj]);
                            }
                        }
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < KI; ++i) {
                const int c = k0 + ty + 16 * i;
                if (c < M.tk) {
#pragma unroll
                    for (int jj = 0; jj < DJ; ++jj) {
                        const int col = tx + 16 * jj;
                        if (col < d) {
                            gk[kgb + (ss_i64)c * L.kgt + col] = ss_st<T>(dk[i][jj] * scale);
                            gv[kgb + (ss_i64)c * L.kgt + col] = ss_st<T>(dv[i][jj]);
                        }
                    }
                }
            }
        }
    }
}

/// dQ = scale * dS K for one query tile per block, looping over the key tiles it sees.
/// Grid: (ceil(t / BR), min(B * H, 65535)); block: 256.
template <typename T, int D, int BR, int BC>
__device__ __forceinline__ void ss_att_bwd_dq(const T* q, const T* k, const T* v, const T* gout, const float* lse,
                                              const float* delta, T* gq, ss_i64 bh_count, int t, int d, float scale,
                                              SSAttnMask M, SSAttnLayout L) {
    constexpr int LD = D + 1, LP = BC + 1, RI = BR / 16, CJ = BC / 16, DJ = D / 16;
    extern __shared__ float ss_att_smem[];
    float* Qs = ss_att_smem;
    float* Gs = Qs + BR * LD;
    float* Ks = Gs + BR * LD;
    float* Vs = Ks + BC * LD;
    float* Ss = Vs + BC * LD;
    float* Ls = Ss + BR * LP;
    float* Dl = Ls + BR;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int ntiles = (t + BR - 1) / BR;
    for (ss_i64 bh = blockIdx.y; bh < bh_count; bh += gridDim.y) {
        const ss_i64 ib = L.q(bh), kb = L.k(bh), ob = L.o(bh), gb = L.g(bh), b = bh / L.heads;
        for (int qt = blockIdx.x; qt < ntiles; qt += gridDim.x) {
            const int q0 = qt * BR;
            __syncthreads();
            ss_att_load<T, D, BR>(Qs, q + ib, q0, t, d, L.qt);
            ss_att_load<T, D, BR>(Gs, gout + ob, q0, t, d, L.ot);
            for (int r = threadIdx.x; r < BR; r += SS_ATT_THREADS) {
                const bool in = q0 + r < t;
                Ls[r] = in ? lse[bh * t + q0 + r] : 0.0f;
                Dl[r] = in ? delta[bh * t + q0 + r] : 0.0f;
            }
            float acc[RI][DJ];
#pragma unroll
            for (int i = 0; i < RI; ++i) {
#pragma unroll
                for (int jj = 0; jj < DJ; ++jj) acc[i][jj] = 0.0f;
            }
            const int kend = M.key_end(q0, BR);
            for (int k0 = M.key_begin(q0, BC); k0 < kend; k0 += BC) {
                __syncthreads();
                ss_att_load<T, D, BC>(Ks, k + kb, k0, M.tk, d, L.kt);
                ss_att_load<T, D, BC>(Vs, v + kb, k0, M.tk, d, L.kt);
                __syncthreads();
                float s[RI][CJ], dp[RI][CJ];
                ss_att_s_dp<D, RI, CJ>(Qs, Gs, Ks, Vs, s, dp);
#pragma unroll
                for (int i = 0; i < RI; ++i) {
                    const int rl = ty + 16 * i, r = q0 + rl;
                    const float li = Ls[rl], di = Dl[rl];
#pragma unroll
                    for (int j = 0; j < CJ; ++j) {
                        const int cl = tx + 16 * j, c = k0 + cl;
                        const float p = M.ok(b, r, c) ? expf(s[i][j] * scale - li) : 0.0f;
                        Ss[rl * LP + cl] = p * (dp[i][j] - di);
                    }
                }
                __syncthreads();
#pragma unroll 4
                for (int c = 0; c < BC; ++c) {
                    float sv[RI];
#pragma unroll
                    for (int i = 0; i < RI; ++i) sv[i] = Ss[(ty + 16 * i) * LP + c];
#pragma unroll
                    for (int jj = 0; jj < DJ; ++jj) {
                        const float kk = Ks[c * LD + tx + 16 * jj];
#pragma unroll
                        for (int i = 0; i < RI; ++i) acc[i][jj] = fmaf(sv[i], kk, acc[i][jj]);
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < RI; ++i) {
                const int r = q0 + ty + 16 * i;
                if (r < t) {
#pragma unroll
                    for (int jj = 0; jj < DJ; ++jj) {
                        const int col = tx + 16 * jj;
                        if (col < d) gq[gb + (ss_i64)r * L.gt + col] = ss_st<T>(acc[i][jj] * scale);
                    }
                }
            }
        }
    }
}

// Tile shapes per head dimension: forward (BR x BC), dK/dV (BR x BC), dQ (BR x BC).
#define SS_ATT_D(TN, T, DD, FBR, FBC, KBR, KBC, QBR, QBC) \
    extern "C" __global__ void __launch_bounds__(SS_ATT_THREADS) ss_attention_fwd_##TN##_d##DD( \
        const T* q, const T* k, const T* v, T* out, float* lse, ss_i64 bh, int t, int d, float scale, \
        SS_ATT_MASK_PARAMS, SS_ATT_LAYOUT_PARAMS) { \
        ss_att_fwd<T, DD, FBR, FBC>(q, k, v, out, lse, bh, t, d, scale, SS_ATT_MASK, SS_ATT_LAYOUT); \
    } \
    extern "C" __global__ void __launch_bounds__(SS_ATT_THREADS) ss_attention_bwd_dkdv_##TN##_d##DD( \
        const T* q, const T* k, const T* v, const T* gout, const float* lse, const float* delta, T* gk, T* gv, \
        ss_i64 bh, int t, int d, float scale, SS_ATT_MASK_PARAMS, SS_ATT_LAYOUT_PARAMS) { \
        ss_att_bwd_dkdv<T, DD, KBR, KBC>(q, k, v, gout, lse, delta, gk, gv, bh, t, d, scale, SS_ATT_MASK, SS_ATT_LAYOUT); \
    } \
    extern "C" __global__ void __launch_bounds__(SS_ATT_THREADS) ss_attention_bwd_dq_##TN##_d##DD( \
        const T* q, const T* k, const T* v, const T* gout, const float* lse, const float* delta, T* gq, ss_i64 bh, \
        int t, int d, float scale, SS_ATT_MASK_PARAMS, SS_ATT_LAYOUT_PARAMS) { \
        ss_att_bwd_dq<T, DD, QBR, QBC>(q, k, v, gout, lse, delta, gq, bh, t, d, scale, SS_ATT_MASK, SS_ATT_LAYOUT); \
    }
#define SS_ATT_T(TN, T) \
    extern "C" __global__ void ss_attention_bwd_preprocess_##TN(const T* out, const T* gout, float* delta, ss_i64 rows, \
                                                                int t, int d, SS_ATT_LAYOUT_PARAMS) { \
        ss_att_bwd_pre<T>(out, gout, delta, rows, t, d, SS_ATT_LAYOUT); \
    } \
    SS_ATT_D(TN, T, 32, 64, 64, 64, 64, 64, 64) \
    SS_ATT_D(TN, T, 64, 64, 64, 64, 64, 64, 64) \
    SS_ATT_D(TN, T, 128, 64, 32, 32, 64, 32, 32)
SS_ATT_T(f32, float)
SS_ATT_T(bf16, ss_bf16)
SS_ATT_T(f16, ss_f16)
// ===== end of family: attention =====
