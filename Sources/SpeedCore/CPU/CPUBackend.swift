// The reference backend: Swift loops (SIMD where hot) spread over threads, GEMM through OpenBLAS.
// Invariant: fp32/fp64 are computed natively; bf16/fp16 kernels run in fp32 on promoted copies and
// round once on the way out, so results match a CUDA kernel that accumulates in fp32.

import COpenBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import RealModule

/// Float types the CPU kernels are written for.
@usableFromInline
protocol CPUFloat: Real, BinaryFloatingPoint, Sendable {}
extension Float: CPUFloat {}
extension Double: CPUFloat {}

/// The CPU implementation of ``Backend``.
public final class CPUBackend: Backend {
    public let threads: Int
    @usableFromInline let parallel: Parallel
    /// Freed large blocks by rounded size, reused by the next allocation of that size: a training
    /// step allocates the same shapes every time, so after step 1 it takes no fresh pages.
    private let cache = Mutex(BlockCache())
    /// Bytes of live blocks (rounded sizes) and their high-water mark, updated from any thread.
    private let liveBytes = Atomic<Int>(0)
    private let peakBytes = Atomic<Int>(0)

    /// Blocks of at least this size are cached; smaller ones go straight to malloc.
    static let cachedMinimum = 1 << 16

    /// Where blocks come from when not `malloc` (then the allocator's own cache is used instead of ours).
    private let memory: HostMemory?

    /// - Parameter threads: worker threads for elementwise kernels and OpenBLAS (default: all cores).
    /// - Parameter memory: allocate from here instead of `malloc` (e.g. a GPU backend's pinned host memory).
    public init(threads: Int? = nil, memory: HostMemory? = nil) {
        self.memory = memory
        let n = Swift.max(1, threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        self.threads = n
        self.parallel = Parallel(threads: n)
        // BLAS runs on the calling thread; `gemm` splits work across this backend's threads.
        openblas_set_num_threads(1)
    }

    public var name: String { "cpu (\(threads) thread\(threads == 1 ? "" : "s"), OpenBLAS)" }

    // MARK: Memory

    public func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = BlockCache.rounded(byteCount)
        let live = liveBytes.wrappingAdd(size, ordering: .relaxed).newValue
        peakBytes.max(live, ordering: .relaxed)
        if let memory { return memory.allocate(size) }
        if size >= Self.cachedMinimum, let p = cache.withLock({ $0.take(size) }) { return p.value }
        var p: UnsafeMutableRawPointer?
        let rc = posix_memalign(&p, 64, size)
        precondition(rc == 0 && p != nil, "CPU allocation of \(byteCount) bytes failed: out of memory (this machine has "
                     + "\(sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))) bytes, \(live - size) already in use here); use smaller batches")
        return p!
    }

    public func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        let size = BlockCache.rounded(byteCount)
        liveBytes.wrappingSubtract(size, ordering: .relaxed)
        if let memory { return memory.free(pointer, size) }
        if size >= Self.cachedMinimum {
            let block = Unchecked(pointer)
            if cache.withLock({ $0.put(block, size) }) { return }
        }
        free(pointer)
    }

    public var memoryStats: MemoryStats {
        let live = liveBytes.load(ordering: .relaxed)
        return MemoryStats(allocatedBytes: live, reservedBytes: live + cache.withLock { $0.bytes },
                           peakAllocatedBytes: Swift.max(peakBytes.load(ordering: .relaxed), live))
    }

    public func resetPeakMemory() {
        peakBytes.store(liveBytes.load(ordering: .relaxed), ordering: .relaxed)
    }

    /// Returns every cached block to the system.
    public func emptyCache() {
        for p in cache.withLock({ $0.drain() }) { free(p.value) }
    }

    public func read(_ tensor: Tensor, into host: UnsafeMutableRawPointer) {
        host.copyMemory(from: tensor.rawPointer, byteCount: tensor.byteCount)
    }

    public func write(_ host: UnsafeRawPointer, into tensor: Tensor) {
        tensor.rawPointer.copyMemory(from: host, byteCount: tensor.byteCount)
    }

    // MARK: Creation and movement

    public func fill(_ out: Tensor, value: Double) {
        let n = out.count
        switch out.dtype {
        case .float32: let p = Unchecked(out.pointer(as: Float.self)); let v = Float(value)
            parallel.forEach(n, grain: 1 << 16) { r in (p.value + r.lowerBound).update(repeating: v, count: r.count) }
        case .float64: out.pointer(as: Double.self).update(repeating: value, count: n)
        case .int32: out.pointer(as: Int32.self).update(repeating: Int32(saturating: value), count: n)
        case .int64: out.pointer(as: Int64.self).update(repeating: Int64(saturating: value), count: n)
        case .bfloat16: out.pointer(as: UInt16.self).update(repeating: BFloat16(value).bitPattern, count: n)
        case .float16: out.pointer(as: Float16.self).update(repeating: Float16(value), count: n)
        }
    }

    public func cast(_ x: Tensor, into out: Tensor) {
        precondition(x.count == out.count, "cast: \(x.shape) into \(out.shape)")
        if x.dtype == out.dtype {
            if x.rawPointer != out.rawPointer { out.rawPointer.copyMemory(from: x.rawPointer, byteCount: x.byteCount) }
            return
        }
        let n = x.count
        // Every conversion goes through Float or Double (Double when either side is 64-bit).
        if x.dtype == .float64 || out.dtype == .float64 || x.dtype == .int64 || out.dtype == .int64 {
            let tmp = UnsafeMutablePointer<Double>.allocate(capacity: n)
            defer { tmp.deallocate() }
            Conversions.load(x, into: tmp, n)
            Conversions.store(tmp, into: out, n)
        } else {
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: n)
            defer { tmp.deallocate() }
            Conversions.load(x, into: tmp, n)
            Conversions.store(tmp, into: out, n)
        }
    }

    public func copy(_ x: Tensor, layout: Layout, into out: Tensor, outLayout: Layout, accumulate: Bool) {
        precondition(layout.shape == outLayout.shape, "copy: layouts \(layout.shape) and \(outLayout.shape) differ")
        precondition(x.dtype == out.dtype, "copy: dtypes \(x.dtype) and \(out.dtype) differ")
        if accumulate {
            switch x.dtype {
            case .float32: stridedCopy(Float.self, x, layout, out, outLayout, accumulate: true)
            case .float64: stridedCopy(Double.self, x, layout, out, outLayout, accumulate: true)
            default:
                precondition(x.dtype.isHalf, "copy: accumulating \(x.dtype) tensors is not supported (floating-point gradients only)")
                let (px, po) = (promote(x)!, promote(out)!)
                copy(px, layout: layout, into: po, outLayout: outLayout, accumulate: true)
                cast(po, into: out)
            }
            return
        }
        switch x.dtype.byteSize {
        case 2: stridedCopy(UInt16.self, x, layout, out, outLayout, accumulate: false)
        case 4: stridedCopy(UInt32.self, x, layout, out, outLayout, accumulate: false)
        default: stridedCopy(UInt64.self, x, layout, out, outLayout, accumulate: false)
        }
    }

    private func stridedCopy<T>(_: T.Type, _ x: Tensor, _ layout: Layout, _ out: Tensor, _ outLayout: Layout,
                                accumulate: Bool) {
        let (shape, st) = StridedRows.collapse(layout.shape, [layout.strides, outLayout.strides])
        let rows = StridedRows(shape: shape, strides: st)
        let src = Unchecked(x.pointer(as: T.self) + layout.offset)
        let dst = Unchecked(out.pointer(as: T.self) + outLayout.offset)
        let inner = rows.inner, sIn = st[0].last ?? 1, dIn = st[1].last ?? 1
        parallel.forEach(rows.count, grain: Swift.max(1, 16384 / Swift.max(inner, 1))) { range in
            rows.forEach(range) { offs in
                let s = src.value + offs[0], d = dst.value + offs[1]
                if accumulate {
                    // Only float element types reach here.
                    if T.self == Float.self {
                        let s = UnsafeMutableRawPointer(s).assumingMemoryBound(to: Float.self)
                        let d = UnsafeMutableRawPointer(d).assumingMemoryBound(to: Float.self)
                        for i in 0..<inner { d[i &* dIn] += s[i &* sIn] }
                    } else {
                        let s = UnsafeMutableRawPointer(s).assumingMemoryBound(to: Double.self)
                        let d = UnsafeMutableRawPointer(d).assumingMemoryBound(to: Double.self)
                        for i in 0..<inner { d[i &* dIn] += s[i &* sIn] }
                    }
                } else if sIn == 1 && dIn == 1 {
                    d.update(from: s, count: inner)
                } else {
                    for i in 0..<inner { d[i &* dIn] = s[i &* sIn] }
                }
            }
        }
    }

    public func dropout(_ x: Tensor, p: Double, seed: UInt64, offset: UInt64, into out: Tensor) {
        if let (ins, outs) = promoted([x], [out]) {
            dropout(ins[0]!, p: p, seed: seed, offset: offset, into: outs[0]!); return finish(outs, [out])
        }
        switch x.dtype {
        case .float32: dropoutKernel(Float.self, x, p, seed, offset, out)
        default: dropoutKernel(Double.self, x, p, seed, offset, out)
        }
    }

    private func dropoutKernel<T: CPUFloat>(_: T.Type, _ x: Tensor, _ p: Double, _ seed: UInt64, _ offset: UInt64, _ out: Tensor) {
        let xs = Unchecked(x.pointer(as: T.self)), ys = Unchecked(out.pointer(as: T.self))
        let keepScale = T(1 / (1 - p)), threshold = Float(p)
        parallel.forEach(x.count, grain: 1 << 14) { r in
            for i in r {
                let u = RandomStream.uniform(seed: seed, counter: offset &+ UInt64(i))
                ys.value[i] = u < threshold ? 0 : xs.value[i] * keepScale
            }
        }
    }

    public func random(_ out: Tensor, normal: Bool, a: Double, b: Double, seed: UInt64, offset: UInt64) {
        let n = out.count
        let tmp = Tensor(empty: out.shape, dtype: .float64, device: Device(backend: self, kind: "cpu"))
        let p = Unchecked(tmp.pointer(as: Double.self))
        parallel.forEach(n, grain: 1 << 14) { r in
            for i in r {
                let c = offset &+ UInt64(i)
                if normal {
                    // Box–Muller on element i's own counter (u2 from the complemented seed): a normal draw
                    // must not touch counters 2c, 2c+1, which belong to later draws on the same stream.
                    let u1 = RandomStream.uniformOpen(seed: seed, counter: c)
                    let u2 = RandomStream.uniformOpen(seed: ~seed, counter: c)
                    let z = Double.sqrt(-2 * Double.log(u1)) * Double.cos(2 * Double.pi * u2)
                    p.value[i] = a + b * z
                } else {
                    p.value[i] = a + (b - a) * RandomStream.uniformOpen(seed: seed, counter: c)
                }
            }
        }
        cast(tmp, into: out)
    }

    // MARK: Half-precision promotion

    /// fp32 copies of any bf16/fp16 tensors among `inputs`/`outputs`, or nil when none is half.
    func promoted(_ inputs: [Tensor?], _ outputs: [Tensor?]) -> ([Tensor?], [Tensor?])? {
        guard (inputs + outputs).contains(where: { $0?.dtype.isHalf == true }) else { return nil }
        return (inputs.map(promote), outputs.map(promote))
    }

    func promote(_ t: Tensor?) -> Tensor? {
        guard let t else { return nil }
        guard t.dtype.isHalf else { return t }
        let f = Tensor(empty: t.shape, dtype: .float32, device: t.device)
        cast(t, into: f)
        return f
    }

    /// Rounds promoted outputs back into the caller's half tensors.
    func finish(_ promotedOutputs: [Tensor?], _ outputs: [Tensor?]) {
        for (p, o) in zip(promotedOutputs, outputs) {
            if let p, let o, p !== o { cast(p, into: o) }
        }
    }
}

/// Size-keyed free lists of large blocks, capped so a burst cannot pin unbounded memory.
struct BlockCache: ~Copyable {
    private var free: [Int: [Unchecked<UnsafeMutableRawPointer>]] = [:]
    private var cachedBytes = 0
    static let capacity = 8 << 30

    /// Sizes round up to 4 KiB pages, so near-equal requests share blocks.
    static func rounded(_ n: Int) -> Int { (Swift.max(n, 1) + 4095) & ~4095 }

    /// Bytes held in the free lists.
    var bytes: Int { cachedBytes }

    mutating func take(_ size: Int) -> Unchecked<UnsafeMutableRawPointer>? {
        guard let p = free[size]?.popLast() else { return nil }
        cachedBytes -= size
        return p
    }

    mutating func put(_ p: Unchecked<UnsafeMutableRawPointer>, _ size: Int) -> Bool {
        guard cachedBytes + size <= Self.capacity else { return false }
        free[size, default: []].append(p)
        cachedBytes += size
        return true
    }

    mutating func drain() -> [Unchecked<UnsafeMutableRawPointer>] {
        defer { free = [:]; cachedBytes = 0 }
        return free.values.flatMap { $0 }
    }
}

/// Element conversion through Float/Double staging.
enum Conversions {
    static func load<F: CPUFloat>(_ x: Tensor, into tmp: UnsafeMutablePointer<F>, _ n: Int) {
        switch x.dtype {
        case .float32: let p = x.pointer(as: Float.self); for i in 0..<n { tmp[i] = F(p[i]) }
        case .float64: let p = x.pointer(as: Double.self); for i in 0..<n { tmp[i] = F(p[i]) }
        case .int32: let p = x.pointer(as: Int32.self); for i in 0..<n { tmp[i] = F(p[i]) }
        case .int64: let p = x.pointer(as: Int64.self); for i in 0..<n { tmp[i] = F(p[i]) }
        case .float16: let p = x.pointer(as: Float16.self); for i in 0..<n { tmp[i] = F(p[i]) }
        case .bfloat16: let p = x.pointer(as: UInt16.self)
            for i in 0..<n { tmp[i] = F(BFloat16(bitPattern: p[i]).float) }
        }
    }

    static func store<F: CPUFloat>(_ tmp: UnsafeMutablePointer<F>, into out: Tensor, _ n: Int) {
        switch out.dtype {
        case .float32: let p = out.pointer(as: Float.self); for i in 0..<n { p[i] = Float(tmp[i]) }
        case .float64: let p = out.pointer(as: Double.self); for i in 0..<n { p[i] = Double(tmp[i]) }
        case .int32: let p = out.pointer(as: Int32.self); for i in 0..<n { p[i] = Int32(saturating: Double(tmp[i])) }
        case .int64: let p = out.pointer(as: Int64.self); for i in 0..<n { p[i] = Int64(saturating: Double(tmp[i])) }
        case .float16: let p = out.pointer(as: Float16.self); for i in 0..<n { p[i] = Float16(tmp[i]) }
        case .bfloat16: let p = out.pointer(as: UInt16.self)
            for i in 0..<n { p[i] = (F.self == Float.self ? BFloat16(Float(tmp[i])) : BFloat16(Double(tmp[i]))).bitPattern }
        }
    }
}

/// Iterates the rows (all axes but the last) of several strided layouts over one shape.
package struct StridedRows: Sendable {
    let shape: [Int]
    let strides: [[Int]]

    var inner: Int { shape.last ?? 1 }
    var count: Int { Shape.count(shape.dropLast()) }

    /// Merges adjacent axes that are contiguous in every layout, and drops size-1 axes.
    package static func collapse(_ shape: [Int], _ strides: [[Int]]) -> ([Int], [[Int]]) {
        var s: [Int] = []
        var st: [[Int]] = strides.map { _ in [] }
        for i in 0..<shape.count where shape[i] != 1 {
            if let last = s.last, strides.indices.allSatisfy({ st[$0].last! == strides[$0][i] * shape[i] }) {
                s[s.count - 1] = last * shape[i]
                for j in strides.indices { st[j][st[j].count - 1] = strides[j][i] }
            } else {
                s.append(shape[i])
                for j in strides.indices { st[j].append(strides[j][i]) }
            }
        }
        if s.isEmpty { return ([1], strides.map { _ in [1] }) }
        return (s, st)
    }

    /// Calls `body` with each layout's element offset for every row in `range`.
    func forEach(_ range: Range<Int>, _ body: ([Int]) -> Void) {
        let outerRank = shape.count - 1
        var index = [Int](repeating: 0, count: Swift.max(outerRank, 0))
        var rem = range.lowerBound
        for d in stride(from: outerRank - 1, through: 0, by: -1) {
            index[d] = rem % shape[d]
            rem /= shape[d]
        }
        var offs = strides.map { st in (0..<outerRank).reduce(0) { $0 + index[$1] * st[$1] } }
        for _ in range {
            body(offs)
            var d = outerRank - 1
            while d >= 0 {
                index[d] += 1
                for j in offs.indices { offs[j] += strides[j][d] }
                if index[d] < shape[d] { break }
                for j in offs.indices { offs[j] -= strides[j][d] * shape[d] }
                index[d] = 0
                d -= 1
            }
        }
    }
}

extension FixedWidthInteger {
    /// Truncates toward zero, saturating at the type's bounds; NaN becomes 0 (never traps).
    init(saturating x: Double) {
        if x.isNaN { self = 0 }
        else if x <= Double(Self.min) { self = Self.min }
        else if x >= Double(Self.max) { self = Self.max }
        else { self = Self(x.rounded(.towardZero)) }
    }
}
