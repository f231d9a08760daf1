// The prelude of every SpeedCUDA kernel program: CUDAKernelSource inlines it at each `#include "common.cuh"`.
// Integer types, bf16/fp16 storage types and their exact conversions (the CPU's rounding, NaN kept a NaN), the
// counter-based RNG of `RandomStream`, numeric traits (fp32 accumulation for fp32/bf16/fp16, fp64 for fp64),
// vector packs, the broadcasting indexer, warp/block reductions and the attention operand layout.
// Invariant: every program (this header and one family's .cu) compiles for sm_80 and sm_90 with -std=c++17 and no
// warnings (scripts/check_cuda_kernels.py), needs no other header, and exports only extern "C" entry points named
// `ss_<op>_<dtype>` whose results follow the CPU backend (docs/SpeedCUDA-kernels.md).
#ifndef SS_COMMON_CUH
#define SS_COMMON_CUH

// ===== SwiftSpeed CUDA prelude (common) =====
typedef long long ss_i64;
typedef unsigned long long ss_u64;
typedef unsigned int ss_u32;
typedef unsigned short ss_u16;

#define SS_MAX_DIMS 8
#define SS_TID ((ss_i64)blockIdx.x * (ss_i64)blockDim.x + (ss_i64)threadIdx.x)
#define SS_STRIDE ((ss_i64)blockDim.x * (ss_i64)gridDim.x)
#define SS_FULL_MASK 0xffffffffu

/// Storage types of the 16-bit floats: bit patterns only; arithmetic always happens in fp32.
struct ss_bf16 { ss_u16 bits; };
struct ss_f16 { ss_u16 bits; };

__device__ __forceinline__ float ss_inf_f() { return __uint_as_float(0x7f800000u); }
__device__ __forceinline__ float ss_nan_f() { return __uint_as_float(0x7fc00000u); }
__device__ __forceinline__ double ss_inf_d() { return __longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ double ss_nan_d() { return __longlong_as_double(0x7ff8000000000000LL); }
__device__ __forceinline__ bool ss_isnan(float x) { return x != x; }
__device__ __forceinline__ bool ss_isnan(double x) { return x != x; }
__device__ __forceinline__ bool ss_isfinite(float x) { return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u; }
__device__ __forceinline__ bool ss_isfinite(double x) {
    return (__double_as_longlong(x) & 0x7ff0000000000000LL) != 0x7ff0000000000000LL;
}

// ----- 16-bit float conversions (bit-exact with SpeedCore's BFloat16 and Float16) -----

__device__ __forceinline__ float ss_bf16_to_float(ss_bf16 h) { return __uint_as_float(((ss_u32)h.bits) << 16); }

/// Round to nearest even; a NaN keeps its top half with the quiet bit set (BFloat16.init(Float)).
__device__ __forceinline__ ss_bf16 ss_float_to_bf16(float f) {
    const ss_u32 u = __float_as_uint(f);
    ss_bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) r.bits = (ss_u16)((u >> 16) | 0x0040u);
    else r.bits = (ss_u16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return r;
}

__device__ __forceinline__ float ss_f16_to_float(ss_f16 h) {
#ifdef __CUDA_ARCH__
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
    return f;
#else
    // Portable path (host compilers): exponent/mantissa rescaled by 2^112, inf/NaN get the full exponent.
    const ss_u32 w = h.bits;
    const float scaled = __uint_as_float((w & 0x7fffu) << 13) * __uint_as_float(0x77800000u);
    const ss_u32 special = (w & 0x7fffu) >= 0x7c00u ? 0x7f800000u : 0u;
    return __uint_as_float(__float_as_uint(scaled) | special | ((w & 0x8000u) << 16));
#endif
}

/// Round to nearest even, overflow to inf, subnormals kept; a NaN becomes 0x7e00 with its sign (Float16(Float)).
__device__ __forceinline__ ss_f16 ss_float_to_f16(float f) {
    ss_f16 r;
#ifdef __CUDA_ARCH__
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(f));
#else
    const ss_u32 u = __float_as_uint(f), a = u & 0x7fffffffu;
    ss_u32 b;
    if (a >= 0x47800000u) b = a > 0x7f800000u ? 0x7e00u : 0x7c00u;
    else if (a < 0x38800000u) b = __float_as_uint(__uint_as_float(a) + 0.5f) - 0x3f000000u;
    else b = (a + ((a >> 13) & 1u) + 0xc8000fffu) >> 13;
    r.bits = (ss_u16)(b | ((u >> 16) & 0x8000u));
#endif
    if (f != f) r.bits = (ss_u16)(((__float_as_uint(f) >> 16) & 0x8000u) | 0x7e00u);
    return r;
}

/// fp64 -> fp32 rounded "to odd" (truncate, set the last bit when inexact), so a second rounding to a 16-bit
/// format is a correct single rounding (BFloat16.init(Double)).
__device__ __forceinline__ float ss_double_to_float_odd(double d) {
    float f = (float)d;
    if (ss_isfinite(f) && (double)f != d) {
        if (fabs((double)f) > fabs(d)) f = __uint_as_float(__float_as_uint(f) - 1u);
        f = __uint_as_float(__float_as_uint(f) | 1u);
    }
    return f;
}

/// Truncation toward zero, saturating at the bounds, NaN -> 0 (SpeedCore's FixedWidthInteger(saturating:)).
__device__ __forceinline__ int ss_sat_i32(double x) {
    if (x != x) return 0;
    if (x <= -2147483648.0) return -2147483647 - 1;
    if (x >= 2147483647.0) return 2147483647;
    return (int)x;
}
__device__ __forceinline__ ss_i64 ss_sat_i64(double x) {
    if (x != x) return 0;
    if (x <= -9223372036854775808.0) return -9223372036854775807LL - 1;
    if (x >= 9223372036854775807.0) return 9223372036854775807LL;
    return (ss_i64)x;
}

// Every element type to fp32 / fp64 (the CPU's staging types) and back.
__device__ __forceinline__ float ss_to_float(float x) { return x; }
__device__ __forceinline__ float ss_to_float(double x) { return (float)x; }
__device__ __forceinline__ float ss_to_float(ss_bf16 x) { return ss_bf16_to_float(x); }
__device__ __forceinline__ float ss_to_float(ss_f16 x) { return ss_f16_to_float(x); }
__device__ __forceinline__ float ss_to_float(int x) { return (float)x; }
__device__ __forceinline__ float ss_to_float(ss_i64 x) { return (float)(double)x; }
__device__ __forceinline__ double ss_to_double(float x) { return (double)x; }
__device__ __forceinline__ double ss_to_double(double x) { return x; }
__device__ __forceinline__ double ss_to_double(ss_bf16 x) { return (double)ss_bf16_to_float(x); }
__device__ __forceinline__ double ss_to_double(ss_f16 x) { return (double)ss_f16_to_float(x); }
__device__ __forceinline__ double ss_to_double(int x) { return (double)x; }
__device__ __forceinline__ double ss_to_double(ss_i64 x) { return (double)x; }

template <typename T> __device__ __forceinline__ T ss_from_float(float x);
template <> __device__ __forceinline__ float ss_from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ double ss_from_float<double>(float x) { return (double)x; }
template <> __device__ __forceinline__ ss_bf16 ss_from_float<ss_bf16>(float x) { return ss_float_to_bf16(x); }
template <> __device__ __forceinline__ ss_f16 ss_from_float<ss_f16>(float x) { return ss_float_to_f16(x); }
template <> __device__ __forceinline__ int ss_from_float<int>(float x) { return ss_sat_i32((double)x); }
template <> __device__ __forceinline__ ss_i64 ss_from_float<ss_i64>(float x) { return ss_sat_i64((double)x); }

template <typename T> __device__ __forceinline__ T ss_from_double(double x);
template <> __device__ __forceinline__ float ss_from_double<float>(double x) { return (float)x; }
template <> __device__ __forceinline__ double ss_from_double<double>(double x) { return x; }
template <> __device__ __forceinline__ ss_bf16 ss_from_double<ss_bf16>(double x) {
    return ss_float_to_bf16(ss_double_to_float_odd(x));
}
template <> __device__ __forceinline__ ss_f16 ss_from_double<ss_f16>(double x) {
    return ss_float_to_f16(ss_double_to_float_odd(x));
}
template <> __device__ __forceinline__ int ss_from_double<int>(double x) { return ss_sat_i32(x); }
template <> __device__ __forceinline__ ss_i64 ss_from_double<ss_i64>(double x) { return ss_sat_i64(x); }

template <typename T> struct ss_is_wide { static const bool value = false; };
template <> struct ss_is_wide<double> { static const bool value = true; };
template <> struct ss_is_wide<ss_i64> { static const bool value = true; };

template <typename A, typename B> struct ss_same { static const bool value = false; };
template <typename A> struct ss_same<A, A> { static const bool value = true; };

/// CPUBackend.cast: the same type is copied bit for bit; otherwise through fp64 when either side is 64-bit,
/// else through fp32.
template <typename F, typename T> __device__ __forceinline__ T ss_convert(F x) {
    if constexpr (ss_same<F, T>::value) return x;
    else if constexpr (ss_is_wide<F>::value || ss_is_wide<T>::value) return ss_from_double<T>(ss_to_double(x));
    else return ss_from_float<T>(ss_to_float(x));
}

// ----- Numeric traits: the accumulation type and the load/store of each float storage type -----

template <typename T> struct SSNum;
template <> struct SSNum<float> {
    typedef float acc;
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float a) { return a; }
};
template <> struct SSNum<double> {
    typedef double acc;
    static __device__ __forceinline__ double load(double v) { return v; }
    static __device__ __forceinline__ double store(double a) { return a; }
};
template <> struct SSNum<ss_bf16> {
    typedef float acc;
    static __device__ __forceinline__ float load(ss_bf16 v) { return ss_bf16_to_float(v); }
    static __device__ __forceinline__ ss_bf16 store(float a) { return ss_float_to_bf16(a); }
};
template <> struct SSNum<ss_f16> {
    typedef float acc;
    static __device__ __forceinline__ float load(ss_f16 v) { return ss_f16_to_float(v); }
    static __device__ __forceinline__ ss_f16 store(float a) { return ss_float_to_f16(a); }
};

template <typename T> __device__ __forceinline__ typename SSNum<T>::acc ss_ld(T v) { return SSNum<T>::load(v); }
template <typename T> __device__ __forceinline__ T ss_st(typename SSNum<T>::acc a) { return SSNum<T>::store(a); }

// ----- Math on the accumulation types (accurate libdevice functions; IEEE-rounded basic ops) -----

__device__ __forceinline__ float ss_exp(float x) { return expf(x); }
__device__ __forceinline__ double ss_exp(double x) { return exp(x); }
__device__ __forceinline__ float ss_log(float x) { return logf(x); }
__device__ __forceinline__ double ss_log(double x) { return log(x); }
__device__ __forceinline__ float ss_sqrt(float x) { return __fsqrt_rn(x); }
__device__ __forceinline__ double ss_sqrt(double x) { return __dsqrt_rn(x); }
__device__ __forceinline__ float ss_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double ss_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float ss_erf(float x) { return erff(x); }
__device__ __forceinline__ double ss_erf(double x) { return erf(x); }
__device__ __forceinline__ float ss_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double ss_abs(double x) { return fabs(x); }
__device__ __forceinline__ float ss_pow_raw(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double ss_pow_raw(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float ss_trunc(float x) { return truncf(x); }
__device__ __forceinline__ double ss_trunc(double x) { return trunc(x); }
// Rounded operations the compiler may not fuse into an FMA (results equal the CPU's unfused arithmetic).
__device__ __forceinline__ float ss_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double ss_mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float ss_add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double ss_add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float ss_sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double ss_sub_rn(double a, double b) { return __dsub_rn(a, b); }
template <typename A> __device__ __forceinline__ A ss_inf();
template <> __device__ __forceinline__ float ss_inf<float>() { return ss_inf_f(); }
template <> __device__ __forceinline__ double ss_inf<double>() { return ss_inf_d(); }
template <typename A> __device__ __forceinline__ A ss_nan();
template <> __device__ __forceinline__ float ss_nan<float>() { return ss_nan_f(); }
template <> __device__ __forceinline__ double ss_nan<double>() { return ss_nan_d(); }

/// `x ^ e` as CPUBackend.power: C's pow for a negative base with an integral exponent that fits an Int,
/// otherwise RealModule's pow (NaN for a negative or NaN base, and for 0 ^ 0). Not inlined: pow is large and the
/// packed loops would otherwise paste it up to ten times into every pow kernel (compile time, code size).
template <typename A> __device__ __noinline__ A ss_power(A x, A e) {
    if (x < (A)0 && e == ss_trunc(e) && e >= (A)-9223372036854775808.0 && e < (A)9223372036854775808.0)
        return ss_pow_raw(x, e);
    if (!(x >= (A)0)) return ss_nan<A>();
    if (x == (A)0 && e == (A)0) return ss_nan<A>();
    return ss_pow_raw(x, e);
}

/// max that propagates NaN (the CPU's `v > m || v.isNaN`).
template <typename A> __device__ __forceinline__ A ss_max_nan(A a, A b) {
    if (a != a) return a;
    return (b != b || b > a) ? b : a;
}

// ----- Counter-based random numbers: RandomStream.bits / uniform / uniformOpen, bit for bit -----

__device__ __forceinline__ ss_u64 ss_bswap64(ss_u64 x) {
    const ss_u32 lo = (ss_u32)x, hi = (ss_u32)(x >> 32);
    return ((ss_u64)__byte_perm(lo, 0u, 0x0123u) << 32) | (ss_u64)__byte_perm(hi, 0u, 0x0123u);
}

/// 64 random bits for (seed, counter); `seed_swapped` is ss_bswap64(seed), hoisted out of loops.
__device__ __forceinline__ ss_u64 ss_rng_bits(ss_u64 seed, ss_u64 seed_swapped, ss_u64 counter) {
    ss_u64 z = seed + counter * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    z = (z ^ seed_swapped) * 0xD6E8FEB86659FD93ull;
    return z ^ (z >> 32);
}

/// A uniform float in [0, 1) from the top 24 bits (exact).
__device__ __forceinline__ float ss_rng_uniform(ss_u64 bits) {
    return (float)(ss_u32)(bits >> 40) * (1.0f / 16777216.0f);
}

/// A uniform double in (0, 1) from the top 53 bits, never 0.
__device__ __forceinline__ double ss_rng_uniform_open(ss_u64 bits) {
    return __dmul_rn(__dadd_rn((double)(bits >> 11), 0.5), 1.0 / 9007199254740992.0);
}

// ----- Vector packs and alignment -----

template <typename T, int N> struct alignas(sizeof(T) * N) SSPack { T v[N]; };

__device__ __forceinline__ bool ss_aligned(const void* p, ss_u64 bytes) { return ((ss_u64)p & (bytes - 1)) == 0; }

// ----- Broadcasting / strided indexer -----

/// A collapsed iteration space (row-major `shape`, innermost last) and the element strides of up to three
/// operands over it; passed by value as one kernel argument (1 + 8 + 3 x 8 int64 = 264 bytes).
struct SSIndexer {
    ss_i64 rank;
    ss_i64 shape[SS_MAX_DIMS];
    ss_i64 strides[3][SS_MAX_DIMS];
};

/// Element offsets of the first NOPS operands for the row-major `linear` index (IDX: 32-bit when it fits).
template <int NOPS, typename IDX>
__device__ __forceinline__ void ss_offsets(const SSIndexer& ix, ss_i64 linear, ss_i64 (&off)[NOPS]) {
    IDX rem = (IDX)linear;
#pragma unroll
    for (int k = 0; k < NOPS; ++k) off[k] = 0;
#pragma unroll
    for (int d = SS_MAX_DIMS - 1; d >= 0; --d) {
        if (d < ix.rank) {
            const IDX size = (IDX)ix.shape[d];
            const IDX q = rem / size;
            const ss_i64 c = (ss_i64)(rem - q * size);
            rem = q;
#pragma unroll
            for (int k = 0; k < NOPS; ++k) off[k] += c * ix.strides[k][d];
        }
    }
}

// ----- Warp and block reductions (blockDim.x a multiple of 32, at most 1024; every thread calls) -----

template <typename A> __device__ __forceinline__ A ss_warp_sum(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(SS_FULL_MASK, v, o);
    return v;
}

template <typename A> __device__ __forceinline__ A ss_warp_max(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = ss_max_nan(v, __shfl_xor_sync(SS_FULL_MASK, v, o));
    return v;
}

/// The block's sum, returned to every thread.
template <typename A> __device__ __forceinline__ A ss_block_sum(A v) {
    __shared__ A sh[33];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = ss_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        A t = lane < nw ? sh[lane] : (A)0;
        t = ss_warp_sum(t);
        if (lane == 0) sh[32] = t;
    }
    __syncthreads();
    return sh[32];
}

/// Two sums at once (one round of barriers).
template <typename A> __device__ __forceinline__ void ss_block_sum2(A& a, A& b) {
    __shared__ A sh[2][33];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    a = ss_warp_sum(a);
    b = ss_warp_sum(b);
    __syncthreads();
    if (lane == 0) { sh[0][wid] = a; sh[1][wid] = b; }
    __syncthreads();
    if (wid == 0) {
        A x = lane < nw ? sh[0][lane] : (A)0, y = lane < nw ? sh[1][lane] : (A)0;
        x = ss_warp_sum(x);
        y = ss_warp_sum(y);
        if (lane == 0) { sh[0][32] = x; sh[1][32] = y; }
    }
    __syncthreads();
    a = sh[0][32];
    b = sh[1][32];
}

/// The block's NaN-propagating max, returned to every thread.
template <typename A> __device__ __forceinline__ A ss_block_max(A v) {
    __shared__ A sh[33];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = ss_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        A t = lane < nw ? sh[lane] : -ss_inf<A>();
        t = ss_warp_max(t);
        if (lane == 0) sh[32] = t;
    }
    __syncthreads();
    return sh[32];
}

/// Online softmax state: running max `m` (never NaN) and the sum `s` of exp(x - m) (NaN once a NaN was seen).
template <typename A> struct SSMaxSum { A m, s; };

template <typename A> __device__ __forceinline__ SSMaxSum<A> ss_ms_push(SSMaxSum<A> st, A x) {
    if (x > st.m) {
        st.s = st.s * ss_exp(st.m - x) + (A)1;
        st.m = x;
    } else if (x != -ss_inf<A>()) {
        st.s += ss_exp(x - st.m);   // NaN x (or x == m == +inf) makes s NaN, as on the CPU
    }
    return st;
}

template <typename A> __device__ __forceinline__ SSMaxSum<A> ss_ms_combine(SSMaxSum<A> a, SSMaxSum<A> b) {
    SSMaxSum<A> r;
    r.m = a.m > b.m ? a.m : b.m;
    if (r.m == -ss_inf<A>()) r.s = a.s + b.s;
    else r.s = a.s * ss_exp(a.m - r.m) + b.s * ss_exp(b.m - r.m);
    return r;
}

template <typename A> __device__ __forceinline__ SSMaxSum<A> ss_block_ms(SSMaxSum<A> v) {
    __shared__ A shm[33], shs[33];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        SSMaxSum<A> t;
        t.m = __shfl_xor_sync(SS_FULL_MASK, v.m, o);
        t.s = __shfl_xor_sync(SS_FULL_MASK, v.s, o);
        v = ss_ms_combine(v, t);
    }
    __syncthreads();
    if (lane == 0) { shm[wid] = v.m; shs[wid] = v.s; }
    __syncthreads();
    if (wid == 0) {
        SSMaxSum<A> t;
        t.m = lane < nw ? shm[lane] : -ss_inf<A>();
        t.s = lane < nw ? shs[lane] : (A)0;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            SSMaxSum<A> u;
            u.m = __shfl_xor_sync(SS_FULL_MASK, t.m, o);
            u.s = __shfl_xor_sync(SS_FULL_MASK, t.s, o);
            t = ss_ms_combine(t, u);
        }
        if (lane == 0) { shm[32] = t.m; shs[32] = t.s; }
    }
    __syncthreads();
    v.m = shm[32];
    v.s = shs[32];
    return v;
}
// ----- Attention operand layout and mask (both attention programs) -----

/// Where attention's operands live, in elements: row t of head h in batch b starts at b*xb + h*xh + t*xt, with
/// x = q for q, k for k/v, o for out/gradOut, g for gradQ, kg for gradK/gradV (Swift's AttentionLayout). `bh`
/// indexes query heads (b * heads + h); query head h reads K/V head h / group (grouped-query attention), and a K/V
/// head index `bkv` is b * (heads / group) + kvh. Kernels take the values as trailing scalar arguments
/// (SS_ATT_LAYOUT_PARAMS) and rebuild this.
struct SSAttnLayout {
    ss_i64 heads, group, qb, qh, qt, kb, kh, kt, ob, oh, ot, gb, gh, gt, kgb, kgh, kgt;
    __device__ __forceinline__ ss_i64 q(ss_i64 bh) const { return (bh / heads) * qb + (bh % heads) * qh; }
    /// K/V of query head bh.
    __device__ __forceinline__ ss_i64 k(ss_i64 bh) const { return (bh / heads) * kb + ((bh % heads) / group) * kh; }
    /// K/V head bkv.
    __device__ __forceinline__ ss_i64 kv(ss_i64 bkv) const {
        const ss_i64 hkv = heads / group;
        return (bkv / hkv) * kb + (bkv % hkv) * kh;
    }
    __device__ __forceinline__ ss_i64 o(ss_i64 bh) const { return (bh / heads) * ob + (bh % heads) * oh; }
    __device__ __forceinline__ ss_i64 g(ss_i64 bh) const { return (bh / heads) * gb + (bh % heads) * gh; }
    __device__ __forceinline__ ss_i64 kg(ss_i64 bkv) const {
        const ss_i64 hkv = heads / group;
        return (bkv / hkv) * kgb + (bkv % hkv) * kgh;
    }
};
#define SS_ATT_LAYOUT_PARAMS ss_i64 heads, ss_i64 group, ss_i64 qb, ss_i64 qh, ss_i64 qt, ss_i64 kb, ss_i64 kh, \
    ss_i64 kt, ss_i64 ob, ss_i64 oh, ss_i64 ot, ss_i64 gb, ss_i64 gh, ss_i64 gt, ss_i64 kgb, ss_i64 kgh, ss_i64 kgt
#define SS_ATT_LAYOUT SSAttnLayout{heads, group, qb, qh, qt, kb, kh, kt, ob, oh, ot, gb, gh, gt, kgb, kgh, kgt}

/// Which keys a query sees (Swift's AttentionMask): t queries, tk keys; query r sits at position p = r + tk - t;
/// causal: keys c <= p; window > 0: also c > p - window; keep (int32 [B, tk], may be null): keys with keep == 0 are
/// hidden. A row that sees no key gets out = 0 and lse = -inf.
struct SSAttnMask {
    int t, tk, causal, window;
    const int* keep;
    __device__ __forceinline__ int off() const { return tk - t; }
    __device__ __forceinline__ bool ok(ss_i64 b, int r, int c) const {
        const int p = r + tk - t;
        return r < t && c < tk && (!causal || c <= p) && (window <= 0 || c > p - window) &&
               (keep == nullptr || keep[b * tk + c] != 0);
    }
    /// Whether query row r may see key c < tk before padding (the range part of ok()).
    __device__ __forceinline__ bool in_range(int r, int c) const {
        const int p = r + tk - t;
        return r < t && (!causal || c <= p) && (window <= 0 || c > p - window);
    }
    /// Keys [lo, hi) query row r may see before padding (empty for r >= t).
    __device__ __forceinline__ void key_range(int r, int& lo, int& hi) const {
        const int p = r + tk - t;
        hi = r >= t ? 0 : causal ? min(tk, p + 1) : tk;
        lo = r >= t ? 0 : window > 0 ? max(0, p - window + 1) : 0;
    }
    /// Query rows [lo, hi) that may see key c before padding (empty for c >= tk).
    __device__ __forceinline__ void query_range(int c, int& lo, int& hi) const {
        const int q = c - (tk - t);
        lo = c >= tk ? 0 : causal ? max(0, q) : 0;
        hi = c >= tk ? 0 : window > 0 ? min(t, q + window) : t;
    }
    /// Whether key c of batch b is kept by the padding mask.
    __device__ __forceinline__ bool kept(ss_i64 b, int c) const { return keep == nullptr || keep[b * tk + c] != 0; }
    /// The first key any of the query rows [r0, r0 + rows) may see, rounded down to a multiple of `tile`.
    __device__ __forceinline__ int key_begin(int r0, int tile) const {
        if (window <= 0) return 0;
        const int lo = r0 + tk - t - window + 1;
        return lo <= 0 ? 0 : (lo / tile) * tile;
    }
    /// One past the last key any of the query rows [r0, r0 + rows) may see.
    __device__ __forceinline__ int key_end(int r0, int rows) const {
        return causal ? min(tk, r0 + rows + tk - t) : tk;
    }
    /// The first query row that may see any key of [k0, ...), rounded down to a multiple of `tile`.
    __device__ __forceinline__ int query_begin(int k0, int tile) const {
        if (!causal) return 0;
        const int lo = k0 - (tk - t);
        return lo <= 0 ? 0 : (lo / tile) * tile;
    }
    /// One past the last query row that may see any key of [k0, k0 + cols).
    __device__ __forceinline__ int query_end(int k0, int cols) const {
        if (window <= 0) return t;
        return min(t, k0 + cols - 1 - (tk - t) + window);
    }
};
#define SS_ATT_MASK_PARAMS int tk, int causal, int window, const int* keep
#define SS_ATT_MASK SSAttnMask{t, tk, causal, window, keep}

// ===== end of prelude =====
#endif
