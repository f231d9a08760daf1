// The C symbols SwiftSpeed links or loads, declared here so the build needs no vendor headers, and the one C kernel
// that need an instruction set chosen at run time (F16C, AVX2). Invariant: the cblas prototypes match OpenBLAS's ABI
// exactly (row/col-major enums included).
#ifndef CSPEEDSHIMS_H
#define CSPEEDSHIMS_H

enum SSCblasOrder { SSCblasRowMajor = 101, SSCblasColMajor = 102 };
enum SSCblasTranspose { SSCblasNoTrans = 111, SSCblasTrans = 112 };

void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
void cblas_dgemm(int order, int transA, int transB, int m, int n, int k,
                 double alpha, const double *a, int lda, const double *b, int ldb,
                 double beta, double *c, int ldc);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char *openblas_get_config(void);

/// dst[i] = IEEE binary16 of src[i], rounded to nearest even (a NaN becomes 0x7e00 with its sign, as Swift's
/// Float16(Float)), for i < n. Uses F16C when the CPU has it (checked once), else a portable bit conversion;
/// `stream` != 0 writes 16-byte groups with non-temporal stores (dst must then be 16-byte aligned).
void ss_f32_to_f16(const float *src, unsigned short *dst, long n, int stream);
/// 1 when ss_f32_to_f16 uses the CPU's F16C instructions.
int ss_has_f16c(void);
/// dst[i] = bfloat16 of src[i], rounded to nearest even (a NaN keeps its top half with the quiet bit set, as
/// SpeedCore's BFloat16), with AVX2 when the CPU has it; `stream` as for ss_f32_to_f16 (32-byte aligned dst).
void ss_f32_to_bf16(const float *src, unsigned short *dst, long n, int stream);
/// 1 when ss_f32_to_bf16 uses AVX2.
int ss_has_avx2(void);

#endif
