// Opens the CUDA driver, NVRTC, cuBLASLt and NCCL with dlopen, each on its own, once per process (`shared`).
// Invariant: no global mutable state: `shared` is a lazily initialised `let` (Swift runs its initialiser exactly once,
// thread-safely); loading again with another search path makes a separate value and leaves `shared` alone.

import CSpeedCUDA
import Foundation

/// The CUDA libraries found on this machine, each a success (its entry points) or the reason it is missing.
///
/// ```swift
/// let libs = CUDALibraries.shared                    // searches $SWIFTSPEED_CUDA_LIB_PATH, then the system
/// if case .success(let nvrtc) = libs.nvrtc { print(nvrtc.version) }
/// let mine = CUDALibraries(searchPath: ["/opt/nvrtc/lib"])   // a separate load, for tests and tools
/// ```
public struct CUDALibraries: Sendable {
    /// Directories tried before the system search, in order.
    public let searchPath: [String]
    public let driver: Result<CUDADriver, CUDAError>
    public let nvrtc: Result<NVRTCLibrary, CUDAError>
    public let cublasLt: Result<CublasLtLibrary, CUDAError>
    public let nccl: Result<NCCLLibrary, CUDAError>

    /// The environment variable holding extra directories (colon-separated), tried before the system search.
    public static let searchPathVariable = "SWIFTSPEED_CUDA_LIB_PATH"

    /// The process-wide load, made on first use from `$SWIFTSPEED_CUDA_LIB_PATH` and the system search.
    public static let shared = CUDALibraries(environment: ProcessInfo.processInfo.environment)

    /// Loads every library, trying `searchPath`'s directories first and then (unless `useDefaultSearch` is false)
    /// the dynamic loader's search and /usr/local/cuda. A library that is absent is a `.failure`, never a crash.
    public init(searchPath: [String] = [], useDefaultSearch: Bool = true) {
        self.searchPath = searchPath
        let joined = searchPath.joined(separator: ":")
        let useDefault: Int32 = useDefaultSearch ? 1 : 0
        driver = Self.load(.driver, SSCudaDriver()) { table, path, pathLength, error, errorLength in
            ss_load_driver(&table, joined, useDefault, path, pathLength, error, errorLength)
        }.map { CUDADriver(path: $0.path, api: $0.table) }
        nvrtc = Self.load(.nvrtc, SSNVRTC()) { table, path, pathLength, error, errorLength in
            ss_load_nvrtc(&table, joined, useDefault, path, pathLength, error, errorLength)
        }.map { NVRTCLibrary(path: $0.path, api: $0.table) }
        cublasLt = Self.load(.cublasLt, SSCublasLt()) { table, path, pathLength, error, errorLength in
            ss_load_cublaslt(&table, joined, useDefault, path, pathLength, error, errorLength)
        }.map { CublasLtLibrary(path: $0.path, api: $0.table) }
        nccl = Self.load(.nccl, SSNCCL()) { table, path, pathLength, error, errorLength in
            ss_load_nccl(&table, joined, useDefault, path, pathLength, error, errorLength)
        }.map { NCCLLibrary(path: $0.path, api: $0.table) }
    }

    /// Loads with the directories of `environment["SWIFTSPEED_CUDA_LIB_PATH"]` first.
    public init(environment: [String: String]) {
        self.init(searchPath: Self.directories(environment[Self.searchPathVariable]))
    }

    /// The non-empty entries of a colon-separated list.
    public static func directories(_ list: String?) -> [String] {
        (list ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
    }

    private static func load<Table>(
        _ library: CUDALibrary, _ empty: Table,
        _ call: (inout Table, UnsafeMutablePointer<CChar>, Int32, UnsafeMutablePointer<CChar>, Int32) -> Int32
    ) -> Result<(path: String, table: Table), CUDAError> {
        var table = empty
        let length = 4096
        var path = [CChar](repeating: 0, count: length), error = [CChar](repeating: 0, count: length)
        let status = path.withUnsafeMutableBufferPointer { p in
            error.withUnsafeMutableBufferPointer { e in call(&table, p.baseAddress!, Int32(length), e.baseAddress!, Int32(length)) }
        }
        let pathText = String(decoding: path.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let errorText = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch Int(status) {
        case SS_LOAD_OK: return .success((pathText, table))
        case SS_LOAD_MISSING_SYMBOL: return .failure(.missingSymbol(library, detail: errorText))
        default: return .failure(.libraryNotFound(library, detail: errorText))
        }
    }
}

/// NVRTC's entry points and the file they came from.
public struct NVRTCLibrary: @unchecked Sendable {
    /// The file that was opened, e.g. `/usr/local/cuda/lib64/libnvrtc.so.13`.
    public let path: String
    /// The raw entry points (C function pointers: immutable, callable from any thread).
    package let api: SSNVRTC

    /// NVRTC's version, e.g. `(13, 5)`.
    public var version: (major: Int, minor: Int) {
        var major: Int32 = 0, minor: Int32 = 0
        _ = api.nvrtcVersion!(&major, &minor)
        return (Int(major), Int(minor))
    }

    /// The SM architectures this NVRTC can compile for (e.g. `[75, 80, 86, 89, 90, 100, 120]`), empty when unknown.
    public var supportedArchitectures: [Int] {
        guard let countFn = api.nvrtcGetNumSupportedArchs, let listFn = api.nvrtcGetSupportedArchs else { return [] }
        var count: Int32 = 0
        guard countFn(&count) == SS_NVRTC_SUCCESS, count > 0 else { return [] }
        var archs = [Int32](repeating: 0, count: Int(count))
        guard listFn(&archs) == SS_NVRTC_SUCCESS else { return [] }
        return archs.map(Int.init)
    }

    func errorString(_ code: SSNVRTCresult) -> String {
        api.nvrtcGetErrorString!(code).map { String(cString: $0) } ?? "NVRTC error \(code)"
    }
}

/// cuBLASLt's entry points and the file they came from. Creating a handle needs a GPU; the version does not.
public struct CublasLtLibrary: @unchecked Sendable {
    public let path: String
    package let api: SSCublasLt

    /// cuBLASLt's version as an integer, e.g. `131000` for 13.10.0 (major·10000 + minor·100 + patch).
    public var version: Int { Int(api.cublasLtGetVersion!()) }

    /// `version` as `major.minor.patch`.
    public var versionString: String { "\(version / 10000).\(version / 100 % 100).\(version % 100)" }

    package func statusString(_ status: SSCublasStatus) -> String {
        api.cublasLtGetStatusString.flatMap { $0(status) }.map { String(cString: $0) } ?? "cuBLAS status \(status)"
    }
}

/// NCCL's entry points and the file they came from.
public struct NCCLLibrary: @unchecked Sendable {
    public let path: String
    package let api: SSNCCL

    /// NCCL's version code, e.g. `23203` for 2.32.3.
    public var version: Int {
        var code: Int32 = 0
        _ = api.ncclGetVersion!(&code)
        return Int(code)
    }

    /// `version` as `major.minor.patch` (NCCL's encoding: X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z after).
    public var versionString: String {
        let v = version
        return v >= 10000 ? "\(v / 10000).\(v / 100 % 100).\(v % 100)" : "\(v / 1000).\(v / 100 % 10).\(v % 100)"
    }

    package func errorString(_ code: SSNCCLresult) -> String {
        api.ncclGetErrorString!(code).map { String(cString: $0) } ?? "NCCL error \(code)"
    }
}
