// Reading safetensors files: header inspection, and eager loading of tensors straight into CPU storage.
// Invariant: the whole header is validated against the file size before any tensor is allocated, and a
// short read throws, so callers get every requested tensor or an error — never a partial load.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SpeedCore

extension Safetensors {
    /// Reads and validates a file's header without reading tensor data.
    ///
    /// ```swift
    /// let header = try Safetensors.header(url)
    /// header["lm_head.weight"]?.shape   // [50257, 768]
    /// ```
    /// - Throws: ``SafetensorsError`` naming the file, the tensor and the problem.
    public static func header(_ url: URL) throws -> SafetensorsHeader {
        let file = try ReadOnlyFile(path: url.path)
        return try file.readHeader()
    }

    /// Reads tensors (to the CPU) and metadata from a safetensors file.
    ///
    /// The file is fully validated first: lengths, JSON, dtypes, offsets that tile the data region
    /// exactly, byte counts that match shapes. Each tensor's bytes are then read directly into its
    /// storage (no intermediate copy).
    ///
    /// ```swift
    /// let (tensors, metadata) = try Safetensors.read(URL(fileURLWithPath: "model.safetensors"))
    /// // Only some tensors (e.g. to skip a U8 buffer SwiftSpeed cannot hold):
    /// let (weights, _) = try Safetensors.read(url, only: ["wte.weight", "wpe.weight"])
    /// ```
    /// - Parameters:
    ///   - only: names to read; nil (default) reads all. A name not in the file is an error.
    ///   - verify: when the file records CRC-32C checksums (``checksumKey``, as checkpoints do), check
    ///     every tensor read against its checksum. Files without checksums are read as they are.
    /// - Throws: ``SafetensorsError`` naming the file, the tensor and the problem (`.checksumMismatch`
    ///   for data that is not what was written); nothing is returned when it throws.
    public static func read(_ url: URL, only names: Set<String>? = nil, verify: Bool = true)
        throws -> (tensors: [String: Tensor], metadata: [String: String])
    {
        let file = try ReadOnlyFile(path: url.path)
        let header = try file.readHeader()
        var wanted = header.entries
        if let names {
            wanted = header.entries.filter { names.contains($0.name) }
            if wanted.count != names.count {
                let missing = names.subtracting(wanted.map(\.name)).sorted()
                throw SafetensorsError(path: file.path, tensor: missing[0], problem: .invalidName(
                    "not in the file (requested but missing: \(missing.joined(separator: ", ")))"))
            }
        }
        for entry in wanted where entry.dtype.dtype == nil {
            throw SafetensorsError(path: file.path, tensor: entry.name,
                                   problem: .unsupportedDType(entry.dtype.rawValue))
        }

        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(wanted.count)
        for entry in wanted {
            let t = Tensor(empty: entry.shape, dtype: entry.dtype.dtype!, device: .cpu)
            try file.read(into: t.rawPointer, count: t.byteCount,
                          at: header.dataStart + entry.dataOffsets.lowerBound, tensor: entry.name)
            if verify, let recorded = header.checksums?[entry.name] {
                let computed = CRC32C.parallelChecksum(UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount))
                guard computed == recorded else {
                    throw SafetensorsError(path: file.path, tensor: entry.name,
                                           problem: .checksumMismatch(recorded: recorded, computed: computed))
                }
            }
            tensors[entry.name] = t
        }
        return (tensors, header.metadata)
    }
}

/// An open file read with `pread` (and mapped by ``MappedSafetensors``); closed when the last reference goes.
final class ReadOnlyFile {
    let path: String
    let fd: Int32
    let size: Int

    init(path: String) throws {
        self.path = path
        do { (fd, size) = try RegularFile.open(path) } catch {
            switch error {
            case .missing: throw SafetensorsError(path: path, problem: .io(RegularFile.reason("open", ENOENT)))
            case .notRegular(let kind): throw SafetensorsError(path: path, problem: .notARegularFile(kind: kind))
            case .os(let message): throw SafetensorsError(path: path, problem: .io(message))
            }
        }
    }

    deinit { _ = close(fd) }

    /// The file's size now (fstat), which a writer may have changed since it was opened.
    func currentSize() throws -> Int {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SafetensorsError(path: path, problem: .io(Self.reason("stat", errno)))
        }
        return Int(info.st_size)
    }

    /// Reads the length field and the JSON header and validates them against the file size.
    func readHeader() throws -> SafetensorsHeader {
        guard size >= 8 else { throw SafetensorsError(path: path, problem: .fileTooShort(fileSize: size)) }
        var field = [UInt8](repeating: 0, count: 8)
        try field.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: 8, at: 0, tensor: nil) }
        let length = field.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(size - 8) else {
            throw SafetensorsError(path: path, problem: .headerLengthBeyondFile(headerLength: length, fileSize: size))
        }
        guard length <= UInt64(SafetensorsHeader.maxHeaderLength) else {
            throw SafetensorsError(path: path, problem: .headerTooLarge(headerLength: length))
        }
        var json = [UInt8](repeating: 0, count: Int(length))
        try json.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress { try read(into: base, count: raw.count, at: 8, tensor: nil) }
        }
        return try SafetensorsHeader.parse(json, dataLength: size - 8 - Int(length), path: path)
    }

    /// Reads exactly `count` bytes at `offset` (retrying partial reads and EINTR).
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int, tensor: String?) throws {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SafetensorsError(path: path, tensor: tensor, problem: .io(Self.reason("read", errno)))
            }
            if n == 0 {
                throw SafetensorsError(path: path, tensor: tensor, problem: .io(
                    "file ended after \(offset + done) of the \(offset + count) bytes its header promised "
                    + "(was it truncated while being read?)"))
            }
            done += n
        }
    }

    private static func reason(_ operation: String, _ code: Int32) -> String { RegularFile.reason(operation, code) }
}
