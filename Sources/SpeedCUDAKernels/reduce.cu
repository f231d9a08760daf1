// Reduction kernels over [outer, count, inner] (sum, max, sum of squares) and the non-finite flag.
// Invariant: every result is combined in a fixed order (no atomics), so a reduction is deterministic for a given
// launch configuration; fp32/bf16/fp16 accumulate in fp32 and fp64 in fp64; max propagates NaN like the CPU.
// Entry points: `ss_reduce_rows_*`, `ss_reduce_rows_warp_*`, `ss_reduce_cols_*`, `ss_reduce_finish_*`, `ss_nonfinite_*`.
#include "common.cuh"

// ===== family: reduce =====

#define SS_R_SUM 0
#define SS_R_MAX 1
#define SS_R_SUMSQ 2

template <int OP, typename A> __device__ __forceinline__ A ss_r_identity() {
    if constexpr (OP == SS_R_MAX) return -ss_inf<A>();
    else return (A)0;
}
template <int OP, typename A> __device__ __forceinline__ A ss_r_push(A acc, A x) {
    if constexpr (OP == SS_R_MAX) return ss_max_nan(acc, x);
    else if constexpr (OP == SS_R_SUMSQ) return acc + x * x;
    else return acc + x;
}
/// Combines two partial results (partial sums of squares are plain sums).
template <int OP, typename A> __device__ __forceinline__ A ss_r_combine(A a, A b) {
    if constexpr (OP == SS_R_MAX) return ss_max_nan(a, b);
    else return a + b;
}
template <int OP, typename A> __device__ __forceinline__ A ss_r_warp(A v) {
    if constexpr (OP == SS_R_MAX) return ss_warp_max(v);
    else return ss_warp_sum(v);
}
template <int OP, typename A> __device__ __forceinline__ A ss_r_block(A v) {
    if constexpr (OP == SS_R_MAX) return ss_block_max(v);
    else return ss_block_sum(v);
}

// ----- inner == 1: rows of `count` contiguous elements -----
// Work item w = row * splits + s covers elements [s * chunk, min(count, (s + 1) * chunk)) of `row`, one block per
// item. splits == 1 writes out[row] directly; otherwise partial[w] (accumulation type) for ss_reduce_finish.

template <int OP, typename T>
__device__ __forceinline__ void ss_reduce_rows_body(const T* x, ss_i64 outer, ss_i64 count, ss_i64 splits,
                                                    typename SSNum<T>::acc* partial, T* out) {
    typedef typename SSNum<T>::acc A;
    const ss_i64 chunk = (count + splits - 1) / splits;
    const ss_i64 bd = blockDim.x;
    for (ss_i64 w = blockIdx.x; w < outer * splits; w += gridDim.x) {
        const ss_i64 row = w / splits, s = w - row * splits;
        const ss_i64 lo = s * chunk;
        const ss_i64 hi = lo + chunk < count ? lo + chunk : count;
        const T* p = x + row * count;
        A a0 = ss_r_identity<OP, A>(), a1 = a0, a2 = a0, a3 = a0;
        ss_i64 j = lo + threadIdx.x;
        for (; j + 3 * bd < hi; j += 4 * bd) {
            a0 = ss_r_push<OP>(a0, ss_ld(p[j]));
            a1 = ss_r_push<OP>(a1, ss_ld(p[j + bd]));
            a2 = ss_r_push<OP>(a2, ss_ld(p[j + 2 * bd]));
            a3 = ss_r_push<OP>(a3, ss_ld(p[j + 3 * bd]));
        }
        for (; j < hi; j += bd) a0 = ss_r_push<OP>(a0, ss_ld(p[j]));
        A acc = ss_r_combine<OP>(ss_r_combine<OP>(a0, a1), ss_r_combine<OP>(a2, a3));
        acc = ss_r_block<OP>(acc);
        if (threadIdx.x == 0) {
            if (splits == 1) out[row] = ss_st<T>(acc);
            else partial[w] = acc;
        }
    }
}

/// One warp per row (short rows, many of them): no block barriers.
template <int OP, typename T>
__device__ __forceinline__ void ss_reduce_rows_warp_body(const T* x, ss_i64 outer, ss_i64 count, T* out) {
    typedef typename SSNum<T>::acc A;
    const int lane = threadIdx.x & 31;
    const ss_i64 warps = SS_STRIDE >> 5;
    for (ss_i64 row = SS_TID >> 5; row < outer; row += warps) {
        const T* p = x + row * count;
        A acc = ss_r_identity<OP, A>();
        for (ss_i64 j = lane; j < count; j += 32) acc = ss_r_push<OP>(acc, ss_ld(p[j]));
        acc = ss_r_warp<OP>(acc);
        if (lane == 0) out[row] = ss_st<T>(acc);
    }
}

// ----- inner > 1: out[o, j] = reduce over c of x[o, c, j]; block (32, 8): 32 adjacent columns x 8 slices -----
// Work item w = ((o * tiles + tile) * splits + s); splits > 1 writes partial[(o * inner + j) * splits + s].

template <int OP, typename T>
__device__ __forceinline__ void ss_reduce_cols_body(const T* x, ss_i64 outer, ss_i64 count, ss_i64 inner, ss_i64 splits,
                                                    typename SSNum<T>::acc* partial, T* out) {
    typedef typename SSNum<T>::acc A;
    __shared__ A sh[8][33];
    const ss_i64 tiles = (inner + 31) / 32, chunk = (count + splits - 1) / splits;
    const int tx = threadIdx.x, ty = threadIdx.y;
    for (ss_i64 w = blockIdx.x; w < outer * tiles * splits; w += gridDim.x) {
        const ss_i64 s = w % splits, rest = w / splits;
        const ss_i64 tile = rest % tiles, o = rest / tiles;
        const ss_i64 j = tile * 32 + tx;
        const ss_i64 lo = s * chunk;
        const ss_i64 hi = lo + chunk < count ? lo + chunk : count;
        A acc = ss_r_identity<OP, A>();
        if (j < inner) {
            const T* p = x + o * count * inner + j;
            for (ss_i64 c = lo + ty; c < hi; c += 8) acc = ss_r_push<OP>(acc, ss_ld(p[c * inner]));
        }
        sh[ty][tx] = acc;
        __syncthreads();
        if (ty == 0) {
#pragma unroll
            for (int k = 1; k < 8; ++k) acc = ss_r_combine<OP>(acc, sh[k][tx]);
            if (j < inner) {
                const ss_i64 idx = o * inner + j;
                if (splits == 1) out[idx] = ss_st<T>(acc);
                else partial[idx * splits + s] = acc;
            }
        }
        __syncthreads();
    }
}

// ----- finish: out[r] = combine of partial[r * splits ..< (r + 1) * splits], one block per row -----

template <int OP, typename T>
__device__ __forceinline__ void ss_reduce_finish_body(const typename SSNum<T>::acc* partial, ss_i64 rows, ss_i64 splits,
                                                      T* out) {
    typedef typename SSNum<T>::acc A;
    for (ss_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        A acc = ss_r_identity<OP, A>();
        for (ss_i64 j = threadIdx.x; j < splits; j += blockDim.x) acc = ss_r_combine<OP>(acc, partial[r * splits + j]);
        acc = ss_r_block<OP>(acc);
        if (threadIdx.x == 0) out[r] = ss_st<T>(acc);
    }
}

#define SS_REDUCE_T(NAME, OP, TN, T) \
    extern "C" __global__ void ss_reduce_rows_##NAME##_##TN(const T* x, ss_i64 outer, ss_i64 count, ss_i64 splits, \
                                                            SSNum<T>::acc* partial, T* out) { \
        ss_reduce_rows_body<OP, T>(x, outer, count, splits, partial, out); \
    } \
    extern "C" __global__ void ss_reduce_rows_warp_##NAME##_##TN(const T* x, ss_i64 outer, ss_i64 count, T* out) { \
        ss_reduce_rows_warp_body<OP, T>(x, outer, count, out); \
    } \
    extern "C" __global__ void ss_reduce_cols_##NAME##_##TN(const T* x, ss_i64 outer, ss_i64 count, ss_i64 inner, \
                                                            ss_i64 splits, SSNum<T>::acc* partial, T* out) { \
        ss_reduce_cols_body<OP, T>(x, outer, count, inner, splits, partial, out); \
    } \
    extern "C" __global__ void ss_reduce_finish_##NAME##_##TN(const SSNum<T>::acc* partial, ss_i64 rows, \
                                                              ss_i64 splits, T* out) { \
        ss_reduce_finish_body<OP, T>(partial, rows, splits, out); \
    }
#define SS_REDUCE(NAME, OP) \
    SS_REDUCE_T(NAME, OP, f32, float) SS_REDUCE_T(NAME, OP, f64, double) \
    SS_REDUCE_T(NAME, OP, bf16, ss_bf16) SS_REDUCE_T(NAME, OP, f16, ss_f16)
SS_REDUCE(sum, SS_R_SUM)
SS_REDUCE(max, SS_R_MAX)
SS_REDUCE(sumsq, SS_R_SUMSQ)

// ----- non-finite flag: *flag = 1 when any element is inf or NaN (the host zeroes *flag first) -----

__device__ __forceinline__ bool ss_nonfinite_elem(float v) { return !ss_isfinite(v); }
__device__ __forceinline__ bool ss_nonfinite_elem(double v) { return !ss_isfinite(v); }
__device__ __forceinline__ bool ss_nonfinite_elem(ss_bf16 v) { return (v.bits & 0x7f80u) == 0x7f80u; }
__device__ __forceinline__ bool ss_nonfinite_elem(ss_f16 v) { return (v.bits & 0x7c00u) == 0x7c00u; }

template <typename T> __device__ __forceinline__ void ss_nonfinite_body(const T* x, ss_i64 n, int* flag) {
    bool bad = false;
    for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) bad = bad || ss_nonfinite_elem(x[i]);
    if (__any_sync(SS_FULL_MASK, bad) && (threadIdx.x & 31) == 0) atomicOr(flag, 1);
}

#define SS_NONFINITE(TN, T) \
    extern "C" __global__ void ss_nonfinite_##TN(const T* x, ss_i64 n, int* flag) { ss_nonfinite_body<T>(x, n, flag); }
SS_NONFINITE(f32, float)
SS_NONFINITE(f64, double)
SS_NONFINITE(bf16, ss_bf16)
SS_NONFINITE(f16, ss_f16)
// ===== end of family: reduce =====
