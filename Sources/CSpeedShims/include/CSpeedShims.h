// The C kernels that need an instruction set chosen at run time (F16C, AVX2), and the one system call Swift cannot
// make (variadic prctl). OpenBLAS comes with its own header (the COpenBLAS system library), MPI through CSpeedMPI. Invariant: each result is bit-identical to the portable
// Swift conversion (Float16(x), SpeedCore's BFloat16(x)), whichever instruction set ran.
#ifndef CSPEEDSHIMS_H
#define CSPEEDSHIMS_H

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

/// Asks the kernel to send `signal` to this process when its parent dies (Linux PR_SET_PDEATHSIG; kept across
/// exec). Returns 0, or -1 where the platform has no such call.
int ss_set_parent_death_signal(int signal);

#endif
