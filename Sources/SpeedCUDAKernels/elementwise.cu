// Elementwise kernels: unary maps and their derivatives, broadcasting binary ops, select (where).
// Invariant: half types are computed in fp32 and rounded once on store, as CPUBackend's promoted path; `out` may
// alias an input of the same shape (in-place updates), so no pointer here is __restrict__.
// Entry points: `ss_unary_<op>_*`, `ss_unary_bwd_<op>_*`, `ss_binary_<op>_*`, `ss_select_<T>_<cond>`, `ss_swiglu_*`,
//   `ss_swiglu_bwd_*`.
#include "common.cuh"

// ===== family: elementwise =====

#define SS_U_NEG 0
#define SS_U_EXP 1
#define SS_U_LOG 2
#define SS_U_SQRT 3
#define SS_U_TANH 4
#define SS_U_SIGMOID 5
#define SS_U_RELU 6
#define SS_U_ABS 7
#define SS_U_SQUARE 8
#define SS_U_GELU 9
#define SS_U_GELU_EXACT 10
#define SS_U_POW 11
#define SS_U_AFFINE 12
#define SS_U_SILU 13

#define SS_B_ADD 0
#define SS_B_SUB 1
#define SS_B_MUL 2
#define SS_B_DIV 3
#define SS_B_POW 4
#define SS_B_MAXIMUM 5
#define SS_B_MINIMUM 6
#define SS_B_EQUAL 7
#define SS_B_GREATER 8

/// y[i] = f(x[i]) in packs of 16 bytes when aligned (x may equal y).
template <typename T, typename Fn> __device__ __forceinline__ void ss_ew1(const T* x, T* y, ss_i64 n, Fn f) {
    constexpr int N = (int)(16 / sizeof(T));
    const ss_i64 tid = SS_TID, stride = SS_STRIDE;
    if (ss_aligned(x, 16) && ss_aligned(y, 16)) {
        const ss_i64 nv = n / N;
        for (ss_i64 i = tid; i < nv; i += stride) {
            const SSPack<T, N> a = reinterpret_cast<const SSPack<T, N>*>(x)[i];
            SSPack<T, N> r;
#pragma unroll
            for (int k = 0; k < N; ++k) r.v[k] = f(a.v[k]);
            reinterpret_cast<SSPack<T, N>*>(y)[i] = r;
        }
        for (ss_i64 i = nv * N + tid; i < n; i += stride) y[i] = f(x[i]);
    } else {
        for (ss_i64 i = tid; i < n; i += stride) y[i] = f(x[i]);
    }
}

/// y[i] = f(a[i], b[i]) (contiguous operands), packed when aligned.
template <typename T, typename Fn>
__device__ __forceinline__ void ss_ew2(const T* a, const T* b, T* y, ss_i64 n, Fn f) {
    constexpr int N = (int)(16 / sizeof(T));
    const ss_i64 tid = SS_TID, stride = SS_STRIDE;
    if (ss_aligned(a, 16) && ss_aligned(b, 16) && ss_aligned(y, 16)) {
        const ss_i64 nv = n / N;
        for (ss_i64 i = tid; i < nv; i += stride) {
            const SSPack<T, N> u = reinterpret_cast<const SSPack<T, N>*>(a)[i];
            const SSPack<T, N> v = reinterpret_cast<const SSPack<T, N>*>(b)[i];
            SSPack<T, N> r;
#pragma unroll
            for (int k = 0; k < N; ++k) r.v[k] = f(u.v[k], v.v[k]);
            reinterpret_cast<SSPack<T, N>*>(y)[i] = r;
        }
        for (ss_i64 i = nv * N + tid; i < n; i += stride) y[i] = f(a[i], b[i]);
    } else {
        for (ss_i64 i = tid; i < n; i += stride) y[i] = f(a[i], b[i]);
    }
}

/// y[i] = f(a[i], b[i], c[i]) (contiguous operands), packed when aligned.
template <typename T, typename Fn>
__device__ __forceinline__ void ss_ew3(const T* a, const T* b, const T* c, T* y, ss_i64 n, Fn f) {
    constexpr int N = (int)(16 / sizeof(T));
    const ss_i64 tid = SS_TID, stride = SS_STRIDE;
    if (ss_aligned(a, 16) && ss_aligned(b, 16) && ss_aligned(c, 16) && ss_aligned(y, 16)) {
        const ss_i64 nv = n / N;
        for (ss_i64 i = tid; i < nv; i += stride) {
            const SSPack<T, N> u = reinterpret_cast<const SSPack<T, N>*>(a)[i];
            const SSPack<T, N> v = reinterpret_cast<const SSPack<T, N>*>(b)[i];
            const SSPack<T, N> w = reinterpret_cast<const SSPack<T, N>*>(c)[i];
            SSPack<T, N> r;
#pragma unroll
            for (int k = 0; k < N; ++k) r.v[k] = f(u.v[k], v.v[k], w.v[k]);
            reinterpret_cast<SSPack<T, N>*>(y)[i] = r;
        }
        for (ss_i64 i = nv * N + tid; i < n; i += stride) y[i] = f(a[i], b[i], c[i]);
    } else {
        for (ss_i64 i = tid; i < n; i += stride) y[i] = f(a[i], b[i], c[i]);
    }
}

// ----- unary: CPUBackend.unaryLoop (p0/p1: the pow exponent, or the affine scale and shift) -----

template <int OP, typename A> __device__ __forceinline__ A ss_unary_f(A x, A p0, A p1, bool square) {
    const A half = (A)0.5, one = (A)1;
    if constexpr (OP == SS_U_NEG) return -x;
    else if constexpr (OP == SS_U_EXP) return ss_exp(x);
    else if constexpr (OP == SS_U_LOG) return ss_log(x);
    else if constexpr (OP == SS_U_SQRT) return ss_sqrt(x);
    else if constexpr (OP == SS_U_TANH) return ss_tanh(x);
    else if constexpr (OP == SS_U_SIGMOID) return one / (one + ss_exp(-x));
    else if constexpr (OP == SS_U_RELU) return x > (A)0 ? x : (A)0;
    else if constexpr (OP == SS_U_ABS) return ss_abs(x);
    else if constexpr (OP == SS_U_SQUARE) return x * x;
    else if constexpr (OP == SS_U_GELU)
        return half * x * (one + ss_tanh((A)0.7978845608028654 * (x + (A)0.044715 * x * x * x)));
    else if constexpr (OP == SS_U_GELU_EXACT) return half * x * (one + ss_erf(x * (A)0.7071067811865476));
    else if constexpr (OP == SS_U_POW) return square ? x * x : ss_power(x, p0);
    else if constexpr (OP == SS_U_SILU) return x / (one + ss_exp(-x));
    else return ss_add_rn(ss_mul_rn(x, p0), p1);   // SS_U_AFFINE: x * scale + shift, unfused
}

template <int OP, typename T> __device__ __forceinline__ void ss_unary_body(const T* x, T* y, ss_i64 n, double p0, double p1) {
    typedef typename SSNum<T>::acc A;
    const A a0 = (A)p0, a1 = (A)p1;
    const bool square = p0 == 2.0;
    ss_ew1(x, y, n, [=](T v) { return ss_st<T>(ss_unary_f<OP, A>(ss_ld(v), a0, a1, square)); });
}

// ----- unary backward: dx = dy * f'(x), from x and y = f(x) (CPUBackend.unaryBackwardKernel) -----

template <int OP, typename A> __device__ __forceinline__ A ss_unary_b(A x, A y, A g, A p0) {
    const A half = (A)0.5, one = (A)1;
    if constexpr (OP == SS_U_NEG) return -g;
    else if constexpr (OP == SS_U_EXP) return g * y;
    else if constexpr (OP == SS_U_LOG) return g / x;
    else if constexpr (OP == SS_U_SQRT) return g / ((A)2 * y);
    else if constexpr (OP == SS_U_TANH) return g * (one - y * y);
    else if constexpr (OP == SS_U_SIGMOID) return g * y * (one - y);
    else if constexpr (OP == SS_U_RELU) return x > (A)0 ? g : (A)0;
    else if constexpr (OP == SS_U_ABS) return x > (A)0 ? g : (x < (A)0 ? -g : (A)0);
    else if constexpr (OP == SS_U_SQUARE) return (A)2 * x * g;
    else if constexpr (OP == SS_U_GELU) {
        const A k = (A)0.7978845608028654, c = (A)0.044715;
        const A t = ss_tanh(k * (x + c * x * x * x));
        return g * (half * (one + t) + half * x * (one - t * t) * k * (one + (A)3 * c * x * x));
    } else if constexpr (OP == SS_U_GELU_EXACT) {
        return g * (half * (one + ss_erf(x * (A)0.7071067811865476)) + x * (A)0.3989422804014327 * ss_exp(-x * x / (A)2));
    } else if constexpr (OP == SS_U_POW) return g * p0 * ss_power(x, p0 - one);
    else if constexpr (OP == SS_U_SILU) {
        const A s = one / (one + ss_exp(-x));
        return g * (s * (one + x * (one - s)));
    } else return ss_mul_rn(g, p0);   // SS_U_AFFINE
}

template <int OP, typename T>
__device__ __forceinline__ void ss_unary_bwd_body(const T* x, const T* y, const T* g, T* dx, ss_i64 n, double p0) {
    typedef typename SSNum<T>::acc A;
    const A a0 = (A)p0;
    ss_ew3(x, y, g, dx, n, [=](T xv, T yv, T gv) {
        return ss_st<T>(ss_unary_b<OP, A>(ss_ld(xv), ss_ld(yv), ss_ld(gv), a0));
    });
}

#define SS_UNARY_T(NAME, OP, TN, T) \
    extern "C" __global__ void ss_unary_##NAME##_##TN(const T* x, T* y, ss_i64 n, double p0, double p1) { \
        ss_unary_body<OP, T>(x, y, n, p0, p1); \
    } \
    extern "C" __global__ void ss_unary_bwd_##NAME##_##TN(const T* x, const T* y, const T* g, T* dx, ss_i64 n, \
                                                         double p0) { \
        ss_unary_bwd_body<OP, T>(x, y, g, dx, n, p0); \
    }
#define SS_UNARY(NAME, OP) \
    SS_UNARY_T(NAME, OP, f32, float) SS_UNARY_T(NAME, OP, f64, double) \
    SS_UNARY_T(NAME, OP, bf16, ss_bf16) SS_UNARY_T(NAME, OP, f16, ss_f16)
SS_UNARY(neg, SS_U_NEG)
SS_UNARY(exp, SS_U_EXP)
SS_UNARY(log, SS_U_LOG)
SS_UNARY(sqrt, SS_U_SQRT)
SS_UNARY(tanh, SS_U_TANH)
SS_UNARY(sigmoid, SS_U_SIGMOID)
SS_UNARY(relu, SS_U_RELU)
SS_UNARY(abs, SS_U_ABS)
SS_UNARY(square, SS_U_SQUARE)
SS_UNARY(gelu, SS_U_GELU)
SS_UNARY(gelu_exact, SS_U_GELU_EXACT)
SS_UNARY(pow, SS_U_POW)
SS_UNARY(affine, SS_U_AFFINE)
SS_UNARY(silu, SS_U_SILU)

// ----- SwiGLU: out = silu(gate) * up (CPUBackend.swiglu), and its backward -----

template <typename T> __device__ __forceinline__ void ss_swiglu_body(const T* g, const T* u, T* y, ss_i64 n) {
    typedef typename SSNum<T>::acc A;
    ss_ew2(g, u, y, n, [](T gv, T uv) {
        const A x = ss_ld(gv);
        return ss_st<T>(x / ((A)1 + ss_exp(-x)) * ss_ld(uv));
    });
}

/// dgate = dy * up * s * (1 + gate * (1 - s)), dup = dy * gate * s, s = sigmoid(gate).
template <typename T>
__device__ __forceinline__ void ss_swiglu_bwd_body(const T* g, const T* u, const T* dy, T* dg, T* du, ss_i64 n) {
    typedef typename SSNum<T>::acc A;
    for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) {
        const A x = ss_ld(g[i]), s = (A)1 / ((A)1 + ss_exp(-x)), d = ss_ld(dy[i]);
        dg[i] = ss_st<T>(d * ss_ld(u[i]) * (s * ((A)1 + x * ((A)1 - s))));
        du[i] = ss_st<T>(d * (x * s));
    }
}

#define SS_SWIGLU(TN, T) \
    extern "C" __global__ void ss_swiglu_##TN(const T* g, const T* u, T* y, ss_i64 n) { ss_swiglu_body<T>(g, u, y, n); } \
    extern "C" __global__ void ss_swiglu_bwd_##TN(const T* g, const T* u, const T* dy, T* dg, T* du, ss_i64 n) { \
        ss_swiglu_bwd_body<T>(g, u, dy, dg, du, n); \
    }
SS_SWIGLU(f32, float)
SS_SWIGLU(f64, double)
SS_SWIGLU(bf16, ss_bf16)
SS_SWIGLU(f16, ss_f16)

// ----- binary with NumPy broadcasting: ix.strides[0] = a, [1] = b over out's (contiguous) shape -----

template <int OP, typename A> __device__ __forceinline__ A ss_binary_f(A a, A b) {
    if constexpr (OP == SS_B_ADD) return a + b;
    else if constexpr (OP == SS_B_SUB) return a - b;
    else if constexpr (OP == SS_B_MUL) return a * b;
    else if constexpr (OP == SS_B_DIV) return a / b;
    else if constexpr (OP == SS_B_POW) return ss_power(a, b);
    else if constexpr (OP == SS_B_MAXIMUM) return (a >= b || a != a) ? a : b;
    else if constexpr (OP == SS_B_MINIMUM) return (a <= b || a != a) ? a : b;
    else if constexpr (OP == SS_B_EQUAL) return a == b ? (A)1 : (A)0;
    else return a > b ? (A)1 : (A)0;   // SS_B_GREATER
}

template <int OP, typename T, typename IDX>
__device__ __forceinline__ void ss_binary_general(const T* a, const T* b, T* out, ss_i64 n, const SSIndexer& ix) {
    for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) {
        ss_i64 off[2];
        ss_offsets<2, IDX>(ix, i, off);
        out[i] = ss_st<T>(ss_binary_f<OP>(ss_ld(a[off[0]]), ss_ld(b[off[1]])));
    }
}

template <int OP, typename T>
__device__ __forceinline__ void ss_binary_body(const T* a, const T* b, T* out, ss_i64 n, const SSIndexer& ix) {
    if (ix.rank <= 1) {
        const ss_i64 sa = ix.rank == 1 ? ix.strides[0][0] : 0, sb = ix.rank == 1 ? ix.strides[1][0] : 0;
        if (sa == 1 && sb == 1) {
            ss_ew2(a, b, out, n, [](T u, T v) { return ss_st<T>(ss_binary_f<OP>(ss_ld(u), ss_ld(v))); });
        } else {
            for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE)
                out[i] = ss_st<T>(ss_binary_f<OP>(ss_ld(a[i * sa]), ss_ld(b[i * sb])));
        }
    } else if (n <= 0xffffffffLL) {
        ss_binary_general<OP, T, ss_u32>(a, b, out, n, ix);
    } else {
        ss_binary_general<OP, T, ss_u64>(a, b, out, n, ix);
    }
}

#define SS_BINARY_T(NAME, OP, TN, T) \
    extern "C" __global__ void ss_binary_##NAME##_##TN(const T* a, const T* b, T* out, ss_i64 n, const SSIndexer ix) { \
        ss_binary_body<OP, T>(a, b, out, n, ix); \
    }
#define SS_BINARY(NAME, OP) \
    SS_BINARY_T(NAME, OP, f32, float) SS_BINARY_T(NAME, OP, f64, double) \
    SS_BINARY_T(NAME, OP, bf16, ss_bf16) SS_BINARY_T(NAME, OP, f16, ss_f16)
SS_BINARY(add, SS_B_ADD)
SS_BINARY(sub, SS_B_SUB)
SS_BINARY(mul, SS_B_MUL)
SS_BINARY(div, SS_B_DIV)
SS_BINARY(pow, SS_B_POW)
SS_BINARY(maximum, SS_B_MAXIMUM)
SS_BINARY(minimum, SS_B_MINIMUM)
SS_BINARY(equal, SS_B_EQUAL)
SS_BINARY(greater, SS_B_GREATER)

// ----- select: out = cond != 0 ? a : b, broadcasting; ix.strides[0] = cond, [1] = a, [2] = b -----

/// The CPU casts the condition to out's compute type first (fp32 unless out is fp64), then tests != 0.
template <typename C, typename T> __device__ __forceinline__ bool ss_cond(C c) {
    if constexpr (ss_is_wide<T>::value) return ss_to_double(c) != 0.0;
    else return ss_convert<C, float>(c) != 0.0f;
}

template <typename T, typename C, typename IDX>
__device__ __forceinline__ void ss_select_general(const C* cond, const T* a, const T* b, T* out, ss_i64 n,
                                                  const SSIndexer& ix) {
    for (ss_i64 i = SS_TID; i < n; i += SS_STRIDE) {
        ss_i64 off[3];
        ss_offsets<3, IDX>(ix, i, off);
        out[i] = ss_cond<C, T>(cond[off[0]]) ? a[off[1]] : b[off[2]];
    }
}

template <typename T, typename C>
__device__ __forceinline__ void ss_select_body(const C* cond, const T* a, const T* b, T* out, ss_i64 n, const SSIndexer& ix) {
    if (n <= 0xffffffffLL) ss_select_general<T, C, ss_u32>(cond, a, b, out, n, ix);
    else ss_select_general<T, C, ss_u64>(cond, a, b, out, n, ix);
}

#define SS_SELECT(TN, T, CN, C) \
    extern "C" __global__ void ss_select_##TN##_##CN(const C* cond, const T* a, const T* b, T* out, ss_i64 n, \
                                                     const SSIndexer ix) { \
        ss_select_body<T, C>(cond, a, b, out, n, ix); \
    }
#define SS_SELECT_T(TN, T) \
    SS_SELECT(TN, T, f32, float) SS_SELECT(TN, T, f64, double) SS_SELECT(TN, T, bf16, ss_bf16) \
    SS_SELECT(TN, T, f16, ss_f16) SS_SELECT(TN, T, i32, int) SS_SELECT(TN, T, i64, ss_i64)
SS_SELECT_T(f32, float)
SS_SELECT_T(f64, double)
SS_SELECT_T(bf16, ss_bf16)
SS_SELECT_T(f16, ss_f16)
// ===== end of family: elementwise =====
