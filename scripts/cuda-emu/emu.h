// Host emulation of the CUDA C subset SwiftSpeed's kernels use; each kernel source is compiled with g++ against it.
// Invariant: the CUDA threads of a block are fibers on ONE OS thread, switched only inside __syncthreads and the warp
// primitives, so threadIdx/blockIdx are plain globals the scheduler rewrites on every switch, and `__shared__` (a
// `static` local) is safe because blocks run one after another.
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <type_traits>
#include <utility>

// ----- Built-in variables (set by the scheduler before a fiber runs) -----

struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) float4 { float x, y, z, w; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

extern dim3 threadIdx, blockIdx, blockDim, gridDim;
/// The running CUDA thread's linear index in its block (x fastest), the block's thread count, and the launch's
/// dynamic shared memory.
extern int emu_linear, emu_nthreads;
extern void* emu_dyn_smem;
/// Warp exchanges (shuffles, votes) alternate between two rows of one 64-bit slot per thread, so one barrier per
/// exchange suffices: a lane can only overwrite a row after a later barrier, which every reader of it has passed.
extern uint64_t emu_slots[2][1024];
extern unsigned char emu_phase[1024];

/// Barriers: out of line, so the compiler reloads every global after them.
void emu_syncthreads();
void emu_syncwarp();

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static

inline void __syncthreads() { emu_syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu_syncwarp(); }

/// Publishes this thread's value for its warp's next exchange, waits for the warp, and returns the exchange's row.
inline const uint64_t* emu_exchange(uint64_t bits) {
    const int me = emu_linear;
    uint64_t* row = emu_slots[emu_phase[me] ^= 1];
    row[me] = bits;
    emu_syncwarp();
    return row;
}
template <typename T> inline T emu_shuffle(T v, int src) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a value wider than 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    const uint64_t* row = emu_exchange(bits);
    // A partner past the end of a partial warp does not exist: keep our own value.
    const uint64_t other = src < emu_nthreads ? row[src] : bits;
    T r;
    memcpy(&r, &other, sizeof(T));
    return r;
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int laneMask) {
    return emu_shuffle(v, emu_linear ^ (laneMask & 31));
}
template <typename T> inline T __shfl_sync(unsigned, T v, int srcLane) {
    return emu_shuffle(v, (emu_linear & ~31) | (srcLane & 31));
}
inline unsigned __ballot_sync(unsigned, bool p) {
    const int base = emu_linear & ~31;
    const uint64_t* row = emu_exchange(p);
    unsigned r = 0;
    for (int i = 0; i < 32 && base + i < emu_nthreads; ++i) r |= (unsigned)(row[base + i] & 1u) << i;
    return r;
}
inline bool __any_sync(unsigned mask, bool p) { return __ballot_sync(mask, p) != 0; }
inline bool __all_sync(unsigned mask, bool p) {
    const int lanes = emu_nthreads - (emu_linear & ~31);
    return __ballot_sync(mask, p) == (lanes >= 32 ? 0xffffffffu : (1u << lanes) - 1u);
}

/// mma.sync.m16n8k16.row.col with fp32 accumulation over bf16 (f16 = false) or fp16 inputs, as the kernels'
/// ss_fa_mma issues it: every lane publishes its A (4 registers) and B (2 registers) fragments, then computes its
/// own 4 outputs from the whole warp's (fragment layout: PTX ISA, "Matrix Fragments for mma.m16n8k16").
/// Same two-row alternation as emu_exchange, with its own rows and phases.
extern uint32_t emu_mma_slots[2][1024][6];
extern unsigned char emu_mma_phase[1024];
inline float emu_half_bits_to_float(uint32_t h, bool f16) {
    if (!f16) return __builtin_bit_cast(float, h << 16);
    const uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return __builtin_bit_cast(float, sign | 0x7f800000u | (m << 13));
    if (e == 0) return (sign ? -1.0f : 1.0f) * ldexpf((float)m, -24);
    return __builtin_bit_cast(float, sign | ((e + 112u) << 23) | (m << 13));
}
inline void ss_host_mma(bool f16, float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    const int me = emu_linear, base = me & ~31, lane = me & 31;
    uint32_t (*rows)[6] = emu_mma_slots[emu_mma_phase[me] ^= 1];
    uint32_t* mine = rows[me];
    mine[0] = a[0]; mine[1] = a[1]; mine[2] = a[2]; mine[3] = a[3]; mine[4] = b0; mine[5] = b1;
    emu_syncwarp();
    const int g = lane >> 2, c2 = (lane & 3) * 2;
    for (int i = 0; i < 4; ++i) {
        const int r = g + 8 * (i >> 1), c = c2 + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 16; ++k) {
            // A[r][k]: lane 4 (r % 8) + (k % 8) / 2, register (r >= 8) + 2 (k >= 8); B[k][c]: lane 4 c + (k % 8) / 2,
            // register 4 + (k >= 8); the odd index in the high half.
            const uint32_t ar = rows[base + 4 * (r & 7) + ((k & 7) >> 1)][(r >> 3) + 2 * (k >> 3)];
            const uint32_t br = rows[base + 4 * c + ((k & 7) >> 1)][4 + (k >> 3)];
            const float av = emu_half_bits_to_float((k & 1) ? ar >> 16 : ar & 0xffffu, f16);
            const float bv = emu_half_bits_to_float((k & 1) ? br >> 16 : br & 0xffffu, f16);
            acc = fmaf(av, bv, acc);
        }
        d[i] = acc;
    }
}

// ----- Atomics (fibers never interleave inside one, so plain read-modify-write is atomic) -----

template <typename T> inline T emu_atomic_add(T* p, T v) { T o = *p; *p = o + v; return o; }
inline float atomicAdd(float* p, float v) { return emu_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return emu_atomic_add(p, v); }
inline int atomicAdd(int* p, int v) { return emu_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return emu_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return emu_atomic_add(p, v); }
inline int atomicOr(int* p, int v) { int o = *p; *p = o | v; return o; }
inline unsigned atomicOr(unsigned* p, unsigned v) { unsigned o = *p; *p = o | v; return o; }
inline int atomicMax(int* p, int v) { int o = *p; if (v > o) *p = v; return o; }
inline int atomicMin(int* p, int v) { int o = *p; if (v < o) *p = v; return o; }
inline int atomicExch(int* p, int v) { int o = *p; *p = v; return o; }
inline int atomicCAS(int* p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp, unsigned long long v) {
    unsigned long long o = *p; if (o == cmp) *p = v; return o;
}

// ----- Intrinsics (the translation unit is compiled with -ffp-contract=off: every op below rounds once) -----

inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline int __float_as_int(float f) { int u; memcpy(&u, &f, 4); return u; }
inline double __longlong_as_double(long long u) { double f; memcpy(&f, &u, 8); return f; }
inline long long __double_as_longlong(double f) { long long u; memcpy(&u, &f, 8); return u; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const uint64_t v = ((uint64_t)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xffu) << (8 * i);
    return r;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ----- Kernel registration (generated at the end of every host-compiled program) -----

/// How one parameter is passed, for traces and pointer checks: p pointer, i int, u unsigned, h ushort,
/// l int64, L uint64, f float, d double, s anything else (a struct by value).
template <typename T> constexpr char emu_kind() {
    if constexpr (std::is_pointer<T>::value) return 'p';
    else if constexpr (std::is_same<T, int>::value) return 'i';
    else if constexpr (std::is_same<T, unsigned>::value) return 'u';
    else if constexpr (std::is_same<T, unsigned short>::value) return 'h';
    else if constexpr (std::is_same<T, long long>::value || std::is_same<T, long>::value) return 'l';
    else if constexpr (std::is_same<T, unsigned long long>::value || std::is_same<T, unsigned long>::value) return 'L';
    else if constexpr (std::is_same<T, float>::value) return 'f';
    else if constexpr (std::is_same<T, double>::value) return 'd';
    else return 's';
}
template <typename... A> const char* emu_kinds(void (*)(A...)) {
    static const char kinds[] = {emu_kind<std::remove_cv_t<std::remove_reference_t<A>>>()..., '\0'};
    return kinds;
}
template <typename... A> const unsigned* emu_sizes(void (*)(A...)) {
    static const unsigned sizes[] = {(unsigned)sizeof(std::remove_cv_t<std::remove_reference_t<A>>)..., 0u};
    return sizes;
}

/// Calls `k` with its arguments read from cuLaunchKernel's array of pointers to values.
template <typename... A, size_t... I>
inline void emu_call_packed_impl(void (*k)(A...), void** p, std::index_sequence<I...>) {
    k(*reinterpret_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
}
template <typename... A> inline void emu_call_packed(void (*k)(A...), void** p) {
    emu_call_packed_impl(k, p, std::index_sequence_for<A...>{});
}

typedef void (*EmuThunk)(void**);
struct EmuKernel {
    const char* name;
    const char* family;
    EmuThunk thunk;
    const char* kinds;       // one emu_kind() letter per parameter
    const unsigned* sizes;   // sizeof each parameter
    int max_threads;         // __launch_bounds__ (PTX .maxntid), 0 = none or unknown
    int registers;           // ptxas registers per thread on sm_90, 0 = unknown
};
void emu_register(const EmuKernel& kernel);
/// One NVRTC program: CRC-32 of the cubin and the PTX NVRTC made from the same source at build time (0 = unknown),
/// so cuModuleLoadData can tell an image compiled from edited sources.
void emu_register_program(const char* family, uint32_t cubin_crc, uint32_t ptx_crc);
