// Finds CUDA libraries for the tests that need them (a pip-downloaded NVRTC works on any x86 machine, GPU or not).
// Invariant: nothing here fails: a library that is absent makes its tests skip with a note saying how to get it.

import Foundation
import SpeedCUDA

enum TestLibraries {
    /// Where to look, in order: $SWIFTSPEED_TEST_CUDA_LIB_PATH, $SWIFTSPEED_CUDA_LIB_PATH, then every directory under
    /// $SWIFTSPEED_TEST_CUDA_PKGS (default /tmp/cudapkgs; up to 5 levels deep) that holds a CUDA library
    /// (`pip download nvidia-cuda-nvrtc …` unzipped there). SWIFTSPEED_TEST_CUDA_PKGS=/none mimics CI.
    static let searchPath: [String] = {
        let env = ProcessInfo.processInfo.environment
        var dirs = CUDALibraries.directories(env["SWIFTSPEED_TEST_CUDA_LIB_PATH"])
            + CUDALibraries.directories(env[CUDALibraries.searchPathVariable])
        let root = env["SWIFTSPEED_TEST_CUDA_PKGS"] ?? "/tmp/cudapkgs"
        if let walker = FileManager.default.enumerator(atPath: root) {
            for case let relative as String in walker where relative.split(separator: "/").count <= 5 {
                let name = (relative as NSString).lastPathComponent
                if name.hasPrefix("libnvrtc.so.1") || name.hasPrefix("libcublasLt.so.1") || name == "libnccl.so.2" {
                    let dir = root + "/" + (relative as NSString).deletingLastPathComponent
                    if !dirs.contains(dir) { dirs.append(dir) }
                }
            }
        }
        return dirs
    }()

    static let libraries = CUDALibraries(searchPath: searchPath)
    static let nvrtc: NVRTCLibrary? = try? libraries.nvrtc.get()
    static let driver: CUDADriver? = try? libraries.driver.get()
    /// GPUs the driver sees (0 without a driver or GPU).
    static let gpuCount: Int = (try? driver?.deviceCount()) ?? 0

    static let noNVRTC = "no libnvrtc found: set SWIFTSPEED_CUDA_LIB_PATH to its directory (e.g. unzip `pip download --no-deps nvidia-cuda-nvrtc` under /tmp/cudapkgs)"
    static let noGPU = "no GPU: needs libcuda.so.1 and a visible NVIDIA GPU"
    /// The host emulator of scripts/cuda-emu runs only SwiftSpeed's own kernels, not a test's ad-hoc ones.
    static let emulated: Bool = (try? driver?.device(0).name.contains("emulator")) == true
    static let emulatedReason = "the CUDA host emulator (scripts/cuda-emu) runs only SwiftSpeed's kernels"

    /// A fresh directory under the temporary directory.
    static func scratch(_ tag: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-\(tag)-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}
