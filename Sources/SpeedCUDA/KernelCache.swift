// The on-disk kernel cache: NVRTC output keyed by SHA-256 of (source, arch, options, format, NVRTC version).
// Invariant: an entry's path only ever holds a complete image (written to a temp file, then renamed), so concurrent
// processes compiling the same kernel race harmlessly; an empty or unreadable entry is a miss, never an error.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A kernel image with where it came from.
public struct CachedKernel: Sendable {
    public var image: KernelImage
    /// The cache key (64 hex digits).
    public var key: String
    /// The entry's file.
    public var path: String
    /// True when the image was read from the cache rather than compiled.
    public var hit: Bool
}

/// Compiles kernels through NVRTC once per (source, arch, options, NVRTC version) and keeps the images on disk,
/// at `$SWIFTSPEED_KERNEL_CACHE` or `~/.cache/swiftspeed/kernels`.
///
/// ```swift
/// let cache = KernelCache(compiler: try NVRTCCompiler())
/// let k = try cache.kernel(source, name: "adam.cu", arch: "sm_90")
/// k.hit        // false the first time, true from then on (in this process and the next)
/// ```
public struct KernelCache: Sendable {
    public let compiler: NVRTCCompiler
    /// The directory holding `<key>.cubin` / `<key>.ptx` files (created on the first write).
    public let directory: String

    /// The environment variable that overrides the cache directory.
    public static let directoryVariable = "SWIFTSPEED_KERNEL_CACHE"

    /// `$SWIFTSPEED_KERNEL_CACHE` when set, else `$HOME/.cache/swiftspeed/kernels`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment[directoryVariable], !dir.isEmpty { return dir }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/swiftspeed/kernels"
    }

    public init(compiler: NVRTCCompiler, directory: String = KernelCache.defaultDirectory()) {
        self.compiler = compiler
        self.directory = directory
    }

    /// The cache key of a compilation: SHA-256 over every input that changes the image, NUL-separated.
    public func key(_ source: String, arch: String, options: [String] = [], format: KernelImage.Format = .cubin) -> String {
        let (major, minor) = compiler.version
        let fields = ["swiftspeed-kernel-v1", "nvrtc \(major).\(minor)", format.rawValue, arch] + options + ["", source]
        return SHA256.hex(fields.joined(separator: "\u{0}").utf8)
    }

    /// The image for `source`: from the cache when present, else compiled by NVRTC and stored.
    /// Compilation errors are thrown as ``CUDAError/compilation(name:arch:log:)`` and nothing is stored.
    public func kernel(_ source: String, name: String = "kernel.cu", arch: String, options: [String] = [],
                       format: KernelImage.Format = .cubin) throws(CUDAError) -> CachedKernel {
        _ = try NVRTCCompiler.architectureOption(arch, format: format)
        let key = key(source, arch: arch, options: options, format: format)
        let path = directory + "/" + key + "." + format.rawValue
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty {
            return CachedKernel(image: KernelImage(format: format, bytes: [UInt8](data)), key: key, path: path, hit: true)
        }
        let image = try compiler.compile(source, name: name, arch: arch, options: options, format: format)
        try Self.writeAtomically(image.bytes, to: path, directory: directory)
        return CachedKernel(image: image, key: key, path: path, hit: false)
    }

    /// The number of entries and their total size in bytes (0, 0 when the directory does not exist).
    public func usage() -> (entries: Int, bytes: Int) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var entries = 0, bytes = 0
        for name in names where name.hasSuffix(".cubin") || name.hasSuffix(".ptx") {
            entries += 1
            bytes += ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name))?[.size] as? Int) ?? 0
        }
        return (entries, bytes)
    }

    /// Deletes every entry (the directory itself stays).
    public func clear() throws(CUDAError) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasSuffix(".cubin") || name.hasSuffix(".ptx") {
            guard unlink(directory + "/" + name) == 0 || errno == ENOENT else {
                throw .cache(path: directory + "/" + name, reason: "could not delete: " + String(cString: strerror(errno)))
            }
        }
    }

    /// Writes `bytes` to `.<name>.tmp-<pid>-<random>` beside `path`, then renames it over `path`.
    static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String) throws(CUDAError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .cache(path: directory, reason: "could not create the directory: \(error.localizedDescription)")
        }
        let name = path.split(separator: "/").last.map(String.init) ?? "kernel"
        let temp = "\(directory)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw .cache(path: temp, reason: "could not create: " + String(cString: strerror(errno))) }
        var written = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        let reason = ok ? "" : String(cString: strerror(errno))
        close(fd)
        guard ok, rename(temp, path) == 0 else {
            let why = ok ? "could not rename into place: " + String(cString: strerror(errno)) : "could not write: " + reason
            unlink(temp)
            throw .cache(path: path, reason: why)
        }
    }
}
