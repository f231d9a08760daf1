// Append-only files for the monitors: open/create, write-all, fsync, and the error their set-up throws.
// Invariant: an AppendFile's descriptor is opened O_APPEND, so every write lands at the end even if
// another process appends to the same file; the owner closes it exactly once.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SpeedIO

/// A monitor could not be set up (its directory or file could not be created).
///
/// ```swift
/// do { _ = try CSVMonitor(outputPath: "/proc/nope", jobName: "run") }
/// catch let error as MonitorError { print(error) }   // /proc/nope/run: could not create the directory: …
/// ```
public struct MonitorError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// An open file descriptor that only appends.
struct AppendFile: Sendable {
    let fd: Int32
    let path: String

    /// Opens `path` for appending, creating it if needed; `exclusive` fails if it already exists.
    static func open(_ path: String, exclusive: Bool = false) throws -> AppendFile {
        let (file, code) = tryOpen(path, exclusive: exclusive)
        guard let file else { throw MonitorError(path: path, message: reason("open", code)) }
        return file
    }

    /// Like ``open(_:exclusive:)``, but returns the `errno` on failure instead of throwing.
    static func tryOpen(_ path: String, exclusive: Bool) -> (file: AppendFile?, code: Int32) {
        var flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
        if exclusive { flags |= O_EXCL }
        let fd = systemOpen(path, flags)
        return fd >= 0 ? (AppendFile(fd: fd, path: path), 0) : (nil, errno)
    }

    /// Creates `directory` and its parents.
    static func makeDirectory(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MonitorError(path: directory,
                               message: "could not create the directory: \(fileErrorText(error))")
        }
    }

    /// Whether the file has no bytes yet.
    var isEmpty: Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_size == 0
    }

    /// Appends all of `bytes`; returns a failure message instead of throwing (monitors are best-effort).
    func append(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return AppendFile.reason("write", errno)
                }
                if n == 0 { return "could not write: the OS accepted 0 bytes" }
                done += n
            }
            return nil
        }
    }

    /// `fsync`; returns a failure message instead of throwing.
    func sync() -> String? {
        fsync(fd) == 0 ? nil : AppendFile.reason("fsync", errno)
    }

    func close() { _ = systemClose(fd) }

    static func reason(_ operation: String, _ code: Int32) -> String {
        "could not \(operation): \(String(cString: strerror(code))) (errno \(code))"
    }
}

// System calls under names the monitors' own `write`/`open`/`close` members cannot shadow.

private func systemOpen(_ path: String, _ flags: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.open(path, flags, 0o666)
    #elseif canImport(Musl)
    return Musl.open(path, flags, 0o666)
    #else
    return Darwin.open(path, flags, 0o666)
    #endif
}


private func systemClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #elseif canImport(Musl)
    return Musl.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}
