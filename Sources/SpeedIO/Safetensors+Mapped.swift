// Memory-mapped safetensors reading: the file is mapped read-only (MAP_PRIVATE) and each tensor is copied or
// converted straight from the mapping into its destination, so a checkpoint is read once and never held whole.
// Invariant: no byte of the mapping is touched before the header has been validated against the file size and the
// size checked again (fstat) for that tensor, so a file truncated after mapping throws `.fileShrank` instead of
// raising SIGBUS (a writer that truncates between that check and the copy can still crash the reader — files are
// replaced by rename, as AtomicFile does, never rewritten in place); the mapping lives until `close()` or deinit.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SpeedCore

/// A safetensors file mapped into memory: tensors are read by copying (and converting) their bytes straight from
/// the mapping into destination tensors — no staging buffer, no second read.
///
/// Use ``Safetensors/withMapped(_:_:)`` so that the mapping ends when the closure returns, or call ``close()``.
///
/// ```swift
/// try Safetensors.withMapped(url) { file in
///     let w = Tensor(empty: [4, 4], dtype: .float32)
///     try file.copy("w", into: w)                     // a BF16 "w" is converted to F32 on the way
///     try file.withBytes(of: "w") { raw in raw.count } // the bytes in the mapping, no copy
/// }
/// ```
public final class MappedSafetensors {
    /// The file's validated header.
    public let header: SafetensorsHeader
    public var path: String { file.path }
    private let file: ReadOnlyFile
    /// The mapping of the whole file; nil once closed.
    private var base: UnsafeMutableRawPointer?
    private let length: Int
    private let entries: [String: SafetensorsHeader.Entry]

    /// Opens `url`, validates its header against the file size, and maps the file read-only.
    ///
    /// - Throws: ``SafetensorsError`` for a missing, non-regular, truncated or malformed file (the same errors as
    ///   ``Safetensors/read(_:only:verify:)``), or `.io` when the file cannot be mapped.
    public init(_ url: URL) throws {
        file = try ReadOnlyFile(path: url.path)
        header = try file.readHeader()
        length = file.size   // >= 8: readHeader refused anything shorter
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, file.fd, 0), mapped != MAP_FAILED else {
            throw SafetensorsError(path: file.path, problem: .io(RegularFile.reason("map the file into memory", errno)))
        }
        base = mapped
        entries = Dictionary(header.entries.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    deinit { close() }

    /// Unmaps the file. Idempotent; using the file afterwards is a programming error.
    public func close() {
        if let base { _ = munmap(base, length) }
        base = nil
    }

    /// Whether ``close()`` has run.
    public var isClosed: Bool { base == nil }

    /// Calls `body` with `name`'s bytes as they lie in the mapping (valid only inside `body`).
    ///
    /// ```swift
    /// let crc = try file.withBytes(of: "w") { CRC32C.checksum($0) }
    /// ```
    /// - Parameter verify: check the bytes against the file's recorded CRC-32C first (when it records one).
    /// - Throws: ``SafetensorsError``: `.invalidName` for a name not in the file, `.fileShrank` when the file was
    ///   truncated since it was opened, `.checksumMismatch` for changed bytes.
    public func withBytes<R>(of name: String, verify: Bool = true,
                             _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let entry = try self.entry(name)
        return try body(try bytes(of: entry, verify: verify))
    }

    /// Copies tensor `name` into `destination` (any device), converting between F64, F32, F16 and BF16.
    ///
    /// Same dtype on the CPU: one `memcpy` from the mapping; another float dtype on the CPU: converted element by
    /// element from the mapping (rounding as `Tensor.copyData(from:)` does); a GPU destination: written from the
    /// mapping, through a device tensor of the file's dtype when the dtypes differ. The pages read are then
    /// released from this process's resident memory (the OS page cache keeps them).
    ///
    /// ```swift
    /// try file.copy("lm_head.weight", into: model.lmHead.weight)
    /// ```
    /// - Throws: ``SafetensorsError``: `.invalidName`, `.unsupportedDType` (U8, BOOL, F8…), `.fileShrank`,
    ///   `.checksumMismatch`; `destination` is unchanged when it throws.
    public func copy(_ name: String, into destination: Tensor, verify: Bool = true) throws {
        let entry = try self.entry(name)
        guard let source = entry.dtype.dtype else {
            throw SafetensorsError(path: path, tensor: name, problem: .unsupportedDType(entry.dtype.rawValue))
        }
        let count = entry.shape.reduce(1, *)
        precondition(destination.count == count,
                     "MappedSafetensors.copy: \(name) has shape \(entry.shape) but the destination is \(destination.shape)")
        let raw = try bytes(of: entry, verify: verify)
        defer { release(raw) }
        guard let from = raw.baseAddress, count > 0 else { return }
        do {
            if destination.device.isCPU {
                if source == destination.dtype {
                    destination.rawPointer.copyMemory(from: from, byteCount: raw.count)
                } else if source.isFloatingPoint && destination.dtype.isFloatingPoint {
                    FloatConversion.convert(from, source, into: destination.rawPointer, destination.dtype, count: count)
                } else {
                    destination.copyData(from: Self.cpuTensor(from, shape: entry.shape, dtype: source))
                }
            } else if source == destination.dtype {
                destination.backend.write(from, into: destination)
            } else {
                let staged = Tensor(empty: entry.shape, dtype: source, device: destination.device)
                staged.backend.write(from, into: staged)
                destination.copyData(from: staged)
            }
        }
    }

    /// Tensor `name` as a new CPU tensor in the file's dtype.
    ///
    /// ```swift
    /// let w = try file.tensor("w")
    /// ```
    /// - Throws: as ``copy(_:into:verify:)``.
    public func tensor(_ name: String, verify: Bool = true) throws -> Tensor {
        let entry = try self.entry(name)
        guard let dtype = entry.dtype.dtype else {
            throw SafetensorsError(path: path, tensor: name, problem: .unsupportedDType(entry.dtype.rawValue))
        }
        let t = Tensor(empty: entry.shape, dtype: dtype, device: .cpu)
        try copy(name, into: t, verify: verify)
        return t
    }

    // MARK: - Bytes

    private func entry(_ name: String) throws -> SafetensorsHeader.Entry {
        guard let entry = entries[name] else {
            throw SafetensorsError(path: path, tensor: name, problem: .invalidName("not in the file"))
        }
        return entry
    }

    /// The entry's bytes in the mapping, after checking the file still holds them (and their checksum).
    private func bytes(of entry: SafetensorsHeader.Entry, verify: Bool) throws -> UnsafeRawBufferPointer {
        guard let base else { preconditionFailure("MappedSafetensors: \(path) was used after close()") }
        let begin = header.dataStart + entry.dataOffsets.lowerBound
        let end = header.dataStart + entry.dataOffsets.upperBound
        let size = try file.currentSize()
        // Bytes below the current end of file are safe to read even if the file shrank (the page holding the end of
        // file reads as zeros past it); only pages wholly past the end raise SIGBUS.
        guard size >= end else {
            throw SafetensorsError(path: path, tensor: entry.name,
                                   problem: .fileShrank(expectedSize: length, size: size))
        }
        let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(base) + begin, count: end - begin)
        if verify, let recorded = header.checksums?[entry.name] {
            let computed = CRC32C.parallelChecksum(raw)
            guard computed == recorded else {
                throw SafetensorsError(path: path, tensor: entry.name,
                                       problem: .checksumMismatch(recorded: recorded, computed: computed))
            }
        }
        return raw
    }

    /// Drops the pages of `raw` from this process's resident set (MADV_DONTNEED on an unwritten private mapping
    /// only discards them: the next access reads them again from the page cache).
    private func release(_ raw: UnsafeRawBufferPointer) {
        guard let base, let start = raw.baseAddress, raw.count > 0 else { return }
        let offset = UnsafeRawPointer(start) - UnsafeRawPointer(base)
        let lo = Self.pageFloor(offset)
        let hi = min(length, Self.pageFloor(offset + raw.count + Self.page - 1))
        if hi > lo { _ = madvise(base + lo, hi - lo, MADV_DONTNEED) }
    }

    private static let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    private static func pageFloor(_ n: Int) -> Int { n / page * page }

    private static func cpuTensor(_ from: UnsafeRawPointer, shape: [Int], dtype: DType) -> Tensor {
        let t = Tensor(empty: shape, dtype: dtype, device: .cpu)
        t.rawPointer.copyMemory(from: from, byteCount: t.byteCount)
        return t
    }
}

extension Safetensors {
    /// Maps `url` for the duration of `body` (see ``MappedSafetensors``), unmapping it when `body` returns or throws.
    ///
    /// ```swift
    /// try Safetensors.withMapped(url) { file in
    ///     for entry in file.header.entries { try file.copy(entry.name, into: params[entry.name]!) }
    /// }
    /// ```
    /// - Throws: ``SafetensorsError`` from opening the file, or what `body` throws.
    public static func withMapped<R>(_ url: URL, _ body: (MappedSafetensors) throws -> R) throws -> R {
        let file = try MappedSafetensors(url)
        defer { file.close() }
        return try body(file)
    }
}

/// Float-to-float element conversion with the rounding of the CPU backend's `cast` (through Double when either side
/// is F64, else through Float; BF16 rounds to nearest even), so mapped loading gives the bits `copyData` gives.
enum FloatConversion {
    static func convert(_ from: UnsafeRawPointer, _ source: DType, into to: UnsafeMutableRawPointer, _ target: DType,
                        count n: Int) {
        if source == .float64 || target == .float64 {
            run(from, source, to, target, n, via: Double.self)
        } else {
            run(from, source, to, target, n, via: Float.self)
        }
    }

    private static func run<F: BinaryFloatingPoint>(_ from: UnsafeRawPointer, _ source: DType,
                                                    _ to: UnsafeMutableRawPointer, _ target: DType, _ n: Int,
                                                    via: F.Type) {
        // Converted in blocks through a small stack-sized buffer: the mapping is read once, in order.
        let block = 4096
        withUnsafeTemporaryAllocation(of: F.self, capacity: block) { tmp in
            var i = 0
            while i < n {
                let m = min(block, n - i)
                load(from, source, at: i, m, into: tmp.baseAddress!)
                store(tmp.baseAddress!, m, into: to, target, at: i)
                i += m
            }
        }
    }

    private static func load<F: BinaryFloatingPoint>(_ p: UnsafeRawPointer, _ dtype: DType, at i: Int, _ m: Int,
                                                     into tmp: UnsafeMutablePointer<F>) {
        switch dtype {
        case .float32:
            let s = p.assumingMemoryBound(to: Float.self) + i
            for k in 0..<m { tmp[k] = F(s[k]) }
        case .float64:
            let s = p.assumingMemoryBound(to: Double.self) + i
            for k in 0..<m { tmp[k] = F(s[k]) }
        case .float16:
            let s = p.assumingMemoryBound(to: Float16.self) + i
            for k in 0..<m { tmp[k] = F(s[k]) }
        case .bfloat16:
            let s = p.assumingMemoryBound(to: UInt16.self) + i
            for k in 0..<m { tmp[k] = F(BFloat16(bitPattern: s[k]).float) }
        case .int32, .int64:
            preconditionFailure("FloatConversion: \(dtype) is not a float type")
        }
    }

    private static func store<F: BinaryFloatingPoint>(_ tmp: UnsafeMutablePointer<F>, _ m: Int,
                                                      into p: UnsafeMutableRawPointer, _ dtype: DType, at i: Int) {
        switch dtype {
        case .float32:
            let d = p.assumingMemoryBound(to: Float.self) + i
            for k in 0..<m { d[k] = Float(tmp[k]) }
        case .float64:
            let d = p.assumingMemoryBound(to: Double.self) + i
            for k in 0..<m { d[k] = Double(tmp[k]) }
        case .float16:
            let d = p.assumingMemoryBound(to: Float16.self) + i
            for k in 0..<m { d[k] = Float16(tmp[k]) }
        case .bfloat16:
            let d = p.assumingMemoryBound(to: UInt16.self) + i
            if F.self == Float.self {
                for k in 0..<m { d[k] = BFloat16(Float(tmp[k])).bitPattern }
            } else {
                for k in 0..<m { d[k] = BFloat16(Double(tmp[k])).bitPattern }
            }
        case .int32, .int64:
            preconditionFailure("FloatConversion: \(dtype) is not a float type")
        }
    }
}
