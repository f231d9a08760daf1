// fp32 -> fp16 / bf16 narrowing for the CPU Adam's 16-bit weight copy, with F16C / AVX2 chosen at run time (the
// package builds for baseline x86-64). Invariant: every path gives Swift's Float16(Float) / BFloat16 bits exactly,
// NaN included (fp16: 0x7e00 | sign; bf16: the top half with the quiet bit set).
#include "CSpeedShims.h"

#include <stdint.h>
#include <string.h>

/// The portable path: round to nearest even, overflow to inf, subnormals kept (F. Giesen's method).
static unsigned short f32_to_f16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    uint32_t r;
    if (a > 0x7f800000u) r = 0x7e00u;                         // NaN
    else if (a >= 0x47800000u) r = 0x7c00u;                   // >= 65536 (after rounding: inf), inf
    else if (a < 0x38800000u) {                               // below 2^-14: the FPU rounds via + 0.5
        float x;
        memcpy(&x, &a, 4);
        x += 0.5f;
        uint32_t b;
        memcpy(&b, &x, 4);
        r = b - 0x3f000000u;
    } else r = (a + ((a >> 13) & 1u) + 0xc8000fffu) >> 13;
    return (unsigned short)(r | sign);
}

static void f32_to_f16_portable(const float *src, unsigned short *dst, long n) {
    for (long i = 0; i < n; ++i) dst[i] = f32_to_f16_bits(src[i]);
}

/// Round to nearest even on the top half; a NaN keeps its top half with the quiet bit set.
static unsigned short f32_to_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x0040u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static void f32_to_bf16_portable(const float *src, unsigned short *dst, long n) {
    for (long i = 0; i < n; ++i) dst[i] = f32_to_bf16_bits(src[i]);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx,f16c")))
static void f32_to_f16_f16c(const float *src, unsigned short *dst, long n, int stream) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(src + i);
        const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (stream) _mm_stream_si128((__m128i *)(dst + i), h);
        else _mm_storeu_si128((__m128i *)(dst + i), h);
        const int nan = _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        if (nan) {
            // F16C keeps a NaN's payload; Float16(Float) gives the canonical quiet NaN.
            for (int j = 0; j < 8; ++j)
                if (nan & (1 << j)) dst[i + j] = f32_to_f16_bits(src[i + j]);
        }
    }
    f32_to_f16_portable(src + i, dst + i, n - i);
}

/// 8 bf16 results in the low 16 bits of each 32-bit lane.
__attribute__((target("avx2")))
static __m256i bf16_lanes(__m256i u) {
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)),
                         _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))), 16);
    const __m256i nanBits = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x0040));
    const __m256i isNaN = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                             _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(rounded, nanBits, isNaN);
}

__attribute__((target("avx2")))
static void f32_to_bf16_avx2(const float *src, unsigned short *dst, long n, int stream) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = bf16_lanes(_mm256_loadu_si256((const __m256i *)(src + i)));
        const __m256i b = bf16_lanes(_mm256_loadu_si256((const __m256i *)(src + i + 8)));
        // packus works per 128-bit half: (a0-3, b0-3, a4-7, b4-7); the permute restores a0-7, b0-7. Every value
        // is below 0x10000, so the unsigned saturation never changes one.
        const __m256i h = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        if (stream) _mm256_stream_si256((__m256i *)(dst + i), h);
        else _mm256_storeu_si256((__m256i *)(dst + i), h);
    }
    f32_to_bf16_portable(src + i, dst + i, n - i);
}

int ss_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

void ss_f32_to_bf16(const float *src, unsigned short *dst, long n, int stream) {
    if (ss_has_avx2()) f32_to_bf16_avx2(src, dst, n, stream);
    else f32_to_bf16_portable(src, dst, n);
}

int ss_has_f16c(void) {
    __builtin_cpu_init();   // idempotent; reads CPUID once per process
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
}

void ss_f32_to_f16(const float *src, unsigned short *dst, long n, int stream) {
    if (ss_has_f16c()) f32_to_f16_f16c(src, dst, n, stream);
    else f32_to_f16_portable(src, dst, n);
}
#else
int ss_has_f16c(void) { return 0; }
int ss_has_avx2(void) { return 0; }

void ss_f32_to_bf16(const float *src, unsigned short *dst, long n, int stream) {
    (void)stream;
    f32_to_bf16_portable(src, dst, n);
}

void ss_f32_to_f16(const float *src, unsigned short *dst, long n, int stream) {
    (void)stream;
    f32_to_f16_portable(src, dst, n);
}
#endif
