// The caching allocator against a fake device that records every alloc and free: size classes, reuse per stream,
// exact allocated/reserved/peak, emptyCache, the out-of-memory retry, and thread safety.
// Invariant: the fake hands out distinct addresses and fails when asked for more than its capacity.

import Foundation
import SpeedCore
@testable import SpeedCUDA
import Synchronization
import Testing

/// A pretend device: bump addresses, a byte capacity, and a log of calls.
final class FakeDevice: Sendable {
    struct OutOfMemory: Error {}
    struct State { var next = 0x1000; var inUse = 0; var allocs: [Int] = []; var frees: [(Int, Int)] = [] }
    let capacity: Int
    let state = Mutex(State())
    init(capacity: Int = .max) { self.capacity = capacity }

    func allocator() -> CachingAllocator<Int> {
        CachingAllocator(
            alloc: { bytes in
                try self.state.withLock { s in
                    guard s.inUse + bytes <= self.capacity else { throw OutOfMemory() }
                    s.inUse += bytes
                    s.allocs.append(bytes)
                    defer { s.next += bytes }
                    return s.next
                }
            },
            free: { address, bytes in self.state.withLock { $0.inUse -= bytes; $0.frees.append((address, bytes)) } })
    }
    var allocs: [Int] { state.withLock { $0.allocs } }
    var frees: [(Int, Int)] { state.withLock { $0.frees } }
    var inUse: Int { state.withLock { $0.inUse } }
}

@Suite struct CachingAllocatorTests {
    typealias A = CachingAllocator<Int>
    let KiB = 1024, MiB = 1 << 20

    @Test func roundsTo512BytesUpTo1MiBAnd2MiBAbove() {
        #expect(A.roundedSize(0) == 512)
        #expect(A.roundedSize(1) == 512)
        #expect(A.roundedSize(512) == 512)
        #expect(A.roundedSize(513) == 1024)
        #expect(A.roundedSize(1000) == 1024)
        #expect(A.roundedSize(MiB - 1) == MiB)
        #expect(A.roundedSize(MiB) == MiB)
        #expect(A.roundedSize(MiB + 1) == 2 * MiB)
        #expect(A.roundedSize(3 * MiB) == 4 * MiB)
        #expect(A.roundedSize(4 * MiB) == 4 * MiB)
    }

    @Test func reusesAFreedBlockOfTheSameClassWithoutCallingAlloc() throws {
        let device = FakeDevice()
        let memory = device.allocator()
        let a = try memory.allocate(byteCount: 1000)
        #expect(device.allocs == [1024])
        #expect(memory.blockSize(a) == 1024)
        memory.deallocate(a)
        #expect(device.frees.isEmpty)
        let b = try memory.allocate(byteCount: 600)   // same class (1024)
        #expect(b == a)
        #expect(device.allocs == [1024])
        let c = try memory.allocate(byteCount: 1500)  // class 1536: a new block
        #expect(c != a)
        #expect(device.allocs == [1024, 1536])
        #expect(memory.counters.allocCalls == 2)
    }

    @Test func reuseIsPerStream() throws {
        let device = FakeDevice()
        let memory = device.allocator()
        let a = try memory.allocate(byteCount: 4 * MiB, stream: 1)
        memory.deallocate(a)
        let b = try memory.allocate(byteCount: 4 * MiB, stream: 2)   // stream 2 may not take stream 1's block
        #expect(b != a)
        let c = try memory.allocate(byteCount: 4 * MiB, stream: 1)
        #expect(c == a)
        #expect(device.allocs == [4 * MiB, 4 * MiB])
        // A block returns to the stream it was allocated on.
        memory.deallocate(b)
        #expect(try memory.allocate(byteCount: 3 * MiB + 1, stream: 2) == b)
    }

    @Test func tracksAllocatedReservedAndPeakExactly() throws {
        let device = FakeDevice()
        let memory = device.allocator()
        let stats = { memory.stats }
        #expect(stats() == MemoryStats(allocatedBytes: 0, reservedBytes: 0, peakAllocatedBytes: 0))
        let a = try memory.allocate(byteCount: 100)          // 512
        let b = try memory.allocate(byteCount: 3 * MiB)      // 4 MiB
        #expect(stats() == MemoryStats(allocatedBytes: 512 + 4 * MiB, reservedBytes: 512 + 4 * MiB, peakAllocatedBytes: 512 + 4 * MiB))
        memory.deallocate(b)
        #expect(stats() == MemoryStats(allocatedBytes: 512, reservedBytes: 512 + 4 * MiB, peakAllocatedBytes: 512 + 4 * MiB))
        let c = try memory.allocate(byteCount: 10 * KiB)     // 10 KiB, new
        #expect(stats() == MemoryStats(allocatedBytes: 512 + 10 * KiB, reservedBytes: 512 + 10 * KiB + 4 * MiB,
                                       peakAllocatedBytes: 512 + 4 * MiB))
        memory.resetPeak()
        #expect(stats().peakAllocatedBytes == 512 + 10 * KiB)
        let d = try memory.allocate(byteCount: 4 * MiB)      // reuses b
        #expect(d == b)
        #expect(stats() == MemoryStats(allocatedBytes: 512 + 10 * KiB + 4 * MiB, reservedBytes: 512 + 10 * KiB + 4 * MiB,
                                       peakAllocatedBytes: 512 + 10 * KiB + 4 * MiB))
        for p in [a, c, d] { memory.deallocate(p) }
        #expect(stats().allocatedBytes == 0)
        #expect(stats().reservedBytes == 512 + 10 * KiB + 4 * MiB)
        #expect(device.inUse == stats().reservedBytes)
    }

    @Test func emptyCacheFreesEveryCachedBlockAndNoLiveOne() throws {
        let device = FakeDevice()
        let memory = device.allocator()
        let live = try memory.allocate(byteCount: 2 * MiB)
        let blocks = try [100, 5000, 3 * MiB, 3 * MiB].enumerated().map { i, n in try memory.allocate(byteCount: n, stream: i % 2) }
        for p in blocks { memory.deallocate(p) }
        #expect(memory.counters.cachedBlocks == 4)
        memory.emptyCache()
        #expect(device.frees.map(\.0).sorted() == blocks.sorted())
        #expect(device.frees.map(\.1).reduce(0, +) == 512 + 5120 + 8 * MiB)
        #expect(!device.frees.contains { $0.0 == live })
        #expect(memory.stats == MemoryStats(allocatedBytes: 2 * MiB, reservedBytes: 2 * MiB, peakAllocatedBytes: 2 * MiB + 512 + 5120 + 8 * MiB))
        #expect(memory.counters.cachedBlocks == 0)
        #expect(device.inUse == 2 * MiB)
        memory.deallocate(live)
        memory.emptyCache()
        #expect(device.inUse == 0)
        #expect(memory.stats.reservedBytes == 0)
    }

    @Test func outOfMemoryFreesTheCacheAndRetriesOnce() throws {
        let device = FakeDevice(capacity: 8 * MiB)
        let memory = device.allocator()
        let a = try memory.allocate(byteCount: 4 * MiB)
        let b = try memory.allocate(byteCount: 4 * MiB, stream: 1)
        memory.deallocate(a)
        memory.deallocate(b)
        // 6 MiB fits only once the two cached 4 MiB blocks are returned.
        let c = try memory.allocate(byteCount: 6 * MiB)
        #expect(device.frees.count == 2)
        #expect(memory.stats == MemoryStats(allocatedBytes: 6 * MiB, reservedBytes: 6 * MiB, peakAllocatedBytes: 8 * MiB))
        // Still too big after emptying: the device's error comes through.
        #expect(throws: FakeDevice.OutOfMemory.self) { try memory.allocate(byteCount: 4 * MiB) }
        memory.deallocate(c)
    }

    @Test func aRepeatedTrainingStepAllocatesOnlyOnItsFirstStep() throws {
        let device = FakeDevice()
        let memory = device.allocator()
        let shapes = [4096, 4096, 3 * MiB, 700, 12 * MiB, 4096, 64]
        for _ in 0..<5 {
            let blocks = try shapes.map { try memory.allocate(byteCount: $0) }
            for p in blocks.reversed() { memory.deallocate(p) }
        }
        #expect(device.allocs.count == shapes.count)
    }

    @Test func concurrentUseKeepsTheBooksBalanced() async throws {
        let device = FakeDevice()
        let memory = device.allocator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<200 {
                        let p = try memory.allocate(byteCount: (i % 7 + 1) * 1000, stream: t % 3)
                        memory.deallocate(p)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(memory.stats.allocatedBytes == 0)
        #expect(memory.stats.reservedBytes == device.inUse)
        memory.emptyCache()
        #expect(device.inUse == 0)
    }

    @Test func freeingABlockTwiceStops() async {
        await #expect(processExitsWith: .failure) {
            let memory = FakeDevice().allocator()
            let p = try memory.allocate(byteCount: 10)
            memory.deallocate(p)
            memory.deallocate(p)
        }
    }
}
