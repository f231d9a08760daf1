// `swiftspeed report` (ds_report): exits 0 whatever is installed, prints the BLAS, MPI and CUDA lines, and --json
// prints one object with the same components.
// Invariant: the assertions hold on machines with and without a GPU or CUDA libraries.

import Foundation
import Testing

@Suite struct ReportCommandTests {
    @Test func reportExitsZeroAndNamesBLASMPIAndCUDA() throws {
        let r = try swiftspeed(["report"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        for title in ["BLAS", "MPI", "CUDA driver", "NVRTC", "cuBLASLt", "NCCL", "kernel cache"] {
            let line = lines.first { $0.dropFirst(2).hasPrefix(title + " ") }
            #expect(line != nil, "no \(title) line in:\n\(r.stdout)")
            #expect(line.map { $0.hasPrefix("✓ ") || $0.hasPrefix("✗ ") } ?? false)
        }
        #expect(lines.contains { $0.hasPrefix("✓ BLAS") && $0.contains("OpenBLAS") })
        // Without a driver the reason says what is missing and that the CPU is used.
        if let driver = lines.first(where: { $0.hasPrefix("✗ CUDA driver") }) {
            #expect(driver.contains("libcuda.so.1"))
        }
    }

    @Test func jsonIsOneObjectWithEveryComponent() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
        p.arguments = ["report", "--json"]
        var env = ProcessInfo.processInfo.environment
        env["SWIFTSPEED_KERNEL_CACHE"] = dir.path + "/kernels"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["swiftspeed", "system", "blas", "mpi", "cuda_driver", "gpus", "nvrtc", "cublaslt", "nccl", "kernel_cache"] {
            let item = try #require(object[key] as? [String: Any], "missing \(key)")
            let available = try #require(item["available"] as? Bool)
            #expect(item[available ? "detail" : "reason"] is String, "\(key): \(item)")
        }
        let cache = try #require(object["kernel_cache"] as? [String: Any])
        #expect(cache["path"] as? String == dir.path + "/kernels")
        #expect(cache["source"] as? String == "$SWIFTSPEED_KERNEL_CACHE")
        #expect(cache["available"] as? Bool == true)
    }
}
