// CUDA C to cubin or PTX at run time through NVRTC: the compiler behind every SwiftSpeed GPU kernel.
// Invariant: an nvrtcProgram never outlives the call that created it, and a failed compilation always returns
// NVRTC's full log (it names `name(line)`), never only a code.

import CSpeedCUDA
import Foundation
import Synchronization

/// A compiled kernel module: a cubin (load it with `cuModuleLoadData`) or NUL-terminated PTX text.
public struct KernelImage: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable, Codable {
        /// Machine code for one architecture (`sm_XY`): loads without a JIT step.
        case cubin
        /// Virtual-ISA text (`compute_XY`): the driver JIT-compiles it for the GPU it runs on.
        case ptx
    }

    public var format: Format
    /// The image exactly as NVRTC returned it (PTX keeps its terminating NUL, as cuModuleLoadData requires).
    public var bytes: [UInt8]
    /// NVRTC's log (warnings); empty for a clean compile or an image read from the cache.
    public var log: String

    public init(format: Format, bytes: [UInt8], log: String = "") {
        self.format = format
        self.bytes = bytes
        self.log = log
    }
}

/// Compiles CUDA C with NVRTC. Works on machines without a GPU (it is only a compiler).
///
/// ```swift
/// let nvrtc = try NVRTCCompiler(libraries: .shared)
/// let image = try nvrtc.compile(#"extern "C" __global__ void k(float *x) { x[threadIdx.x] = 1; }"#,
///                               name: "fill.cu", arch: "sm_90")
/// image.format    // .cubin
/// ```
public final class NVRTCCompiler: Sendable {
    public let library: NVRTCLibrary
    /// One compilation at a time: NVRTC's thread safety varies across releases, and kernels are compiled
    /// once and then cached, so serialising costs nothing that matters.
    private let lock = Mutex(())

    public init(library: NVRTCLibrary) {
        self.library = library
    }

    /// The NVRTC from `libraries`, or the error saying why it is missing.
    public convenience init(libraries: CUDALibraries = .shared) throws(CUDAError) {
        self.init(library: try libraries.nvrtc.get())
    }

    /// NVRTC's version, e.g. `(13, 5)`: part of every cache key.
    public var version: (major: Int, minor: Int) { library.version }

    /// The `--gpu-architecture` value for `arch` and `format`: `sm_90` → `sm_90` (cubin) or `compute_90` (PTX).
    /// Accepts `sm_XY`, `sm_XYa`/`sm_XYf` and `compute_XY…`.
    public static func architectureOption(_ arch: String, format: KernelImage.Format) throws(CUDAError) -> String {
        let number: Substring
        if arch.hasPrefix("sm_") { number = arch.dropFirst(3) }
        else if arch.hasPrefix("compute_") { number = arch.dropFirst(8) }
        else { throw .invalidArchitecture(arch) }
        let digits = number.prefix { $0.isASCII && $0.isNumber }
        let suffix = number.dropFirst(digits.count)
        guard digits.count >= 2, suffix.isEmpty || suffix == "a" || suffix == "f" else { throw .invalidArchitecture(arch) }
        return (format == .cubin ? "sm_" : "compute_") + number
    }

    /// Compiles `source` for `arch` (e.g. `sm_90`) with extra NVRTC `options` (e.g. `--use_fast_math`,
    /// `-std=c++17`). `name` is the file name NVRTC uses in its log. Throws ``CUDAError/compilation(name:arch:log:)``
    /// with NVRTC's log when the source does not compile.
    public func compile(_ source: String, name: String = "kernel.cu", arch: String, options: [String] = [],
                        format: KernelImage.Format = .cubin) throws(CUDAError) -> KernelImage {
        let archOption = "--gpu-architecture=" + (try Self.architectureOption(arch, format: format))
        let api = library.api
        return try lock.withLock { _ throws(CUDAError) -> KernelImage in
            var program: SSNVRTCprogram?
            try check(api.nvrtcCreateProgram!(&program, source, name, 0, nil, nil), "nvrtcCreateProgram")
            defer { _ = api.nvrtcDestroyProgram!(&program) }
            let all = [archOption] + options
            let compiled = withCStrings(all) { api.nvrtcCompileProgram!(program, Int32(all.count), $0) }
            let log = programLog(program)
            if compiled == SS_NVRTC_ERROR_COMPILATION { throw .compilation(name: name, arch: arch, log: log) }
            if compiled == SS_NVRTC_ERROR_INVALID_OPTION {
                throw .nvrtc(call: "nvrtcCompileProgram(\(all.joined(separator: " ")))", code: compiled,
                             message: library.errorString(compiled) + (log.isEmpty ? "" : ": " + log))
            }
            try check(compiled, "nvrtcCompileProgram")
            var size = 0
            var bytes: [UInt8]
            switch format {
            case .cubin:
                try check(api.nvrtcGetCUBINSize!(program, &size), "nvrtcGetCUBINSize")
                bytes = [UInt8](repeating: 0, count: Swift.max(size, 1))
                let rc = bytes.withUnsafeMutableBytes { api.nvrtcGetCUBIN!(program, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
                try check(rc, "nvrtcGetCUBIN")
                bytes.removeLast(bytes.count - size)
            case .ptx:
                try check(api.nvrtcGetPTXSize!(program, &size), "nvrtcGetPTXSize")
                bytes = [UInt8](repeating: 0, count: Swift.max(size, 1))
                let rc = bytes.withUnsafeMutableBytes { api.nvrtcGetPTX!(program, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
                try check(rc, "nvrtcGetPTX")
                bytes.removeLast(bytes.count - size)
            }
            guard !bytes.isEmpty else {
                throw .nvrtc(call: "nvrtcGet\(format == .cubin ? "CUBIN" : "PTX")", code: 0, message: "NVRTC produced an empty image")
            }
            return KernelImage(format: format, bytes: bytes, log: log)
        }
    }

    private func check(_ result: SSNVRTCresult, _ call: String) throws(CUDAError) {
        guard result != SS_NVRTC_SUCCESS else { return }
        throw .nvrtc(call: call, code: result, message: library.errorString(result))
    }

    /// NVRTC's log for `program`, without the trailing NUL and surrounding blank lines.
    private func programLog(_ program: SSNVRTCprogram?) -> String {
        var size = 0
        guard library.api.nvrtcGetProgramLogSize!(program, &size) == SS_NVRTC_SUCCESS, size > 1 else { return "" }
        var log = [CChar](repeating: 0, count: size)
        guard library.api.nvrtcGetProgramLog!(program, &log) == SS_NVRTC_SUCCESS else { return "" }
        let text = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Calls `body` with a C array of C strings for `strings`, valid for the duration of the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    precondition(!strings.isEmpty, "withCStrings needs at least one string")
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer<CChar>($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
