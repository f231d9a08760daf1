// SwiftSpeed's own declarations of the CUDA driver API, NVRTC, cuBLASLt and NCCL, and the dlopen loader that fills them.
// Invariant: no vendor header is included, yet every prototype, enum value and struct layout here matches the real
// ABI (checked against CUDA 13.5 / cuBLAS 13.10 / NCCL 2.32 headers); versioned entry points are named as resolved (_v2).
#ifndef CSPEEDCUDA_H
#define CSPEEDCUDA_H

#include <stddef.h>
#include <stdint.h>

// MARK: - Loader

/// Results of the `ss_load_*` functions.
enum { SS_LOAD_OK = 0, SS_LOAD_NOT_FOUND = 1, SS_LOAD_MISSING_SYMBOL = 2 };

// Each loader opens the first candidate file that resolves every required symbol and fills `table`
// (a symbol marked optional below may stay NULL). Candidates are tried in each directory of
// `search_path` (colon-separated; NULL or "" for none), then, when `use_default_search` is non-zero,
// by bare name (LD_LIBRARY_PATH, the ldconfig cache) and in /usr/local/cuda/lib64 and
// /usr/local/cuda/targets/x86_64-linux/lib. On success `path` receives the file that was opened
// (resolved through dladdr); on failure `table` is zeroed and `error` says which files or which symbol
// were missing. The library stays open for the life of the process. Safe to call from any thread.
struct SSCudaDriver;
struct SSNVRTC;
struct SSCublasLt;
struct SSNCCL;
int ss_load_driver(struct SSCudaDriver *table, const char *search_path, int use_default_search,
                   char *path, int path_length, char *error, int error_length);
int ss_load_nvrtc(struct SSNVRTC *table, const char *search_path, int use_default_search,
                  char *path, int path_length, char *error, int error_length);
int ss_load_cublaslt(struct SSCublasLt *table, const char *search_path, int use_default_search,
                     char *path, int path_length, char *error, int error_length);
int ss_load_nccl(struct SSNCCL *table, const char *search_path, int use_default_search,
                 char *path, int path_length, char *error, int error_length);

// MARK: - CUDA driver API (libcuda.so.1)

typedef int SSCUresult;
typedef int SSCUdevice;
typedef unsigned long long SSCUdeviceptr;
typedef struct SSCUctx_st *SSCUcontext;
typedef struct SSCUmod_st *SSCUmodule;
typedef struct SSCUfunc_st *SSCUfunction;
/// The same type as the runtime's cudaStream_t (NCCL and cuBLASLt take it).
typedef struct SSCUstream_st *SSCUstream;
typedef struct SSCUevent_st *SSCUevent;

/// CUresult values SwiftSpeed explains (cuGetErrorName/cuGetErrorString name the rest).
enum {
    SS_CUDA_SUCCESS = 0,
    SS_CUDA_ERROR_INVALID_VALUE = 1,
    SS_CUDA_ERROR_OUT_OF_MEMORY = 2,
    SS_CUDA_ERROR_NOT_INITIALIZED = 3,
    SS_CUDA_ERROR_STUB_LIBRARY = 34,
    SS_CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER = 36,
    SS_CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
    SS_CUDA_ERROR_NO_DEVICE = 100,
    SS_CUDA_ERROR_INVALID_DEVICE = 101,
    SS_CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
    SS_CUDA_ERROR_INVALID_PTX = 218,
    SS_CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
    SS_CUDA_ERROR_NOT_FOUND = 500,
    SS_CUDA_ERROR_NOT_READY = 600,
    SS_CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    SS_CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
    SS_CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804,
};
/// CUdevice_attribute values used for cuDeviceGetAttribute.
enum {
    SS_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    SS_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    SS_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
};
/// cuStreamCreate and cuEventCreate flags.
enum { SS_CU_STREAM_DEFAULT = 0, SS_CU_STREAM_NON_BLOCKING = 1 };
enum { SS_CU_EVENT_DEFAULT = 0, SS_CU_EVENT_BLOCKING_SYNC = 1, SS_CU_EVENT_DISABLE_TIMING = 2 };
/// CUfunction_attribute values used for cuFuncSetAttribute.
enum { SS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8 };

/// Driver entry points. Field names are the API's names; the comment gives the exported symbol when it differs.
typedef struct SSCudaDriver {
    SSCUresult (*cuInit)(unsigned int flags);
    SSCUresult (*cuDriverGetVersion)(int *version);
    SSCUresult (*cuGetErrorString)(SSCUresult error, const char **string);
    SSCUresult (*cuGetErrorName)(SSCUresult error, const char **string);
    SSCUresult (*cuDeviceGetCount)(int *count);
    SSCUresult (*cuDeviceGet)(SSCUdevice *device, int ordinal);
    SSCUresult (*cuDeviceGetName)(char *name, int length, SSCUdevice device);
    SSCUresult (*cuDeviceTotalMem)(size_t *bytes, SSCUdevice device);                       // cuDeviceTotalMem_v2
    SSCUresult (*cuDeviceGetAttribute)(int *value, int attribute, SSCUdevice device);
    SSCUresult (*cuDevicePrimaryCtxRetain)(SSCUcontext *context, SSCUdevice device);
    SSCUresult (*cuDevicePrimaryCtxRelease)(SSCUdevice device);                             // cuDevicePrimaryCtxRelease_v2
    SSCUresult (*cuCtxSetCurrent)(SSCUcontext context);
    SSCUresult (*cuCtxSynchronize)(void);
    SSCUresult (*cuMemGetInfo)(size_t *free, size_t *total);                                // cuMemGetInfo_v2
    SSCUresult (*cuMemAlloc)(SSCUdeviceptr *pointer, size_t bytes);                         // cuMemAlloc_v2
    SSCUresult (*cuMemFree)(SSCUdeviceptr pointer);                                         // cuMemFree_v2
    SSCUresult (*cuMemAllocHost)(void **pointer, size_t bytes);                             // cuMemAllocHost_v2
    SSCUresult (*cuMemFreeHost)(void *pointer);
    SSCUresult (*cuMemcpyHtoD)(SSCUdeviceptr dst, const void *src, size_t bytes);           // cuMemcpyHtoD_v2
    SSCUresult (*cuMemcpyDtoH)(void *dst, SSCUdeviceptr src, size_t bytes);                 // cuMemcpyDtoH_v2
    SSCUresult (*cuMemcpyDtoD)(SSCUdeviceptr dst, SSCUdeviceptr src, size_t bytes);         // cuMemcpyDtoD_v2
    SSCUresult (*cuMemcpyHtoDAsync)(SSCUdeviceptr dst, const void *src, size_t bytes, SSCUstream stream);   // _v2
    SSCUresult (*cuMemcpyDtoHAsync)(void *dst, SSCUdeviceptr src, size_t bytes, SSCUstream stream);         // _v2
    SSCUresult (*cuMemcpyDtoDAsync)(SSCUdeviceptr dst, SSCUdeviceptr src, size_t bytes, SSCUstream stream); // _v2
    SSCUresult (*cuMemsetD8)(SSCUdeviceptr dst, unsigned char value, size_t count);         // cuMemsetD8_v2
    SSCUresult (*cuMemsetD8Async)(SSCUdeviceptr dst, unsigned char value, size_t count, SSCUstream stream);
    SSCUresult (*cuStreamCreate)(SSCUstream *stream, unsigned int flags);
    SSCUresult (*cuStreamSynchronize)(SSCUstream stream);
    SSCUresult (*cuStreamWaitEvent)(SSCUstream stream, SSCUevent event, unsigned int flags);
    SSCUresult (*cuStreamDestroy)(SSCUstream stream);                                       // cuStreamDestroy_v2
    SSCUresult (*cuEventCreate)(SSCUevent *event, unsigned int flags);
    SSCUresult (*cuEventRecord)(SSCUevent event, SSCUstream stream);
    SSCUresult (*cuEventQuery)(SSCUevent event);
    SSCUresult (*cuEventSynchronize)(SSCUevent event);
    /// cuEventElapsedTime_v2 where the driver has it (CUDA 12.8+), else cuEventElapsedTime (same signature).
    SSCUresult (*cuEventElapsedTime)(float *milliseconds, SSCUevent start, SSCUevent end);
    SSCUresult (*cuEventDestroy)(SSCUevent event);                                          // cuEventDestroy_v2
    SSCUresult (*cuModuleLoadData)(SSCUmodule *module, const void *image);
    SSCUresult (*cuModuleUnload)(SSCUmodule module);
    SSCUresult (*cuModuleGetFunction)(SSCUfunction *function, SSCUmodule module, const char *name);
    SSCUresult (*cuFuncSetAttribute)(SSCUfunction function, int attribute, int value);
    SSCUresult (*cuLaunchKernel)(SSCUfunction function,
                                 unsigned int gridX, unsigned int gridY, unsigned int gridZ,
                                 unsigned int blockX, unsigned int blockY, unsigned int blockZ,
                                 unsigned int sharedMemoryBytes, SSCUstream stream,
                                 void **parameters, void **extra);
} SSCudaDriver;

// MARK: - NVRTC (libnvrtc.so.13 or .12)

typedef int SSNVRTCresult;
typedef struct SSNVRTCprogram_st *SSNVRTCprogram;
enum { SS_NVRTC_SUCCESS = 0, SS_NVRTC_ERROR_INVALID_OPTION = 5, SS_NVRTC_ERROR_COMPILATION = 6 };

typedef struct SSNVRTC {
    const char *(*nvrtcGetErrorString)(SSNVRTCresult result);
    SSNVRTCresult (*nvrtcVersion)(int *major, int *minor);
    SSNVRTCresult (*nvrtcGetNumSupportedArchs)(int *count);                                 // optional
    SSNVRTCresult (*nvrtcGetSupportedArchs)(int *archs);                                    // optional
    SSNVRTCresult (*nvrtcCreateProgram)(SSNVRTCprogram *program, const char *source, const char *name,
                                        int headerCount, const char *const *headers,
                                        const char *const *includeNames);
    SSNVRTCresult (*nvrtcDestroyProgram)(SSNVRTCprogram *program);
    SSNVRTCresult (*nvrtcCompileProgram)(SSNVRTCprogram program, int optionCount, const char *const *options);
    SSNVRTCresult (*nvrtcGetPTXSize)(SSNVRTCprogram program, size_t *size);
    SSNVRTCresult (*nvrtcGetPTX)(SSNVRTCprogram program, char *ptx);
    SSNVRTCresult (*nvrtcGetCUBINSize)(SSNVRTCprogram program, size_t *size);
    SSNVRTCresult (*nvrtcGetCUBIN)(SSNVRTCprogram program, char *cubin);
    SSNVRTCresult (*nvrtcGetProgramLogSize)(SSNVRTCprogram program, size_t *size);
    SSNVRTCresult (*nvrtcGetProgramLog)(SSNVRTCprogram program, char *log);
} SSNVRTC;

// MARK: - cuBLASLt (libcublasLt.so.13 or .12)

typedef int SSCublasStatus;
typedef struct SSCublasLtContext *SSCublasLtHandle;
typedef struct SSCublasLtMatmulDescOpaque *SSCublasLtMatmulDesc;
typedef struct SSCublasLtMatrixLayoutOpaque *SSCublasLtMatrixLayout;
typedef struct SSCublasLtMatmulPreferenceOpaque *SSCublasLtMatmulPreference;
/// cublasLtMatmulAlgo_t: 64 bytes, filled by the heuristic and passed back to cublasLtMatmul.
typedef struct { uint64_t data[8]; } SSCublasLtMatmulAlgo;
/// cublasLtMatmulHeuristicResult_t (96 bytes).
typedef struct {
    SSCublasLtMatmulAlgo algo;
    size_t workspaceSize;
    SSCublasStatus state;
    float wavesCount;
    int reserved[4];
} SSCublasLtMatmulHeuristicResult;

enum {
    SS_CUBLAS_STATUS_SUCCESS = 0, SS_CUBLAS_STATUS_NOT_INITIALIZED = 1, SS_CUBLAS_STATUS_ALLOC_FAILED = 3,
    SS_CUBLAS_STATUS_INVALID_VALUE = 7, SS_CUBLAS_STATUS_ARCH_MISMATCH = 8, SS_CUBLAS_STATUS_EXECUTION_FAILED = 13,
    SS_CUBLAS_STATUS_INTERNAL_ERROR = 14, SS_CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
/// cudaDataType_t.
enum { SS_CUDA_R_32F = 0, SS_CUDA_R_64F = 1, SS_CUDA_R_16F = 2, SS_CUDA_R_16BF = 14 };
/// cublasComputeType_t.
enum { SS_CUBLAS_COMPUTE_32F = 68, SS_CUBLAS_COMPUTE_32F_PEDANTIC = 69, SS_CUBLAS_COMPUTE_64F = 70,
       SS_CUBLAS_COMPUTE_32F_FAST_16BF = 75, SS_CUBLAS_COMPUTE_32F_FAST_TF32 = 77 };
/// cublasOperation_t.
enum { SS_CUBLAS_OP_N = 0, SS_CUBLAS_OP_T = 1 };
/// cublasLtMatmulDescAttributes_t (value type in the comment).
enum {
    SS_CUBLASLT_MATMUL_DESC_POINTER_MODE = 2,   // int32_t
    SS_CUBLASLT_MATMUL_DESC_TRANSA = 3,         // int32_t (cublasOperation_t)
    SS_CUBLASLT_MATMUL_DESC_TRANSB = 4,         // int32_t (cublasOperation_t)
    SS_CUBLASLT_MATMUL_DESC_EPILOGUE = 7,       // uint32_t (cublasLtEpilogue_t)
    SS_CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,   // const void *
};
/// cublasLtEpilogue_t.
enum { SS_CUBLASLT_EPILOGUE_DEFAULT = 1, SS_CUBLASLT_EPILOGUE_BIAS = 4 };
/// cublasLtMatrixLayoutAttribute_t (value type in the comment) and cublasLtOrder_t.
enum {
    SS_CUBLASLT_MATRIX_LAYOUT_ORDER = 1,                  // int32_t (cublasLtOrder_t)
    SS_CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,            // int32_t
    SS_CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,   // int64_t, in elements
};
enum { SS_CUBLASLT_ORDER_COL = 0, SS_CUBLASLT_ORDER_ROW = 1 };
/// cublasLtMatmulPreferenceAttributes_t.
enum {
    SS_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,   // uint64_t
    SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5, // uint32_t (default 256)
    SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6, // uint32_t
    SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7, // uint32_t
    SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8, // uint32_t
};

typedef struct SSCublasLt {
    size_t (*cublasLtGetVersion)(void);
    const char *(*cublasLtGetStatusString)(SSCublasStatus status);                          // optional
    SSCublasStatus (*cublasLtCreate)(SSCublasLtHandle *handle);
    SSCublasStatus (*cublasLtDestroy)(SSCublasLtHandle handle);
    SSCublasStatus (*cublasLtMatmulDescCreate)(SSCublasLtMatmulDesc *desc, int computeType, int scaleType);
    SSCublasStatus (*cublasLtMatmulDescSetAttribute)(SSCublasLtMatmulDesc desc, int attribute,
                                                     const void *value, size_t size);
    SSCublasStatus (*cublasLtMatmulDescDestroy)(SSCublasLtMatmulDesc desc);
    SSCublasStatus (*cublasLtMatrixLayoutCreate)(SSCublasLtMatrixLayout *layout, int type,
                                                 uint64_t rows, uint64_t cols, int64_t ld);
    SSCublasStatus (*cublasLtMatrixLayoutSetAttribute)(SSCublasLtMatrixLayout layout, int attribute,
                                                       const void *value, size_t size);
    SSCublasStatus (*cublasLtMatrixLayoutDestroy)(SSCublasLtMatrixLayout layout);
    SSCublasStatus (*cublasLtMatmulPreferenceCreate)(SSCublasLtMatmulPreference *preference);
    SSCublasStatus (*cublasLtMatmulPreferenceSetAttribute)(SSCublasLtMatmulPreference preference, int attribute,
                                                           const void *value, size_t size);
    SSCublasStatus (*cublasLtMatmulPreferenceDestroy)(SSCublasLtMatmulPreference preference);
    SSCublasStatus (*cublasLtMatmulAlgoGetHeuristic)(SSCublasLtHandle handle, SSCublasLtMatmulDesc desc,
                                                     SSCublasLtMatrixLayout a, SSCublasLtMatrixLayout b,
                                                     SSCublasLtMatrixLayout c, SSCublasLtMatrixLayout d,
                                                     SSCublasLtMatmulPreference preference, int requested,
                                                     SSCublasLtMatmulHeuristicResult *results, int *returned);
    SSCublasStatus (*cublasLtMatmul)(SSCublasLtHandle handle, SSCublasLtMatmulDesc desc,
                                     const void *alpha, const void *a, SSCublasLtMatrixLayout aLayout,
                                     const void *b, SSCublasLtMatrixLayout bLayout,
                                     const void *beta, const void *c, SSCublasLtMatrixLayout cLayout,
                                     void *d, SSCublasLtMatrixLayout dLayout,
                                     const SSCublasLtMatmulAlgo *algo, void *workspace, size_t workspaceBytes,
                                     SSCUstream stream);
} SSCublasLt;

// MARK: - NCCL (libnccl.so.2)

typedef int SSNCCLresult;
typedef struct SSNCCLcomm_st *SSNCCLcomm;
/// ncclUniqueId: 128 opaque bytes, passed by value to ncclCommInitRank.
typedef struct { char internal[128]; } SSNCCLUniqueId;
enum { SS_NCCL_SUCCESS = 0, SS_NCCL_IN_PROGRESS = 7 };
/// ncclRedOp_t.
enum { SS_NCCL_SUM = 0, SS_NCCL_PROD = 1, SS_NCCL_MAX = 2, SS_NCCL_MIN = 3, SS_NCCL_AVG = 4 };
/// ncclDataType_t.
enum {
    SS_NCCL_INT8 = 0, SS_NCCL_UINT8 = 1, SS_NCCL_INT32 = 2, SS_NCCL_UINT32 = 3, SS_NCCL_INT64 = 4,
    SS_NCCL_UINT64 = 5, SS_NCCL_FLOAT16 = 6, SS_NCCL_FLOAT32 = 7, SS_NCCL_FLOAT64 = 8, SS_NCCL_BFLOAT16 = 9,
};

typedef struct SSNCCL {
    SSNCCLresult (*ncclGetVersion)(int *version);
    const char *(*ncclGetErrorString)(SSNCCLresult result);
    SSNCCLresult (*ncclGetUniqueId)(SSNCCLUniqueId *id);
    SSNCCLresult (*ncclCommInitRank)(SSNCCLcomm *comm, int ranks, SSNCCLUniqueId id, int rank);
    SSNCCLresult (*ncclCommDestroy)(SSNCCLcomm comm);
    SSNCCLresult (*ncclCommAbort)(SSNCCLcomm comm);
    SSNCCLresult (*ncclCommGetAsyncError)(SSNCCLcomm comm, SSNCCLresult *error);
    SSNCCLresult (*ncclAllReduce)(const void *send, void *recv, size_t count, int dtype, int op,
                                  SSNCCLcomm comm, SSCUstream stream);
    /// `recvCount` elements per rank; `send` holds ranks × recvCount.
    SSNCCLresult (*ncclReduceScatter)(const void *send, void *recv, size_t recvCount, int dtype, int op,
                                      SSNCCLcomm comm, SSCUstream stream);
    /// `sendCount` elements per rank; `recv` holds ranks × sendCount.
    SSNCCLresult (*ncclAllGather)(const void *send, void *recv, size_t sendCount, int dtype,
                                  SSNCCLcomm comm, SSCUstream stream);
    SSNCCLresult (*ncclBroadcast)(const void *send, void *recv, size_t count, int dtype, int root,
                                  SSNCCLcomm comm, SSCUstream stream);
    SSNCCLresult (*ncclGroupStart)(void);
    SSNCCLresult (*ncclGroupEnd)(void);
    /// Point-to-point (NCCL >= 2.7): `count` elements to / from rank `peer`, in issue order per peer pair.
    SSNCCLresult (*ncclSend)(const void *send, size_t count, int dtype, int peer, SSNCCLcomm comm, SSCUstream stream);
    SSNCCLresult (*ncclRecv)(void *recv, size_t count, int dtype, int peer, SSNCCLcomm comm, SSCUstream stream);
} SSNCCL;

#endif
