// The C symbols SwiftSpeed links or loads, declared here so the build needs no vendor headers.
// Invariant: these prototypes match the ABI of OpenBLAS's cblas interface exactly (row/col-major enums included).
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

#endif
