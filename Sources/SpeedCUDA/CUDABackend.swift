// The CUDA implementation of SpeedCore's Backend: device memory through the caching allocator, NVRTC-compiled
// kernels from CUDAKernelSource, matmuls through cuBLASLt, all ordered on one stream.
// Invariant: a tensor's storage pointer on this backend is a CUdeviceptr's bit pattern, never dereferenced on the
// host; every kernel and copy is issued on `stream`, so stream order alone makes freed blocks safe to reuse.

import CSpeedCUDA
import Foundation
import SpeedCore
import Synchronization

/// SpeedCore's ``Backend`` on one NVIDIA GPU.
///
/// Get one through ``SpeedCore/Device/cuda(_:)`` rather than directly: that shares one backend per GPU
/// in the process, as PyTorch shares one caching allocator per device.
///
/// ```swift
/// let gpu = try Device.cuda(0)
/// let x = Tensor.randn([1024, 1024], device: gpu, rng: &rng)
/// let y = (x.matmul(x)).sum().to(.cpu).item()
/// ```
public final class CUDABackend: Backend, @unchecked Sendable {
    public let context: CUDAContext
    public let info: CUDADeviceInfo
    let driver: CUDADriver
    let cublas: CublasLtLibrary
    let kernels: KernelCache
    /// Every kernel and copy goes on this stream (the legacy default stream: ordered with synchronous copies).
    let stream: SSCUstream? = nil
    let memory: CachingAllocator<UInt64>
    /// Loaded modules and resolved functions, filled on first use of a program.
    private let loaded = Mutex(Loaded())
    /// cuBLASLt's handle and workspace, and heuristics chosen per matmul shape.
    let gemmState: GemmState
    /// The CPU device over this GPU's page-locked host memory (ZeRO offload lives there).
    public let hostDevice: Device
    /// A small device buffer for kernels' error flags (bad ids in embedding / cross-entropy), 16 ints.
    let flags: UInt64
    /// bf16/fp16 attention runs on the tensor cores (the `flash` program, compute capability 8.0 and newer)
    /// unless `SWIFTSPEED_CUDA_ATTENTION=simt` asks for the fp32 SIMT kernels of the `attention` program.
    public let tensorCoreAttention: Bool
    /// Whether `startProfiling` is in effect, and the events it recorded (CUDABackend+Profile.swift).
    let profiling = Atomic<Bool>(false)
    let profile = Mutex<ProfileState?>(nil)

    struct Loaded {
        var modules: [CUDAKernelProgram: UInt] = [:]
        var functions: [String: UInt] = [:]
        var sharedOptIn: [String: Int] = [:]
    }

    /// Opens GPU `ordinal`: its primary context, the caching allocator, cuBLASLt and the kernel cache.
    /// Throws a ``CUDAError`` naming what is missing (driver, GPU, NVRTC or cuBLASLt).
    public init(ordinal: Int = 0, libraries: CUDALibraries = .shared,
                kernelCacheDirectory: String = KernelCache.defaultDirectory(),
                environment: [String: String] = ProcessInfo.processInfo.environment) throws(CUDAError) {
        let driver = try libraries.driver.get()
        self.driver = driver
        info = try driver.device(ordinal)
        tensorCoreAttention = info.computeCapability.major >= 8 && environment[Self.attentionVariable] != "simt"
        context = try CUDAContext(driver: driver, ordinal: ordinal)
        try context.makeCurrent()
        cublas = try libraries.cublasLt.get()
        kernels = KernelCache(compiler: NVRTCCompiler(library: try libraries.nvrtc.get()), directory: kernelCacheDirectory)
        memory = context.makeDeviceAllocator()
        flags = try memory.allocateDevice(64)
        let pinned = context.makePinnedHostAllocator()
        hostDevice = Device(backend: CPUBackend(memory: HostMemory(
            allocate: { bytes in
                guard let p = try? pinned.allocate(byteCount: bytes), let pointer = UnsafeMutableRawPointer(bitPattern: p) else {
                    fatalError("CUDA: could not allocate \(bytes) bytes of page-locked host memory (cuMemAllocHost_v2)")
                }
                return pointer
            },
            free: { pointer, _ in pinned.deallocate(UInt(bitPattern: pointer)) })), kind: "cpu")
        gemmState = try GemmState(cublas: cublas, memory: memory)
        try driver.check(driver.api.cuMemsetD8!(flags, 0, 64), "cuMemsetD8_v2(flags)")
    }

    deinit {
        _ = try? context.makeCurrent()
        _ = driver.api.cuCtxSynchronize!()
        destroyProfileEvents()
        gemmState.destroy(memory: memory)
        memory.deallocate(flags)
        memory.emptyCache()
    }

    /// `SWIFTSPEED_CUDA_ATTENTION`: `simt` keeps bf16/fp16 attention off the tensor cores (for comparisons).
    public static let attentionVariable = "SWIFTSPEED_CUDA_ATTENTION"

    public var name: String { "cuda:\(info.ordinal) (\(info.name), \(info.computeCapability.arch), cuBLASLt \(cublas.versionString))" }

    /// Checks a driver result; a failure inside a kernel call is a bug or a broken device, so it stops with the
    /// driver's message (the Backend protocol does not throw).
    func check(_ result: SSCUresult, _ call: @autoclosure () -> String) {
        do { try driver.check(result, call()) } catch { fatalError("CUDA: \(error)") }
    }

    /// Waits for every kernel and copy issued so far (host synchronisation).
    public func synchronize() {
        check(driver.api.cuCtxSynchronize!(), "cuCtxSynchronize")
    }

    // MARK: Memory

    public func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        do {
            let address = try memory.allocate(byteCount: byteCount)
            return UnsafeMutableRawPointer(bitPattern: UInt(address))!
        } catch {
            let s = memory.stats
            fatalError("CUDA out of memory allocating \(byteCount) bytes on cuda:\(info.ordinal) "
                + "(\(s.allocatedBytes) bytes allocated, \(s.reservedBytes) reserved): \(error)")
        }
    }

    public func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        memory.deallocate(UInt64(UInt(bitPattern: pointer)))
    }

    public var memoryStats: MemoryStats { memory.stats }

    public func resetPeakMemory() { memory.resetPeak() }

    /// Returns cached blocks to the driver (PyTorch's `torch.cuda.empty_cache()`).
    public func emptyCache() { memory.emptyCache() }

    /// The device address of `t`'s first element; stops if `t` is not resident (a released ZeRO-3 parameter).
    func address(_ t: Tensor) -> UInt64 {
        precondition(t.device.kind == "cuda" && t.device.ordinal == info.ordinal,
                     "CUDA backend cuda:\(info.ordinal) was handed a tensor on \(t.device)")
        precondition((t.offset + t.count) * t.dtype.byteSize <= t.storage.byteCount,
                     "this \(t.shape) tensor's data is not resident (a ZeRO-3 partitioned parameter used outside its module's forward/backward); gather it with Engine.withGatheredParameters")
        return UInt64(UInt(bitPattern: t.storage.pointer)) + UInt64(t.offset * t.dtype.byteSize)
    }

    func address(_ t: Tensor?) -> UInt64 { t.map { address($0) } ?? 0 }

    public func read(_ tensor: Tensor, into host: UnsafeMutableRawPointer) {
        guard tensor.byteCount > 0 else { return }
        try? context.makeCurrent()
        profiled("memcpy_dtoh") {
            check(driver.api.cuMemcpyDtoH!(host, address(tensor), tensor.byteCount), "cuMemcpyDtoH_v2(\(tensor.byteCount) bytes)")
        }
        checkDeferredErrors()
    }

    /// Kernels report bad input (an embedding id or a cross-entropy target out of range) through device flags
    /// instead of synchronising; every read to the host (e.g. `loss.item()`) checks them, as CUDA reports a
    /// kernel's error at the next synchronising call.
    func checkDeferredErrors() {
        var values = (Int32(0), Int32(0), Int32(0))
        check(driver.api.cuMemcpyDtoH!(&values, flags, 12), "cuMemcpyDtoH_v2(flags)")
        precondition(values.1 == 0, "embedding: an id was out of range for the vocabulary (found by a GPU kernel since the last read)")
        precondition(values.2 == 0, "crossEntropy: a target was out of range for the classes and not the ignore index (found by a GPU kernel since the last read)")
    }

    public func write(_ host: UnsafeRawPointer, into tensor: Tensor) {
        guard tensor.byteCount > 0 else { return }
        try? context.makeCurrent()
        profiled("memcpy_htod") {
            check(driver.api.cuMemcpyHtoD!(address(tensor), host, tensor.byteCount), "cuMemcpyHtoD_v2(\(tensor.byteCount) bytes)")
        }
    }

    /// Device-to-device copy of `bytes` (stream ordered).
    func copyBytes(from src: UInt64, to dst: UInt64, _ bytes: Int) {
        guard bytes > 0, src != dst else { return }
        try? context.makeCurrent()
        profiled("memcpy") {
            check(driver.api.cuMemcpyDtoDAsync!(dst, src, bytes, stream), "cuMemcpyDtoDAsync_v2(\(bytes) bytes)")
        }
    }

    // MARK: Programs

    /// Compiles (or reads from the kernel cache) and loads `programs` now, in parallel, so a missing or broken
    /// compiler shows up as a thrown error rather than at the first kernel call.
    public func prepare(_ programs: [CUDAKernelProgram] = CUDAKernelProgram.allCases) throws(CUDAError) {
        let images = Mutex<[CUDAKernelProgram: Result<KernelImage, CUDAError>]>([:])
        let todo = programs.filter { p in loaded.withLock { $0.modules[p] == nil } }
        DispatchQueue.concurrentPerform(iterations: todo.count) { i in
            let p = todo[i]
            let r = Result { () throws(CUDAError) -> KernelImage in
                try kernels.kernel(p.source, name: p.rawValue + ".cu", arch: info.computeCapability.arch, options: p.options).image
            }
            images.withLock { $0[p] = r }
        }
        for p in todo {
            let result = images.withLock { $0[p]! }
            try load(p, try result.get())
        }
    }

    private func load(_ program: CUDAKernelProgram, _ image: KernelImage) throws(CUDAError) {
        try context.makeCurrent()
        var module: SSCUmodule?
        let result = image.bytes.withUnsafeBytes { raw in driver.api.cuModuleLoadData!(&module, raw.baseAddress!) }
        try driver.check(result, "cuModuleLoadData(\(program.rawValue).cu)")
        let stored = loaded.withLock { l -> Bool in
            guard l.modules[program] == nil else { return false }
            l.modules[program] = UInt(bitPattern: module)
            return true
        }
        if !stored { _ = driver.api.cuModuleUnload!(module) }
    }

    /// The kernel `name` from `program`, loading the program on first use.
    func function(_ name: String, in program: CUDAKernelProgram, sharedBytes: Int) -> SSCUfunction {
        if let f = loaded.withLock({ l -> UInt? in
            guard let f = l.functions[name], sharedBytes <= max(49152, l.sharedOptIn[name] ?? 0) else { return nil }
            return f
        }) { return OpaquePointer(bitPattern: f)! }
        do {
            if loaded.withLock({ $0.modules[program] == nil }) { try prepare([program]) }
            let module = OpaquePointer(bitPattern: loaded.withLock { $0.modules[program]! })
            var f: SSCUfunction?
            try driver.check(driver.api.cuModuleGetFunction!(&f, module, name), "cuModuleGetFunction(\(name))")
            if sharedBytes > 49152 {
                try driver.check(driver.api.cuFuncSetAttribute!(f, Int32(SS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES), Int32(sharedBytes)),
                                 "cuFuncSetAttribute(\(name), MAX_DYNAMIC_SHARED_SIZE_BYTES, \(sharedBytes))")
            }
            loaded.withLock {
                $0.functions[name] = UInt(bitPattern: f)
                $0.sharedOptIn[name] = max($0.sharedOptIn[name] ?? 0, sharedBytes)
            }
            return f!
        } catch {
            fatalError("CUDA: \(error)")
        }
    }

    /// Launches `name` with `args` packed as `cuLaunchKernel`'s parameter array.
    func launch(_ program: CUDAKernelProgram, _ name: String, grid: (Int, Int), block: (Int, Int) = (256, 1),
                sharedBytes: Int = 0, _ args: [KernelArgument]) {
        precondition(grid.0 >= 1 && grid.1 >= 1 && grid.0 <= Int(Int32.max) && grid.1 <= 65535,
                     "CUDA launch of \(name): grid \(grid) out of range")
        let f = function(name, in: program, sharedBytes: sharedBytes)
        try? context.makeCurrent()
        var words: [UInt64] = []
        var starts: [Int] = []
        for a in args {
            starts.append(words.count)
            a.append(to: &words)
        }
        profiled(name) {
            words.withUnsafeMutableBufferPointer { w in
                var params: [UnsafeMutableRawPointer?] = starts.map { UnsafeMutableRawPointer(w.baseAddress! + $0) }
                check(driver.api.cuLaunchKernel!(f, UInt32(grid.0), UInt32(grid.1), 1, UInt32(block.0), UInt32(block.1), 1,
                                                 UInt32(sharedBytes), stream, &params, nil),
                      "cuLaunchKernel(\(name), grid \(grid), block \(block), \(sharedBytes) B shared)")
            }
        }
    }

    /// Reads the error flag `index` and clears it (a host synchronisation).
    func takeFlag(_ index: Int) -> Int32 {
        var value: Int32 = 0
        try? context.makeCurrent()
        check(driver.api.cuMemcpyDtoH!(&value, flags + UInt64(4 * index), 4), "cuMemcpyDtoH_v2(flag)")
        if value != 0 { clearFlag(index) }
        return value
    }

    func clearFlag(_ index: Int) {
        try? context.makeCurrent()
        check(driver.api.cuMemsetD8Async!(flags + UInt64(4 * index), 0, 4, stream), "cuMemsetD8Async(flag)")
    }
}

/// The seven NVRTC programs of ``CUDAKernelSource``, compiled and loaded one at a time on first use.
public enum CUDAKernelProgram: String, Sendable, CaseIterable {
    case memory, elementwise, reduce, nn, attention, flash, optim

    /// `common` plus this family's kernels.
    public var source: String { CUDAKernelSource.all.first { $0.name == rawValue }!.source }

    /// NVRTC options (never `--use_fast_math`: several kernels promise the CPU's bits).
    public var options: [String] { ["-std=c++17"] }
}
