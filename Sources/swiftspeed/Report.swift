// `swiftspeed report` (DeepSpeed's ds_report): what is installed and usable here, one ✓/✗ line each, with the reason.
// Invariant: a missing component is a ✗ line, never a failure: the command exits 0 whatever is absent, and --json
// prints exactly one JSON object with the same facts.

import ArgumentParser
import COpenBLAS
import CSpeedMPI
import Foundation
import SwiftSpeed
#if canImport(Glibc)
import Glibc
#endif

/// `swiftspeed report [--json]`
///
/// ```
/// $ swiftspeed report
/// ✓ swiftspeed    unreleased · commit ead1e05b2c41 (checkout /work/main)
/// ✓ BLAS          OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64 · 1 thread
/// ✗ CUDA driver   libcuda.so.1 not found: no NVIDIA driver on this machine; SwiftSpeed runs on the CPU (Device.cpu) […]
/// ```
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what SwiftSpeed can use on this machine: BLAS, MPI, the CUDA driver, GPUs, NVRTC, cuBLASLt, NCCL.",
        discussion: """
            Like DeepSpeed's ds_report. Each line is ✓ (usable) or ✗ with the reason and the fix. CUDA libraries are \
            searched in $SWIFTSPEED_CUDA_LIB_PATH (colon-separated directories) first, then the system library path \
            and /usr/local/cuda. Kernels compiled by NVRTC are cached in $SWIFTSPEED_KERNEL_CACHE \
            (default ~/.cache/swiftspeed/kernels). Querying free GPU memory creates a CUDA context on each GPU.
            """)

    @Flag(help: "Print one JSON object instead of lines.") var json = false

    func run() throws {
        let items = ReportProbe.collect()
        if json {
            var object: [String: Any] = [:]
            for item in items { object[item.key] = item.jsonValue }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("SwiftSpeed report")
            for item in items {
                for line in item.lines { print(line) }
            }
        }
    }
}

/// One component of the report.
struct ReportItem {
    var key: String
    var title: String
    var ok: Bool
    /// What was found (ok) or why it is missing and the fix (not ok).
    var detail: String
    var fields: [String: Any] = [:]
    /// For "gpus": one line and one JSON object per device.
    var devices: [(line: String, fields: [String: Any])] = []

    var lines: [String] {
        let head = "\(ok ? "✓" : "✗") \(title.padding(toLength: 14, withPad: " ", startingAt: 0))"
        if devices.isEmpty { return [head + detail] }
        return devices.map { "✓ " + $0.line }
    }

    var jsonValue: [String: Any] {
        var out = fields
        out["available"] = ok
        out[ok ? "detail" : "reason"] = detail
        if key == "gpus" { out["devices"] = devices.map(\.fields) }
        return out
    }
}

enum ReportProbe {
    static func collect() -> [ReportItem] {
        let libraries = CUDALibraries.shared
        var items = [swiftSpeed(), system(), blas(), mpi()]
        items += cuda(libraries)
        items.append(nvrtc(libraries))
        items.append(cublasLt(libraries))
        items.append(nccl(libraries))
        items.append(kernelCache())
        return items
    }

    // MARK: Host

    static func swiftSpeed() -> ReportItem {
        guard let (commit, checkout) = gitCommit() else {
            return ReportItem(key: "swiftspeed", title: "swiftspeed", ok: true,
                              detail: "unreleased · commit unknown (the binary is not inside a git checkout)",
                              fields: ["version": "unreleased"])
        }
        return ReportItem(key: "swiftspeed", title: "swiftspeed", ok: true,
                          detail: "unreleased · commit \(commit.prefix(12)) (checkout \(checkout))",
                          fields: ["version": "unreleased", "commit": commit, "checkout": checkout])
    }

    /// The commit checked out in the git work tree that contains this executable (HEAD, read without running git).
    static func gitCommit() -> (commit: String, checkout: String)? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            let git = dir.appendingPathComponent(".git")
            if let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8) {
                let ref = head.trimmingCharacters(in: .whitespacesAndNewlines)
                guard ref.hasPrefix("ref: ") else { return ref.isEmpty ? nil : (ref, dir.path) }
                let name = String(ref.dropFirst(5))
                if let hash = try? String(contentsOf: git.appendingPathComponent(name), encoding: .utf8) {
                    return (hash.trimmingCharacters(in: .whitespacesAndNewlines), dir.path)
                }
                let packed = (try? String(contentsOf: git.appendingPathComponent("packed-refs"), encoding: .utf8)) ?? ""
                for line in packed.split(separator: "\n") where line.hasSuffix(" " + name) {
                    return (String(line.prefix { $0 != " " }), dir.path)
                }
                return nil
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    static func system() -> ReportItem {
        #if compiler(>=6.4)
        let swift = "6.4 or newer"
        #elseif compiler(>=6.3)
        let swift = "6.3"
        #elseif compiler(>=6.2)
        let swift = "6.2"
        #elseif compiler(>=6.1)
        let swift = "6.1"
        #else
        let swift = "6.0"
        #endif
        var os = ProcessInfo.processInfo.operatingSystemVersionString
        if let release = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8),
           let line = release.split(separator: "\n").first(where: { $0.hasPrefix("PRETTY_NAME=") }) {
            os = line.dropFirst(12).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        var kernel = ""
        var names = utsname()
        if uname(&names) == 0 {
            func text<T>(_ field: T) -> String {
                withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            }
            kernel = "\(text(names.sysname)) \(text(names.release)) \(text(names.machine))"
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return ReportItem(key: "system", title: "system", ok: true,
                          detail: "built with Swift \(swift) · \(os) · \(kernel) · \(cores) CPU core\(cores == 1 ? "" : "s")",
                          fields: ["swift": swift, "os": os, "kernel": kernel, "cpu_cores": cores])
    }

    static func blas() -> ReportItem {
        let config = openblas_get_config().map { String(cString: $0) }?.trimmingCharacters(in: .whitespaces) ?? "OpenBLAS"
        let threads = Int(openblas_get_num_threads())
        return ReportItem(key: "blas", title: "BLAS", ok: true,
                          detail: "\(config) · \(threads) thread\(threads == 1 ? "" : "s") (SwiftSpeed splits GEMMs over its own threads)",
                          fields: ["library": "OpenBLAS", "config": config, "threads": threads])
    }

    static func mpi() -> ReportItem {
        var buffer = [CChar](repeating: 0, count: 512)
        let rc = ss_mpi_library_version(&buffer, Int32(buffer.count))
        let version = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
                .map { $0 + "/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard rc == SS_MPI_OK, !version.isEmpty else {
            return ReportItem(key: "mpi", title: "MPI", ok: false,
                              detail: "MPI_Get_library_version failed (code \(rc)): reinstall OpenMPI (apt install libopenmpi-dev openmpi-bin)")
        }
        let launcher = mpirun.map { "mpirun \($0)" } ?? "mpirun not found: install openmpi-bin to run on several processes"
        var fields: [String: Any] = ["library": version]
        fields["mpirun"] = mpirun
        return ReportItem(key: "mpi", title: "MPI", ok: true, detail: "\(version) · \(launcher)", fields: fields)
    }

    // MARK: CUDA

    /// The driver line and the GPU lines.
    static func cuda(_ libraries: CUDALibraries) -> [ReportItem] {
        let driver: CUDADriver
        switch libraries.driver {
        case .failure(let error):
            return [ReportItem(key: "cuda_driver", title: "CUDA driver", ok: false, detail: error.description),
                    ReportItem(key: "gpus", title: "GPUs", ok: false, detail: "none: no CUDA driver")]
        case .success(let d): driver = d
        }
        let version = (try? driver.version).map { "\($0.major).\($0.minor)" } ?? "unknown"
        let driverItem = ReportItem(key: "cuda_driver", title: "CUDA driver", ok: true,
                                    detail: "CUDA \(version) · \(driver.path)",
                                    fields: ["cuda_version": version, "path": driver.path])
        do {
            let gpus = try driver.devices()
            guard !gpus.isEmpty else {
                return [driverItem, ReportItem(key: "gpus", title: "GPUs", ok: false,
                                               detail: "none: the driver sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)")]
            }
            var item = ReportItem(key: "gpus", title: "GPUs", ok: true, detail: "\(gpus.count) GPU\(gpus.count == 1 ? "" : "s")")
            for gpu in gpus {
                var free: Int?
                var freeNote = ""
                do { free = try CUDAContext(driver: driver, ordinal: gpu.ordinal).memoryInfo().free } catch {
                    freeNote = " (free memory unknown: \(error))"
                }
                let memory = gib(gpu.totalMemory) + (free.map { ", \(gib($0)) free" } ?? "")
                let line = "\("GPU \(gpu.ordinal)".padding(toLength: 14, withPad: " ", startingAt: 0))"
                    + "\(gpu.name) · \(memory) · compute \(gpu.computeCapability) (\(gpu.computeCapability.arch)) · "
                    + "\(gpu.multiprocessorCount) SMs\(freeNote)"
                var fields: [String: Any] = ["ordinal": gpu.ordinal, "name": gpu.name, "total_memory": gpu.totalMemory,
                                             "compute_capability": gpu.computeCapability.description,
                                             "arch": gpu.computeCapability.arch, "multiprocessors": gpu.multiprocessorCount]
                fields["free_memory"] = free
                item.devices.append((line, fields))
            }
            return [driverItem, item]
        } catch {
            return [driverItem, ReportItem(key: "gpus", title: "GPUs", ok: false, detail: "none: \(error)")]
        }
    }

    static func nvrtc(_ libraries: CUDALibraries) -> ReportItem {
        switch libraries.nvrtc {
        case .failure(let error):
            return ReportItem(key: "nvrtc", title: "NVRTC", ok: false, detail: error.description)
        case .success(let nvrtc):
            let (major, minor) = nvrtc.version
            let archs = nvrtc.supportedArchitectures
            let archText = archs.isEmpty ? "" : " · sm_\(archs.first!)…sm_\(archs.last!)"
            return ReportItem(key: "nvrtc", title: "NVRTC", ok: true, detail: "\(major).\(minor)\(archText) · \(nvrtc.path)",
                              fields: ["version": "\(major).\(minor)", "path": nvrtc.path, "architectures": archs])
        }
    }

    static func cublasLt(_ libraries: CUDALibraries) -> ReportItem {
        switch libraries.cublasLt {
        case .failure(let error):
            return ReportItem(key: "cublaslt", title: "cuBLASLt", ok: false, detail: error.description)
        case .success(let lt):
            return ReportItem(key: "cublaslt", title: "cuBLASLt", ok: true, detail: "\(lt.versionString) · \(lt.path)",
                              fields: ["version": lt.versionString, "path": lt.path])
        }
    }

    static func nccl(_ libraries: CUDALibraries) -> ReportItem {
        switch libraries.nccl {
        case .failure(let error):
            return ReportItem(key: "nccl", title: "NCCL", ok: false, detail: error.description)
        case .success(let nccl):
            return ReportItem(key: "nccl", title: "NCCL", ok: true, detail: "\(nccl.versionString) · \(nccl.path)",
                              fields: ["version": nccl.versionString, "path": nccl.path])
        }
    }

    static func kernelCache() -> ReportItem {
        let environment = ProcessInfo.processInfo.environment
        let directory = KernelCache.defaultDirectory(environment: environment)
        let source = environment[KernelCache.directoryVariable].map { $0.isEmpty ? "default" : "$\(KernelCache.directoryVariable)" } ?? "default"
        // Writable if the directory, or the nearest ancestor that exists, is writable.
        var probe = directory
        while !FileManager.default.fileExists(atPath: probe), probe != "/", !probe.isEmpty {
            probe = (probe as NSString).deletingLastPathComponent
        }
        let writable = access(probe, W_OK) == 0
        var entries = 0, bytes = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasSuffix(".cubin") || name.hasSuffix(".ptx") {
            entries += 1
            bytes += ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name))?[.size] as? Int) ?? 0
        }
        let detail = writable
            ? "\(directory) (\(source)) · \(entries) kernel\(entries == 1 ? "" : "s"), \(bytes / 1024) KiB"
            : "\(directory) (\(source)) is not writable: set \(KernelCache.directoryVariable) to a writable directory"
        return ReportItem(key: "kernel_cache", title: "kernel cache", ok: writable, detail: detail,
                          fields: ["path": directory, "source": source, "entries": entries, "bytes": bytes])
    }

    static func gib(_ bytes: Int) -> String {
        String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
    }
}
