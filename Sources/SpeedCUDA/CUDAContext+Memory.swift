// Device and pinned-host memory for one GPU context, always through a CachingAllocator (never cuMemAlloc per step).
// Invariant: every block is allocated and freed with this context current, and the allocator keeps the context alive.

import CSpeedCUDA

extension CUDAContext {
    /// A caching allocator over `cuMemAlloc_v2`/`cuMemFree_v2` in this context; addresses are `CUdeviceptr`s.
    ///
    /// ```swift
    /// let context = try CUDAContext(driver: driver, ordinal: 0)
    /// let memory = context.makeDeviceAllocator()
    /// let p = try memory.allocate(byteCount: 4 << 20, stream: 0)
    /// memory.deallocate(p)          // cached for the next 4 MiB request on stream 0
    /// ```
    public func makeDeviceAllocator() -> CachingAllocator<UInt64> {
        let context = self
        return CachingAllocator(
            alloc: { bytes in
                try context.makeCurrent()
                var address: SSCUdeviceptr = 0
                try context.driver.check(context.driver.api.cuMemAlloc!(&address, bytes), "cuMemAlloc_v2(\(bytes) bytes)")
                return address
            },
            free: { address, _ in
                _ = context.driver.api.cuCtxSetCurrent!(context.context)
                _ = context.driver.api.cuMemFree!(address)
            })
    }

    /// A caching allocator over `cuMemAllocHost_v2`/`cuMemFreeHost`: page-locked host memory, which
    /// asynchronous copies and CPU offload need. Addresses are the host pointers' bit patterns
    /// (`UnsafeMutableRawPointer(bitPattern:)` turns one back).
    public func makePinnedHostAllocator() -> CachingAllocator<UInt> {
        let context = self
        return CachingAllocator(
            alloc: { bytes in
                try context.makeCurrent()
                var pointer: UnsafeMutableRawPointer?
                try context.driver.check(context.driver.api.cuMemAllocHost!(&pointer, bytes), "cuMemAllocHost_v2(\(bytes) bytes)")
                return UInt(bitPattern: pointer)
            },
            free: { address, _ in
                _ = context.driver.api.cuCtxSetCurrent!(context.context)
                _ = context.driver.api.cuMemFreeHost!(UnsafeMutableRawPointer(bitPattern: address))
            })
    }
}

extension CachingAllocator where Address == UInt64 {
    /// `allocate(byteCount:)` with the driver's error as a ``CUDAError`` (for throwing setup code).
    func allocateDevice(_ byteCount: Int) throws(CUDAError) -> UInt64 {
        do { return try allocate(byteCount: byteCount) } catch let e as CUDAError { throw e } catch {
            throw .driver(call: "cuMemAlloc_v2(\(byteCount) bytes)", code: Int32(SS_CUDA_ERROR_OUT_OF_MEMORY), name: "CUDA_ERROR_OUT_OF_MEMORY",
                          message: "\(error)")
        }
    }
}
