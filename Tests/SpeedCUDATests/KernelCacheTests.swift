// The on-disk kernel cache: hits on the second compile, misses when anything that changes the image changes,
// writes atomically, and SHA-256 keys match the standard's test vectors.
// Invariant: each test uses its own cache directory and removes it.

import Foundation
@testable import SpeedCUDA
import Testing

@Suite struct SHA256Tests {
    @Test func matchesFIPS180TestVectors() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func defaultDirectoryFollowsTheEnvironment() {
        #expect(KernelCache.defaultDirectory(environment: ["SWIFTSPEED_KERNEL_CACHE": "/tmp/k", "HOME": "/h"]) == "/tmp/k")
        #expect(KernelCache.defaultDirectory(environment: ["HOME": "/h"]) == "/h/.cache/swiftspeed/kernels")
        #expect(KernelCache.defaultDirectory(environment: ["SWIFTSPEED_KERNEL_CACHE": "", "HOME": "/h"]) == "/h/.cache/swiftspeed/kernels")
    }
}

@Suite(.enabled(if: TestLibraries.nvrtc != nil, Comment(rawValue: TestLibraries.noNVRTC)))
struct KernelCacheTests {
    let compiler = NVRTCCompiler(library: TestLibraries.nvrtc!)

    @Test func hitsOnTheSecondCompileAndMissesWhenArchSourceOrOptionsChange() throws {
        let dir = try TestLibraries.scratch("kcache")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = KernelCache(compiler: compiler, directory: dir + "/nested/kernels")

        let first = try cache.kernel(scaleKernel, name: "scale.cu", arch: "sm_90")
        #expect(!first.hit)
        #expect(first.path == dir + "/nested/kernels/" + first.key + ".cubin")
        #expect(FileManager.default.contents(atPath: first.path).map { [UInt8]($0) } == first.image.bytes)

        let second = try cache.kernel(scaleKernel, name: "scale.cu", arch: "sm_90")
        #expect(second.hit)
        #expect(second.key == first.key)
        #expect(second.image.bytes == first.image.bytes)
        // A second cache on the same directory (another process, say) hits too.
        #expect(try KernelCache(compiler: compiler, directory: dir + "/nested/kernels").kernel(scaleKernel, arch: "sm_90").hit)

        let otherArch = try cache.kernel(scaleKernel, name: "scale.cu", arch: "sm_80")
        #expect(!otherArch.hit && otherArch.key != first.key)
        let otherSource = try cache.kernel(scaleKernel + "\n// v2", name: "scale.cu", arch: "sm_90")
        #expect(!otherSource.hit && otherSource.key != first.key)
        let otherOptions = try cache.kernel(scaleKernel, name: "scale.cu", arch: "sm_90", options: ["--use_fast_math"])
        #expect(!otherOptions.hit && otherOptions.key != first.key)
        let ptx = try cache.kernel(scaleKernel, name: "scale.cu", arch: "sm_90", format: .ptx)
        #expect(!ptx.hit && ptx.path.hasSuffix(".ptx"))
        #expect(try cache.kernel(scaleKernel, name: "scale.cu", arch: "sm_90", format: .ptx).hit)

        #expect(cache.usage().entries == 5)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir + "/nested/kernels")
        #expect(!names.contains { $0.contains(".tmp-") }, "temp files left behind: \(names)")
        try cache.clear()
        #expect(cache.usage().entries == 0)
        #expect(!(try cache.kernel(scaleKernel, name: "scale.cu", arch: "sm_90").hit))
    }

    @Test func anEmptyEntryIsAMissAndIsRewritten() throws {
        let dir = try TestLibraries.scratch("kcache-empty")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = KernelCache(compiler: compiler, directory: dir)
        let key = cache.key(scaleKernel, arch: "sm_90")
        _ = FileManager.default.createFile(atPath: dir + "/" + key + ".cubin", contents: Data())
        let k = try cache.kernel(scaleKernel, arch: "sm_90")
        #expect(!k.hit)
        #expect(k.key == key)
        #expect((FileManager.default.contents(atPath: k.path)?.count ?? 0) == k.image.bytes.count)
    }

    @Test func aCompilationErrorStoresNothing() throws {
        let dir = try TestLibraries.scratch("kcache-error")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = KernelCache(compiler: compiler, directory: dir)
        #expect(throws: CUDAError.self) { try cache.kernel("this is not CUDA", name: "bad.cu", arch: "sm_90") }
        #expect(cache.usage().entries == 0)
        #expect(throws: CUDAError.invalidArchitecture("sm90")) { try cache.kernel(scaleKernel, arch: "sm90") }
    }

    @Test func anUnwritableDirectoryIsAClearError() throws {
        let dir = try TestLibraries.scratch("kcache-ro")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A regular file where the cache directory should be: creating the directory must fail.
        _ = FileManager.default.createFile(atPath: dir + "/file", contents: Data([1]))
        let cache = KernelCache(compiler: compiler, directory: dir + "/file/kernels")
        do {
            _ = try cache.kernel(scaleKernel, arch: "sm_90")
            Issue.record("wrote under a regular file")
        } catch {
            guard case .cache = error else { Issue.record("\(error)"); return }
            #expect(error.description.contains("SWIFTSPEED_KERNEL_CACHE"))
        }
    }
}
