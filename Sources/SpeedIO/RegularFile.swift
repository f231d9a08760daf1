// Opening files that must be regular files (checkpoint files, `latest`) without ever blocking on a FIFO or device.
// Invariant: a descriptor is handed out only after fstat says S_IFREG; the open uses O_NONBLOCK, so a FIFO
// with no writer cannot hang the open (reads of a regular file are unaffected by the flag).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only access to a path that must be a regular file.
package enum RegularFile {
    /// Why a path could not be opened as a regular file.
    package enum Failure: Error, Equatable {
        /// Nothing at the path (ENOENT, or a path component that is missing).
        case missing
        /// Something other than a regular file; `kind` is "a FIFO (named pipe)", "a directory", ….
        case notRegular(kind: String)
        /// Another OS error: "could not open: Permission denied (errno 13)".
        case os(String)
    }

    /// Opens `path` read-only (O_NONBLOCK, then fstat) and returns the descriptor and the file size.
    /// The caller closes the descriptor.
    package static func open(_ path: String) throws(Failure) -> (fd: Int32, size: Int) {
        let fd = systemOpen(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw code == ENOENT || code == ENOTDIR ? .missing : .os(reason("open", code))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            _ = close(fd)
            throw .os(reason("stat", code))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            _ = close(fd)
            throw .notRegular(kind: kind(info.st_mode))
        }
        return (fd, Int(info.st_size))
    }

    /// The whole content of the regular file at `path`, or nil when nothing is there.
    /// - Throws: ``Failure`` for something other than a regular file, a file over `limit` bytes
    ///   (`.os("is N bytes, over the L-byte limit")`) or a failed read.
    package static func contents(_ path: String, limit: Int) throws(Failure) -> [UInt8]? {
        let fd: Int32, size: Int
        do { (fd, size) = try open(path) } catch .missing { return nil }
        defer { _ = close(fd) }
        guard size <= limit else { throw .os("is \(size) bytes, over the \(limit)-byte limit for this file") }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw .os(reason("read", errno))
            }
            if n == 0 { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }

    /// What a non-regular `st_mode` is, for error messages.
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFDIR: "a directory"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "a special file (mode \(String(mode, radix: 8)))"
        }
    }

    static func reason(_ operation: String, _ code: Int32) -> String {
        "could not \(operation): \(String(cString: strerror(code))) (errno \(code))"
    }
}

/// `open(2)` with two arguments (the variadic C function as the platform module exposes it).
@inline(__always)
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.open(path, flags)
    #elseif canImport(Musl)
    return Musl.open(path, flags)
    #else
    return Darwin.open(path, flags)
    #endif
}
