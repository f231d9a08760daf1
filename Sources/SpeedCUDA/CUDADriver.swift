// The CUDA driver API, checked: version, device enumeration (name, memory, compute capability) and primary contexts.
// Invariant: every driver call goes through `check`, so a failure always becomes a CUDAError naming the call and code.

import CSpeedCUDA

/// The CUDA driver's entry points (from `libcuda.so.1`) and checked wrappers over the ones SwiftSpeed uses.
///
/// ```swift
/// let driver = try CUDALibraries.shared.driver.get()
/// print(try driver.version)                       // (13, 0)
/// for gpu in try driver.devices() { print(gpu) }  // cuda:0 NVIDIA H100 80GB HBM3, 79.2 GiB, sm_90
/// ```
public struct CUDADriver: @unchecked Sendable {
    /// The file that was opened.
    public let path: String
    /// The raw entry points (C function pointers: immutable, callable from any thread).
    package let api: SSCudaDriver

    /// Throws a ``CUDAError/driver(call:code:name:message:)`` unless `result` is CUDA_SUCCESS.
    package func check(_ result: SSCUresult, _ call: @autoclosure () -> String) throws(CUDAError) {
        guard result != SS_CUDA_SUCCESS else { return }
        var name: UnsafePointer<CChar>?, text: UnsafePointer<CChar>?
        _ = api.cuGetErrorName!(result, &name)
        _ = api.cuGetErrorString!(result, &text)
        throw .driver(call: call(), code: result, name: name.map { String(cString: $0) } ?? "CUDA error",
                      message: text.map { String(cString: $0) } ?? "unknown error")
    }

    /// Initialises the driver (`cuInit`; idempotent). Fails with CUDA_ERROR_NO_DEVICE where no GPU is visible.
    public func initialize() throws(CUDAError) {
        try check(api.cuInit!(0), "cuInit")
    }

    /// The newest CUDA version the driver supports, e.g. `(13, 0)` (needs no GPU).
    public var version: (major: Int, minor: Int) {
        get throws(CUDAError) {
            var v: Int32 = 0
            try check(api.cuDriverGetVersion!(&v), "cuDriverGetVersion")
            return (Int(v) / 1000, Int(v) % 1000 / 10)
        }
    }

    /// How many GPUs the driver sees (after CUDA_VISIBLE_DEVICES). 0 when the driver reports no device.
    public func deviceCount() throws(CUDAError) -> Int {
        do { try initialize() } catch {
            if case .driver(_, let code, _, _) = error, code == SS_CUDA_ERROR_NO_DEVICE { return 0 }
            throw error
        }
        var count: Int32 = 0
        try check(api.cuDeviceGetCount!(&count), "cuDeviceGetCount")
        return Int(count)
    }

    /// The driver's handle for GPU `ordinal`, with a clear error when there is no such GPU.
    package func handle(_ ordinal: Int) throws(CUDAError) -> SSCUdevice {
        let count = try deviceCount()
        guard ordinal >= 0 && ordinal < count else { throw .invalidDevice(ordinal: ordinal, count: count) }
        var device: SSCUdevice = 0
        try check(api.cuDeviceGet!(&device, Int32(ordinal)), "cuDeviceGet(\(ordinal))")
        return device
    }

    /// What the driver says about GPU `ordinal`. With `freeMemory: true` the device's primary context is
    /// retained for the query (creating it costs a few hundred MB and ~0.1 s the first time).
    public func device(_ ordinal: Int, freeMemory: Bool = false) throws(CUDAError) -> CUDADeviceInfo {
        let device = try handle(ordinal)
        var name = [CChar](repeating: 0, count: 256)
        try check(api.cuDeviceGetName!(&name, Int32(name.count), device), "cuDeviceGetName")
        var total = 0
        try check(api.cuDeviceTotalMem!(&total, device), "cuDeviceTotalMem_v2")
        func attribute(_ a: Int) throws(CUDAError) -> Int {
            var value: Int32 = 0
            try check(api.cuDeviceGetAttribute!(&value, Int32(a), device), "cuDeviceGetAttribute(\(a))")
            return Int(value)
        }
        let capability = ComputeCapability(major: try attribute(SS_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                                           minor: try attribute(SS_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR))
        let sms = try attribute(SS_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        let free = freeMemory ? try CUDAContext(driver: self, ordinal: ordinal).memoryInfo().free : nil
        return CUDADeviceInfo(ordinal: ordinal, name: String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                              totalMemory: total, freeMemory: free, computeCapability: capability, multiprocessorCount: sms)
    }

    /// Every visible GPU, in ordinal order.
    public func devices(freeMemory: Bool = false) throws(CUDAError) -> [CUDADeviceInfo] {
        var out: [CUDADeviceInfo] = []
        for i in 0..<(try deviceCount()) { out.append(try device(i, freeMemory: freeMemory)) }
        return out
    }
}

/// A GPU's compute capability, e.g. 9.0 for an H100.
public struct ComputeCapability: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// The NVRTC architecture for this GPU, e.g. `sm_90`.
    public var arch: String { "sm_\(major)\(minor)" }
    public var description: String { "\(major).\(minor)" }
    public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}

/// What the driver reports about one GPU.
public struct CUDADeviceInfo: Sendable, Hashable, Codable, CustomStringConvertible {
    public var ordinal: Int
    public var name: String
    /// Bytes of device memory.
    public var totalMemory: Int
    /// Bytes free when queried (nil unless asked for: the query needs a context).
    public var freeMemory: Int?
    public var computeCapability: ComputeCapability
    public var multiprocessorCount: Int

    public var description: String {
        let gib = { (b: Int) in String(Double(b * 10 / (1 << 30)) / 10) + " GiB" }
        let free = freeMemory.map { ", \(gib($0)) free" } ?? ""
        return "cuda:\(ordinal) \(name), \(gib(totalMemory))\(free), \(computeCapability.arch), \(multiprocessorCount) SMs"
    }
}

/// A retained primary context of one GPU, current on the thread that calls ``makeCurrent()``.
/// Released when the last reference goes away.
///
/// ```swift
/// let context = try CUDAContext(driver: driver, ordinal: 0)
/// let (free, total) = try context.memoryInfo()
/// ```
public final class CUDAContext: @unchecked Sendable {
    public let driver: CUDADriver
    public let ordinal: Int
    package let device: SSCUdevice
    package let context: SSCUcontext

    public init(driver: CUDADriver, ordinal: Int) throws(CUDAError) {
        let device = try driver.handle(ordinal)
        var context: SSCUcontext?
        try driver.check(driver.api.cuDevicePrimaryCtxRetain!(&context, device), "cuDevicePrimaryCtxRetain(\(ordinal))")
        self.driver = driver
        self.ordinal = ordinal
        self.device = device
        self.context = context!
    }

    deinit { _ = driver.api.cuDevicePrimaryCtxRelease!(device) }

    /// Binds this context to the calling thread (cheap; call it on every thread that uses the GPU).
    public func makeCurrent() throws(CUDAError) {
        try driver.check(driver.api.cuCtxSetCurrent!(context), "cuCtxSetCurrent")
    }

    /// Free and total device memory in bytes.
    public func memoryInfo() throws(CUDAError) -> (free: Int, total: Int) {
        try makeCurrent()
        var free = 0, total = 0
        try driver.check(driver.api.cuMemGetInfo!(&free, &total), "cuMemGetInfo_v2")
        return (free, total)
    }
}
