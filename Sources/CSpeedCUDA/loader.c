// The dlopen/dlsym loader behind CSpeedCUDA.h: one symbol list per library, one search routine for all.
// Invariant: a table is either completely filled (every required symbol resolved from ONE file) or zeroed; a file
// that opens but lacks a symbol is closed again and the next candidate tried, and the first such miss is reported.
#define _GNU_SOURCE
#include "CSpeedCUDA.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(SSCublasLtMatmulAlgo) == 64, "cublasLtMatmulAlgo_t is 64 bytes");
_Static_assert(sizeof(SSCublasLtMatmulHeuristicResult) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");
_Static_assert(sizeof(SSNCCLUniqueId) == 128, "ncclUniqueId is 128 bytes");
_Static_assert(sizeof(SSCUdeviceptr) == 8, "CUdeviceptr is 64-bit on 64-bit hosts");

/// One table slot: the exported name, an older name tried when the first is absent, and whether it may stay NULL.
typedef struct { const char *name; const char *fallback; size_t offset; int optional; } Symbol;

#define REQ(T, field, symbol) { symbol, NULL, offsetof(T, field), 0 }
#define OR(T, field, symbol, older) { symbol, older, offsetof(T, field), 0 }
#define OPT(T, field, symbol) { symbol, NULL, offsetof(T, field), 1 }

static const Symbol driver_symbols[] = {
    REQ(SSCudaDriver, cuInit, "cuInit"),
    REQ(SSCudaDriver, cuDriverGetVersion, "cuDriverGetVersion"),
    REQ(SSCudaDriver, cuGetErrorString, "cuGetErrorString"),
    REQ(SSCudaDriver, cuGetErrorName, "cuGetErrorName"),
    REQ(SSCudaDriver, cuDeviceGetCount, "cuDeviceGetCount"),
    REQ(SSCudaDriver, cuDeviceGet, "cuDeviceGet"),
    REQ(SSCudaDriver, cuDeviceGetName, "cuDeviceGetName"),
    REQ(SSCudaDriver, cuDeviceTotalMem, "cuDeviceTotalMem_v2"),
    REQ(SSCudaDriver, cuDeviceGetAttribute, "cuDeviceGetAttribute"),
    REQ(SSCudaDriver, cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    REQ(SSCudaDriver, cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    REQ(SSCudaDriver, cuCtxSetCurrent, "cuCtxSetCurrent"),
    REQ(SSCudaDriver, cuCtxSynchronize, "cuCtxSynchronize"),
    REQ(SSCudaDriver, cuMemGetInfo, "cuMemGetInfo_v2"),
    REQ(SSCudaDriver, cuMemAlloc, "cuMemAlloc_v2"),
    REQ(SSCudaDriver, cuMemFree, "cuMemFree_v2"),
    REQ(SSCudaDriver, cuMemAllocHost, "cuMemAllocHost_v2"),
    REQ(SSCudaDriver, cuMemFreeHost, "cuMemFreeHost"),
    REQ(SSCudaDriver, cuMemcpyHtoD, "cuMemcpyHtoD_v2"),
    REQ(SSCudaDriver, cuMemcpyDtoH, "cuMemcpyDtoH_v2"),
    REQ(SSCudaDriver, cuMemcpyDtoD, "cuMemcpyDtoD_v2"),
    REQ(SSCudaDriver, cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    REQ(SSCudaDriver, cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    REQ(SSCudaDriver, cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
    REQ(SSCudaDriver, cuMemsetD8, "cuMemsetD8_v2"),
    REQ(SSCudaDriver, cuMemsetD8Async, "cuMemsetD8Async"),
    REQ(SSCudaDriver, cuStreamCreate, "cuStreamCreate"),
    REQ(SSCudaDriver, cuStreamSynchronize, "cuStreamSynchronize"),
    REQ(SSCudaDriver, cuStreamWaitEvent, "cuStreamWaitEvent"),
    REQ(SSCudaDriver, cuStreamDestroy, "cuStreamDestroy_v2"),
    REQ(SSCudaDriver, cuEventCreate, "cuEventCreate"),
    REQ(SSCudaDriver, cuEventRecord, "cuEventRecord"),
    REQ(SSCudaDriver, cuEventQuery, "cuEventQuery"),
    REQ(SSCudaDriver, cuEventSynchronize, "cuEventSynchronize"),
    OR(SSCudaDriver, cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime"),
    REQ(SSCudaDriver, cuEventDestroy, "cuEventDestroy_v2"),
    REQ(SSCudaDriver, cuModuleLoadData, "cuModuleLoadData"),
    REQ(SSCudaDriver, cuModuleUnload, "cuModuleUnload"),
    REQ(SSCudaDriver, cuModuleGetFunction, "cuModuleGetFunction"),
    REQ(SSCudaDriver, cuFuncSetAttribute, "cuFuncSetAttribute"),
    REQ(SSCudaDriver, cuLaunchKernel, "cuLaunchKernel"),
};

static const Symbol nvrtc_symbols[] = {
    REQ(SSNVRTC, nvrtcGetErrorString, "nvrtcGetErrorString"),
    REQ(SSNVRTC, nvrtcVersion, "nvrtcVersion"),
    OPT(SSNVRTC, nvrtcGetNumSupportedArchs, "nvrtcGetNumSupportedArchs"),
    OPT(SSNVRTC, nvrtcGetSupportedArchs, "nvrtcGetSupportedArchs"),
    REQ(SSNVRTC, nvrtcCreateProgram, "nvrtcCreateProgram"),
    REQ(SSNVRTC, nvrtcDestroyProgram, "nvrtcDestroyProgram"),
    REQ(SSNVRTC, nvrtcCompileProgram, "nvrtcCompileProgram"),
    REQ(SSNVRTC, nvrtcGetPTXSize, "nvrtcGetPTXSize"),
    REQ(SSNVRTC, nvrtcGetPTX, "nvrtcGetPTX"),
    REQ(SSNVRTC, nvrtcGetCUBINSize, "nvrtcGetCUBINSize"),
    REQ(SSNVRTC, nvrtcGetCUBIN, "nvrtcGetCUBIN"),
    REQ(SSNVRTC, nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize"),
    REQ(SSNVRTC, nvrtcGetProgramLog, "nvrtcGetProgramLog"),
};

static const Symbol cublaslt_symbols[] = {
    REQ(SSCublasLt, cublasLtGetVersion, "cublasLtGetVersion"),
    OPT(SSCublasLt, cublasLtGetStatusString, "cublasLtGetStatusString"),
    REQ(SSCublasLt, cublasLtCreate, "cublasLtCreate"),
    REQ(SSCublasLt, cublasLtDestroy, "cublasLtDestroy"),
    REQ(SSCublasLt, cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate"),
    REQ(SSCublasLt, cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute"),
    REQ(SSCublasLt, cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy"),
    REQ(SSCublasLt, cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate"),
    REQ(SSCublasLt, cublasLtMatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute"),
    REQ(SSCublasLt, cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy"),
    REQ(SSCublasLt, cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate"),
    REQ(SSCublasLt, cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute"),
    REQ(SSCublasLt, cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy"),
    REQ(SSCublasLt, cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic"),
    REQ(SSCublasLt, cublasLtMatmul, "cublasLtMatmul"),
};

static const Symbol nccl_symbols[] = {
    REQ(SSNCCL, ncclGetVersion, "ncclGetVersion"),
    REQ(SSNCCL, ncclGetErrorString, "ncclGetErrorString"),
    REQ(SSNCCL, ncclGetUniqueId, "ncclGetUniqueId"),
    REQ(SSNCCL, ncclCommInitRank, "ncclCommInitRank"),
    REQ(SSNCCL, ncclCommDestroy, "ncclCommDestroy"),
    REQ(SSNCCL, ncclCommAbort, "ncclCommAbort"),
    REQ(SSNCCL, ncclCommGetAsyncError, "ncclCommGetAsyncError"),
    REQ(SSNCCL, ncclAllReduce, "ncclAllReduce"),
    REQ(SSNCCL, ncclReduceScatter, "ncclReduceScatter"),
    REQ(SSNCCL, ncclAllGather, "ncclAllGather"),
    REQ(SSNCCL, ncclBroadcast, "ncclBroadcast"),
    REQ(SSNCCL, ncclGroupStart, "ncclGroupStart"),
    REQ(SSNCCL, ncclGroupEnd, "ncclGroupEnd"),
    REQ(SSNCCL, ncclSend, "ncclSend"),
    REQ(SSNCCL, ncclRecv, "ncclRecv"),
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const fallback_dirs[] = {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"};

static void copy_out(char *out, int length, const char *text) {
    if (out && length > 0) snprintf(out, (size_t)length, "%s", text ? text : "");
}

/// Resolves every symbol of `symbols` from `handle` into `table`; on a missing required symbol writes its
/// name into `missing` and returns 0.
static int resolve(void *handle, const Symbol *symbols, int count, void *table, const char **missing) {
    for (int i = 0; i < count; i++) {
        void *address = dlsym(handle, symbols[i].name);
        if (!address && symbols[i].fallback) address = dlsym(handle, symbols[i].fallback);
        if (!address && !symbols[i].optional) { *missing = symbols[i].name; return 0; }
        memcpy((char *)table + symbols[i].offset, &address, sizeof(void *));
    }
    return 1;
}

/// The search shared by every library (see CSpeedCUDA.h for the order).
static int load(const char *const *files, int file_count, const Symbol *symbols, int symbol_count,
                void *table, size_t table_size, const char *search_path, int use_default_search,
                char *path, int path_length, char *error, int error_length) {
    // Candidate paths: every file in every search-path directory, then bare names, then the fallback dirs.
    enum { MAX_CANDIDATES = 96 };
    char *candidates[MAX_CANDIDATES];
    int n = 0;
    char *dirs = search_path ? strdup(search_path) : NULL;
    char *save = NULL;
    for (char *dir = dirs ? strtok_r(dirs, ":", &save) : NULL; dir && n < MAX_CANDIDATES - 16;
         dir = strtok_r(NULL, ":", &save)) {
        if (!*dir) continue;
        for (int f = 0; f < file_count; f++) {
            size_t length = strlen(dir) + strlen(files[f]) + 2;
            candidates[n] = malloc(length);
            snprintf(candidates[n++], length, "%s/%s", dir, files[f]);
        }
    }
    free(dirs);
    if (use_default_search) {
        for (int f = 0; f < file_count; f++) candidates[n++] = strdup(files[f]);
        for (int d = 0; d < COUNT(fallback_dirs); d++)
            for (int f = 0; f < file_count && n < MAX_CANDIDATES; f++) {
                size_t length = strlen(fallback_dirs[d]) + strlen(files[f]) + 2;
                candidates[n] = malloc(length);
                snprintf(candidates[n++], length, "%s/%s", fallback_dirs[d], files[f]);
            }
    }

    int status = SS_LOAD_NOT_FOUND;
    char first_miss[1024] = "";
    char last_dlerror[512] = "";
    memset(table, 0, table_size);
    for (int i = 0; i < n && status != SS_LOAD_OK; i++) {
        void *handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            const char *why = dlerror();
            // Keep the most telling failure: a file that exists but cannot load beats "no such file".
            if (why && (!last_dlerror[0] || !strstr(why, "No such file")))
                snprintf(last_dlerror, sizeof last_dlerror, "%s", why);
            continue;
        }
        const char *missing = NULL;
        if (resolve(handle, symbols, symbol_count, table, &missing)) {
            Dl_info info;
            void *any = NULL;
            memcpy(&any, (char *)table + symbols[0].offset, sizeof(void *));
            copy_out(path, path_length, (any && dladdr(any, &info) && info.dli_fname) ? info.dli_fname : candidates[i]);
            status = SS_LOAD_OK;
        } else {
            if (!first_miss[0])
                snprintf(first_miss, sizeof first_miss, "%s opened but has no symbol %s", candidates[i], missing);
            memset(table, 0, table_size);
            dlclose(handle);
        }
    }
    if (status != SS_LOAD_OK) {
        if (first_miss[0]) {
            status = SS_LOAD_MISSING_SYMBOL;
            copy_out(error, error_length, first_miss);
        } else {
            char names[256] = "";
            for (int f = 0; f < file_count; f++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", f ? ", " : "", files[f]);
            char message[1024];
            snprintf(message, sizeof message, "%s not found (searched %s%s%s%s)%s%s", names,
                     search_path && *search_path ? search_path : "",
                     search_path && *search_path && use_default_search ? ", then " : "",
                     use_default_search ? "the system library path, /usr/local/cuda/lib64" : "",
                     !(search_path && *search_path) && !use_default_search ? "nowhere" : "",
                     last_dlerror[0] ? "; last error: " : "", last_dlerror);
            copy_out(error, error_length, message);
        }
        copy_out(path, path_length, "");
    } else {
        copy_out(error, error_length, "");
    }
    for (int i = 0; i < n; i++) free(candidates[i]);
    return status;
}

int ss_load_driver(SSCudaDriver *table, const char *search_path, int use_default_search,
                   char *path, int path_length, char *error, int error_length) {
    static const char *const files[] = {"libcuda.so.1"};
    return load(files, COUNT(files), driver_symbols, COUNT(driver_symbols), table, sizeof *table,
                search_path, use_default_search, path, path_length, error, error_length);
}

int ss_load_nvrtc(SSNVRTC *table, const char *search_path, int use_default_search,
                  char *path, int path_length, char *error, int error_length) {
    static const char *const files[] = {"libnvrtc.so.13", "libnvrtc.so.12"};
    return load(files, COUNT(files), nvrtc_symbols, COUNT(nvrtc_symbols), table, sizeof *table,
                search_path, use_default_search, path, path_length, error, error_length);
}

int ss_load_cublaslt(SSCublasLt *table, const char *search_path, int use_default_search,
                     char *path, int path_length, char *error, int error_length) {
    static const char *const files[] = {"libcublasLt.so.13", "libcublasLt.so.12"};
    return load(files, COUNT(files), cublaslt_symbols, COUNT(cublaslt_symbols), table, sizeof *table,
                search_path, use_default_search, path, path_length, error, error_length);
}

int ss_load_nccl(SSNCCL *table, const char *search_path, int use_default_search,
                 char *path, int path_length, char *error, int error_length) {
    static const char *const files[] = {"libnccl.so.2"};
    return load(files, COUNT(files), nccl_symbols, COUNT(nccl_symbols), table, sizeof *table,
                search_path, use_default_search, path, path_length, error, error_length);
}
