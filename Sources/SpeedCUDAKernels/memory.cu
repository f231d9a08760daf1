// Creation and movement kernels: fill, cast, strided copy (optionally accumulating), dropout, random.
// Invariant: results are bit-identical to CPUBackend's (fill/cast/copy/dropout exactly; random up to the last
// ulp of the device's fp64 log/cos), because every element depends only on its own inputs and its RNG counter.
// Entry points: `ss_fill_*`, `ss_cast_*`, `ss_copy_*`, `ss_copy_acc_*`, `ss_dropout_*`, `ss_random_*`.
#include "common.cuh"

// ===== family: memory =====

/// Applies `f(i, x[i])` to n elements, in vector packs of 16 bytes (of the wider type) when both pointers allow.
template <typename TIn, typename TOut, typename Fn>
__device__ __forceinline__ void ss_map(const TIn* x, TOut* y, ss_i64 n, Fn f) {
    constexpr int N = (int)(16 / (sizeof(TIn) > sizeof(TOut) ? sizeof(TIn) : sizeof(TOut)));
    const ss_i64 tid = SS_TID, stride = SS_STRIDE;
    if (ss_aligned(x, sizeof(TIn) * N) && ss_aligned(y, sizeof(TOut) * N)) {
        const ss_i64 nv = n / N;
        const SSPack<TIn, N>* xv = reinterpret_cast<const SSPack<TIn, N>*>(x);
        SSPack<TOut, N>* yv = reinterpret_cast<SSPack<TOut, N>*>(y);
        for (ss_i64 i = tid; i < nv; i += stride) {
            const SSPack<TIn, N> a = xv[i];
            SSPack<TOut, N> b;
#pragma unroll
            for (int k = 0; k < N; ++k) b.v[k] = f(i * N + k, a.v[k]);
            yv[i] = b;
        }
        for (ss_i64 i = nv * N + tid; i < n; i += stride) y[i] = f(i, x[i]);
    } else {
        for (ss_i64 i = tid; i < n; i += stride) y[i] = f(i, x[i]);
    }
}

// ----- fill: the host passes the element's bit pattern (BFloat16(value).bitPattern, Float16(value), ...) -----

template <typename U> __device__ __forceinline__ void ss_fill_body(U* out, ss_i64 n, U v) {
    constexpr int N = (int)(16 / sizeof(U));
    const ss_i64 tid = SS_TID, stride = SS_STRIDE;
    ss_i64 head = (ss_i64)(((16u - (ss_u32)((ss_u64)out & 15u)) & 15u) / sizeof(U));
    if (((ss_u64)out % sizeof(U)) != 0 || head > n) head = n;
    for (ss_i64 i = tid; i < head; i += stride) out[i] = v;
    const ss_i64 nv = (n - head) / N;
    SSPack<U, N> pk;
#pragma unroll
    for (int k = 0; k < N; ++k) pk.v[k] = v;
    SSPack<U, N>* o = reinterpret_cast<SSPack<U, N>*>(out + head);
    for (ss_i64 i = tid; i < nv; i += stride) o[i] = pk;
    for (ss_i64 i = head + nv * N + tid; i < n; i += stride) out[i] = v;
}

extern "C" __global__ void ss_fill_b16(ss_u16* out, ss_i64 n, ss_u16 bits) { ss_fill_body<ss_u16>(out, n, bits); }
extern "C" __global__ void ss_fill_b32(ss_u32* out, ss_i64 n, ss_u32 bits) { ss_fill_body<ss_u32>(out, n, bits); }
extern "C" __global__ void ss_fill_b64(ss_u64* out, ss_i64 n, ss_u64 bits) { ss_fill_body<ss_u64>(out, n, bits); }

// ----- cast: out[i] = convert(x[i]) between any two of f32, f64, bf16, f16, i32, i64 -----

template <typename F, typename T> __device__ __forceinline__ void ss_cast_body(const F* x, T* y, ss_i64 n) {
    ss_map(x, y, n, [](ss_i64, F v) { return ss_convert<F, T>(v); });
}

#define SS_CAST(FN, F, TN, T) \
    extern "C" __global__ void ss_cast_##FN##_##TN(const F* x, T* y, ss_i64 n) { ss_cast_body<F, T>(x, y, n); }
#define SS_CAST_FROM(FN, F) \
    SS_CAST(FN, F, f32, float) SS_CAST(FN, F, f64, double) SS_CAST(FN, F, bf16, ss_bf16) \
    SS_CAST(FN, F, f16, ss_f16) SS_CAST(FN, F, i32, int) SS_CAST(FN, F, i64, ss_i64)
SS_CAST_FROM(f32, float)
SS_CAST_FROM(f64, double)
SS_CAST_FROM(bf16, ss_bf16)
SS_CAST_FROM(f16, ss_f16)
SS_CAST_FROM(i32, int)
SS_CAST_FROM(i64, ss_i64)

// ----- copy: dst[outLayout(i)] = src[layout(i)] (or +=), the gather behind permute/expand/slice/concat -----
// src and dst already include the layouts' offsets; ix.strides[0] = source strides, ix.strides[1] = destination.

template <typename U, typename IDX>
__device__ __forceinline__ void ss_copy_general(const U* src, U* dst, ss_i64 n, const SSIndexer& ix) {
    for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) {
        ss_i64 off[2];
        ss_offsets<2, IDX>(ix, i, off);
        dst[off[1]] = src[off[0]];
    }
}

template <typename U> __device__ __forceinline__ void ss_copy_body(const U* src, U* dst, ss_i64 n, const SSIndexer& ix) {
    if (ix.rank <= 1) {
        const ss_i64 s0 = ix.rank == 1 ? ix.strides[0][0] : 0, s1 = ix.rank == 1 ? ix.strides[1][0] : 0;
        if (s0 == 1 && s1 == 1) {
            ss_map(src, dst, n, [](ss_i64, U v) { return v; });
        } else {
            for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) dst[i * s1] = src[i * s0];
        }
    } else if (n <= 0xffffffffLL) {
        ss_copy_general<U, ss_u32>(src, dst, n, ix);
    } else {
        ss_copy_general<U, ss_u64>(src, dst, n, ix);
    }
}

template <typename T, typename IDX>
__device__ __forceinline__ void ss_copy_acc_general(const T* src, T* dst, ss_i64 n, const SSIndexer& ix) {
    for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) {
        ss_i64 off[2];
        ss_offsets<2, IDX>(ix, i, off);
        dst[off[1]] = ss_st<T>(ss_ld(dst[off[1]]) + ss_ld(src[off[0]]));
    }
}

template <typename T> __device__ __forceinline__ void ss_copy_acc_body(const T* src, T* dst, ss_i64 n, const SSIndexer& ix) {
    if (n <= 0xffffffffLL) ss_copy_acc_general<T, ss_u32>(src, dst, n, ix);
    else ss_copy_acc_general<T, ss_u64>(src, dst, n, ix);
}

extern "C" __global__ void ss_copy_b16(const ss_u16* src, ss_u16* dst, ss_i64 n, const SSIndexer ix) {
    ss_copy_body<ss_u16>(src, dst, n, ix);
}
extern "C" __global__ void ss_copy_b32(const ss_u32* src, ss_u32* dst, ss_i64 n, const SSIndexer ix) {
    ss_copy_body<ss_u32>(src, dst, n, ix);
}
extern "C" __global__ void ss_copy_b64(const ss_u64* src, ss_u64* dst, ss_i64 n, const SSIndexer ix) {
    ss_copy_body<ss_u64>(src, dst, n, ix);
}
#define SS_COPY_ACC(TN, T) \
    extern "C" __global__ void ss_copy_acc_##TN(const T* src, T* dst, ss_i64 n, const SSIndexer ix) { \
        ss_copy_acc_body<T>(src, dst, n, ix); \
    }
SS_COPY_ACC(f32, float)
SS_COPY_ACC(f64, double)
SS_COPY_ACC(bf16, ss_bf16)
SS_COPY_ACC(f16, ss_f16)

// ----- dropout: y = uniform(seed, offset + i) < float(p) ? 0 : x * (1 / (1 - p)) -----

template <typename T>
__device__ __forceinline__ void ss_dropout_body(const T* x, T* y, ss_i64 n, double p, ss_u64 seed, ss_u64 offset) {
    typedef typename SSNum<T>::acc A;
    const float threshold = (float)p;
    const A keep = (A)(1.0 / (1.0 - p));
    const ss_u64 swapped = ss_bswap64(seed);
    ss_map(x, y, n, [=](ss_i64 i, T v) {
        const float u = ss_rng_uniform(ss_rng_bits(seed, swapped, offset + (ss_u64)i));
        return ss_st<T>(u < threshold ? (A)0 : ss_ld(v) * keep);
    });
}

#define SS_DROPOUT(TN, T) \
    extern "C" __global__ void ss_dropout_##TN(const T* x, T* y, ss_i64 n, double p, ss_u64 seed, ss_u64 offset) { \
        ss_dropout_body<T>(x, y, n, p, seed, offset); \
    }
SS_DROPOUT(f32, float)
SS_DROPOUT(f64, double)
SS_DROPOUT(bf16, ss_bf16)
SS_DROPOUT(f16, ss_f16)

// ----- random: N(a, b) by Box-Muller on (seed, c) and (~seed, c), or U[a, b); computed in fp64, then cast -----

template <typename T>
__device__ __forceinline__ void ss_random_body(T* out, ss_i64 n, int normal, double a, double b, ss_u64 seed, ss_u64 offset) {
    const ss_u64 swapped = ss_bswap64(seed), nseed = ~seed, nswapped = ss_bswap64(nseed);
    const double twoPi = 6.283185307179586;   // 2 * Double.pi
    for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) {
        const ss_u64 c = offset + (ss_u64)i;
        double value;
        if (normal) {
            const double u1 = ss_rng_uniform_open(ss_rng_bits(seed, swapped, c));
            const double u2 = ss_rng_uniform_open(ss_rng_bits(nseed, nswapped, c));
            const double z = __dmul_rn(__dsqrt_rn(__dmul_rn(-2.0, log(u1))), cos(__dmul_rn(twoPi, u2)));
            value = __dadd_rn(a, __dmul_rn(b, z));
        } else {
            value = __dadd_rn(a, __dmul_rn(__dsub_rn(b, a), ss_rng_uniform_open(ss_rng_bits(seed, swapped, c))));
        }
        out[i] = ss_from_double<T>(value);
    }
}

#define SS_RANDOM(TN, T) \
    extern "C" __global__ void ss_random_##TN(T* out, ss_i64 n, int normal, double a, double b, ss_u64 seed, \
                                              ss_u64 offset) { \
        ss_random_body<T>(out, n, normal, a, b, seed, offset); \
    }
SS_RANDOM(f32, float)
SS_RANDOM(f64, double)
SS_RANDOM(bf16, ss_bf16)
SS_RANDOM(f16, ss_f16)
SS_RANDOM(i32, int)
SS_RANDOM(i64, ss_i64)
// ===== end of family: memory =====
