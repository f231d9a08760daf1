// Every failure of the CUDA layer, each with a message that says what is missing and how to fix it.
// Invariant: a CUDAError never carries a raw code alone: the call, the code's name and the library's own text go with it.

import CSpeedCUDA

/// The run-time libraries SwiftSpeed opens with `dlopen`, each optional and loaded on its own.
public enum CUDALibrary: String, Sendable, CaseIterable, Codable {
    /// The CUDA driver API (`libcuda.so.1`), installed with the NVIDIA driver.
    case driver
    /// The runtime CUDA C compiler (`libnvrtc.so.13`, else `.12`).
    case nvrtc
    /// cuBLAS's matmul library (`libcublasLt.so.13`, else `.12`).
    case cublasLt
    /// NVIDIA's collectives (`libnccl.so.2`).
    case nccl

    /// The file names tried, newest first.
    public var fileNames: [String] {
        switch self {
        case .driver: ["libcuda.so.1"]
        case .nvrtc: ["libnvrtc.so.13", "libnvrtc.so.12"]
        case .cublasLt: ["libcublasLt.so.13", "libcublasLt.so.12"]
        case .nccl: ["libnccl.so.2"]
        }
    }

    /// What a user does to get this library.
    var fix: String {
        switch self {
        case .driver:
            "no NVIDIA driver on this machine; SwiftSpeed runs on the CPU (Device.cpu)"
        case .nvrtc:
            "install NVRTC (the CUDA toolkit's cuda-nvrtc package, or `pip install nvidia-cuda-nvrtc`) and put the "
                + "directory holding libnvrtc.so.13 in SWIFTSPEED_CUDA_LIB_PATH or LD_LIBRARY_PATH"
        case .cublasLt:
            "install cuBLAS (the CUDA toolkit's libcublas package, or `pip install nvidia-cublas`) and put the "
                + "directory holding libcublasLt.so.13 in SWIFTSPEED_CUDA_LIB_PATH or LD_LIBRARY_PATH"
        case .nccl:
            "install NCCL (`apt install libnccl2`, or `pip install nvidia-nccl-cu13`) and put the directory holding "
                + "libnccl.so.2 in SWIFTSPEED_CUDA_LIB_PATH or LD_LIBRARY_PATH; multi-GPU runs fall back to MPI"
        }
    }
}

/// A failure of the CUDA layer. `description` is the message to show a user.
///
/// ```swift
/// switch CUDALibraries.shared.driver {
/// case .success(let driver): print(try driver.deviceCount())
/// case .failure(let error): print(error)   // libcuda.so.1 not found: no NVIDIA driver on this machine; …
/// }
/// ```
public enum CUDAError: Error, Sendable, Equatable, CustomStringConvertible {
    /// None of the library's files could be opened; `detail` is the loader's account of where it looked.
    case libraryNotFound(CUDALibrary, detail: String)
    /// A file opened but lacks an entry point SwiftSpeed needs (an older release than supported).
    case missingSymbol(CUDALibrary, detail: String)
    /// A driver call failed: the call, the CUresult, its name and the driver's text.
    case driver(call: String, code: Int32, name: String, message: String)
    /// A device ordinal outside `0..<count`.
    case invalidDevice(ordinal: Int, count: Int)
    /// An NVRTC call other than the compilation itself failed.
    case nvrtc(call: String, code: Int32, message: String)
    /// NVRTC rejected a kernel's source; `log` is NVRTC's log (it names `name(line)` for each error).
    case compilation(name: String, arch: String, log: String)
    /// An architecture string NVRTC would not understand (`sm_90`, `sm_90a` and `compute_90` are valid).
    case invalidArchitecture(String)
    /// A cuBLASLt call failed.
    case cublas(call: String, status: Int32, message: String)
    /// An NCCL call failed.
    case nccl(call: String, code: Int32, message: String)
    /// The kernel cache could not be read or written.
    case cache(path: String, reason: String)
    /// A device name that is not `cpu`, `cuda` or `cuda:N`.
    case invalidDeviceName(String)

    public var description: String {
        switch self {
        case .libraryNotFound(let library, let detail):
            return "\(library.fileNames.joined(separator: " / ")) not found: \(library.fix) [\(detail)]"
        case .missingSymbol(let library, let detail):
            let upgrade = library == .driver
                ? "update the NVIDIA driver (SwiftSpeed needs CUDA 12 or newer)"
                : "install version 12 or newer of it"
            return "\(library.fileNames[0]) is too old or not the real library: \(detail); \(upgrade)"
        case .driver(let call, let code, let name, let message):
            return "\(call) failed: \(name) (\(code)): \(message)\(Self.driverAdvice(code))"
        case .invalidDevice(let ordinal, let count):
            return count == 0
                ? "cuda:\(ordinal) does not exist: the driver sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
                : "cuda:\(ordinal) does not exist: this machine has \(count) GPU\(count == 1 ? "" : "s") (cuda:0…cuda:\(count - 1))"
        case .nvrtc(let call, let code, let message):
            return "\(call) failed: \(message) (\(code))"
        case .compilation(let name, let arch, let log):
            return "NVRTC could not compile \(name) for \(arch):\n\(log)"
        case .invalidArchitecture(let arch):
            return "invalid GPU architecture \"\(arch)\": expected sm_XY, sm_XYa or compute_XY (for example sm_90 for an H100)"
        case .cublas(let call, let status, let message):
            return "\(call) failed: \(message) (cublasStatus \(status))"
        case .nccl(let call, let code, let message):
            return "\(call) failed: \(message) (ncclResult \(code))"
        case .cache(let path, let reason):
            return "kernel cache \(path): \(reason) (set SWIFTSPEED_KERNEL_CACHE to a writable directory)"
        case .invalidDeviceName(let name):
            return "unknown device \"\(name)\": expected cpu, cuda or cuda:N"
        }
    }

    /// What to do about the driver errors a user can act on.
    static func driverAdvice(_ code: Int32) -> String {
        switch Int(code) {
        case SS_CUDA_ERROR_NO_DEVICE:
            "; the driver is installed but sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES); SwiftSpeed runs on the CPU (Device.cpu)"
        case SS_CUDA_ERROR_STUB_LIBRARY:
            "; the libcuda.so.1 found is the toolkit's link stub, not the driver: remove its directory from LD_LIBRARY_PATH/SWIFTSPEED_CUDA_LIB_PATH"
        case SS_CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, SS_CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
            "; the user-space driver does not match the kernel module: reboot or reinstall the NVIDIA driver"
        case SS_CUDA_ERROR_OUT_OF_MEMORY:
            "; free GPU memory (smaller micro-batch, ZeRO stage 2/3, offload, activation checkpointing)"
        case SS_CUDA_ERROR_NO_BINARY_FOR_GPU, SS_CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
            "; the kernel was compiled for another architecture or a newer toolkit than the driver: clear the kernel cache or update the driver"
        default: ""
        }
    }
}
