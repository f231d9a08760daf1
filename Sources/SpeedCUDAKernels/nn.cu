// Fused row kernels: softmax/log-softmax, layer norm, RMS norm, rotary embedding, embedding, cross-entropy (forward
// and backward).
// Invariant: one block (or warp) owns a row, so no two threads write one element except the embedding scatter-add
// (fp32/fp64 atomics); saved statistics (mean, rstd, lse) are fp32, or fp64 for fp64 inputs, as on the CPU.
// Entry points: `ss_softmax_*`, `ss_softmax_bwd_*`, `ss_layernorm_*`, `ss_rmsnorm_*`, `ss_rotary_*`, `ss_embedding_*`,
//   `ss_cross_entropy_*`.
#include "common.cuh"

// ===== family: nn =====

/// The CPU's softmax normaliser: a row whose max is infinite (all -inf, or containing +inf) gives NaN.
template <typename A> __device__ __forceinline__ A ss_ms_sum(SSMaxSum<A> ms) {
    return (ms.m == -ss_inf<A>() || ms.m == ss_inf<A>()) ? ss_nan<A>() : ms.s;
}

// ----- softmax over the last axis: y = exp(x - m) / sum, or x - (m + log sum) when logMode -----

template <typename T>
__device__ __forceinline__ void ss_softmax_body(const T* x, T* y, ss_i64 rows, ss_i64 n, int logMode) {
    typedef typename SSNum<T>::acc A;
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        SSMaxSum<A> ms;
        ms.m = -ss_inf<A>();
        ms.s = (A)0;
        for (ss_i64 j = threadIdx.x; j < n; j += blockDim.x) ms = ss_ms_push(ms, ss_ld(xr[j]));
        ms = ss_block_ms(ms);
        const A sum = ss_ms_sum(ms);
        if (logMode) {
            const A lse = ms.m + ss_log(sum);
            for (ss_i64 j = threadIdx.x; j < n; j += blockDim.x) yr[j] = ss_st<T>(ss_ld(xr[j]) - lse);
        } else {
            const A inv = (A)1 / sum;
            for (ss_i64 j = threadIdx.x; j < n; j += blockDim.x) yr[j] = ss_st<T>(ss_exp(ss_ld(xr[j]) - ms.m) * inv);
        }
    }
}

/// dx = y * (g - sum(g * y)), or g - exp(y) * sum(g) when logMode (y is the forward output).
template <typename T>
__device__ __forceinline__ void ss_softmax_bwd_body(const T* y, const T* g, T* dx, ss_i64 rows, ss_i64 n, int logMode) {
    typedef typename SSNum<T>::acc A;
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* yr = y + r * n;
        const T* gr = g + r * n;
        T* dr = dx + r * n;
        A s = (A)0;
        if (logMode) {
            for (ss_i64 j = threadIdx.x; j < n; j += blockDim.x) s += ss_ld(gr[j]);
        } else {
            for (ss_i64 j = threadIdx.x; j < n; j += blockDim.x) s += ss_ld(gr[j]) * ss_ld(yr[j]);
        }
        s = ss_block_sum(s);
        if (logMode) {
            for (ss_i64 j = threadIdx.x; j < n; j += blockDim.x)
                dr[j] = ss_st<T>(ss_ld(gr[j]) - ss_exp(ss_ld(yr[j])) * s);
        } else {
            for (ss_i64 j = threadIdx.x; j < n; j += blockDim.x) {
                const A yv = ss_ld(yr[j]);
                dr[j] = ss_st<T>(yv * (ss_ld(gr[j]) - s));
            }
        }
    }
}

#define SS_SOFTMAX(TN, T) \
    extern "C" __global__ void ss_softmax_##TN(const T* x, T* y, ss_i64 rows, ss_i64 n, int logMode) { \
        ss_softmax_body<T>(x, y, rows, n, logMode); \
    } \
    extern "C" __global__ void ss_softmax_bwd_##TN(const T* y, const T* g, T* dx, ss_i64 rows, ss_i64 n, int logMode) { \
        ss_softmax_bwd_body<T>(y, g, dx, rows, n, logMode); \
    }
SS_SOFTMAX(f32, float)
SS_SOFTMAX(f64, double)
SS_SOFTMAX(bf16, ss_bf16)
SS_SOFTMAX(f16, ss_f16)

// ----- layer norm over the last axis (c features); weight and bias may be null -----

/// y = (x - mean) * rstd * w + b; saves mean and rstd = 1 / sqrt(var + eps) (two-pass variance, as the CPU).
template <typename T>
__device__ __forceinline__ void ss_layernorm_body(const T* x, const T* w, const T* b, T* y, typename SSNum<T>::acc* mean,
                                                  typename SSNum<T>::acc* rstd, ss_i64 rows, ss_i64 c, double eps) {
    typedef typename SSNum<T>::acc A;
    const A epsA = (A)eps, count = (A)c;
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        A s = (A)0;
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) s += ss_ld(xr[j]);
        const A mu = ss_block_sum(s) / count;
        A v = (A)0;
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
            const A d = ss_ld(xr[j]) - mu;
            v += d * d;
        }
        const A inv = (A)1 / ss_sqrt(ss_block_sum(v) / count + epsA);
        if (threadIdx.x == 0) {
            mean[r] = mu;
            rstd[r] = inv;
        }
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
            A o = (ss_ld(xr[j]) - mu) * inv;
            if (w) o = o * ss_ld(w[j]);
            if (b) o = o + ss_ld(b[j]);
            yr[j] = ss_st<T>(o);
        }
    }
}

/// dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)) for one row (skipped when dx is null); returns nothing,
/// accumulating g * xhat and g of the columns this thread owns (j = threadIdx.x + k * blockDim.x) through `acc`.
template <typename T, typename Acc>
__device__ __forceinline__ void ss_layernorm_bwd_row(const T* xr, const T* w, const T* gr, T* dr, typename SSNum<T>::acc mu,
                                                     typename SSNum<T>::acc inv, ss_i64 c, Acc acc) {
    typedef typename SSNum<T>::acc A;
    A sumD = (A)0, sumDX = (A)0;
    for (ss_i64 j = threadIdx.x, k = 0; j < c; j += blockDim.x, ++k) {
        const A xhat = (ss_ld(xr[j]) - mu) * inv;
        const A gj = ss_ld(gr[j]);
        const A d = w ? gj * ss_ld(w[j]) : gj;
        sumD += d;
        sumDX += d * xhat;
        acc(k, j, gj * xhat, gj);
    }
    if (dr) {
        ss_block_sum2(sumD, sumDX);
        const A mD = sumD / (A)c, mDX = sumDX / (A)c;
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
            const A xhat = (ss_ld(xr[j]) - mu) * inv;
            const A gj = ss_ld(gr[j]);
            const A d = w ? gj * ss_ld(w[j]) : gj;
            dr[j] = ss_st<T>(inv * (d - mD - xhat * mDX));
        }
    }
}

#define SS_LN_REG_COLS 8

/// Layer-norm backward over the rows blockIdx.x, blockIdx.x + gridDim.x, ... When wsW / wsB are given, block b
/// writes its partial sums of g * xhat and g over those rows to wsW/wsB[b * c ..< (b + 1) * c];
/// ss_layernorm_bwd_params then adds the gridDim.x partial rows into gw / gb. The partials live in registers
/// when c <= 8 * blockDim.x, else in the workspace row itself (each thread owns the same columns in every row).
template <typename T>
__device__ __forceinline__ void ss_layernorm_bwd_body(const T* x, const T* w, const typename SSNum<T>::acc* mean,
                                                      const typename SSNum<T>::acc* rstd, const T* g, T* dx,
                                                      typename SSNum<T>::acc* wsW, typename SSNum<T>::acc* wsB,
                                                      ss_i64 rows, ss_i64 c) {
    typedef typename SSNum<T>::acc A;
    A* pw = wsW ? wsW + (ss_i64)blockIdx.x * c : nullptr;
    A* pb = wsB ? wsB + (ss_i64)blockIdx.x * c : nullptr;
    if (c <= (ss_i64)SS_LN_REG_COLS * blockDim.x) {
        A aw[SS_LN_REG_COLS], ab[SS_LN_REG_COLS];
#pragma unroll
        for (int k = 0; k < SS_LN_REG_COLS; ++k) {
            aw[k] = (A)0;
            ab[k] = (A)0;
        }
        for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
            ss_layernorm_bwd_row<T>(x + r * c, w, g + r * c, dx ? dx + r * c : nullptr, mean[r], rstd[r], c,
                                    [&](ss_i64 k, ss_i64, A gx, A gj) {
#pragma unroll
                                        for (int kk = 0; kk < SS_LN_REG_COLS; ++kk) {
                                            if (kk == k) {
                                                aw[kk] += gx;
                                                ab[kk] += gj;
                                            }
                                        }
                                    });
        }
#pragma unroll
        for (int k = 0; k < SS_LN_REG_COLS; ++k) {
            const ss_i64 j = threadIdx.x + (ss_i64)k * blockDim.x;
            if (j < c) {
                if (pw) pw[j] = aw[k];
                if (pb) pb[j] = ab[k];
            }
        }
    } else {
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
            if (pw) pw[j] = (A)0;
            if (pb) pb[j] = (A)0;
        }
        for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
            ss_layernorm_bwd_row<T>(x + r * c, w, g + r * c, dx ? dx + r * c : nullptr, mean[r], rstd[r], c,
                                    [&](ss_i64, ss_i64 j, A gx, A gj) {
                                        if (pw) pw[j] += gx;
                                        if (pb) pb[j] += gj;
                                    });
        }
    }
}

/// gw[j] += sum over b < blocks of wsW[b * c + j] (the same for gb); either may be null.
template <typename T>
__device__ __forceinline__ void ss_layernorm_bwd_params_body(const typename SSNum<T>::acc* wsW,
                                                             const typename SSNum<T>::acc* wsB, ss_i64 blocks,
                                                             ss_i64 c, T* gw, T* gb) {
    typedef typename SSNum<T>::acc A;
    for (ss_i64 j = SS_TID; j < c; j += SS_STRIDE) {
        if (gw) {
            A s = (A)0;
            for (ss_i64 b = 0; b < blocks; ++b) s += wsW[b * c + j];
            gw[j] = ss_st<T>(ss_ld(gw[j]) + s);
        }
        if (gb) {
            A s = (A)0;
            for (ss_i64 b = 0; b < blocks; ++b) s += wsB[b * c + j];
            gb[j] = ss_st<T>(ss_ld(gb[j]) + s);
        }
    }
}

#define SS_LAYERNORM(TN, T, A) \
    extern "C" __global__ void ss_layernorm_##TN(const T* x, const T* w, const T* b, T* y, A* mean, A* rstd, \
                                                 ss_i64 rows, ss_i64 c, double eps) { \
        ss_layernorm_body<T>(x, w, b, y, mean, rstd, rows, c, eps); \
    } \
    extern "C" __global__ void ss_layernorm_bwd_##TN(const T* x, const T* w, const A* mean, const A* rstd, const T* g, \
                                                     T* dx, A* wsW, A* wsB, ss_i64 rows, ss_i64 c) { \
        ss_layernorm_bwd_body<T>(x, w, mean, rstd, g, dx, wsW, wsB, rows, c); \
    } \
    extern "C" __global__ void ss_layernorm_bwd_params_##TN(const A* wsW, const A* wsB, ss_i64 blocks, ss_i64 c, \
                                                            T* gw, T* gb) { \
        ss_layernorm_bwd_params_body<T>(wsW, wsB, blocks, c, gw, gb); \
    }
SS_LAYERNORM(f32, float, float)
SS_LAYERNORM(f64, double, double)
SS_LAYERNORM(bf16, ss_bf16, float)
SS_LAYERNORM(f16, ss_f16, float)

// ----- RMS norm over the last axis (HF's LlamaRMSNorm): y = w * (x * rstd), rstd = 1 / sqrt(mean(x^2) + eps) -----

template <typename T>
__device__ __forceinline__ void ss_rmsnorm_body(const T* x, const T* w, T* y, typename SSNum<T>::acc* rstd, ss_i64 rows,
                                                ss_i64 c, double eps) {
    typedef typename SSNum<T>::acc A;
    const A epsA = (A)eps;
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        A s = (A)0;
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
            const A v = ss_ld(xr[j]);
            s += v * v;
        }
        const A inv = (A)1 / ss_sqrt(ss_block_sum(s) / (A)c + epsA);
        if (threadIdx.x == 0) rstd[r] = inv;
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
            const A o = ss_ld(xr[j]) * inv;
            yr[j] = ss_st<T>(w ? ss_ld(w[j]) * o : o);
        }
    }
}

/// dx = rstd * (w * g) - x * rstd^3 * mean(w * g * x) (skipped when dx is null) over the rows blockIdx.x,
/// blockIdx.x + gridDim.x, ...; when wsW is given, block b writes its partial sums of g * x * rstd to
/// wsW[b * c ..< (b + 1) * c], which ss_layernorm_bwd_params (wsB null) adds into gw.
template <typename T>
__device__ __forceinline__ void ss_rmsnorm_bwd_body(const T* x, const T* w, const typename SSNum<T>::acc* rstd,
                                                    const T* g, T* dx, typename SSNum<T>::acc* wsW, ss_i64 rows,
                                                    ss_i64 c) {
    typedef typename SSNum<T>::acc A;
    A* pw = wsW ? wsW + (ss_i64)blockIdx.x * c : nullptr;
    if (pw) {
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) pw[j] = (A)0;
    }
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * c;
        const T* gr = g + r * c;
        const A inv = rstd[r];
        A dot = (A)0;
        for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
            const A xj = ss_ld(xr[j]), gj = ss_ld(gr[j]);
            if (pw) pw[j] += gj * (xj * inv);
            dot += (w ? ss_ld(w[j]) * gj : gj) * xj;
        }
        if (dx) {
            const A k = ss_block_sum(dot) * inv * inv * inv / (A)c;
            T* dr = dx + r * c;
            for (ss_i64 j = threadIdx.x; j < c; j += blockDim.x) {
                const A gj = ss_ld(gr[j]);
                dr[j] = ss_st<T>(inv * (w ? ss_ld(w[j]) * gj : gj) - ss_ld(xr[j]) * k);
            }
        }
    }
}

#define SS_RMSNORM(TN, T, A) \
    extern "C" __global__ void ss_rmsnorm_##TN(const T* x, const T* w, T* y, A* rstd, ss_i64 rows, ss_i64 c, \
                                               double eps) { \
        ss_rmsnorm_body<T>(x, w, y, rstd, rows, c, eps); \
    } \
    extern "C" __global__ void ss_rmsnorm_bwd_##TN(const T* x, const T* w, const A* rstd, const T* g, T* dx, A* wsW, \
                                                   ss_i64 rows, ss_i64 c) { \
        ss_rmsnorm_bwd_body<T>(x, w, rstd, g, dx, wsW, rows, c); \
    }
SS_RMSNORM(f32, float, float)
SS_RMSNORM(f64, double, double)
SS_RMSNORM(bf16, ss_bf16, float)
SS_RMSNORM(f16, ss_f16, float)

// ----- rotary embedding, rotate-half: x [N, heads, 2 half], cos/sin [N, half] (A); inverse: by -angle -----

template <typename T>
__device__ __forceinline__ void ss_rotary_body(const T* x, const typename SSNum<T>::acc* cs,
                                               const typename SSNum<T>::acc* sn, T* y, ss_i64 pairs, ss_i64 heads,
                                               ss_i64 half, int inverse) {
    typedef typename SSNum<T>::acc A;
    const A sign = inverse ? (A)-1 : (A)1;
    for (ss_i64 p = SS_TID; p < pairs; p += SS_STRIDE) {
        const ss_i64 row = p / half, j = p - row * half, tab = (row / heads) * half + j, at = row * 2 * half + j;
        const A a = ss_ld(x[at]), b = ss_ld(x[at + half]), c = cs[tab], s = sign * sn[tab];
        y[at] = ss_st<T>(a * c - b * s);
        y[at + half] = ss_st<T>(b * c + a * s);
    }
}

#define SS_ROTARY(TN, T, A) \
    extern "C" __global__ void ss_rotary_##TN(const T* x, const A* cs, const A* sn, T* y, ss_i64 pairs, ss_i64 heads, \
                                              ss_i64 half, int inverse) { \
        ss_rotary_body<T>(x, cs, sn, y, pairs, heads, half, inverse); \
    }
SS_ROTARY(f32, float, float)
SS_ROTARY(f64, double, double)
SS_ROTARY(bf16, ss_bf16, float)
SS_ROTARY(f16, ss_f16, float)

// ----- embedding: out[i, :] = weight[ids[i], :]; backward atomically adds rows into an fp32 (fp64) buffer -----

/// One warp per id. An id outside [0, vocab) writes a zero row and sets *bad = 1 (when bad is not null).
template <typename T, typename I>
__device__ __forceinline__ void ss_embedding_body(const T* weight, const I* ids, T* out, ss_i64 n, ss_i64 c,
                                                  ss_i64 vocab, int* bad) {
    const int lane = threadIdx.x & 31;
    const ss_i64 warps = SS_STRIDE >> 5;
    const ss_i64 rowBytes = c * (ss_i64)sizeof(T);
    const bool vec = (rowBytes & 15) == 0 && ss_aligned(weight, 16) && ss_aligned(out, 16);
    for (ss_i64 i = SS_TID >> 5; i < n; i += warps) {
        const ss_i64 id = (ss_i64)ids[i];
        const bool ok = id >= 0 && id < vocab;
        if (!ok && bad && lane == 0) atomicOr(bad, 1);
        if (vec) {
            const ss_i64 nv = rowBytes >> 4;
            const uint4* src = reinterpret_cast<const uint4*>(weight + (ok ? id : 0) * c);
            uint4* dst = reinterpret_cast<uint4*>(out + i * c);
            for (ss_i64 k = lane; k < nv; k += 32) dst[k] = ok ? src[k] : make_uint4(0u, 0u, 0u, 0u);
        } else {
            const T* src = weight + (ok ? id : 0) * c;
            T* dst = out + i * c;
            const T zero = ss_st<T>((typename SSNum<T>::acc)0);
            for (ss_i64 k = lane; k < c; k += 32) dst[k] = ok ? src[k] : zero;
        }
    }
}

/// gradWeight[ids[i], :] += gradOut[i, :] in the accumulation type (atomicAdd); ids out of range are skipped.
/// For a bf16/fp16 gradWeight the host passes an fp32 copy and rounds it back afterwards (the CPU's promotion).
template <typename T, typename I>
__device__ __forceinline__ void ss_embedding_bwd_body(const I* ids, const T* gradOut, typename SSNum<T>::acc* gradWeight,
                                                      ss_i64 n, ss_i64 c, ss_i64 vocab) {
    const int lane = threadIdx.x & 31;
    const ss_i64 warps = SS_STRIDE >> 5;
    for (ss_i64 i = SS_TID >> 5; i < n; i += warps) {
        const ss_i64 id = (ss_i64)ids[i];
        if (id < 0 || id >= vocab) continue;
        const T* src = gradOut + i * c;
        typename SSNum<T>::acc* dst = gradWeight + id * c;
        for (ss_i64 k = lane; k < c; k += 32) atomicAdd(dst + k, ss_ld(src[k]));
    }
}

#define SS_EMBEDDING(TN, T, IN, I) \
    extern "C" __global__ void ss_embedding_##TN##_##IN(const T* weight, const I* ids, T* out, ss_i64 n, ss_i64 c, \
                                                        ss_i64 vocab, int* bad) { \
        ss_embedding_body<T, I>(weight, ids, out, n, c, vocab, bad); \
    } \
    extern "C" __global__ void ss_embedding_bwd_##TN##_##IN(const I* ids, const T* gradOut, SSNum<T>::acc* gradWeight, \
                                                            ss_i64 n, ss_i64 c, ss_i64 vocab) { \
        ss_embedding_bwd_body<T, I>(ids, gradOut, gradWeight, n, c, vocab); \
    }
#define SS_EMBEDDING_T(TN, T) SS_EMBEDDING(TN, T, i32, int) SS_EMBEDDING(TN, T, i64, ss_i64)
SS_EMBEDDING_T(f32, float)
SS_EMBEDDING_T(f64, double)
SS_EMBEDDING_T(bf16, ss_bf16)
SS_EMBEDDING_T(f16, ss_f16)

// ----- cross-entropy over rows of logits [rows, v] with integer targets -----

/// lse[r] = m + log(sum exp(x - m)); loss[r] = lse - x[t] (0 where t == ignoreIndex). A target outside [0, v)
/// gives loss NaN and sets *bad = 1 (when bad is not null). One block per row.
template <typename T, typename I>
__device__ __forceinline__ void ss_cross_entropy_body(const T* logits, const I* targets, typename SSNum<T>::acc* loss,
                                                      typename SSNum<T>::acc* lse, ss_i64 rows, ss_i64 v,
                                                      ss_i64 ignoreIndex, int* bad) {
    typedef typename SSNum<T>::acc A;
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = logits + r * v;
        SSMaxSum<A> ms;
        ms.m = -ss_inf<A>();
        ms.s = (A)0;
        for (ss_i64 j = threadIdx.x; j < v; j += blockDim.x) ms = ss_ms_push(ms, ss_ld(xr[j]));
        ms = ss_block_ms(ms);
        if (threadIdx.x == 0) {
            const A l = ms.m + ss_log(ss_ms_sum(ms));
            const ss_i64 t = (ss_i64)targets[r];
            lse[r] = l;
            if (t == ignoreIndex) {
                loss[r] = (A)0;
            } else if (t < 0 || t >= v) {
                loss[r] = ss_nan<A>();
                if (bad) atomicOr(bad, 1);
            } else {
                loss[r] = l - ss_ld(xr[t]);
            }
        }
    }
}

/// gradLogits[r, j] = gradLoss[r] * exp(x - lse[r]), minus gradLoss[r] at the target; zero rows where ignored.
template <typename T, typename I>
__device__ __forceinline__ void ss_cross_entropy_bwd_body(const T* logits, const I* targets,
                                                          const typename SSNum<T>::acc* lse,
                                                          const typename SSNum<T>::acc* gradLoss, T* gradLogits,
                                                          ss_i64 rows, ss_i64 v, ss_i64 ignoreIndex) {
    typedef typename SSNum<T>::acc A;
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = logits + r * v;
        T* dr = gradLogits + r * v;
        const ss_i64 t = (ss_i64)targets[r];
        if (t == ignoreIndex) {
            for (ss_i64 j = threadIdx.x; j < v; j += blockDim.x) dr[j] = ss_st<T>((A)0);
            continue;
        }
        const A g = gradLoss[r], l = lse[r];
        for (ss_i64 j = threadIdx.x; j < v; j += blockDim.x) {
            A d = ss_mul_rn(ss_exp(ss_ld(xr[j]) - l), g);
            if (j == t) d = d - g;
            dr[j] = ss_st<T>(d);
        }
    }
}

#define SS_CROSS_ENTROPY(TN, T, A, IN, I) \
    extern "C" __global__ void ss_cross_entropy_##TN##_##IN(const T* logits, const I* targets, A* loss, A* lse, \
                                                            ss_i64 rows, ss_i64 v, ss_i64 ignoreIndex, int* bad) { \
        ss_cross_entropy_body<T, I>(logits, targets, loss, lse, rows, v, ignoreIndex, bad); \
    } \
    extern "C" __global__ void ss_cross_entropy_bwd_##TN##_##IN(const T* logits, const I* targets, const A* lse, \
                                                                const A* gradLoss, T* gradLogits, ss_i64 rows, ss_i64 v, \
                                                                ss_i64 ignoreIndex) { \
        ss_cross_entropy_bwd_body<T, I>(logits, targets, lse, gradLoss, gradLogits, rows, v, ignoreIndex); \
    }
#define SS_CROSS_ENTROPY_T(TN, T, A) SS_CROSS_ENTROPY(TN, T, A, i32, int) SS_CROSS_ENTROPY(TN, T, A, i64, ss_i64)
SS_CROSS_ENTROPY_T(f32, float, float)
SS_CROSS_ENTROPY_T(f64, double, double)
SS_CROSS_ENTROPY_T(bf16, ss_bf16, float)
SS_CROSS_ENTROPY_T(f16, ss_f16, float)
// ===== end of family: nn =====
