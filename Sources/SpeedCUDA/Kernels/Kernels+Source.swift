// The SpeedCUDA kernel programs NVRTC compiles at run time: the CUDA C of SpeedCUDAKernels/*.cu, embedded in the binary.
// Invariant: a program is one family's .cu with its `#include "common.cuh"` line replaced by that header's text
// (and `#line` directives back to the real files), exactly as scripts/check_cuda_kernels.py assembles it; the
// sources are SwiftPM `.embedInCode` resources, so nothing is read from disk at run time.

import Foundation
import SpeedCUDAKernels

/// The CUDA C source of every kernel the CUDA backend launches, grouped into NVRTC programs by family.
///
/// ```swift
/// for (name, source) in CUDAKernelSource.all {
///     let image = try nvrtc.compile(source, name: name + ".cu", arch: "sm_90", options: ["-std=c++17"])
/// }
/// ```
///
/// Entry points, argument lists, launch configurations and the CPU reference of each kernel are listed in
/// docs/SpeedCUDA-kernels.md. Do not compile with `--use_fast_math`: several kernels promise the CPU's bits.
public enum CUDAKernelSource {
    /// All programs by family (`SpeedCUDAKernels/<name>.cu` with `common.cuh` inlined), ready for `nvrtcCreateProgram`.
    public static let all: [(name: String, source: String)] = CUDAKernelFiles.families.map { name, bytes in (name, program(String(decoding: bytes, as: UTF8.self), file: name + ".cu")) }

    /// `SpeedCUDAKernels/common.cuh`, the prelude every program includes: integer types, bf16/fp16 storage types and their
    /// exact conversions, the counter-based RNG of `RandomStream`, numeric traits, vector packs, the broadcasting
    /// indexer, warp/block reductions and the attention operand layout.
    public static let common = String(decoding: CUDAKernelFiles.common, as: UTF8.self)

    /// `source` with its `#include "common.cuh"` line replaced by the header, so NVRTC needs no include path;
    /// `#line` keeps NVRTC's messages on the lines of the real files.
    static func program(_ source: String, file: String) -> String {
        let include = "#include \"common.cuh\"\n"
        guard let range = source.range(of: include) else { return source }
        let line = source[..<range.lowerBound].filter { $0 == "\n" }.count + 1
        return source.replacingCharacters(in: range, with: "#line 1 \"common.cuh\"\n\(common)#line \(line + 1) \"\(file)\"\n")
    }
}
