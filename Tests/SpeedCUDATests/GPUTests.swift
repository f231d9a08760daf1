// End-to-end checks that need a real GPU: enumeration, a context, the device allocator, and an NVRTC kernel
// loaded and launched. They skip (with the reason) on machines without libcuda.so.1 and a visible GPU, as on CI.
// Invariant: everything a test allocates on the GPU is freed before it returns.

import CSpeedCUDA
import Foundation
@testable import SpeedCUDA
import Testing

@Suite(.enabled(if: TestLibraries.gpuCount > 0, Comment(rawValue: TestLibraries.noGPU)))
struct GPUTests {
    var driver: CUDADriver { TestLibraries.driver! }

    @Test func enumeratesEveryGPUWithMemoryAndComputeCapability() throws {
        let version = try driver.version
        #expect(version.major >= 12)
        let gpus = try driver.devices(freeMemory: true)
        #expect(gpus.count == TestLibraries.gpuCount)
        for gpu in gpus {
            #expect(!gpu.name.isEmpty)
            #expect(gpu.totalMemory > 1 << 30)
            #expect(gpu.computeCapability.major >= 7)
            #expect(gpu.multiprocessorCount > 0)
            let free = try #require(gpu.freeMemory)
            #expect(free > 0 && free <= gpu.totalMemory)
        }
        #expect(throws: CUDAError.invalidDevice(ordinal: gpus.count, count: gpus.count)) { try driver.device(gpus.count) }
    }

    @Test func deviceAllocatorRoundTripsThroughTheGPUAndReusesBlocks() throws {
        let context = try CUDAContext(driver: driver, ordinal: 0)
        let memory = context.makeDeviceAllocator()
        defer { memory.emptyCache() }
        let api = driver.api
        let values = (0..<1000).map { Float($0) * 0.5 }
        let p = try memory.allocate(byteCount: values.count * 4)
        try values.withUnsafeBytes { try driver.check(api.cuMemcpyHtoD!(p, $0.baseAddress!, $0.count), "cuMemcpyHtoD_v2") }
        var back = [Float](repeating: 0, count: values.count)
        try back.withUnsafeMutableBytes { try driver.check(api.cuMemcpyDtoH!($0.baseAddress!, p, $0.count), "cuMemcpyDtoH_v2") }
        #expect(back == values)
        memory.deallocate(p)
        let q = try memory.allocate(byteCount: values.count * 4)
        #expect(q == p)
        #expect(memory.counters.allocCalls == 1)
        memory.deallocate(q)
    }

    @Test(.enabled(if: TestLibraries.nvrtc != nil, Comment(rawValue: TestLibraries.noNVRTC)),
          .enabled(if: !TestLibraries.emulated, Comment(rawValue: TestLibraries.emulatedReason)))
    func anNVRTCKernelLoadsAndRunsOnTheGPU() throws {
        let context = try CUDAContext(driver: driver, ordinal: 0)
        try context.makeCurrent()
        let arch = try driver.device(0).computeCapability.arch
        let dir = try TestLibraries.scratch("kcache-gpu")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = KernelCache(compiler: NVRTCCompiler(library: TestLibraries.nvrtc!), directory: dir)
        let image = try cache.kernel(scaleKernel, name: "scale.cu", arch: arch).image
        let api = driver.api
        var module: SSCUmodule?
        try image.bytes.withUnsafeBytes { try driver.check(api.cuModuleLoadData!(&module, $0.baseAddress!), "cuModuleLoadData") }
        defer { _ = api.cuModuleUnload!(module) }
        var function: SSCUfunction?
        try driver.check(api.cuModuleGetFunction!(&function, module, "scale"), "cuModuleGetFunction")

        let memory = context.makeDeviceAllocator()
        defer { memory.emptyCache() }
        let n: Int32 = 1000
        let x = try memory.allocate(byteCount: Int(n) * 4)
        defer { memory.deallocate(x) }
        let values = (0..<Int(n)).map { Float($0) }
        try values.withUnsafeBytes { try driver.check(api.cuMemcpyHtoD!(x, $0.baseAddress!, $0.count), "cuMemcpyHtoD_v2") }
        var pointer = x, a: Float = 3, count = n
        try withUnsafeMutablePointer(to: &pointer) { p0 in
            try withUnsafeMutablePointer(to: &a) { p1 in
                try withUnsafeMutablePointer(to: &count) { p2 in
                    var params: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(p0), UnsafeMutableRawPointer(p1), UnsafeMutableRawPointer(p2)]
                    try driver.check(api.cuLaunchKernel!(function, UInt32((n + 255) / 256), 1, 1, 256, 1, 1, 0, nil, &params, nil),
                                     "cuLaunchKernel")
                }
            }
        }
        try driver.check(api.cuCtxSynchronize!(), "cuCtxSynchronize")
        var back = [Float](repeating: 0, count: Int(n))
        try back.withUnsafeMutableBytes { try driver.check(api.cuMemcpyDtoH!($0.baseAddress!, x, $0.count), "cuMemcpyDtoH_v2") }
        #expect(back == values.map { $0 * 3 })
    }
}
