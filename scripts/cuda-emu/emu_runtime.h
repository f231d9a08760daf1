// What driver.cpp needs from the kernel runner (emu.cpp): the kernel registry and one synchronous grid launch.
// Invariant: emu_run is not reentrant; the driver serialises every launch (and every other device operation).
#pragma once
#include "emu.h"
#include <vector>

struct EmuLaunch {
    const EmuKernel* kernel;
    dim3 grid, block;
    size_t smem;       // dynamic shared memory bytes
    void** params;     // cuLaunchKernel's kernelParams
};

/// The kernel registered under `name`, or null.
const EmuKernel* emu_find(const char* name);
int emu_kernel_count();
struct EmuProgram {
    const char* family;
    uint32_t cubin_crc, ptx_crc;
    std::vector<const EmuKernel*> kernels;
};
/// Every registered program (NVRTC program = kernel family), in registration order.
const std::vector<EmuProgram>& emu_programs();
/// Runs every block of `launch` (already validated); 0 on success, else a CUresult with `error` filled.
int emu_run(const EmuLaunch& launch, char* error, size_t length);
