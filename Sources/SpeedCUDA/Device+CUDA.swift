// `Device.cuda(i)`: one shared CUDABackend per GPU in the process, opened (and its kernels prepared) on first use.
// Invariant: the registry only ever adds a backend for an ordinal once; a failed open is not cached, so fixing the
// environment (e.g. the kernel cache directory) and asking again works.

import SpeedCore
import Synchronization

extension Device {
    /// GPU `ordinal` as a SwiftSpeed device. The first call for a GPU retains its context, creates the caching
    /// allocator and cuBLASLt handle, and compiles the kernel programs with NVRTC (or reads them from the kernel
    /// cache); later calls return the same backend. Throws a ``CUDAError`` saying what is missing: the driver,
    /// a GPU, NVRTC or cuBLASLt.
    ///
    /// ```swift
    /// let gpu = try Device.cuda()                 // cuda:0
    /// let x = Tensor.ones([4], device: gpu)
    /// print((x * 2).to(.cpu).scalars)             // [2.0, 2.0, 2.0, 2.0]
    /// ```
    public static func cuda(_ ordinal: Int = 0) throws(CUDAError) -> Device {
        Device(backend: try CUDABackendRegistry.shared.backend(ordinal), kind: "cuda", ordinal: ordinal)
    }

    /// Whether this device is a GPU.
    public var isCUDA: Bool { kind == "cuda" }

    /// Parses `cpu`, `cuda` or `cuda:N` (the CLI's `--device`).
    ///
    /// ```swift
    /// let d = try Device.named("cuda:1")
    /// ```
    public static func named(_ name: String) throws(CUDAError) -> Device {
        if name == "cpu" { return .cpu }
        if name == "cuda" { return try .cuda(0) }
        if name.hasPrefix("cuda:"), let i = Int(name.dropFirst(5)), i >= 0 { return try .cuda(i) }
        throw .invalidDeviceName(name)
    }
}

/// The process's CUDA backends by ordinal (a cache of opened devices, like PyTorch's per-device allocators).
final class CUDABackendRegistry: Sendable {
    static let shared = CUDABackendRegistry()
    private let backends = Mutex<[Int: CUDABackend]>([:])

    func backend(_ ordinal: Int) throws(CUDAError) -> CUDABackend {
        if let b = backends.withLock({ $0[ordinal] }) { return b }
        let fresh = try CUDABackend(ordinal: ordinal)
        try fresh.prepare()
        return backends.withLock { b in
            if let existing = b[ordinal] { return existing }
            b[ordinal] = fresh
            return fresh
        }
    }
}
