// libcuda.so.1 for machines without a GPU: the CUDA driver API SwiftSpeed resolves (CSpeedCUDA.h), over host memory
// and the host-compiled kernels of emu.cpp, checking arguments and launch configurations the way an H100 would.
// Invariant: every call completes before it returns and device work runs under one lock, so stream order is program
// order; a device pointer is a host address, valid only inside a live cuMemAlloc block.
#include "CSpeedCUDA.h"
#include "emu_runtime.h"

#include <algorithm>
#include <chrono>
#include <ctype.h>
#include <map>
#include <mutex>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string>
#include <unordered_set>

#define EXPORT extern "C" __attribute__((visibility("default")))

#ifndef SSEMU_DRIVER_VERSION
#define SSEMU_DRIVER_VERSION 13000
#endif

namespace {

// CUresult values CSpeedCUDA.h does not name.
enum { kInvalidImage = 200, kInvalidContext = 201, kInvalidHandle = 400, kLaunchOutOfResources = 701 };

// ----- The emulated H100 -----

const char* const kDeviceName = "SwiftSpeed CUDA emulator";
const int kSMs = 2;                  // small, so grids sized from the SM count stay small
const int kDefaultSmem = 49152;      // dynamic shared memory a launch may use without an opt-in
const int kMaxSmemOptin = 232448;    // sm_90's per-block maximum (227 KiB)
const size_t kGuard = 256;           // SSEMU_CHECK: guard bytes before and after every device block

struct Options {
    int trace = 0;          // SSEMU_TRACE: 1 = launches, 2 = also arguments, copies and timings
    bool check = false;     // SSEMU_CHECK: guard bytes, poisoned allocations, pointer-argument checks
    bool quiet = false;     // SSEMU_QUIET: no explanation on stderr when a call fails
    bool no_device = false; // SSEMU_NO_DEVICE: cuInit reports CUDA_ERROR_NO_DEVICE
    bool no_compute = false; // SSEMU_NO_COMPUTE: launches are checked but kernels do not run (host-overhead timing)
    size_t total = 8ull << 30;
    Options() {
        auto flag = [](const char* name) { const char* v = getenv(name); return v && *v && strcmp(v, "0") != 0; };
        if (const char* t = getenv("SSEMU_TRACE")) trace = atoi(t) > 0 ? atoi(t) : flag("SSEMU_TRACE");
        check = flag("SSEMU_CHECK");
        quiet = flag("SSEMU_QUIET");
        no_device = flag("SSEMU_NO_DEVICE");
        no_compute = flag("SSEMU_NO_COMPUTE");
        if (const char* g = getenv("SSEMU_MEMORY_GIB")) if (atof(g) > 0) total = (size_t)(atof(g) * (1ull << 30));
    }
};
const Options& opts() {
    static const Options o;
    return o;
}

struct Block { size_t bytes; char* raw; bool pinned; };
struct Context { int refs = 0; };
struct Stream { unsigned flags; };
struct Event { unsigned flags; bool recorded = false; std::chrono::steady_clock::time_point when; };
struct Function;
struct Module { const EmuProgram* program; std::map<std::string, Function*> functions; };
struct Function { const EmuKernel* kernel; Module* module; int max_dynamic_smem = kDefaultSmem; };

std::mutex device;                       // guards everything below and serialises device work
bool initialized = false;
Context primary;
thread_local Context* current = nullptr;
std::map<uintptr_t, Block> blocks;       // device (and pinned host) blocks by user address
size_t live_bytes = 0;
std::unordered_set<void*> streams, events, modules, functions;

SSCUresult fail(SSCUresult code, const char* call, const char* format, ...) __attribute__((format(printf, 3, 4)));
SSCUresult fail(SSCUresult code, const char* call, const char* format, ...) {
    if (!opts().quiet) {
        char text[768];
        va_list args;
        va_start(args, format);
        vsnprintf(text, sizeof text, format, args);
        va_end(args);
        fprintf(stderr, "ssemu: %s: %s\n", call, text);
    }
    return code;
}

// ----- Error names -----

struct ErrorText { int code; const char* name; const char* text; };
const ErrorText kErrors[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {34, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
    {36, "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER", "API call requires a newer CUDA driver"},
    {46, "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
    {218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {600, "CUDA_ERROR_NOT_READY", "device not ready"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
    {804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non supported HW"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};
const ErrorText* error_text(int code) {
    for (const ErrorText& e : kErrors)
        if (e.code == code) return &e;
    return nullptr;
}

// ----- State checks (callers hold `device`) -----

SSCUresult need_context(const char* call) {
    if (!initialized) return fail(SS_CUDA_ERROR_NOT_INITIALIZED, call, "cuInit has not been called");
    if (!current || current->refs == 0)
        return fail(kInvalidContext, call, "no current context on this thread (cuDevicePrimaryCtxRetain + cuCtxSetCurrent)");
    return SS_CUDA_SUCCESS;
}

SSCUresult need_device(SSCUdevice d, const char* call) {
    if (!initialized) return fail(SS_CUDA_ERROR_NOT_INITIALIZED, call, "cuInit has not been called");
    if (d != 0) return fail(SS_CUDA_ERROR_INVALID_DEVICE, call, "device %d does not exist (the emulator has one)", d);
    return SS_CUDA_SUCCESS;
}

bool valid_stream(SSCUstream s) {
    const uintptr_t v = (uintptr_t)s;
    return v <= 2 || streams.count(s);   // 0 = NULL stream, 1 = CU_STREAM_LEGACY, 2 = CU_STREAM_PER_THREAD
}

/// The block holding [p, p + bytes), or null. A zero-byte range may sit at a block's end.
const Block* find_block(uintptr_t p, size_t bytes, uintptr_t* base = nullptr) {
    auto it = blocks.upper_bound(p);
    if (it == blocks.begin()) return nullptr;
    --it;
    if (p + bytes < p || p + bytes > it->first + it->second.bytes) return nullptr;
    if (base) *base = it->first;
    return &it->second;
}

SSCUresult need_range(uintptr_t p, size_t bytes, const char* call, const char* what) {
    if (bytes == 0) return SS_CUDA_SUCCESS;
    if (find_block(p, bytes)) return SS_CUDA_SUCCESS;
    uintptr_t base = 0;
    if (const Block* b = find_block(p, 0, &base))
        return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "%s [0x%llx, +%zu) runs %zu bytes past the end of its %zu-byte block",
                    what, (unsigned long long)p, bytes, (size_t)(p + bytes - base - b->bytes), b->bytes);
    return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "%s 0x%llx (%zu bytes) is not inside any live cuMemAlloc block", what,
                (unsigned long long)p, bytes);
}

// ----- SSEMU_CHECK guards -----

const unsigned char kGuardByte = 0xcd;

void fill_guards(uintptr_t p, const Block& b) {
    memset(b.raw, kGuardByte, kGuard);
    memset((char*)p + b.bytes, kGuardByte, ((b.bytes + 255) & ~(size_t)255) - b.bytes + kGuard);
}

/// Reports (and repairs) overwritten guard bytes of every device block; `after` names the last operation.
void verify_guards(const char* after) {
    if (!opts().check) return;
    for (auto& [p, b] : blocks) {
        if (b.pinned) continue;
        const size_t tail = ((b.bytes + 255) & ~(size_t)255) - b.bytes + kGuard;
        const unsigned char* front = (const unsigned char*)b.raw;
        const unsigned char* back = (const unsigned char*)p + b.bytes;
        size_t bad_front = 0, bad_back = 0, first_back = 0;
        for (size_t i = 0; i < kGuard; ++i) bad_front += front[i] != kGuardByte;
        for (size_t i = 0; i < tail; ++i)
            if (back[i] != kGuardByte && !bad_back++) first_back = i;
        if (bad_front || bad_back) {
            fprintf(stderr, "ssemu: SSEMU_CHECK: block 0x%llx (%zu bytes) was written out of bounds (%zu guard bytes "
                    "before it, %zu after it, the first at offset %zu), found after %s\n",
                    (unsigned long long)p, b.bytes, bad_front, bad_back, b.bytes + first_back, after);
            fill_guards(p, b);
        }
    }
}

// ----- Module images -----

uint32_t crc32(const unsigned char* data, size_t n) {
    static uint32_t table[256];
    static bool ready = false;
    if (!ready) {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/// Size in bytes of an ELF64 image: the furthest end of its section and program header tables, sections, segments.
size_t elf_size(const unsigned char* image) {
    auto u16 = [&](size_t at) { uint16_t v; memcpy(&v, image + at, 2); return (size_t)v; };
    auto u32 = [&](size_t at) { uint32_t v; memcpy(&v, image + at, 4); return (size_t)v; };
    auto u64 = [&](size_t at) { uint64_t v; memcpy(&v, image + at, 8); return (size_t)v; };
    const size_t phoff = u64(0x20), shoff = u64(0x28), phentsize = u16(0x36), phnum = u16(0x38);
    const size_t shentsize = u16(0x3a), shnum = u16(0x3c);
    size_t end = std::max(phoff + phentsize * phnum, shoff + shentsize * shnum);
    for (size_t i = 0; i < shnum; ++i) {
        const size_t sh = shoff + i * shentsize;
        if (u32(sh + 4) != 8 /* SHT_NOBITS */) end = std::max(end, u64(sh + 0x18) + u64(sh + 0x20));
    }
    for (size_t i = 0; i < phnum; ++i) {
        const size_t ph = phoff + i * phentsize;
        end = std::max(end, u64(ph + 8) + u64(ph + 0x20));   // p_offset + p_filesz
    }
    return end;
}

/// The program whose kernel names all occur in the image (the best partial match when none does, with a warning),
/// and a warning when the image differs from the one NVRTC produced from the emulator's build-time sources.
const EmuProgram* identify(const unsigned char* image, size_t size, bool cubin) {
    std::unordered_set<std::string> tokens;
    for (size_t i = 0; i + 3 < size; ++i) {
        if (image[i] == 's' && image[i + 1] == 's' && image[i + 2] == '_' &&
            (i == 0 || !(isalnum(image[i - 1]) || image[i - 1] == '_'))) {
            size_t j = i;
            while (j < size && (isalnum(image[j]) || image[j] == '_')) ++j;
            tokens.emplace((const char*)image + i, j - i);
            i = j;
        }
    }
    const EmuProgram* best = nullptr;
    size_t best_hits = 0, best_total = 0;
    for (const EmuProgram& p : emu_programs()) {
        size_t hits = 0;
        for (const EmuKernel* k : p.kernels) hits += tokens.count(k->name);
        if (hits > best_hits) { best = &p; best_hits = hits; best_total = p.kernels.size(); }
    }
    if (!best) return nullptr;
    const uint32_t crc = crc32(image, size);
    const uint32_t expected = cubin ? best->cubin_crc : best->ptx_crc;
    if (best_hits < best_total)
        fprintf(stderr, "ssemu: warning: this module lacks %zu of the %zu kernels the emulator has for program '%s': "
                "the Swift kernel sources changed since the emulator was built (scripts/cuda-emu/build.sh)\n",
                best_total - best_hits, best_total, best->family);
    else if (expected && crc != expected && !opts().quiet)
        fprintf(stderr, "ssemu: warning: this %s of program '%s' differs from the one NVRTC built from the emulator's "
                "sources; if the kernels were edited, rebuild the emulator (scripts/cuda-emu/build.sh) or it runs the "
                "old code\n", cubin ? "cubin" : "PTX", best->family);
    return best;
}

// ----- Launch helpers -----

/// Threads per block that fit `registers` per thread: 4 SM sub-partitions of 16K registers, allocated per warp in
/// units of 256 (what makes an sm_90 launch fail with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES).
int threads_for_registers(int registers) {
    const int per_warp = (registers * 32 + 255) / 256 * 256;
    return 4 * (16384 / per_warp) * 32;
}

std::string describe_args(const EmuKernel* k, void** params) {
    std::string out;
    char item[96];
    for (int i = 0; k->kinds[i]; ++i) {
        const void* v = params[i];
        switch (k->kinds[i]) {
        case 'p': snprintf(item, sizeof item, "0x%llx", *(const unsigned long long*)v); break;
        case 'i': snprintf(item, sizeof item, "%d", *(const int*)v); break;
        case 'u': snprintf(item, sizeof item, "%u", *(const unsigned*)v); break;
        case 'h': snprintf(item, sizeof item, "0x%x", *(const unsigned short*)v); break;
        case 'l': snprintf(item, sizeof item, "%lld", *(const long long*)v); break;
        case 'L': snprintf(item, sizeof item, "0x%llx", *(const unsigned long long*)v); break;
        case 'f': snprintf(item, sizeof item, "%.9g", *(const float*)v); break;
        case 'd': snprintf(item, sizeof item, "%.17g", *(const double*)v); break;
        default: {
            // A struct: SSIndexer is rank, shape[8], strides[3][8] as int64.
            const long long* w = (const long long*)v;
            if (k->sizes[i] == 264 && w[0] >= 0 && w[0] <= 8) {
                std::string s = "ix{rank " + std::to_string(w[0]) + " shape";
                for (int d = 0; d < w[0]; ++d) s += " " + std::to_string(w[1 + d]);
                for (int o = 0; o < 3; ++o) {
                    s += " | s" + std::to_string(o);
                    for (int d = 0; d < w[0]; ++d) s += " " + std::to_string(w[9 + 8 * o + d]);
                }
                snprintf(item, sizeof item, "%s}", s.substr(0, 90).c_str());
            } else {
                snprintf(item, sizeof item, "<%u-byte struct>", k->sizes[i]);
            }
        }
        }
        if (i) out += ", ";
        out += item;
    }
    return out;
}

void free_everything() {
    for (auto& [p, b] : blocks) free(b.raw);
    blocks.clear();
    live_bytes = 0;
    for (void* m : modules) {
        for (auto& [name, f] : ((Module*)m)->functions) delete f;
        delete (Module*)m;
    }
    modules.clear();
    functions.clear();
    for (void* s : streams) delete (Stream*)s;
    streams.clear();
    for (void* e : events) delete (Event*)e;
    events.clear();
}

}  // namespace

#define LOCK std::lock_guard<std::mutex> lock_(device)
#define TRY(expr) do { SSCUresult r_ = (expr); if (r_ != SS_CUDA_SUCCESS) return r_; } while (0)

// ===== Initialisation, errors, devices =====

EXPORT SSCUresult cuInit(unsigned int flags) {
    LOCK;
    if (flags != 0) return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuInit", "flags must be 0 (got %u)", flags);
    if (opts().no_device) return SS_CUDA_ERROR_NO_DEVICE;
    initialized = true;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuDriverGetVersion(int* version) {
    if (!version) return SS_CUDA_ERROR_INVALID_VALUE;
    *version = SSEMU_DRIVER_VERSION;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuGetErrorName(SSCUresult error, const char** string) {
    if (!string) return SS_CUDA_ERROR_INVALID_VALUE;
    const ErrorText* e = error_text(error);
    *string = e ? e->name : nullptr;
    return e ? SS_CUDA_SUCCESS : SS_CUDA_ERROR_INVALID_VALUE;
}

EXPORT SSCUresult cuGetErrorString(SSCUresult error, const char** string) {
    if (!string) return SS_CUDA_ERROR_INVALID_VALUE;
    const ErrorText* e = error_text(error);
    *string = e ? e->text : nullptr;
    return e ? SS_CUDA_SUCCESS : SS_CUDA_ERROR_INVALID_VALUE;
}

EXPORT SSCUresult cuDeviceGetCount(int* count) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (!count) return SS_CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuDeviceGet(SSCUdevice* d, int ordinal) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (!d) return SS_CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return fail(SS_CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet", "ordinal %d: the emulator has one device", ordinal);
    *d = 0;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuDeviceGetName(char* name, int length, SSCUdevice d) {
    LOCK;
    TRY(need_device(d, "cuDeviceGetName"));
    if (!name || length <= 0) return SS_CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)length, "%s", kDeviceName);
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuDeviceTotalMem_v2(size_t* bytes, SSCUdevice d) {
    LOCK;
    TRY(need_device(d, "cuDeviceTotalMem_v2"));
    if (!bytes) return SS_CUDA_ERROR_INVALID_VALUE;
    *bytes = opts().total;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuDeviceGetAttribute(int* value, int attribute, SSCUdevice d) {
    LOCK;
    TRY(need_device(d, "cuDeviceGetAttribute"));
    if (!value) return SS_CUDA_ERROR_INVALID_VALUE;
    static const std::map<int, int> table = {
        {1, 1024},          // MAX_THREADS_PER_BLOCK
        {2, 1024}, {3, 1024}, {4, 64},                  // MAX_BLOCK_DIM_X/Y/Z
        {5, 2147483647}, {6, 65535}, {7, 65535},        // MAX_GRID_DIM_X/Y/Z
        {8, kDefaultSmem},  // MAX_SHARED_MEMORY_PER_BLOCK
        {9, 65536},         // TOTAL_CONSTANT_MEMORY
        {10, 32},           // WARP_SIZE
        {11, 2147483647},   // MAX_PITCH
        {12, 65536},        // MAX_REGISTERS_PER_BLOCK
        {13, 1980000},      // CLOCK_RATE (kHz)
        {14, 512},          // TEXTURE_ALIGNMENT
        {15, 1},            // GPU_OVERLAP
        {16, kSMs},         // MULTIPROCESSOR_COUNT
        {17, 0},            // KERNEL_EXEC_TIMEOUT
        {18, 0},            // INTEGRATED
        {19, 1},            // CAN_MAP_HOST_MEMORY
        {20, 0},            // COMPUTE_MODE (default)
        {31, 1},            // CONCURRENT_KERNELS
        {32, 1},            // ECC_ENABLED
        {33, 0}, {34, 0},   // PCI_BUS_ID, PCI_DEVICE_ID
        {35, 0},            // TCC_DRIVER
        {36, 2619000},      // MEMORY_CLOCK_RATE (kHz)
        {37, 5120},         // GLOBAL_MEMORY_BUS_WIDTH
        {38, 52428800},     // L2_CACHE_SIZE
        {39, 2048},         // MAX_THREADS_PER_MULTIPROCESSOR
        {40, 3},            // ASYNC_ENGINE_COUNT
        {41, 1},            // UNIFIED_ADDRESSING
        {50, 0},            // PCI_DOMAIN_ID
        {75, 9}, {76, 0},   // COMPUTE_CAPABILITY_MAJOR/MINOR
        {78, 1},            // STREAM_PRIORITIES_SUPPORTED
        {79, 1}, {80, 1},   // GLOBAL/LOCAL_L1_CACHE_SUPPORTED
        {81, 233472},       // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
        {82, 65536},        // MAX_REGISTERS_PER_MULTIPROCESSOR
        {83, 1},            // MANAGED_MEMORY
        {84, 0},            // MULTI_GPU_BOARD
        {95, 1},            // COOPERATIVE_LAUNCH
        {97, kMaxSmemOptin},  // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    };
    auto it = table.find(attribute);
    if (it == table.end())
        return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute", "attribute %d is not emulated", attribute);
    *value = it->second;
    return SS_CUDA_SUCCESS;
}

// ===== Contexts =====

EXPORT SSCUresult cuDevicePrimaryCtxRetain(SSCUcontext* context, SSCUdevice d) {
    LOCK;
    TRY(need_device(d, "cuDevicePrimaryCtxRetain"));
    if (!context) return SS_CUDA_ERROR_INVALID_VALUE;
    ++primary.refs;
    *context = (SSCUcontext)&primary;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuDevicePrimaryCtxRelease_v2(SSCUdevice d) {
    LOCK;
    TRY(need_device(d, "cuDevicePrimaryCtxRelease_v2"));
    if (primary.refs == 0)
        return fail(kInvalidContext, "cuDevicePrimaryCtxRelease_v2", "the primary context is not retained");
    if (--primary.refs == 0) {
        // The last release destroys the context: its memory, modules, streams and events go with it.
        size_t leaked = 0, count = 0;
        for (auto& [p, b] : blocks) { leaked += b.bytes; ++count; }
        if (opts().check && count)
            fprintf(stderr, "ssemu: SSEMU_CHECK: the primary context was released with %zu blocks (%zu bytes) still "
                    "allocated; they are freed with it\n", count, leaked);
        free_everything();
    }
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuCtxSetCurrent(SSCUcontext context) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (!context) { current = nullptr; return SS_CUDA_SUCCESS; }
    if (context != (SSCUcontext)&primary || primary.refs == 0)
        return fail(kInvalidContext, "cuCtxSetCurrent", "not a live context");
    current = &primary;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuCtxSynchronize(void) {
    LOCK;
    TRY(need_context("cuCtxSynchronize"));
    verify_guards("cuCtxSynchronize");
    return SS_CUDA_SUCCESS;
}

// ===== Memory =====

EXPORT SSCUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
    LOCK;
    TRY(need_context("cuMemGetInfo_v2"));
    if (!free_bytes || !total) return SS_CUDA_ERROR_INVALID_VALUE;
    *total = opts().total;
    *free_bytes = opts().total - live_bytes;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuMemAlloc_v2(SSCUdeviceptr* pointer, size_t bytes) {
    LOCK;
    TRY(need_context("cuMemAlloc_v2"));
    if (!pointer) return SS_CUDA_ERROR_INVALID_VALUE;
    if (bytes == 0) return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuMemAlloc_v2", "0 bytes requested");
    const size_t rounded = (bytes + 255) & ~(size_t)255;
    if (rounded < bytes || live_bytes + bytes > opts().total)
        return fail(SS_CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc_v2", "%zu bytes requested, %zu of %zu free", bytes,
                    opts().total - live_bytes, opts().total);
    const size_t guard = opts().check ? kGuard : 0;
    char* raw = (char*)aligned_alloc(256, rounded + 2 * guard);
    if (!raw) return fail(SS_CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc_v2", "host allocation of %zu bytes failed", bytes);
    const uintptr_t p = (uintptr_t)(raw + guard);
    blocks[p] = Block{bytes, raw, false};
    live_bytes += bytes;
    if (opts().check) {
        memset(raw + guard, 0xff, bytes);   // NaN in every float type: reading memory never written shows up
        fill_guards(p, blocks[p]);
    }
    *pointer = p;
    if (opts().trace >= 2) fprintf(stderr, "ssemu: cuMemAlloc %zu bytes -> 0x%llx\n", bytes, (unsigned long long)p);
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuMemFree_v2(SSCUdeviceptr pointer) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (pointer == 0) return SS_CUDA_SUCCESS;
    auto it = blocks.find((uintptr_t)pointer);
    if (it == blocks.end() || it->second.pinned)
        return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuMemFree_v2", "0x%llx is not the start of a live cuMemAlloc block",
                    (unsigned long long)pointer);
    if (opts().check) {
        verify_guards("cuMemFree_v2");
        memset((void*)pointer, 0xff, it->second.bytes);
    }
    live_bytes -= it->second.bytes;
    free(it->second.raw);
    blocks.erase(it);
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuMemAllocHost_v2(void** pointer, size_t bytes) {
    LOCK;
    TRY(need_context("cuMemAllocHost_v2"));
    if (!pointer) return SS_CUDA_ERROR_INVALID_VALUE;
    if (bytes == 0) return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuMemAllocHost_v2", "0 bytes requested");
    char* raw = (char*)aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    if (!raw) return SS_CUDA_ERROR_OUT_OF_MEMORY;
    blocks[(uintptr_t)raw] = Block{bytes, raw, true};
    *pointer = raw;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuMemFreeHost(void* pointer) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    auto it = blocks.find((uintptr_t)pointer);
    if (it == blocks.end() || !it->second.pinned)
        return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost", "%p is not from cuMemAllocHost_v2", pointer);
    free(it->second.raw);
    blocks.erase(it);
    return SS_CUDA_SUCCESS;
}

namespace {
enum CopyKind { HtoD, DtoH, DtoD };
SSCUresult copy(const char* call, CopyKind kind, uintptr_t dst, uintptr_t src, size_t bytes, SSCUstream stream) {
    TRY(need_context(call));
    if (!valid_stream(stream)) return fail(kInvalidHandle, call, "unknown stream %p", (void*)stream);
    if (bytes == 0) return SS_CUDA_SUCCESS;
    if (kind != HtoD) TRY(need_range(src, bytes, call, "source"));
    if (kind != DtoH) TRY(need_range(dst, bytes, call, "destination"));
    if ((kind == HtoD && !src) || (kind == DtoH && !dst)) return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "null host pointer");
    if (kind != DtoD || !opts().no_compute) memmove((void*)dst, (const void*)src, bytes);
    if (opts().trace >= 2)
        fprintf(stderr, "ssemu: %s 0x%llx <- 0x%llx, %zu bytes\n", call, (unsigned long long)dst, (unsigned long long)src, bytes);
    return SS_CUDA_SUCCESS;
}
SSCUresult set(const char* call, uintptr_t dst, unsigned char value, size_t count, SSCUstream stream) {
    TRY(need_context(call));
    if (!valid_stream(stream)) return fail(kInvalidHandle, call, "unknown stream %p", (void*)stream);
    TRY(need_range(dst, count, call, "destination"));
    // SSEMU_NO_COMPUTE skips bulk fills but keeps small ones (error flags the host reads back).
    if (count && (count <= 4096 || !opts().no_compute)) memset((void*)dst, value, count);
    return SS_CUDA_SUCCESS;
}
}  // namespace

EXPORT SSCUresult cuMemcpyHtoD_v2(SSCUdeviceptr dst, const void* src, size_t bytes) {
    LOCK;
    return copy("cuMemcpyHtoD_v2", HtoD, dst, (uintptr_t)src, bytes, nullptr);
}
EXPORT SSCUresult cuMemcpyDtoH_v2(void* dst, SSCUdeviceptr src, size_t bytes) {
    LOCK;
    return copy("cuMemcpyDtoH_v2", DtoH, (uintptr_t)dst, src, bytes, nullptr);
}
EXPORT SSCUresult cuMemcpyDtoD_v2(SSCUdeviceptr dst, SSCUdeviceptr src, size_t bytes) {
    LOCK;
    return copy("cuMemcpyDtoD_v2", DtoD, dst, src, bytes, nullptr);
}
EXPORT SSCUresult cuMemcpyHtoDAsync_v2(SSCUdeviceptr dst, const void* src, size_t bytes, SSCUstream stream) {
    LOCK;
    return copy("cuMemcpyHtoDAsync_v2", HtoD, dst, (uintptr_t)src, bytes, stream);
}
EXPORT SSCUresult cuMemcpyDtoHAsync_v2(void* dst, SSCUdeviceptr src, size_t bytes, SSCUstream stream) {
    LOCK;
    return copy("cuMemcpyDtoHAsync_v2", DtoH, (uintptr_t)dst, src, bytes, stream);
}
EXPORT SSCUresult cuMemcpyDtoDAsync_v2(SSCUdeviceptr dst, SSCUdeviceptr src, size_t bytes, SSCUstream stream) {
    LOCK;
    return copy("cuMemcpyDtoDAsync_v2", DtoD, dst, src, bytes, stream);
}
EXPORT SSCUresult cuMemsetD8_v2(SSCUdeviceptr dst, unsigned char value, size_t count) {
    LOCK;
    return set("cuMemsetD8_v2", dst, value, count, nullptr);
}
EXPORT SSCUresult cuMemsetD8Async(SSCUdeviceptr dst, unsigned char value, size_t count, SSCUstream stream) {
    LOCK;
    return set("cuMemsetD8Async", dst, value, count, stream);
}

// ===== Streams and events (everything already finished when a call returns) =====

EXPORT SSCUresult cuStreamCreate(SSCUstream* stream, unsigned int flags) {
    LOCK;
    TRY(need_context("cuStreamCreate"));
    if (!stream) return SS_CUDA_ERROR_INVALID_VALUE;
    if (flags > 1) return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuStreamCreate", "unknown flags 0x%x", flags);
    Stream* s = new Stream{flags};
    streams.insert(s);
    *stream = (SSCUstream)s;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuStreamSynchronize(SSCUstream stream) {
    LOCK;
    if ((uintptr_t)stream <= 2) TRY(need_context("cuStreamSynchronize"));
    if (!valid_stream(stream)) return fail(kInvalidHandle, "cuStreamSynchronize", "unknown stream %p", (void*)stream);
    verify_guards("cuStreamSynchronize");
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuStreamWaitEvent(SSCUstream stream, SSCUevent event, unsigned int flags) {
    LOCK;
    if ((uintptr_t)stream <= 2) TRY(need_context("cuStreamWaitEvent"));
    if (!valid_stream(stream)) return fail(kInvalidHandle, "cuStreamWaitEvent", "unknown stream %p", (void*)stream);
    if (!events.count(event)) return fail(kInvalidHandle, "cuStreamWaitEvent", "unknown event %p", (void*)event);
    if (flags > 1) return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuStreamWaitEvent", "unknown flags 0x%x", flags);
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuStreamDestroy_v2(SSCUstream stream) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (!streams.erase(stream)) return fail(kInvalidHandle, "cuStreamDestroy_v2", "unknown stream %p", (void*)stream);
    delete (Stream*)stream;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuEventCreate(SSCUevent* event, unsigned int flags) {
    LOCK;
    TRY(need_context("cuEventCreate"));
    if (!event) return SS_CUDA_ERROR_INVALID_VALUE;
    if (flags & ~7u) return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuEventCreate", "unknown flags 0x%x", flags);
    Event* e = new Event{flags, false, {}};
    events.insert(e);
    *event = (SSCUevent)e;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuEventRecord(SSCUevent event, SSCUstream stream) {
    LOCK;
    if ((uintptr_t)stream <= 2) TRY(need_context("cuEventRecord"));
    if (!events.count(event)) return fail(kInvalidHandle, "cuEventRecord", "unknown event %p", (void*)event);
    if (!valid_stream(stream)) return fail(kInvalidHandle, "cuEventRecord", "unknown stream %p", (void*)stream);
    Event* e = (Event*)event;
    e->recorded = true;
    e->when = std::chrono::steady_clock::now();
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuEventQuery(SSCUevent event) {
    LOCK;
    if (!events.count(event)) return fail(kInvalidHandle, "cuEventQuery", "unknown event %p", (void*)event);
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuEventSynchronize(SSCUevent event) {
    LOCK;
    if (!events.count(event)) return fail(kInvalidHandle, "cuEventSynchronize", "unknown event %p", (void*)event);
    return SS_CUDA_SUCCESS;
}

static SSCUresult elapsed(const char* call, float* ms, SSCUevent start, SSCUevent end) {
    LOCK;
    if (!ms) return SS_CUDA_ERROR_INVALID_VALUE;
    if (!events.count(start) || !events.count(end)) return fail(kInvalidHandle, call, "unknown event");
    const Event* a = (const Event*)start;
    const Event* b = (const Event*)end;
    if ((a->flags | b->flags) & 2) return fail(kInvalidHandle, call, "an event was created with CU_EVENT_DISABLE_TIMING");
    if (!a->recorded || !b->recorded) return fail(kInvalidHandle, call, "an event was never recorded");
    *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
    return SS_CUDA_SUCCESS;
}
EXPORT SSCUresult cuEventElapsedTime_v2(float* ms, SSCUevent start, SSCUevent end) {
    return elapsed("cuEventElapsedTime_v2", ms, start, end);
}
EXPORT SSCUresult cuEventElapsedTime(float* ms, SSCUevent start, SSCUevent end) {
    return elapsed("cuEventElapsedTime", ms, start, end);
}

EXPORT SSCUresult cuEventDestroy_v2(SSCUevent event) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (!events.erase(event)) return fail(kInvalidHandle, "cuEventDestroy_v2", "unknown event %p", (void*)event);
    delete (Event*)event;
    return SS_CUDA_SUCCESS;
}

// ===== Modules and kernels =====

EXPORT SSCUresult cuModuleLoadData(SSCUmodule* module, const void* image) {
    LOCK;
    TRY(need_context("cuModuleLoadData"));
    if (!module || !image) return SS_CUDA_ERROR_INVALID_VALUE;
    const unsigned char* bytes = (const unsigned char*)image;
    const EmuProgram* program = nullptr;
    if (!memcmp(bytes, "\x7f" "ELF", 4)) {
        if (bytes[4] != 2 /* ELFCLASS64 */) return fail(kInvalidImage, "cuModuleLoadData", "not a 64-bit ELF cubin");
        // A CUDA cubin names its SM in e_flags: bits 8-15 from ELF ABI version 8 on, bits 0-7 before.
        uint32_t flags;
        memcpy(&flags, bytes + 48, 4);
        const unsigned sm = bytes[8] >= 8 ? (flags >> 8) & 0xff : flags & 0xff;
        if (sm / 10 != 9 || sm % 10 > 0)
            return fail(SS_CUDA_ERROR_NO_BINARY_FOR_GPU, "cuModuleLoadData",
                        "the cubin is for sm_%u; the emulated device is sm_90 (cubins run only on their own major "
                        "architecture, at the same or a higher minor version)", sm);
        program = identify(bytes, elf_size(bytes), true);
    } else {
        const char* text = (const char*)image;
        const char* target = strstr(text, ".target");
        if (!strstr(text, ".version") || !target)
            return fail(kInvalidImage, "cuModuleLoadData", "neither a cubin (ELF) nor PTX text");
        unsigned sm = 0;
        if (sscanf(target, ".target sm_%u", &sm) == 1 && sm > 90)
            return fail(SS_CUDA_ERROR_INVALID_PTX, "cuModuleLoadData",
                        "the PTX targets sm_%u, newer than the emulated sm_90", sm);
        // The NVRTC stand-in (nvrtc.cpp) names the program instead of compiling it.
        if (const char* tag = strstr(text, "// ssemu stand-in: ")) {
            const std::string file(tag + 19, strcspn(tag + 19, "\n"));
            for (const EmuProgram& p : emu_programs())
                if (file == std::string(p.family) + ".cu") program = &p;
        }
        if (!program) program = identify(bytes, strlen(text), false);
    }
    Module* m = new Module{program, {}};
    modules.insert(m);
    *module = (SSCUmodule)m;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuModuleUnload(SSCUmodule module) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (!modules.erase(module)) return fail(kInvalidHandle, "cuModuleUnload", "unknown module %p", (void*)module);
    Module* m = (Module*)module;
    for (auto& [name, f] : m->functions) {
        functions.erase(f);
        delete f;
    }
    delete m;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuModuleGetFunction(SSCUfunction* function, SSCUmodule module, const char* name) {
    LOCK;
    TRY(need_context("cuModuleGetFunction"));
    if (!function || !name) return SS_CUDA_ERROR_INVALID_VALUE;
    if (!modules.count(module)) return fail(kInvalidHandle, "cuModuleGetFunction", "unknown module %p", (void*)module);
    Module* m = (Module*)module;
    auto found = m->functions.find(name);
    if (found != m->functions.end()) {
        *function = (SSCUfunction)found->second;
        return SS_CUDA_SUCCESS;
    }
    const EmuKernel* k = emu_find(name);
    if (!k)
        return fail(SS_CUDA_ERROR_NOT_FOUND, "cuModuleGetFunction",
                    "no kernel named %s: the emulator runs the kernels compiled from Sources/SpeedCUDA/Kernels when it "
                    "was built (rebuild: scripts/cuda-emu/build.sh)", name);
    if (m->program && strcmp(m->program->family, k->family) != 0)
        return fail(SS_CUDA_ERROR_NOT_FOUND, "cuModuleGetFunction", "%s belongs to program '%s', not to this module ('%s')",
                    name, k->family, m->program->family);
    Function* f = new Function{k, m};
    m->functions[name] = f;
    functions.insert(f);
    *function = (SSCUfunction)f;
    return SS_CUDA_SUCCESS;
}

EXPORT SSCUresult cuFuncSetAttribute(SSCUfunction function, int attribute, int value) {
    LOCK;
    if (!initialized) return SS_CUDA_ERROR_NOT_INITIALIZED;
    if (!functions.count(function)) return fail(kInvalidHandle, "cuFuncSetAttribute", "unknown function %p", (void*)function);
    Function* f = (Function*)function;
    if (attribute == SS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        if (value < 0 || value > kMaxSmemOptin)
            return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute",
                        "%s: MAX_DYNAMIC_SHARED_SIZE_BYTES %d is outside [0, %d] (sm_90)", f->kernel->name, value, kMaxSmemOptin);
        f->max_dynamic_smem = value;
        return SS_CUDA_SUCCESS;
    }
    if (attribute == 9 /* PREFERRED_SHARED_MEMORY_CARVEOUT */) {
        if (value < -1 || value > 100) return SS_CUDA_ERROR_INVALID_VALUE;
        return SS_CUDA_SUCCESS;
    }
    return fail(SS_CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute", "attribute %d is read-only or not emulated", attribute);
}

EXPORT SSCUresult cuLaunchKernel(SSCUfunction function, unsigned int gx, unsigned int gy, unsigned int gz,
                                 unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem,
                                 SSCUstream stream, void** params, void** extra) {
    LOCK;
    TRY(need_context("cuLaunchKernel"));
    if (!functions.count(function)) return fail(kInvalidHandle, "cuLaunchKernel", "unknown function %p", (void*)function);
    const Function* f = (const Function*)function;
    const EmuKernel* k = f->kernel;
    char call[160];
    snprintf(call, sizeof call, "cuLaunchKernel(%s)", k->name);
    if (!valid_stream(stream)) return fail(kInvalidHandle, call, "unknown stream %p", (void*)stream);
    if (extra) return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "`extra` is not supported (pass kernelParams)");
    if (!params && k->kinds[0]) return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "kernelParams is NULL");
    if (!gx || !gy || !gz || !bx || !by || !bz)
        return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "grid (%u,%u,%u) or block (%u,%u,%u) has a zero dimension", gx, gy,
                    gz, bx, by, bz);
    if (gx > 2147483647u || gy > 65535 || gz > 65535)
        return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "grid (%u,%u,%u) exceeds (2^31-1, 65535, 65535)", gx, gy, gz);
    const unsigned long long threads = (unsigned long long)bx * by * bz;
    if (bx > 1024 || by > 1024 || bz > 64 || threads > 1024)
        return fail(SS_CUDA_ERROR_INVALID_VALUE, call, "block (%u,%u,%u) exceeds 1024 threads or (1024, 1024, 64)", bx,
                    by, bz);
    if (k->max_threads && threads > (unsigned)k->max_threads)
        return fail(kLaunchOutOfResources, call, "block of %llu threads exceeds the kernel's __launch_bounds__(%d)",
                    threads, k->max_threads);
    if (k->registers && threads > (unsigned)threads_for_registers(k->registers))
        return fail(kLaunchOutOfResources, call,
                    "block of %llu threads: the kernel uses %d registers per thread (ptxas, sm_90), so at most %d "
                    "threads fit the 64K-register file", threads, k->registers, threads_for_registers(k->registers));
    if ((int)smem > f->max_dynamic_smem || smem > (unsigned)kMaxSmemOptin)
        return fail(SS_CUDA_ERROR_INVALID_VALUE, call,
                    "%u bytes of dynamic shared memory exceed the function's limit of %d (above %d bytes, raise it "
                    "with cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES); sm_90 allows at most %d)",
                    smem, smem > (unsigned)kMaxSmemOptin ? kMaxSmemOptin : f->max_dynamic_smem, kDefaultSmem, kMaxSmemOptin);
    if (opts().trace) {
        if (opts().trace >= 2)
            fprintf(stderr, "ssemu: launch %s grid (%u,%u,%u) block (%u,%u,%u) smem %u (%s)\n", k->name, gx, gy, gz, bx,
                    by, bz, smem, describe_args(k, params).c_str());
        else
            fprintf(stderr, "ssemu: launch %s grid (%u,%u,%u) block (%u,%u,%u) smem %u\n", k->name, gx, gy, gz, bx, by,
                    bz, smem);
    }
    if (opts().check) {
        for (int i = 0; k->kinds[i]; ++i) {
            if (k->kinds[i] != 'p') continue;
            const uintptr_t p = (uintptr_t)*(const unsigned long long*)params[i];
            if (p && !find_block(p, 0))
                fprintf(stderr, "ssemu: SSEMU_CHECK: %s pointer argument %d (0x%llx) is not inside any live "
                        "cuMemAlloc block\n", k->name, i, (unsigned long long)p);
        }
    }
    char error[512] = "";
    const auto start = std::chrono::steady_clock::now();
    const int status = opts().no_compute ? 0
        : emu_run(EmuLaunch{k, dim3{gx, gy, gz}, dim3{bx, by, bz}, smem, params}, error, sizeof error);
    if (opts().trace >= 2)
        fprintf(stderr, "ssemu:   %s took %.3f ms\n", k->name,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (status) return fail(status, call, "%s", error);
    if (opts().check) verify_guards(call);
    return SS_CUDA_SUCCESS;
}

// ===== Driver internals other NVIDIA libraries probe =====

/// NVRTC 13 dlopens libcuda.so.1 while compiling (the emulator, once this process loaded it) and asks for private
/// export tables: there are none, which NVRTC handles by working without the driver.
EXPORT SSCUresult cuGetExportTable(const void** table, const void* uuid) {
    if (table) *table = nullptr;
    return SS_CUDA_ERROR_NOT_FOUND;
}

// ===== For libcublasLt.so.13 (the emulator's, which links this library) =====

/// Takes / releases the device lock, so a matmul is ordered with kernels and copies.
EXPORT void ssemu_device_lock(void) { device.lock(); }
EXPORT void ssemu_device_unlock(void) { device.unlock(); }
/// 1 when [p, p + bytes) lies inside one live block; else 0 with the reason on stderr (caller holds the lock).
EXPORT int ssemu_check_range(const void* p, size_t bytes, const char* call, const char* what) {
    return need_range((uintptr_t)p, bytes, call, what) == SS_CUDA_SUCCESS;
}
/// SSEMU_CHECK guard verification after an operation (caller holds the lock).
EXPORT void ssemu_verify_guards(const char* after) { verify_guards(after); }
