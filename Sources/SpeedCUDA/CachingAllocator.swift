// A caching allocator over any alloc/free pair: freed blocks are kept by (stream, size class) and handed out again,
// so a training step that repeats its shapes calls the device allocator only on its first step.
// Invariant: reservedBytes == allocatedBytes + cached bytes, every block is in exactly one of `live` or a free list,
// and a cached block is reused only on the stream it was allocated on (stream order makes that safe without events).

import SpeedCore
import Synchronization

/// Caching allocation over `alloc`/`free` closures (cuMemAlloc/cuMemFree on a GPU, anything in tests).
///
/// Sizes are rounded to size classes: multiples of 512 B up to 1 MiB, multiples of 2 MiB above. A freed
/// block goes to the free list of the (stream, size class) it was allocated with; the next request of that class on that stream
/// takes it back without calling `alloc`. When `alloc` fails, every cached block is freed and the request
/// retried once. Thread-safe.
///
/// ```swift
/// let allocator = CachingAllocator<UInt>(alloc: { bytes in UInt(bitPattern: malloc(bytes)) },
///                                         free: { address, _ in free(UnsafeMutableRawPointer(bitPattern: address)) })
/// let a = try allocator.allocate(byteCount: 1000)    // alloc(1024)
/// allocator.deallocate(a)                            // cached, not freed
/// let b = try allocator.allocate(byteCount: 900)     // the same block again: no alloc call
/// allocator.emptyCache()                             // returns cached blocks with free
/// ```
public final class CachingAllocator<Address: Hashable & Sendable>: Sendable {
    /// Allocates exactly `bytes` (a size class) and returns its address, or throws (out of memory).
    public typealias Alloc = @Sendable (_ bytes: Int) throws -> Address
    /// Returns a block obtained from `Alloc` with its size.
    public typealias Free = @Sendable (_ address: Address, _ bytes: Int) -> Void

    /// Requests up to this size are rounded to `smallGranularity`; larger ones to `largeGranularity`.
    public static var smallLimit: Int { 1 << 20 }
    public static var smallGranularity: Int { 512 }
    public static var largeGranularity: Int { 2 << 20 }

    /// The size class of a request: a multiple of 512 B (at least 512) up to 1 MiB, of 2 MiB above.
    public static func roundedSize(_ byteCount: Int) -> Int {
        precondition(byteCount >= 0, "CachingAllocator: negative size \(byteCount)")
        let unit = byteCount <= smallLimit ? smallGranularity : largeGranularity
        return Swift.max(unit, (byteCount + unit - 1) / unit * unit)
    }

    private struct Key: Hashable { var stream: Int; var size: Int }
    private struct Block { var size: Int; var stream: Int }

    private struct State {
        var live: [Address: Block] = [:]
        var free: [Key: [Address]] = [:]
        var allocated = 0
        var cached = 0
        var peak = 0
        var allocCalls = 0
        var freeCalls = 0
        var cachedBlocks = 0
    }

    private let alloc: Alloc
    private let release: Free
    private let state = Mutex(State())

    public init(alloc: @escaping Alloc, free: @escaping Free) {
        self.alloc = alloc
        self.release = free
    }

    /// A block of at least `byteCount` bytes for work ordered on `stream` (any stable integer; 0 = default stream).
    public func allocate(byteCount: Int, stream: Int = 0) throws -> Address {
        let size = Self.roundedSize(byteCount)
        return try state.withLock { s in
            let key = Key(stream: stream, size: size)
            let address: Address
            if let reused = s.free[key]?.popLast() {
                address = reused
                s.cached -= size
                s.cachedBlocks -= 1
            } else {
                do {
                    address = try alloc(size)
                } catch {
                    // Out of memory: give every cached block back and try once more.
                    Self.drain(&s, release)
                    address = try alloc(size)
                }
                s.allocCalls += 1
            }
            precondition(s.live[address] == nil, "CachingAllocator: alloc returned \(address), which is still live")
            s.live[address] = Block(size: size, stream: stream)
            s.allocated += size
            s.peak = Swift.max(s.peak, s.allocated)
            return address
        }
    }

    /// Returns a block to the cache of the stream it was allocated on. A block is freed exactly once.
    public func deallocate(_ address: Address) {
        state.withLock { s in
            guard let block = s.live.removeValue(forKey: address) else {
                preconditionFailure("CachingAllocator: \(address) is not a live block (double free, or not ours)")
            }
            s.allocated -= block.size
            s.cached += block.size
            s.cachedBlocks += 1
            s.free[Key(stream: block.stream, size: block.size), default: []].append(address)
        }
    }

    /// The size class of a live block (nil when `address` is not live).
    public func blockSize(_ address: Address) -> Int? {
        state.withLock { $0.live[address]?.size }
    }

    /// Frees every cached block with `free`; live blocks are untouched.
    public func emptyCache() {
        state.withLock { Self.drain(&$0, release) }
    }

    private static func drain(_ s: inout State, _ release: Free) {
        for (key, addresses) in s.free {
            for address in addresses { release(address, key.size) }
            s.freeCalls += addresses.count
        }
        s.free.removeAll()
        s.cached = 0
        s.cachedBlocks = 0
    }

    /// Allocated (live, by size class), reserved (live + cached) and peak allocated bytes.
    public var stats: MemoryStats {
        state.withLock { MemoryStats(allocatedBytes: $0.allocated, reservedBytes: $0.allocated + $0.cached, peakAllocatedBytes: $0.peak) }
    }

    /// Starts a new peak at the bytes allocated now.
    public func resetPeak() {
        state.withLock { $0.peak = $0.allocated }
    }

    /// How often `alloc` and `free` were called, and how many blocks sit in the cache.
    public var counters: (allocCalls: Int, freeCalls: Int, cachedBlocks: Int) {
        state.withLock { ($0.allocCalls, $0.freeCalls, $0.cachedBlocks) }
    }
}
