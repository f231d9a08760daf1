// A stand-in libnvrtc.so.13 for the emulator when the real NVRTC is not installed (CI): "compiling" keeps the source
// as the image, which the emulated driver ignores anyway (it runs its own host build of the same kernels).
// Invariant: it never claims a compilation it did not check — it only rejects what the real one would reject
// before compiling (no source, unknown architecture), and says in its log that nothing was compiled.
#include <cstring>
#include <string>

extern "C" {
typedef int nvrtcResult;
enum { kSuccess = 0, kInvalidInput = 3, kInvalidProgram = 4, kInvalidOption = 5 };
struct Program { std::string source, name, log; };

const char* nvrtcGetErrorString(nvrtcResult r) {
    switch (r) {
    case kSuccess: return "NVRTC_SUCCESS";
    case kInvalidInput: return "NVRTC_ERROR_INVALID_INPUT";
    case kInvalidProgram: return "NVRTC_ERROR_INVALID_PROGRAM";
    case kInvalidOption: return "NVRTC_ERROR_INVALID_OPTION";
    default: return "NVRTC_ERROR (emulator stand-in)";
    }
}
nvrtcResult nvrtcVersion(int* major, int* minor) { *major = 13; *minor = 0; return kSuccess; }
nvrtcResult nvrtcGetNumSupportedArchs(int* n) { *n = 3; return kSuccess; }
nvrtcResult nvrtcGetSupportedArchs(int* a) { a[0] = 80; a[1] = 90; a[2] = 100; return kSuccess; }
nvrtcResult nvrtcCreateProgram(Program** p, const char* src, const char* name, int, const char* const*, const char* const*) {
    if (!p || !src) return kInvalidInput;
    // The "image" is PTX-shaped text naming the program, which the emulated driver maps to its own host build.
    std::string file = name ? name : "kernel.cu";
    *p = new Program{".version 8.0\n.target sm_90\n// ssemu stand-in: " + file + "\n" + src, file, ""};
    return kSuccess;
}
nvrtcResult nvrtcDestroyProgram(Program** p) {
    if (!p || !*p) return kInvalidProgram;
    delete *p;
    *p = nullptr;
    return kSuccess;
}
nvrtcResult nvrtcCompileProgram(Program* p, int n, const char* const* options) {
    if (!p) return kInvalidProgram;
    for (int i = 0; i < n; ++i)
        if (!strncmp(options[i], "--gpu-architecture=", 19) && strncmp(options[i] + 19, "sm_", 3) && strncmp(options[i] + 19, "compute_", 8))
            return kInvalidOption;
    p->log = "ssemu: NVRTC stand-in: the source was not compiled (the emulator runs its own host build)";
    return kSuccess;
}
static nvrtcResult size(Program* p, size_t* n) { if (!p) return kInvalidProgram; *n = p->source.size() + 1; return kSuccess; }
static nvrtcResult copy(Program* p, char* out) { if (!p) return kInvalidProgram; memcpy(out, p->source.c_str(), p->source.size() + 1); return kSuccess; }
nvrtcResult nvrtcGetPTXSize(Program* p, size_t* n) { return size(p, n); }
nvrtcResult nvrtcGetPTX(Program* p, char* out) { return copy(p, out); }
nvrtcResult nvrtcGetCUBINSize(Program* p, size_t* n) { return size(p, n); }
nvrtcResult nvrtcGetCUBIN(Program* p, char* out) { return copy(p, out); }
nvrtcResult nvrtcGetProgramLogSize(Program* p, size_t* n) { if (!p) return kInvalidProgram; *n = p->log.size() + 1; return kSuccess; }
nvrtcResult nvrtcGetProgramLog(Program* p, char* out) { if (!p) return kInvalidProgram; memcpy(out, p->log.c_str(), p->log.size() + 1); return kSuccess; }
}
