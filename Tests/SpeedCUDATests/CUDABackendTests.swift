// CUDABackend against the CPU reference (the full SelfTest plus an end-to-end tensor program) where a GPU is
// visible — a real one, or the host emulator of scripts/cuda-emu — and, everywhere, the host-side pieces that need
// no GPU: indexer collapse, device-name parsing and the error without a driver.
// Invariant: GPU suites skip with the reason when no device opens, so CI (no GPU) stays green.

import Foundation
import SpeedCore
@testable import SpeedCUDA
import Testing

@Suite struct CUDAHostSideTests {
    @Test func indexerMergesContiguousAxesAndDropsOnes() {
        // [2, 1, 3, 4] contiguous in both layouts collapses to one axis of 24.
        let ix = Indexer(shape: [2, 1, 3, 4], strides: [[12, 12, 4, 1], [12, 12, 4, 1]], op: "test")
        #expect(ix.shape == [24])
        #expect(ix.strides == [[1], [1]])
        // A transpose keeps two axes: out [3, 2] reads x^T.
        let t = Indexer(shape: [3, 2], strides: [[1, 3], [2, 1]], op: "test")
        #expect(t.shape == [3, 2])
        #expect(t.strides == [[1, 3], [2, 1]])
        // Broadcast (stride 0) of the first operand over the leading axis.
        let b = Indexer(shape: [5, 7], strides: [[0, 1], [7, 1], [7, 1]], op: "test")
        #expect(b.shape == [5, 7] && b.strides[0] == [0, 1])
        #expect(Indexer.collapsedRank([2, 2, 2, 2, 2, 2, 2, 2, 3], [[1, 2, 4, 8, 16, 32, 64, 128, 256],
                                                                   [384, 192, 96, 48, 24, 12, 6, 3, 1]]) == 9)
    }

    @Test func indexerPacksTheKernelsABI() {
        var words: [UInt64] = []
        Indexer(shape: [3, 2], strides: [[1, 3], [2, 1]], op: "test").append(to: &words)
        #expect(words.count == 33)   // rank, shape[8], strides[3][8]
        #expect(words[0] == 2 && words[1] == 3 && words[2] == 2)
        #expect(words[9] == 1 && words[10] == 3)    // strides[0]
        #expect(words[17] == 2 && words[18] == 1)   // strides[1]
    }

    @Test func attentionTilesMatchTheKernelsSharedMemoryTable() {
        // docs/SpeedCUDA-kernels.md: D = 32 / 64 / 128 → fwd, dkdv, dq bytes.
        let expected = [32: (41984, 67584, 50944), 64: (66560, 100352, 83712), 128: (74496, 115968, 70528)]
        for (d, bytes) in expected {
            let t = CUDABackend.AttentionTiles(d: d)
            #expect(t.fwdBytes == bytes.0 && t.dkdvBytes == bytes.1 && t.dqBytes == bytes.2, "D = \(d)")
        }
        #expect(CUDABackend.AttentionTiles(d: 48).width == 64)
    }

    @Test func kernelProgramsAreTheEmbeddedCuFilesWithCommonInlined() throws {
        #expect(CUDAKernelSource.all.map(\.name) == CUDAKernelProgram.allCases.map(\.rawValue))
        #expect(CUDAKernelSource.common.hasPrefix("// ") && CUDAKernelSource.common.contains("struct SSIndexer {"))
        for (name, source) in CUDAKernelSource.all {
            let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
            let at = try #require(lines.firstIndex(of: #"#line 1 "common.cuh""#), "\(name)")
            // The .cu's own lines up to its include, the header, then numbering back on the .cu's next line.
            #expect(lines[0].hasPrefix("// ") && !lines.contains(#"#include "common.cuh""#), "\(name)")
            #expect(source.components(separatedBy: CUDAKernelSource.common).count == 2, "\(name)")
            let back = lines[at + CUDAKernelSource.common.split(separator: "\n", omittingEmptySubsequences: false).count]
            #expect(back == "#line \(at + 2) \"\(name).cu\"", "\(name)")
            #expect(source.contains("// ===== family: \(name) =====") && source.hasSuffix("=====\n"), "\(name)")
        }
    }

    @Test func deviceNamesParseAndUnknownNamesAreRejected() throws {
        #expect(try Device.named("cpu") == .cpu)
        #expect(throws: CUDAError.invalidDeviceName("gpu")) { try Device.named("gpu") }
        #expect(throws: CUDAError.invalidDeviceName("cuda:x")) { try Device.named("cuda:x") }
    }

    static var noDriver: Bool { if case .failure = CUDALibraries.shared.driver { true } else { false } }

    @Test(.enabled(if: noDriver, "a CUDA driver is installed: Device.cuda() is checked by the GPU tests"))
    func withoutADriverCudaSaysWhatIsMissing() throws {
        do {
            _ = try Device.cuda()
            Issue.record("Device.cuda() succeeded without a driver")
        } catch {
            #expect(error.description.contains("libcuda.so.1"))
        }
    }
}

/// Opens cuda:0 once for the suite (nil with the reason when no GPU or emulator is available).
enum TestGPU {
    static let device: Result<Device, CUDAError> = Result { () throws(CUDAError) in try Device.cuda(0) }
    static var available: Bool { (try? device.get()) != nil }
    static var reason: String {
        if case .failure(let e) = device { return "no CUDA device: \(e)" }
        return ""
    }
}

@Suite(.enabled(if: TestGPU.available, Comment(rawValue: TestGPU.reason)), .serialized)
struct CUDABackendTests {
    var gpu: Device { try! TestGPU.device.get() }

    @Test func everyOpMatchesTheCPUForwardAndBackward() {
        let failures = SelfTest(device: gpu).run().filter { !$0.passed }
        #expect(failures.isEmpty, "\(failures.map(\.description).joined(separator: "\n"))")
    }

    @Test func aTensorProgramRoundTripsAndReportsMemory() {
        var rng = RandomStream(seed: 5)
        let x = Tensor.randn([64, 32], rng: &rng)
        let before = gpu.backend.memoryStats.allocatedBytes
        let g = x.to(gpu)
        #expect(g.device == gpu)
        #expect(gpu.backend.memoryStats.allocatedBytes > before)
        let y = (g.matmul(g.transposed()) * 0.5).sum(axis: 1).to(.cpu)
        let ref = (x.matmul(x.transposed()) * 0.5).sum(axis: 1)
        let r = SelfTest.compare("program", gpu: y, cpu: ref, tolerance: .accumulated)
        #expect(r.passed, "\(r)")
    }
}
