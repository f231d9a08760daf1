// Attention on tensor cores (mma.sync m16n8k16), FlashAttention-2 style: grouped K/V heads, fewer queries than keys,
// causal / sliding-window / key-padding masks (SSAttnMask). bf16/fp16 in, fp32 accumulate, forward and backward;
// each warp owns 16 rows of a tile; a query row that sees no key gets out = 0, lse = -inf, no gradient.
// Invariant: the score fragment an mma leaves in a thread's registers is, two n-tiles at a time, exactly the A
// fragment of the next product (P V, dS K, ...), so P and dS never touch shared memory; no [T, T] matrix is ever
// stored; the backward pass is deterministic (no atomics), P and dS are rounded to the input type before their
// products, as FlashAttention does.
// Entry points: `ss_flash_fwd_<T>_d<D>`, `ss_flash_bwd_dkdv_<T>_d<D>`, `ss_flash_bwd_dq_<T>_d<D>` for T in bf16,
//   f16 and D in 32, 64, 128 (a head width d < D is zero-padded). 128 threads (4 warps) per block; the backward
//   pass takes `delta` from `ss_attention_bwd_preprocess_<T>` of the attention program.
#include "common.cuh"

// ===== family: flash =====
// Fragments of mma.m16n8k16 (PTX ISA, "Matrix Fragments for mma.m16n8k16"), lane = 4 g + q, c2 = 2 q:
//   A (16 x 16, row major): a[0] = (g, c2..c2+1), a[1] = (g+8, c2..), a[2] = (g, c2+8..), a[3] = (g+8, c2+8..)
//   B (16 x 8, k x n):      b[0] = (k = c2..c2+1, n = g), b[1] = (k = c2+8.., n = g)
//   C (16 x 8, fp32):       c[0..1] = (g, c2..c2+1), c[2..3] = (g+8, c2..c2+1)
// A 32-bit register holds two 16-bit values, the lower index in the low half. Shared tiles are 16-bit, row major,
// rows padded to D + 8 elements: rows start 16 bytes apart modulo 128, which makes every fragment load below
// conflict-free. Dynamic shared memory sizes: docs/SpeedCUDA-kernels.md.

#define SS_FA_THREADS 128
#define SS_FA_PAD 8

/// Two fp32 values as one register of 16-bit floats (first in the low half), rounded to nearest even.
template <typename T> __device__ __forceinline__ ss_u32 ss_fa_pack(float lo, float hi);
template <> __device__ __forceinline__ ss_u32 ss_fa_pack<ss_bf16>(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    ss_u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (ss_u32)ss_float_to_bf16(lo).bits | ((ss_u32)ss_float_to_bf16(hi).bits << 16);
#endif
}
template <> __device__ __forceinline__ ss_u32 ss_fa_pack<ss_f16>(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    ss_u32 r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (ss_u32)ss_float_to_f16(lo).bits | ((ss_u32)ss_float_to_f16(hi).bits << 16);
#endif
}

/// d += a b on the tensor cores; a host build (the emulator) supplies ss_host_mma with the same fragment layout.
template <typename T> __device__ __forceinline__ void ss_fa_mma(float (&d)[4], const ss_u32 (&a)[4], ss_u32 b0, ss_u32 b1);
template <> __device__ __forceinline__ void ss_fa_mma<ss_bf16>(float (&d)[4], const ss_u32 (&a)[4], ss_u32 b0, ss_u32 b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#elif defined(__CUDA_ARCH__)
    __trap();
#else
    ss_host_mma(false, d, a, b0, b1);
#endif
}
template <> __device__ __forceinline__ void ss_fa_mma<ss_f16>(float (&d)[4], const ss_u32 (&a)[4], ss_u32 b0, ss_u32 b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#elif defined(__CUDA_ARCH__)
    __trap();
#else
    ss_host_mma(true, d, a, b0, b1);
#endif
}

__device__ __forceinline__ ss_u32 ss_fa_ld32(const ss_u16* p) { return *(const ss_u32*)p; }
__device__ __forceinline__ ss_u32 ss_fa_ld16x2(const ss_u16* p0, const ss_u16* p1) {
    return (ss_u32)*p0 | ((ss_u32)*p1 << 16);
}

/// The A fragment of k-step kk from a row-major tile whose 16 rows start at x (row stride LD).
template <int LD>
__device__ __forceinline__ void ss_fa_frag_a(ss_u32 (&a)[4], const ss_u16* x, int kk) {
    const int lane = threadIdx.x & 31, g = lane >> 2, c2 = (lane & 3) * 2;
    const ss_u16* p = x + g * LD + 16 * kk + c2;
    a[0] = ss_fa_ld32(p);
    a[1] = ss_fa_ld32(p + 8 * LD);
    a[2] = ss_fa_ld32(p + 8);
    a[3] = ss_fa_ld32(p + 8 * LD + 8);
}

/// The B fragment (k-step kk, n-tile j) of B = Y^T for a row-major tile Y[n][k] (K for Q K^T).
template <int LD>
__device__ __forceinline__ void ss_fa_frag_bt(ss_u32& b0, ss_u32& b1, const ss_u16* y, int kk, int j) {
    const int lane = threadIdx.x & 31, g = lane >> 2, c2 = (lane & 3) * 2;
    const ss_u16* p = y + (8 * j + g) * LD + 16 * kk + c2;
    b0 = ss_fa_ld32(p);
    b1 = ss_fa_ld32(p + 8);
}

/// The B fragment (k-step kk, n-tile j) of B = Y for a row-major tile Y[k][n] (V for P V).
template <int LD>
__device__ __forceinline__ void ss_fa_frag_b(ss_u32& b0, ss_u32& b1, const ss_u16* y, int kk, int j) {
    const int lane = threadIdx.x & 31, g = lane >> 2, c2 = (lane & 3) * 2;
    const ss_u16* p = y + (16 * kk + c2) * LD + 8 * j + g;
    b0 = ss_fa_ld16x2(p, p + LD);
    b1 = ss_fa_ld16x2(p + 8 * LD, p + 9 * LD);
}

/// Scores n-tiles 2 kk and 2 kk + 1 of a [16 x 8 n] C fragment array as the A fragment of k-step kk.
template <typename T, int N>
__device__ __forceinline__ void ss_fa_c_to_a(ss_u32 (&a)[4], const float (&c)[N][4], int kk) {
    a[0] = ss_fa_pack<T>(c[2 * kk][0], c[2 * kk][1]);
    a[1] = ss_fa_pack<T>(c[2 * kk][2], c[2 * kk][3]);
    a[2] = ss_fa_pack<T>(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[3] = ss_fa_pack<T>(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

/// dst[r][c] = src[(r0 + r) * ld + c] for r < ROWS, c < D (row stride D + SS_FA_PAD); zero outside [0, t) x [0, d).
/// Whole rows move as 16-byte chunks when d == D and src and ld keep every row 16-byte aligned.
template <typename T, int D, int ROWS>
__device__ __forceinline__ void ss_fa_load(ss_u16* dst, const T* src, int r0, int t, int d, ss_i64 ld) {
    constexpr int LD = D + SS_FA_PAD, CH = D / 8;
    if (d == D && (((ss_u64)src) & 15) == 0 && (ld & 7) == 0) {
        for (int e = threadIdx.x; e < ROWS * CH; e += SS_FA_THREADS) {
            const int r = e / CH, c = e - r * CH, gr = r0 + r;
            uint4 val = make_uint4(0u, 0u, 0u, 0u);
            if (gr < t) val = *(const uint4*)(src + (ss_i64)gr * ld + 8 * c);
            *(uint4*)(dst + r * LD + 8 * c) = val;
        }
    } else {
        for (int e = threadIdx.x; e < ROWS * D; e += SS_FA_THREADS) {
            const int r = e / D, c = e - r * D, gr = r0 + r;
            dst[r * LD + c] = gr < t && c < d ? src[(ss_i64)gr * ld + c].bits : (ss_u16)0;
        }
    }
}

/// Stores rows row and row + 8 (columns 8 j + c2, + 1; row stride ld) of a [16 x D] fp32 fragment array, times `mul`.
template <typename T, int DJ>
__device__ __forceinline__ void ss_fa_store(T* dst, const float (&acc)[DJ][4], int row, int t, int d, ss_i64 ld,
                                            float mul0, float mul1) {
    const int c2 = (threadIdx.x & 3) * 2;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int r = row + 8 * h;
        if (r >= t) continue;
        const float mul = h ? mul1 : mul0;
#pragma unroll
        for (int j = 0; j < DJ; ++j) {
            const int c = 8 * j + c2;
            if (c < d) dst[(ss_i64)r * ld + c] = ss_st<T>(acc[j][2 * h] * mul);
            if (c + 1 < d) dst[(ss_i64)r * ld + c + 1] = ss_st<T>(acc[j][2 * h + 1] * mul);
        }
    }
}

/// out = softmax(scale q k^T + mask) v and lse (natural log) per row. Block: 64 query rows (warp w: rows 16 w..),
/// key tiles of BC. Grid: (ceil(t / 64), min(B * H, 65535)), both axes grid-stride loops.
template <typename T, int D, int BC>
__device__ __forceinline__ void ss_fa_fwd(const T* q, const T* k, const T* v, T* out, float* lse, ss_i64 bh_count,
                                          int t, int d, float scale, SSAttnMask M, SSAttnLayout L) {
    constexpr int BR = 64, LD = D + SS_FA_PAD, KD = D / 16, NJ = BC / 8, DJ = D / 8;
    extern __shared__ uint4 ss_fa_smem[];
    ss_u16* Qs = (ss_u16*)ss_fa_smem;   // [BR, LD]
    ss_u16* Ks = Qs + BR * LD;          // [BC, LD]
    ss_u16* Vs = Ks + BC * LD;          // [BC, LD]
    unsigned char* Kp = (unsigned char*)(Vs + BC * LD);   // [BC] 1 = key kept by the padding mask
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, c2 = (lane & 3) * 2;
    const float sl2 = scale * 1.4426950408889634f;   // scores in log2 units: exp(s scale) = exp2(s sl2)
    const float ninf = -ss_inf_f();
    const int ntiles = (t + BR - 1) / BR;
    for (ss_i64 bh = blockIdx.y; bh < bh_count; bh += gridDim.y) {
        const ss_i64 ib = L.q(bh), kb = L.k(bh), ob = L.o(bh), b = bh / L.heads;
        for (int qt = blockIdx.x; qt < ntiles; qt += gridDim.x) {
            const int q0 = qt * BR, row = q0 + 16 * w + g;
            __syncthreads();
            ss_fa_load<T, D, BR>(Qs, q + ib, q0, t, d, L.qt);
            __syncthreads();
            ss_u32 qa[KD][4];
#pragma unroll
            for (int kk = 0; kk < KD; ++kk) ss_fa_frag_a<LD>(qa[kk], Qs + 16 * w * LD, kk);
            float o[DJ][4], m[2] = {ninf, ninf}, l[2] = {0.0f, 0.0f};
#pragma unroll
            for (int j = 0; j < DJ; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
            const int kend = M.key_end(q0, BR);
            for (int k0 = M.key_begin(q0, BC); k0 < kend; k0 += BC) {
                __syncthreads();
                ss_fa_load<T, D, BC>(Ks, k + kb, k0, M.tk, d, L.kt);
                ss_fa_load<T, D, BC>(Vs, v + kb, k0, M.tk, d, L.kt);
                for (int e = threadIdx.x; e < BC; e += SS_FA_THREADS) Kp[e] = k0 + e < M.tk && M.kept(b, k0 + e);
                __syncthreads();
                float s[NJ][4];
#pragma unroll
                for (int j = 0; j < NJ; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
                for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
                    for (int j = 0; j < NJ; ++j) {
                        ss_u32 b0, b1;
                        ss_fa_frag_bt<LD>(b0, b1, Ks, kk, j);
                        ss_fa_mma<T>(s[j], qa[kk], b0, b1);
                    }
                }
                // Mask, scale, online softmax (a row's 4 owners are the lanes 4 g .. 4 g + 3).
                float mx[2] = {ninf, ninf};
#pragma unroll
                for (int j = 0; j < NJ; ++j) {
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const int cl = 8 * j + c2 + (i & 1), r = row + 8 * (i >> 1);
                        s[j][i] = Kp[cl] && M.in_range(r, k0 + cl) ? s[j][i] * sl2 : ninf;
                        mx[i >> 1] = fmaxf(mx[i >> 1], s[j][i]);
                    }
                }
                float alpha[2];
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    mx[h] = fmaxf(mx[h], __shfl_xor_sync(SS_FULL_MASK, mx[h], 1));
                    mx[h] = fmaxf(mx[h], __shfl_xor_sync(SS_FULL_MASK, mx[h], 2));
                    const float mnew = fmaxf(m[h], mx[h]);
                    alpha[h] = mnew == ninf ? 1.0f : exp2f(m[h] - mnew);
                    m[h] = mnew;
                    l[h] *= alpha[h];
                }
#pragma unroll
                for (int j = 0; j < NJ; ++j) {
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const float mh = m[i >> 1];
                        const float p = mh == ninf ? 0.0f : exp2f(s[j][i] - mh);
                        s[j][i] = p;
                        l[i >> 1] += p;
                    }
                }
#pragma unroll
                for (int j = 0; j < DJ; ++j) {
                    o[j][0] *= alpha[0];
                    o[j][1] *= alpha[0];
                    o[j][2] *= alpha[1];
                    o[j][3] *= alpha[1];
                }
#pragma unroll
                for (int kk = 0; kk < BC / 16; ++kk) {
                    ss_u32 pa[4];
                    ss_fa_c_to_a<T, NJ>(pa, s, kk);
#pragma unroll
                    for (int j = 0; j < DJ; ++j) {
                        ss_u32 b0, b1;
                        ss_fa_frag_b<LD>(b0, b1, Vs, kk, j);
                        ss_fa_mma<T>(o[j], pa, b0, b1);
                    }
                }
            }
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                l[h] += __shfl_xor_sync(SS_FULL_MASK, l[h], 1);
                l[h] += __shfl_xor_sync(SS_FULL_MASK, l[h], 2);
            }
            ss_fa_store<T, DJ>(out + ob, o, row, t, d, L.ot, l[0] > 0.0f ? 1.0f / l[0] : 0.0f,
                               l[1] > 0.0f ? 1.0f / l[1] : 0.0f);
            if ((lane & 3) == 0) {
                if (row < t) lse[bh * t + row] = l[0] > 0.0f ? (m[0] + log2f(l[0])) * 0.6931471805599453f : ninf;
                if (row + 8 < t) lse[bh * t + row + 8] = l[1] > 0.0f ? (m[1] + log2f(l[1])) * 0.6931471805599453f : ninf;
            }
        }
    }
}

/// s = X Yᵀ and dp = X2 Y2ᵀ for the warp's 16 rows of X/X2 (row-major, starting at x/x2) against N/8 n-tiles of the
/// row-major tiles Y/Y2: the backward pass's scores and dO·Vᵀ, key-major (dK/dV) or query-major (dQ).
template <typename T, int D, int N>
__device__ __forceinline__ void ss_fa_s_dp(float (&s)[N / 8][4], float (&dp)[N / 8][4], const ss_u16* x,
                                           const ss_u16* x2, const ss_u16* y, const ss_u16* y2) {
    constexpr int LD = D + SS_FA_PAD;
#pragma unroll
    for (int j = 0; j < N / 8; ++j) {
        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
        dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        ss_u32 a[4], a2[4];
        ss_fa_frag_a<LD>(a, x, kk);
        ss_fa_frag_a<LD>(a2, x2, kk);
#pragma unroll
        for (int j = 0; j < N / 8; ++j) {
            ss_u32 b0, b1;
            ss_fa_frag_bt<LD>(b0, b1, y, kk, j);
            ss_fa_mma<T>(s[j], a, b0, b1);
            ss_fa_frag_bt<LD>(b0, b1, y2, kk, j);
            ss_fa_mma<T>(dp[j], a2, b0, b1);
        }
    }
}

/// dK = scale dS^T Q and dV = P^T dO for one tile of 64 keys of one K/V head per block (warp w: keys 16 w..),
/// looping over the group's query heads and their query tiles of BQ that see it. Sᵀ and dPᵀ are computed key-major
/// so P^T and dS^T are A fragments in registers. Grid: (ceil(tk / 64), min(B * Hkv, 65535)).
template <typename T, int D, int BQ>
__device__ __forceinline__ void ss_fa_bwd_dkdv(const T* q, const T* k, const T* v, const T* gout, const float* lse,
                                               const float* delta, T* gk, T* gv, ss_i64 bh_count, int t, int d,
                                               float scale, SSAttnMask M, SSAttnLayout L) {
    constexpr int BK = 64, LD = D + SS_FA_PAD, NQ = BQ / 8, DJ = D / 8;
    extern __shared__ uint4 ss_fa_smem[];
    ss_u16* Ks = (ss_u16*)ss_fa_smem;       // [BK, LD]
    ss_u16* Vs = Ks + BK * LD;              // [BK, LD]
    ss_u16* Qs = Vs + BK * LD;              // [BQ, LD]
    ss_u16* Gs = Qs + BQ * LD;              // [BQ, LD]
    float* Ls = (float*)(Gs + BQ * LD);     // [BQ] lse in log2 units
    float* Dl = Ls + BQ;                    // [BQ]
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, c2 = (lane & 3) * 2;
    const float sl2 = scale * 1.4426950408889634f;
    const int ntiles = (M.tk + BK - 1) / BK;
    const ss_i64 kv_count = bh_count / L.group;
    for (ss_i64 bkv = blockIdx.y; bkv < kv_count; bkv += gridDim.y) {
        const ss_i64 kb = L.kv(bkv), kgb = L.kg(bkv), b = bkv / (L.heads / L.group);
        for (int kt = blockIdx.x; kt < ntiles; kt += gridDim.x) {
            const int k0 = kt * BK, key = k0 + 16 * w + g;
            __syncthreads();
            ss_fa_load<T, D, BK>(Ks, k + kb, k0, M.tk, d, L.kt);
            ss_fa_load<T, D, BK>(Vs, v + kb, k0, M.tk, d, L.kt);
            float dk[DJ][4], dv[DJ][4];
#pragma unroll
            for (int j = 0; j < DJ; ++j) {
                dk[j][0] = dk[j][1] = dk[j][2] = dk[j][3] = 0.0f;
                dv[j][0] = dv[j][1] = dv[j][2] = dv[j][3] = 0.0f;
            }
            const int qend = M.query_end(k0, BK);
            int lo[2], hi[2];   // the query rows keys key and key + 8 are seen by (empty when padded)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                M.query_range(key + 8 * h, lo[h], hi[h]);
                if (key + 8 * h < M.tk && !M.kept(b, key + 8 * h)) hi[h] = lo[h];
            }
            for (ss_i64 gi = 0; gi < L.group; ++gi) {
                const ss_i64 bh = b * L.heads + (bkv % (L.heads / L.group)) * L.group + gi;
                const ss_i64 ib = L.q(bh), ob = L.o(bh);
                for (int q0 = M.query_begin(k0, BQ); q0 < qend; q0 += BQ) {
                    __syncthreads();
                    ss_fa_load<T, D, BQ>(Qs, q + ib, q0, t, d, L.qt);
                    ss_fa_load<T, D, BQ>(Gs, gout + ob, q0, t, d, L.ot);
                    for (int r = threadIdx.x; r < BQ; r += SS_FA_THREADS) {
                        const bool in = q0 + r < t;
                        Ls[r] = in ? lse[bh * t + q0 + r] * 1.4426950408889634f : 0.0f;
                        Dl[r] = in ? delta[bh * t + q0 + r] : 0.0f;
                    }
                    __syncthreads();
                    float s[NQ][4], dp[NQ][4];
                    ss_fa_s_dp<T, D, BQ>(s, dp, Ks + 16 * w * LD, Vs + 16 * w * LD, Qs, Gs);
#pragma unroll
                    for (int j = 0; j < NQ; ++j) {
#pragma unroll
                        for (int i = 0; i < 4; ++i) {
                            const int ql = 8 * j + c2 + (i & 1), r = q0 + ql, h = i >> 1;
                            const float p = r >= lo[h] && r < hi[h] ? exp2f(s[j][i] * sl2 - Ls[ql]) : 0.0f;
                            s[j][i] = p;
                            dp[j][i] = p * (dp[j][i] - Dl[ql]);
                        }
                    }
#pragma unroll
                    for (int kk = 0; kk < BQ / 16; ++kk) {
                        ss_u32 pa[4], da[4];
                        ss_fa_c_to_a<T, NQ>(pa, s, kk);
                        ss_fa_c_to_a<T, NQ>(da, dp, kk);
#pragma unroll
                        for (int j = 0; j < DJ; ++j) {
                            ss_u32 b0, b1;
                            ss_fa_frag_b<LD>(b0, b1, Gs, kk, j);
                            ss_fa_mma<T>(dv[j], pa, b0, b1);
                            ss_fa_frag_b<LD>(b0, b1, Qs, kk, j);
                            ss_fa_mma<T>(dk[j], da, b0, b1);
                        }
                    }
                }
            }
            ss_fa_store<T, DJ>(gk + kgb, dk, key, M.tk, d, L.kgt, scale, scale);
            ss_fa_store<T, DJ>(gv + kgb, dv, key, M.tk, d, L.kgt, 1.0f, 1.0f);
        }
    }
}

/// dQ = scale dS K for one tile of 64 query rows per block (warp w: rows 16 w..), looping over key tiles of BK.
/// Grid: (ceil(t / 64), min(B * H, 65535)).
template <typename T, int D, int BK>
__device__ __forceinline__ void ss_fa_bwd_dq(const T* q, const T* k, const T* v, const T* gout, const float* lse,
                                             const float* delta, T* gq, ss_i64 bh_count, int t, int d, float scale,
                                             SSAttnMask M, SSAttnLayout L) {
    constexpr int BR = 64, LD = D + SS_FA_PAD, NK = BK / 8, DJ = D / 8;
    extern __shared__ uint4 ss_fa_smem[];
    ss_u16* Qs = (ss_u16*)ss_fa_smem;   // [BR, LD]
    ss_u16* Gs = Qs + BR * LD;          // [BR, LD]
    ss_u16* Ks = Gs + BR * LD;          // [BK, LD]
    ss_u16* Vs = Ks + BK * LD;          // [BK, LD]
    unsigned char* Kp = (unsigned char*)(Vs + BK * LD);   // [BK] 1 = key kept by the padding mask
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, c2 = (lane & 3) * 2;
    const float sl2 = scale * 1.4426950408889634f;
    const int ntiles = (t + BR - 1) / BR;
    for (ss_i64 bh = blockIdx.y; bh < bh_count; bh += gridDim.y) {
        const ss_i64 ib = L.q(bh), kb = L.k(bh), ob = L.o(bh), gb = L.g(bh), b = bh / L.heads;
        for (int qt = blockIdx.x; qt < ntiles; qt += gridDim.x) {
            const int q0 = qt * BR, row = q0 + 16 * w + g;
            __syncthreads();
            ss_fa_load<T, D, BR>(Qs, q + ib, q0, t, d, L.qt);
            ss_fa_load<T, D, BR>(Gs, gout + ob, q0, t, d, L.ot);
            float ls[2], dl[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int r = row + 8 * h;
                ls[h] = r < t ? lse[bh * t + r] * 1.4426950408889634f : 0.0f;
                dl[h] = r < t ? delta[bh * t + r] : 0.0f;
            }
            float dq[DJ][4];
#pragma unroll
            for (int j = 0; j < DJ; ++j) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;
            int lo[2], hi[2];
            M.key_range(row, lo[0], hi[0]);
            M.key_range(row + 8, lo[1], hi[1]);
            const int kend = M.key_end(q0, BR);
            for (int k0 = M.key_begin(q0, BK); k0 < kend; k0 += BK) {
                __syncthreads();
                ss_fa_load<T, D, BK>(Ks, k + kb, k0, M.tk, d, L.kt);
                ss_fa_load<T, D, BK>(Vs, v + kb, k0, M.tk, d, L.kt);
                for (int e = threadIdx.x; e < BK; e += SS_FA_THREADS) Kp[e] = k0 + e < M.tk && M.kept(b, k0 + e);
                __syncthreads();
                float s[NK][4], dp[NK][4];
                ss_fa_s_dp<T, D, BK>(s, dp, Qs + 16 * w * LD, Gs + 16 * w * LD, Ks, Vs);
#pragma unroll
                for (int j = 0; j < NK; ++j) {
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const int cl = 8 * j + c2 + (i & 1), c = k0 + cl, h = i >> 1;
                        const float p = c >= lo[h] && c < hi[h] && Kp[cl] ? exp2f(s[j][i] * sl2 - ls[h]) : 0.0f;
                        s[j][i] = p * (dp[j][i] - dl[i >> 1]);
                    }
                }
#pragma unroll
                for (int kk = 0; kk < BK / 16; ++kk) {
                    ss_u32 da[4];
                    ss_fa_c_to_a<T, NK>(da, s, kk);
#pragma unroll
                    for (int j = 0; j < DJ; ++j) {
                        ss_u32 b0, b1;
                        ss_fa_frag_b<LD>(b0, b1, Ks, kk, j);
                        ss_fa_mma<T>(dq[j], da, b0, b1);
                    }
                }
            }
            ss_fa_store<T, DJ>(gq + gb, dq, row, t, d, L.gt, scale, scale);
        }
    }
}

// Tile shapes per head width: forward key tile, dK/dV query tile, dQ key tile (64 rows per block throughout).
#define SS_FA_D(TN, T, DD, FBC, KBQ, QBK) \
    extern "C" __global__ void __launch_bounds__(SS_FA_THREADS) ss_flash_fwd_##TN##_d##DD( \
        const T* q, const T* k, const T* v, T* out, float* lse, ss_i64 bh, int t, int d, float scale, \
        SS_ATT_MASK_PARAMS, SS_ATT_LAYOUT_PARAMS) { \
        ss_fa_fwd<T, DD, FBC>(q, k, v, out, lse, bh, t, d, scale, SS_ATT_MASK, SS_ATT_LAYOUT); \
    } \
    extern "C" __global__ void __launch_bounds__(SS_FA_THREADS) ss_flash_bwd_dkdv_##TN##_d##DD( \
        const T* q, const T* k, const T* v, const T* gout, const float* lse, const float* delta, T* gk, T* gv, \
        ss_i64 bh, int t, int d, float scale, SS_ATT_MASK_PARAMS, SS_ATT_LAYOUT_PARAMS) { \
        ss_fa_bwd_dkdv<T, DD, KBQ>(q, k, v, gout, lse, delta, gk, gv, bh, t, d, scale, SS_ATT_MASK, SS_ATT_LAYOUT); \
    } \
    extern "C" __global__ void __launch_bounds__(SS_FA_THREADS) ss_flash_bwd_dq_##TN##_d##DD( \
        const T* q, const T* k, const T* v, const T* gout, const float* lse, const float* delta, T* gq, ss_i64 bh, \
        int t, int d, float scale, SS_ATT_MASK_PARAMS, SS_ATT_LAYOUT_PARAMS) { \
        ss_fa_bwd_dq<T, DD, QBK>(q, k, v, gout, lse, delta, gq, bh, t, d, scale, SS_ATT_MASK, SS_ATT_LAYOUT); \
    }
#define SS_FA_T(TN, T) \
    SS_FA_D(TN, T, 32, 64, 64, 64) \
    SS_FA_D(TN, T, 64, 64, 64, 64) \
    SS_FA_D(TN, T, 128, 64, 32, 32)
SS_FA_T(bf16, ss_bf16)
SS_FA_T(f16, ss_f16)
// ===== end of family: flash =====
