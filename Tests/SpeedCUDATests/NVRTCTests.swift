// NVRTC through NVRTCCompiler: CUDA C to cubin and PTX without a GPU, and errors that carry NVRTC's log.
// Invariant: every test here skips (with the reason) where no libnvrtc can be found, as on CI.

import Foundation
@testable import SpeedCUDA
import Testing

let scaleKernel = """
    extern "C" __global__ void scale(float *x, float a, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) x[i] *= a;
    }
    """

@Suite(.enabled(if: TestLibraries.nvrtc != nil, Comment(rawValue: TestLibraries.noNVRTC)))
struct NVRTCTests {
    let compiler = NVRTCCompiler(library: TestLibraries.nvrtc!)

    @Test func compilesAKernelForSM90ToCubin() throws {
        let image = try compiler.compile(scaleKernel, name: "scale.cu", arch: "sm_90")
        #expect(image.format == .cubin)
        #expect(Array(image.bytes.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46])   // an ELF file
        #expect(image.bytes.count > 500)
        #expect(compiler.version.major >= 12)
    }

    @Test func compilesToPTXForTheVirtualArchitecture() throws {
        let image = try compiler.compile(scaleKernel, name: "scale.cu", arch: "sm_90", format: .ptx)
        #expect(image.bytes.last == 0)   // NUL-terminated, as cuModuleLoadData wants
        let text = String(decoding: image.bytes.dropLast(), as: UTF8.self)
        #expect(text.contains(".target sm_90"))
        #expect(text.contains(".entry scale"))
    }

    @Test func aSyntaxErrorReturnsNVRTCsLogNamingTheLine() throws {
        let broken = """
            extern "C" __global__ void k(float *x) {
                int i = threadIdx.x;
                x[i] = 1.0f +;
            }
            """
        do {
            _ = try compiler.compile(broken, name: "broken.cu", arch: "sm_90")
            Issue.record("compiled a syntax error")
        } catch {
            guard case .compilation(let name, let arch, let log) = error else { Issue.record("\(error)"); return }
            #expect(name == "broken.cu" && arch == "sm_90")
            #expect(log.contains("broken.cu(3)"), "\(log)")
            #expect(log.contains("error"))
            #expect(error.description.hasPrefix("NVRTC could not compile broken.cu for sm_90:\nbroken.cu(3)"))
        }
    }

    @Test func optionsReachNVRTC() throws {
        let source = """
            #ifndef WIDTH
            #error WIDTH must be defined
            #endif
            extern "C" __global__ void k(float *x) { x[threadIdx.x] = WIDTH; }
            """
        _ = try compiler.compile(source, arch: "sm_80", options: ["-DWIDTH=4", "--use_fast_math"])
        #expect(throws: CUDAError.self) { try compiler.compile(source, arch: "sm_80") }
        do {
            _ = try compiler.compile(scaleKernel, arch: "sm_90", options: ["--no-such-option"])
            Issue.record("accepted an unknown option")
        } catch {
            #expect(error.description.contains("--no-such-option"), "\(error)")
        }
    }

    /// NVRTC ships no CUDA headers (cuda_fp16.h, cuda_bf16.h are not built in): kernels declare their own types
    /// or are given an include directory with `-I`, which this checks reaches NVRTC.
    @Test func includeDirectoriesReachNVRTC() throws {
        let dir = try TestLibraries.scratch("nvrtc-include")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "#define SS_SCALE 2.5f\n".write(toFile: dir + "/ss_scale.h", atomically: true, encoding: .utf8)
        let source = """
            #include "ss_scale.h"
            extern "C" __global__ void k(float *x) { x[threadIdx.x] *= SS_SCALE; }
            """
        #expect(!(try compiler.compile(source, name: "inc.cu", arch: "sm_90", options: ["-I" + dir]).bytes.isEmpty))
        do {
            _ = try compiler.compile(source, name: "inc.cu", arch: "sm_90")
            Issue.record("found ss_scale.h without -I")
        } catch {
            #expect(error.description.contains("ss_scale.h"), "\(error)")
        }
    }

    @Test func reportsTheArchitecturesItSupports() {
        #expect(TestLibraries.nvrtc!.supportedArchitectures.contains(90))
    }
}

/// Architecture strings are checked before NVRTC sees them (no NVRTC needed).
@Suite struct ArchitectureOptionTests {
    @Test func validArchitecturesMapToTheFormatsArchitecture() throws {
        #expect(try NVRTCCompiler.architectureOption("sm_90", format: .cubin) == "sm_90")
        #expect(try NVRTCCompiler.architectureOption("sm_90a", format: .cubin) == "sm_90a")
        #expect(try NVRTCCompiler.architectureOption("sm_90", format: .ptx) == "compute_90")
        #expect(try NVRTCCompiler.architectureOption("compute_80", format: .cubin) == "sm_80")
        #expect(try NVRTCCompiler.architectureOption("sm_120", format: .cubin) == "sm_120")
    }

    @Test func anythingElseIsRejectedWithTheExpectedForm() {
        for bad in ["90", "sm90", "sm_9", "sm_90x", "gfx90a", "sm_"] {
            #expect(throws: CUDAError.invalidArchitecture(bad)) { try NVRTCCompiler.architectureOption(bad, format: .cubin) }
        }
        #expect(CUDAError.invalidArchitecture("sm90").description.contains("sm_90 for an H100"))
    }
}

/// cuBLASLt and NCCL report their versions without a GPU.
@Suite struct LibraryVersionTests {
    @Test(.enabled(if: (try? TestLibraries.libraries.cublasLt.get()) != nil, "no libcublasLt found"))
    func cublasLtVersion() throws {
        let lt = try TestLibraries.libraries.cublasLt.get()
        #expect(lt.version >= 120000)
        #expect(lt.versionString.split(separator: ".").count == 3)
    }

    @Test(.enabled(if: (try? TestLibraries.libraries.nccl.get()) != nil, "no libnccl found"))
    func ncclVersion() throws {
        let nccl = try TestLibraries.libraries.nccl.get()
        #expect(nccl.version >= 21000)
        #expect(nccl.versionString.hasPrefix("2."))
    }
}
