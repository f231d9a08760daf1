// Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over the target.
// Invariant: the target path only ever holds the complete old file or the complete new one, and the temp
// file is unlinked on every error path (only a crash mid-write can leave a `.<name>.tmp-*` file behind).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A failed system call while writing or reading a file, with the path and the OS's reason.
///
/// ```swift
/// do { try AtomicFile.write([1, 2, 3] as [UInt8], to: URL(fileURLWithPath: "/no/such/dir/x")) }
/// catch let error as AtomicFileError { print(error) }
/// // /no/such/dir/x: could not create a temporary file in /no/such/dir: No such file or directory (errno 2)
/// ```
public struct AtomicFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file the caller asked for (not the temp file).
    public var path: String
    /// What was being attempted, e.g. "write", "fsync", "create a temporary file in /ckpt".
    public var operation: String
    /// The `errno` value (0 when the failure was not a system call, e.g. a short write).
    public var code: Int32
    /// Extra context, e.g. the directory or temp path involved.
    public var detail: String

    public init(path: String, operation: String, code: Int32, detail: String = "") {
        self.path = path
        self.operation = operation
        self.code = code
        self.detail = detail
    }

    /// The problem without the path: "could not write: No space left on device (errno 28)".
    public var message: String {
        let reason = code == 0 ? "" : ": \(String(cString: strerror(code))) (errno \(code))"
        let extra = detail.isEmpty ? "" : " (\(detail))"
        return "could not \(operation)\(extra)\(reason)"
    }

    public var description: String { "\(path): \(message)" }
}

/// Writes files atomically: readers (and a crash) see the old file or the new one, never a mix.
///
/// The bytes go to `.<name>.tmp-<pid>-<random>` in the target's directory (same file system, so
/// `rename(2)` is atomic), are `fsync`ed, renamed over the target, and the directory is `fsync`ed
/// so the rename itself survives a power loss. Checkpoints and safetensors files use it.
///
/// ```swift
/// let url = URL(fileURLWithPath: "ckpt/latest")
/// try AtomicFile.write(Array("global_step100".utf8), to: url)
///
/// // Streaming, for files too large to build in memory first:
/// try AtomicFile.write(to: url) { out in
///     try out.write(header)
///     try out.write(UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount))
/// }
/// ```
public enum AtomicFile {
    /// The open temporary file handed to ``AtomicFile/write(to:_:)``'s body.
    public struct Writer: ~Copyable {
        fileprivate let fd: Int32
        fileprivate let target: String
        /// Bytes written so far.
        public private(set) var bytesWritten: Int = 0

        fileprivate init(fd: Int32, target: String) {
            self.fd = fd
            self.target = target
        }

        /// Appends `bytes` (all of them: partial writes and `EINTR` are retried).
        public mutating func write(_ bytes: some ContiguousBytes) throws {
            let (fd, target) = (self.fd, self.target)
            bytesWritten += try bytes.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = systemWrite(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw AtomicFileError(path: target, operation: "write", code: errno)
                    }
                    if n == 0 {
                        throw AtomicFileError(path: target, operation: "write", code: 0,
                                              detail: "the OS accepted 0 of \(raw.count - done) bytes")
                    }
                    done += n
                }
                return done
            }
        }
    }

    /// Replaces the file at `url` with `bytes`, atomically.
    ///
    /// ```swift
    /// try AtomicFile.write(Data("global_step100".utf8), to: dir.appendingPathComponent("latest"))
    /// ```
    public static func write(_ bytes: some ContiguousBytes, to url: URL) throws {
        try write(to: url) { out in try out.write(bytes) }
    }

    /// Replaces the file at `url` with whatever `body` writes, atomically. If `body` throws, the
    /// temporary file is removed, the target is left untouched and the error is rethrown.
    ///
    /// ```swift
    /// try AtomicFile.write(to: url) { out in
    ///     try out.write([0x01, 0x02] as [UInt8])
    /// }
    /// ```
    public static func write(to url: URL, _ body: (inout Writer) throws -> Void) throws {
        let target = url.path
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        guard !name.isEmpty, name != "/", name != ".", name != ".." else {
            throw AtomicFileError(path: target, operation: "write", code: EISDIR,
                                  detail: "the path names a directory, not a file")
        }

        // Create the temp file beside the target with O_EXCL so two writers never share one.
        var tempPath = ""
        var fd: Int32 = -1
        for _ in 0..<16 {
            let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            tempPath = directory + "/.\(name).tmp-\(getpid())-\(suffix)"
            fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw AtomicFileError(path: target, operation: "create a temporary file in \(directory)", code: errno)
        }

        var closed = false
        do {
            var writer = Writer(fd: fd, target: target)
            try body(&writer)
            guard fsync(fd) == 0 else {
                throw AtomicFileError(path: target, operation: "fsync", code: errno, detail: tempPath)
            }
            closed = true
            guard close(fd) == 0 else {
                throw AtomicFileError(path: target, operation: "close", code: errno, detail: tempPath)
            }
            guard rename(tempPath, target) == 0 else {
                throw AtomicFileError(path: target, operation: "rename \(tempPath) onto the target", code: errno)
            }
        } catch {
            if !closed { _ = close(fd) }
            _ = unlink(tempPath)
            throw error
        }
        syncDirectory(directory)
    }

    /// Best-effort `fsync` of a directory so a completed rename is durable. Some file systems refuse
    /// to sync directories (EINVAL); the rename has already happened, so failures are ignored.
    private static func syncDirectory(_ directory: String) {
        let dfd = open(directory, O_RDONLY | O_CLOEXEC)
        guard dfd >= 0 else { return }
        _ = fsync(dfd)
        _ = close(dfd)
    }
}

/// `write(2)`, named apart from the `write` methods that would shadow it (shared with the monitors).
@inline(__always)
package func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
