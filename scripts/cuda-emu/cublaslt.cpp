// libcublasLt.so.13 for machines without a GPU: the cuBLASLt matmul API SwiftSpeed resolves (CSpeedCUDA.h), computed
// on the host: D = alpha * op(A) op(B) + beta * C (+ bias), column-major unless a layout says ROW.
// Invariant: every product accumulates in the compute type (fp32, or fp64 for COMPUTE_64F) over k in ascending order
// from inputs widened exactly, and is rounded once to D's type; C is never read when beta == 0.
#include "CSpeedCUDA.h"

#include <algorithm>
#include <math.h>
#include <mutex>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <thread>
#include <unordered_set>
#include <vector>

#define EXPORT extern "C" __attribute__((visibility("default")))

// From the emulator's libcuda.so.1 (this library links it).
extern "C" void ssemu_device_lock(void);
extern "C" void ssemu_device_unlock(void);
extern "C" int ssemu_check_range(const void* p, size_t bytes, const char* call, const char* what);
extern "C" void ssemu_verify_guards(const char* after);

namespace {

const uint64_t kAlgoMagic = 0x53534c54414c474full;   // "SSLTALGO"

struct Desc {
    int32_t compute, scale;
    int32_t pointer_mode = 0, transa = SS_CUBLAS_OP_N, transb = SS_CUBLAS_OP_N, transc = SS_CUBLAS_OP_N;
    uint32_t epilogue = SS_CUBLASLT_EPILOGUE_DEFAULT;
    const void* bias = nullptr;
    int64_t bias_stride = 0;
    int32_t bias_type = -1;   // -1: D's type
};
struct Layout {
    int32_t type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t order = SS_CUBLASLT_ORDER_COL, batch = 1;
    int64_t stride = 0;
};
struct Pref {
    uint64_t workspace = 0;
    uint32_t align[4] = {256, 256, 256, 256};   // MIN_ALIGNMENT_{A,B,C,D}_BYTES
};
struct Handle { int unused; };

std::mutex objects_lock;
std::unordered_set<const void*> objects;   // live handles and descriptors, to catch use after destroy

template <typename T> SSCublasStatus create(T** out, T value) {
    if (!out) return SS_CUBLAS_STATUS_INVALID_VALUE;
    T* p = new T(value);
    std::lock_guard<std::mutex> g(objects_lock);
    objects.insert(p);
    *out = p;
    return SS_CUBLAS_STATUS_SUCCESS;
}
template <typename T> SSCublasStatus destroy(T* p) {
    if (!p) return SS_CUBLAS_STATUS_SUCCESS;
    std::lock_guard<std::mutex> g(objects_lock);
    if (!objects.erase(p)) return SS_CUBLAS_STATUS_INVALID_VALUE;
    delete p;
    return SS_CUBLAS_STATUS_SUCCESS;
}
bool live(const void* p) {
    std::lock_guard<std::mutex> g(objects_lock);
    return p && objects.count(p);
}

bool quiet() {
    static const bool q = [] { const char* v = getenv("SSEMU_QUIET"); return v && *v && strcmp(v, "0") != 0; }();
    return q;
}
int trace() {
    static const int t = [] { const char* v = getenv("SSEMU_TRACE"); return v && *v ? (atoi(v) > 0 ? atoi(v) : 1) : 0; }();
    return t;
}

SSCublasStatus fail(SSCublasStatus status, const char* call, const char* format, ...) __attribute__((format(printf, 3, 4)));
SSCublasStatus fail(SSCublasStatus status, const char* call, const char* format, ...) {
    if (!quiet()) {
        char text[768];
        va_list args;
        va_start(args, format);
        vsnprintf(text, sizeof text, format, args);
        va_end(args);
        fprintf(stderr, "ssemu: %s: %s\n", call, text);
    }
    return status;
}

size_t type_size(int type) {
    switch (type) {
    case SS_CUDA_R_32F: return 4;
    case SS_CUDA_R_64F: return 8;
    case SS_CUDA_R_16F: case SS_CUDA_R_16BF: return 2;
    default: return 0;
    }
}
const char* type_name(int type) {
    switch (type) {
    case SS_CUDA_R_32F: return "32F";
    case SS_CUDA_R_64F: return "64F";
    case SS_CUDA_R_16F: return "16F";
    case SS_CUDA_R_16BF: return "16BF";
    default: return "?";
    }
}

template <typename V> SSCublasStatus set_value(V& field, const void* value, size_t size, const char* call, int attribute) {
    if (!value || size != sizeof(V))
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "attribute %d takes %zu bytes, got %zu", attribute, sizeof(V), size);
    memcpy(&field, value, sizeof(V));
    return SS_CUBLAS_STATUS_SUCCESS;
}

// ----- Conversions (exact widening; rounding to nearest even on the way back, NaN kept a NaN) -----

float bf16_to_float(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
uint16_t float_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float f16_to_float(uint16_t h) { _Float16 v; memcpy(&v, &h, 2); return (float)v; }
uint16_t float_to_f16(float f) { _Float16 h = (_Float16)f; uint16_t u; memcpy(&u, &h, 2); return u; }
float round_tf32(float f) {   // what tensor cores read from fp32 under COMPUTE_32F_FAST_TF32 (nearest, ties away)
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&f, &u, 4);
    return f;
}

template <typename A> A load(const void* base, int type, int64_t index) {
    switch (type) {
    case SS_CUDA_R_32F: return (A)((const float*)base)[index];
    case SS_CUDA_R_64F: return (A)((const double*)base)[index];
    case SS_CUDA_R_16F: return (A)f16_to_float(((const uint16_t*)base)[index]);
    default: return (A)bf16_to_float(((const uint16_t*)base)[index]);
    }
}
template <typename A> void store(void* base, int type, int64_t index, A v) {
    switch (type) {
    case SS_CUDA_R_32F: ((float*)base)[index] = (float)v; break;
    case SS_CUDA_R_64F: ((double*)base)[index] = (double)v; break;
    case SS_CUDA_R_16F: ((uint16_t*)base)[index] = float_to_f16((float)v); break;
    default: ((uint16_t*)base)[index] = float_to_bf16((float)v); break;
    }
}

/// Element offset of (r, c) of a matrix as stored.
inline int64_t at(const Layout& l, int64_t r, int64_t c) {
    return l.order == SS_CUBLASLT_ORDER_ROW ? r * l.ld + c : r + c * l.ld;
}

// ----- Validation shared by the heuristic and the matmul -----

struct Problem { int64_t m, n, k; bool wide; };

SSCublasStatus validate(const Desc* d, const Layout* a, const Layout* b, const Layout* c, const Layout* dl,
                        const char* call, Problem* p) {
    if (!live(d) || !live(a) || !live(b) || !live(c) || !live(dl))
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "a descriptor or layout is null or was destroyed");
    const bool wide = d->compute == SS_CUBLAS_COMPUTE_64F;
    if (wide) {
        if (d->scale != SS_CUDA_R_64F || a->type != SS_CUDA_R_64F || b->type != SS_CUDA_R_64F || c->type != SS_CUDA_R_64F ||
            dl->type != SS_CUDA_R_64F)
            return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "COMPUTE_64F needs scale type and A/B/C/D all 64F");
    } else if (d->compute == SS_CUBLAS_COMPUTE_32F || d->compute == SS_CUBLAS_COMPUTE_32F_PEDANTIC ||
               d->compute == SS_CUBLAS_COMPUTE_32F_FAST_16BF || d->compute == SS_CUBLAS_COMPUTE_32F_FAST_TF32) {
        const bool fast = d->compute == SS_CUBLAS_COMPUTE_32F_FAST_16BF || d->compute == SS_CUBLAS_COMPUTE_32F_FAST_TF32;
        const bool half_in = a->type == SS_CUDA_R_16F || a->type == SS_CUDA_R_16BF;
        const bool ok = d->scale == SS_CUDA_R_32F && a->type == b->type && c->type == dl->type &&
                        (a->type == SS_CUDA_R_32F ? c->type == SS_CUDA_R_32F
                                                  : half_in && !fast && (c->type == a->type || c->type == SS_CUDA_R_32F));
        if (!ok)
            return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call,
                        "compute %d, scale %s with A %s, B %s, C %s, D %s is not a supported combination", d->compute,
                        type_name(d->scale), type_name(a->type), type_name(b->type), type_name(c->type), type_name(dl->type));
    } else {
        return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "compute type %d is not emulated", d->compute);
    }
    if (d->pointer_mode != 0)
        return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "only CUBLASLT_POINTER_MODE_HOST is emulated");
    if (d->transc != SS_CUBLAS_OP_N) return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "TRANSC must be CUBLAS_OP_N");
    if (d->epilogue != SS_CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != SS_CUBLASLT_EPILOGUE_BIAS)
        return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "epilogue %u is not emulated (DEFAULT and BIAS are)", d->epilogue);
    if (d->bias_type != -1 && d->bias_type != dl->type && d->bias_type != SS_CUDA_R_32F)
        return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "bias type %s with D %s", type_name(d->bias_type), type_name(dl->type));
    for (int t : {d->transa, d->transb})
        if (t < 0 || t > 2) return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "unknown cublasOperation_t %d", t);
    const Layout* all[4] = {a, b, c, dl};
    const char names[4] = {'A', 'B', 'C', 'D'};
    for (int i = 0; i < 4; ++i) {
        const Layout* l = all[i];
        if (l->order != SS_CUBLASLT_ORDER_COL && l->order != SS_CUBLASLT_ORDER_ROW)
            return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "matrix %c: order %d (only COL and ROW are emulated)", names[i], l->order);
        const uint64_t lead = l->order == SS_CUBLASLT_ORDER_COL ? l->rows : l->cols;
        if (l->ld < 1 || (uint64_t)l->ld < lead)
            return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "matrix %c: ld %lld < %s %llu (%s order)", names[i],
                        (long long)l->ld, l->order == SS_CUBLASLT_ORDER_COL ? "rows" : "cols", (unsigned long long)lead,
                        l->order == SS_CUBLASLT_ORDER_COL ? "column" : "row");
        if (l->batch < 1) return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "matrix %c: batch count %d", names[i], l->batch);
    }
    const bool ta = d->transa != SS_CUBLAS_OP_N, tb = d->transb != SS_CUBLAS_OP_N;
    const int64_t m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols;
    const int64_t kb = tb ? b->cols : b->rows, n = tb ? b->rows : b->cols;
    if (k != kb || (int64_t)c->rows != m || (int64_t)c->cols != n || (int64_t)dl->rows != m || (int64_t)dl->cols != n)
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call,
                    "shapes do not chain: op(A) %lldx%lld (A %llux%llu, %s), op(B) %lldx%lld (B %llux%llu, %s), C %llux%llu, "
                    "D %llux%llu", (long long)m, (long long)k, (unsigned long long)a->rows, (unsigned long long)a->cols,
                    ta ? "T" : "N", (long long)kb, (long long)n, (unsigned long long)b->rows, (unsigned long long)b->cols,
                    tb ? "T" : "N", (unsigned long long)c->rows, (unsigned long long)c->cols,
                    (unsigned long long)dl->rows, (unsigned long long)dl->cols);
    if (a->batch != dl->batch || b->batch != dl->batch || c->batch != dl->batch)
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "batch counts differ: A %d, B %d, C %d, D %d (broadcast with "
                    "STRIDED_BATCH_OFFSET 0 instead)", a->batch, b->batch, c->batch, dl->batch);
    if (p) *p = Problem{m, n, k, wide};
    return SS_CUBLAS_STATUS_SUCCESS;
}

/// What an algo is tied to: everything but the shapes.
uint64_t fingerprint(const Desc* d, const Layout* a, const Layout* b, const Layout* c, const Layout* dl) {
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : {(int64_t)d->compute, (int64_t)d->scale, (int64_t)d->transa, (int64_t)d->transb,
                      (int64_t)d->epilogue, (int64_t)a->type, (int64_t)b->type, (int64_t)c->type, (int64_t)dl->type,
                      (int64_t)a->order, (int64_t)b->order, (int64_t)c->order, (int64_t)dl->order})
        h = (h ^ (uint64_t)v) * 1099511628211ull;
    return h;
}

// ----- The product -----

/// acc[j] += a * row[j] for j < n: the inner loop, vectorised (with -ffp-contract=off every lane rounds the same).
__attribute__((target_clones("avx2", "default")))
void axpy_f32(float* __restrict acc, const float* __restrict row, float a, int64_t n) {
    for (int64_t j = 0; j < n; ++j) acc[j] += a * row[j];
}
__attribute__((target_clones("avx2", "default")))
void axpy_f64(double* __restrict acc, const double* __restrict row, double a, int64_t n) {
    for (int64_t j = 0; j < n; ++j) acc[j] += a * row[j];
}

struct Run {
    const Desc* d;
    const Layout *la, *lb, *lc, *ld;
    const void *A, *B, *C;
    void* D;
    Problem p;
};

/// One batch: op(A) and op(B) widened into row-major copies, then D row by row (rows [r0, r1) on this thread).
template <typename T>
void rows(const Run& r, const std::vector<T>& opA, const std::vector<T>& opB, const char* C, char* D, const char* bias,
          T alpha, T beta, int64_t r0, int64_t r1) {
    const int64_t n = r.p.n, k = r.p.k;
    const int bias_type = r.d->bias_type == -1 ? r.ld->type : r.d->bias_type;
    std::vector<T> acc((size_t)n);
    for (int64_t i = r0; i < r1; ++i) {
        std::fill(acc.begin(), acc.end(), (T)0);
        for (int64_t kk = 0; kk < k; ++kk) {
            if constexpr (sizeof(T) == 4) axpy_f32(acc.data(), opB.data() + kk * n, opA[i * k + kk], n);
            else axpy_f64(acc.data(), opB.data() + kk * n, opA[i * k + kk], n);
        }
        const T b = bias ? load<T>(bias, bias_type, i) : (T)0;
        for (int64_t j = 0; j < n; ++j) {
            T v = alpha * acc[j];
            if (beta != (T)0) v = v + beta * load<T>(C, r.lc->type, at(*r.lc, i, j));
            if (bias) v = v + b;
            store<T>(D, r.ld->type, at(*r.ld, i, j), v);
        }
    }
}

template <typename T> void compute(const Run& r, T alpha, T beta) {
    const int64_t m = r.p.m, n = r.p.n, k = r.p.k;
    const bool ta = r.d->transa != SS_CUBLAS_OP_N, tb = r.d->transb != SS_CUBLAS_OP_N;
    const int round = r.d->compute == SS_CUBLAS_COMPUTE_32F_FAST_TF32 ? 1 : r.d->compute == SS_CUBLAS_COMPUTE_32F_FAST_16BF ? 2 : 0;
    auto widen = [&](const void* base, int type, int64_t index) {
        T v = load<T>(base, type, index);
        if constexpr (sizeof(T) == 4) {
            if (round == 1) v = round_tf32(v);
            else if (round == 2) v = bf16_to_float(float_to_bf16(v));
        }
        return v;
    };
    std::vector<T> opA((size_t)(m * k)), opB((size_t)(k * n));
    const size_t ea = type_size(r.la->type), eb = type_size(r.lb->type), ec = type_size(r.lc->type),
                 ed = type_size(r.ld->type);
    const size_t eb_bias = type_size(r.d->bias_type == -1 ? r.ld->type : r.d->bias_type);
    const int threads = (double)m * n * k > 4e6 && m > 1 ? 2 : 1;
    for (int64_t batch = 0; batch < r.ld->batch; ++batch) {
        const char* A = (const char*)r.A + batch * r.la->stride * (int64_t)ea;
        const char* B = (const char*)r.B + batch * r.lb->stride * (int64_t)eb;
        if (batch == 0 || r.la->stride != 0)
            for (int64_t i = 0; i < m; ++i)
                for (int64_t kk = 0; kk < k; ++kk) opA[i * k + kk] = widen(A, r.la->type, ta ? at(*r.la, kk, i) : at(*r.la, i, kk));
        if (batch == 0 || r.lb->stride != 0)
            for (int64_t kk = 0; kk < k; ++kk)
                for (int64_t j = 0; j < n; ++j) opB[kk * n + j] = widen(B, r.lb->type, tb ? at(*r.lb, j, kk) : at(*r.lb, kk, j));
        const char* C = (const char*)r.C + batch * r.lc->stride * (int64_t)ec;
        char* D = (char*)r.D + batch * r.ld->stride * (int64_t)ed;
        const char* bias = r.d->epilogue == SS_CUBLASLT_EPILOGUE_BIAS
                               ? (const char*)r.d->bias + batch * r.d->bias_stride * (int64_t)eb_bias : nullptr;
        if (threads == 1) {
            rows<T>(r, opA, opB, C, D, bias, alpha, beta, 0, m);
        } else {
            std::thread helper([&] { rows<T>(r, opA, opB, C, D, bias, alpha, beta, m / 2, m); });
            rows<T>(r, opA, opB, C, D, bias, alpha, beta, 0, m / 2);
            helper.join();
        }
    }
}

/// Bytes from the lowest to one past the highest element a batched matrix touches (0 when empty).
size_t footprint(const Layout& l, int64_t rows, int64_t cols) {
    if (rows == 0 || cols == 0) return 0;
    const int64_t last = at(l, rows - 1, cols - 1) + (l.batch - 1) * (l.stride > 0 ? l.stride : 0);
    return (size_t)(last + 1) * type_size(l.type);
}

}  // namespace

// ===== API =====

EXPORT size_t cublasLtGetVersion(void) { return 131000; }

EXPORT const char* cublasLtGetStatusString(SSCublasStatus status) {
    switch (status) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

EXPORT SSCublasStatus cublasLtCreate(SSCublasLtHandle* handle) {
    Handle* h;
    SSCublasStatus s = create(&h, Handle{0});
    if (s == SS_CUBLAS_STATUS_SUCCESS) *handle = (SSCublasLtHandle)h;
    return s;
}
EXPORT SSCublasStatus cublasLtDestroy(SSCublasLtHandle handle) { return destroy((Handle*)handle); }

EXPORT SSCublasStatus cublasLtMatmulDescCreate(SSCublasLtMatmulDesc* desc, int computeType, int scaleType) {
    Desc* d;
    SSCublasStatus s = create(&d, Desc{computeType, scaleType});
    if (s == SS_CUBLAS_STATUS_SUCCESS) *desc = (SSCublasLtMatmulDesc)d;
    return s;
}
EXPORT SSCublasStatus cublasLtMatmulDescDestroy(SSCublasLtMatmulDesc desc) { return destroy((Desc*)desc); }

EXPORT SSCublasStatus cublasLtMatmulDescSetAttribute(SSCublasLtMatmulDesc desc, int attribute, const void* value, size_t size) {
    const char* call = "cublasLtMatmulDescSetAttribute";
    if (!live(desc)) return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "null or destroyed descriptor");
    Desc* d = (Desc*)desc;
    switch (attribute) {
    case 0: return set_value(d->compute, value, size, call, attribute);
    case 1: return set_value(d->scale, value, size, call, attribute);
    case SS_CUBLASLT_MATMUL_DESC_POINTER_MODE: return set_value(d->pointer_mode, value, size, call, attribute);
    case SS_CUBLASLT_MATMUL_DESC_TRANSA: return set_value(d->transa, value, size, call, attribute);
    case SS_CUBLASLT_MATMUL_DESC_TRANSB: return set_value(d->transb, value, size, call, attribute);
    case 5: return set_value(d->transc, value, size, call, attribute);
    case SS_CUBLASLT_MATMUL_DESC_EPILOGUE: return set_value(d->epilogue, value, size, call, attribute);
    case SS_CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_value(d->bias, value, size, call, attribute);
    case 10: return set_value(d->bias_stride, value, size, call, attribute);   // BIAS_BATCH_STRIDE
    case 15: { int32_t ignored; return set_value(ignored, value, size, call, attribute); }   // SM_COUNT_TARGET
    case 26: return set_value(d->bias_type, value, size, call, attribute);     // BIAS_DATA_TYPE
    default: return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "matmul attribute %d is not emulated", attribute);
    }
}

EXPORT SSCublasStatus cublasLtMatrixLayoutCreate(SSCublasLtMatrixLayout* layout, int type, uint64_t rows, uint64_t cols,
                                                 int64_t ld) {
    if (!type_size(type))
        return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatrixLayoutCreate", "data type %d is not emulated", type);
    Layout* l;
    SSCublasStatus s = create(&l, Layout{type, rows, cols, ld});
    if (s == SS_CUBLAS_STATUS_SUCCESS) *layout = (SSCublasLtMatrixLayout)l;
    return s;
}
EXPORT SSCublasStatus cublasLtMatrixLayoutDestroy(SSCublasLtMatrixLayout layout) { return destroy((Layout*)layout); }

EXPORT SSCublasStatus cublasLtMatrixLayoutSetAttribute(SSCublasLtMatrixLayout layout, int attribute, const void* value,
                                                       size_t size) {
    const char* call = "cublasLtMatrixLayoutSetAttribute";
    if (!live(layout)) return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "null or destroyed layout");
    Layout* l = (Layout*)layout;
    switch (attribute) {
    case 0: {
        uint32_t t = 0;
        SSCublasStatus s = set_value(t, value, size, call, attribute);
        if (s == SS_CUBLAS_STATUS_SUCCESS) l->type = (int32_t)t;
        return s;
    }
    case SS_CUBLASLT_MATRIX_LAYOUT_ORDER: return set_value(l->order, value, size, call, attribute);
    case 2: return set_value(l->rows, value, size, call, attribute);
    case 3: return set_value(l->cols, value, size, call, attribute);
    case 4: return set_value(l->ld, value, size, call, attribute);
    case SS_CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return set_value(l->batch, value, size, call, attribute);
    case SS_CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return set_value(l->stride, value, size, call, attribute);
    default: return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "layout attribute %d is not emulated", attribute);
    }
}

EXPORT SSCublasStatus cublasLtMatmulPreferenceCreate(SSCublasLtMatmulPreference* preference) {
    Pref* p;
    SSCublasStatus s = create(&p, Pref{});
    if (s == SS_CUBLAS_STATUS_SUCCESS) *preference = (SSCublasLtMatmulPreference)p;
    return s;
}
EXPORT SSCublasStatus cublasLtMatmulPreferenceDestroy(SSCublasLtMatmulPreference preference) {
    return destroy((Pref*)preference);
}

EXPORT SSCublasStatus cublasLtMatmulPreferenceSetAttribute(SSCublasLtMatmulPreference preference, int attribute,
                                                           const void* value, size_t size) {
    const char* call = "cublasLtMatmulPreferenceSetAttribute";
    if (!live(preference)) return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "null or destroyed preference");
    Pref* p = (Pref*)preference;
    if (attribute == SS_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return set_value(p->workspace, value, size, call, attribute);
    if (attribute >= 5 && attribute <= 8) return set_value(p->align[attribute - 5], value, size, call, attribute);
    if (attribute == 0 || attribute == 3) { uint32_t ignored; return set_value(ignored, value, size, call, attribute); }
    return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call, "preference attribute %d is not emulated", attribute);
}

EXPORT SSCublasStatus cublasLtMatmulAlgoGetHeuristic(SSCublasLtHandle handle, SSCublasLtMatmulDesc desc,
                                                     SSCublasLtMatrixLayout a, SSCublasLtMatrixLayout b,
                                                     SSCublasLtMatrixLayout c, SSCublasLtMatrixLayout d,
                                                     SSCublasLtMatmulPreference preference, int requested,
                                                     SSCublasLtMatmulHeuristicResult* results, int* returned) {
    const char* call = "cublasLtMatmulAlgoGetHeuristic";
    if (returned) *returned = 0;
    if (!live(handle) || !live(preference) || requested < 1 || !results || !returned)
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "null or destroyed handle/preference, or no room for results");
    const Desc* dd = (const Desc*)desc;
    const Layout *la = (const Layout*)a, *lb = (const Layout*)b, *lc = (const Layout*)c, *ld = (const Layout*)d;
    SSCublasStatus s = validate(dd, la, lb, lc, ld, call, nullptr);
    if (s != SS_CUBLAS_STATUS_SUCCESS) return s;
    const Pref* p = (const Pref*)preference;
    memset(&results[0], 0, sizeof results[0]);
    results[0].algo.data[0] = kAlgoMagic;
    results[0].algo.data[1] = fingerprint(dd, la, lb, lc, ld);
    for (int i = 0; i < 4; ++i) results[0].algo.data[2] |= (uint64_t)(p->align[i] & 0xffff) << (16 * i);
    results[0].workspaceSize = 0;
    results[0].state = SS_CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return SS_CUBLAS_STATUS_SUCCESS;
}

EXPORT SSCublasStatus cublasLtMatmul(SSCublasLtHandle handle, SSCublasLtMatmulDesc desc, const void* alpha, const void* a,
                                     SSCublasLtMatrixLayout aLayout, const void* b, SSCublasLtMatrixLayout bLayout,
                                     const void* beta, const void* c, SSCublasLtMatrixLayout cLayout, void* d,
                                     SSCublasLtMatrixLayout dLayout, const SSCublasLtMatmulAlgo* algo, void* workspace,
                                     size_t workspaceBytes, SSCUstream stream) {
    (void)workspace;
    (void)workspaceBytes;
    (void)stream;
    const char* call = "cublasLtMatmul";
    if (!live(handle)) return fail(SS_CUBLAS_STATUS_NOT_INITIALIZED, call, "null or destroyed handle");
    const Desc* dd = (const Desc*)desc;
    const Layout *la = (const Layout*)aLayout, *lb = (const Layout*)bLayout, *lc = (const Layout*)cLayout,
                 *ld = (const Layout*)dLayout;
    Problem p;
    SSCublasStatus s = validate(dd, la, lb, lc, ld, call, &p);
    if (s != SS_CUBLAS_STATUS_SUCCESS) return s;
    if (!alpha || !beta) return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "alpha and beta must be host pointers");
    const bool beta_zero = p.wide ? *(const double*)beta == 0.0 : *(const float*)beta == 0.0f;
    const bool empty = p.m == 0 || p.n == 0;
    if (!empty && ((p.k > 0 && (!a || !b)) || !d || (!beta_zero && !c)))
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "a matrix pointer is null");
    if (dd->epilogue == SS_CUBLASLT_EPILOGUE_BIAS && !dd->bias && !empty)
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "EPILOGUE_BIAS without BIAS_POINTER");
    if (c == d && !beta_zero && (lc->ld != ld->ld || lc->order != ld->order || lc->stride != ld->stride))
        return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "in place (C == D) needs identical C and D layouts");
    const void* ptrs[4] = {a, b, c, d};
    const Layout* lays[4] = {la, lb, lc, ld};
    if (algo) {
        if (algo->data[0] != kAlgoMagic)
            return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "algo was not returned by cublasLtMatmulAlgoGetHeuristic");
        if (algo->data[1] != fingerprint(dd, la, lb, lc, ld))
            return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call,
                        "algo came from a heuristic for different types, transposes, orders or epilogue");
        const char* check_align = getenv("SSEMU_CUBLAS_ALIGNMENT");
        if (!(check_align && !strcmp(check_align, "0")))
            for (int i = 0; i < 4; ++i) {
                const unsigned promised = (unsigned)((algo->data[2] >> (16 * i)) & 0xffff);
                const unsigned needed = promised < 16 ? promised : 16;
                if (ptrs[i] && needed && (uintptr_t)ptrs[i] % needed && !(i == 2 && beta_zero))
                    return fail(SS_CUBLAS_STATUS_NOT_SUPPORTED, call,
                                "matrix %c at %p is not %u-byte aligned, but the heuristic that chose the algo was "
                                "promised %u (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_%c_BYTES, default 256): set that "
                                "preference to the pointer's real alignment", "ABCD"[i], ptrs[i], needed, promised, "ABCD"[i]);
            }
    }
    for (int i = 0; i < 4; ++i)
        if (ptrs[i] && (uintptr_t)ptrs[i] % type_size(lays[i]->type))
            return fail(SS_CUBLAS_STATUS_INVALID_VALUE, call, "matrix %c at %p is not aligned to its element size",
                        "ABCD"[i], ptrs[i]);
    if (trace())
        fprintf(stderr, "ssemu: cublasLtMatmul m %lld n %lld k %lld batch %d %s%s A %s B %s C %s D %s%s\n",
                (long long)p.m, (long long)p.n, (long long)p.k, ld->batch, dd->transa ? "T" : "N", dd->transb ? "T" : "N",
                type_name(la->type), type_name(lb->type), type_name(lc->type), type_name(ld->type),
                dd->epilogue == SS_CUBLASLT_EPILOGUE_BIAS ? " +bias" : "");
    if (empty) return SS_CUBLAS_STATUS_SUCCESS;

    ssemu_device_lock();
    struct Unlock { ~Unlock() { ssemu_device_unlock(); } } unlock;
    const int64_t extents[4][2] = {{(int64_t)la->rows, (int64_t)la->cols}, {(int64_t)lb->rows, (int64_t)lb->cols},
                                   {p.m, p.n}, {p.m, p.n}};
    for (int i = 0; i < 4; ++i) {
        if ((i < 2 && p.k == 0) || (i == 2 && beta_zero)) continue;
        const char what[] = {'m', 'a', 't', 'r', 'i', 'x', ' ', "ABCD"[i], '\0'};
        if (!ssemu_check_range(ptrs[i], footprint(*lays[i], extents[i][0], extents[i][1]), call, what))
            return SS_CUBLAS_STATUS_INVALID_VALUE;
    }
    if (dd->epilogue == SS_CUBLASLT_EPILOGUE_BIAS) {
        const size_t e = type_size(dd->bias_type == -1 ? ld->type : dd->bias_type);
        const size_t bytes = (size_t)(p.m + (ld->batch - 1) * (dd->bias_stride > 0 ? dd->bias_stride : 0)) * e;
        if (!ssemu_check_range(dd->bias, bytes, call, "bias")) return SS_CUBLAS_STATUS_INVALID_VALUE;
    }
    const Run run{dd, la, lb, lc, ld, a, b, c, d, p};
    static const bool no_compute = [] { const char* v = getenv("SSEMU_NO_COMPUTE"); return v && *v && strcmp(v, "0") != 0; }();
    if (no_compute) return SS_CUBLAS_STATUS_SUCCESS;
    if (p.wide) compute<double>(run, *(const double*)alpha, *(const double*)beta);
    else compute<float>(run, *(const float*)alpha, *(const float*)beta);
    ssemu_verify_guards(call);
    return SS_CUBLAS_STATUS_SUCCESS;
}
