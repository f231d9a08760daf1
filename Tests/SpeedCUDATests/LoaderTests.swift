// The dlopen loader and CUDAError messages: a missing or wrong library is a clean, explained failure, never a crash.
// Invariant: these tests pass on any machine, GPU or not: they point the loader at directories they control.

import CSpeedCUDA
import Foundation
@testable import SpeedCUDA
import SpeedTestSupport
import Testing

@Suite struct LoaderTests {
    @Test func nothingFoundIsANamedFailureForEveryLibrary() throws {
        let libs = CUDALibraries(searchPath: ["/nonexistent/swiftspeed"], useDefaultSearch: false)
        guard case .failure(let driver) = libs.driver, case .libraryNotFound(.driver, let detail) = driver else {
            Issue.record("expected libraryNotFound for the driver, got \(libs.driver)")
            return
        }
        #expect(detail.contains("/nonexistent/swiftspeed"))
        #expect(driver.description.hasPrefix(
            "libcuda.so.1 not found: no NVIDIA driver on this machine; SwiftSpeed runs on the CPU (Device.cpu)"))
        for (result, name) in [(libs.nvrtc.map { _ in () }, "libnvrtc.so.13 / libnvrtc.so.12"),
                               (libs.cublasLt.map { _ in () }, "libcublasLt.so.13 / libcublasLt.so.12"),
                               (libs.nccl.map { _ in () }, "libnccl.so.2")] {
            guard case .failure(let error) = result else { Issue.record("\(name) loaded from nowhere"); continue }
            #expect(error.description.hasPrefix("\(name) not found: install"), "\(error)")
            #expect(error.description.contains("SWIFTSPEED_CUDA_LIB_PATH"))
        }
    }

    @Test func theSharedLoadNeverCrashesAndExplainsAMissingDriver() throws {
        switch CUDALibraries.shared.driver {
        case .failure(let error):
            switch error {
            case .libraryNotFound(.driver, _), .missingSymbol(.driver, _): break
            default: Issue.record("unexpected error kind: \(error)")
            }
            #expect(error.description.contains("libcuda.so.1"))
        case .success(let driver):
            // A driver is installed: enumerating must work or fail with a driver error, not crash.
            do { _ = try driver.deviceCount() } catch { #expect(error.description.contains("failed")) }
        }
    }

    /// glibc's libm: a real shared library without any CUDA entry point.
    static let libm = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
                       "/lib64/libm.so.6", "/usr/lib/aarch64-linux-gnu/libm.so.6"]
        .first(where: { FileManager.default.fileExists(atPath: $0) })

    @Test(.enabled(if: Requirements.run(if: libm != nil), "needs glibc's libm.so.6 (a glibc Linux)"))
    func aFileWithoutTheEntryPointsIsReportedByFileAndSymbol() throws {
        let libm = try #require(Self.libm, "no libm.so.6 in the usual glibc directories")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-fakecuda-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/libcuda.so.1", withDestinationPath: libm)
        let libs = CUDALibraries(searchPath: [dir.path], useDefaultSearch: false)
        guard case .failure(let error) = libs.driver, case .missingSymbol(.driver, let detail) = error else {
            Issue.record("expected missingSymbol, got \(libs.driver)")
            return
        }
        #expect(detail == "\(dir.path)/libcuda.so.1 opened but has no symbol cuInit")
        #expect(error.description.contains("update the NVIDIA driver"))
    }

    @Test func searchPathListsDropEmptyEntries() {
        #expect(CUDALibraries.directories("/a::/b:") == ["/a", "/b"])
        #expect(CUDALibraries.directories(nil) == [])
        #expect(CUDALibraries(environment: ["SWIFTSPEED_CUDA_LIB_PATH": "/x:/y"]).searchPath == ["/x", "/y"])
    }

    @Test func driverErrorsCarryTheCallTheCodeAndTheFix() {
        let noDevice = CUDAError.driver(call: "cuInit", code: Int32(SS_CUDA_ERROR_NO_DEVICE),
                                        name: "CUDA_ERROR_NO_DEVICE", message: "no CUDA-capable device is detected")
        #expect(noDevice.description.hasPrefix("cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"))
        #expect(noDevice.description.contains("CUDA_VISIBLE_DEVICES"))
        let stub = CUDAError.driver(call: "cuInit", code: Int32(SS_CUDA_ERROR_STUB_LIBRARY), name: "CUDA_ERROR_STUB_LIBRARY", message: "stub")
        #expect(stub.description.contains("link stub"))
        #expect(CUDAError.invalidDevice(ordinal: 3, count: 2).description == "cuda:3 does not exist: this machine has 2 GPUs (cuda:0…cuda:1)")
        #expect(CUDAError.invalidDevice(ordinal: 0, count: 0).description.contains("sees no GPU"))
    }

    @Test func headerLayoutsMatchTheVendorABI() {
        #expect(MemoryLayout<SSCublasLtMatmulHeuristicResult>.size == 96)
        #expect(MemoryLayout<SSNCCLUniqueId>.size == 128)
        #expect(MemoryLayout<SSCUdeviceptr>.size == 8)
        #expect(MemoryLayout<SSCudaDriver>.size == 41 * MemoryLayout<UnsafeRawPointer>.size)
    }

    @Test func computeCapabilityNamesItsArchitecture() {
        let h100 = ComputeCapability(major: 9, minor: 0)
        #expect(h100.arch == "sm_90")
        #expect(h100.description == "9.0")
        #expect(ComputeCapability(major: 8, minor: 6) < h100)
    }
}
