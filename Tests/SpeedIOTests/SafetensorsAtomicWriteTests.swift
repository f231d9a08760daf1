// AtomicFile (used by Safetensors.write and checkpoints): complete files or the old file, never a partial one.
// Invariant: after every test, the directory holds only the files the test meant to create — no temp files.

import Foundation
import SpeedCore
import SpeedIO
import SpeedTestSupport
import Testing

private struct Boom: Error {}

@Suite struct SafetensorsAtomicWriteTests {
    @Test func writesAndReplacesWithoutLeavingTempFiles() throws {
        let dir = IOTestDirectory()
        let url = dir.file("latest")
        try AtomicFile.write(Array("global_step1".utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "global_step1")
        try AtomicFile.write(Data("global_step20".utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "global_step20")
        #expect(dir.listing() == ["latest"])
    }

    @Test func streamingWriterCountsBytes() throws {
        let dir = IOTestDirectory()
        var count = 0
        try AtomicFile.write(to: dir.file("s")) { out in
            try out.write([1, 2, 3] as [UInt8])
            try out.write(Data([4, 5]))
            count = out.bytesWritten
        }
        #expect(count == 5)
        #expect(try Data(contentsOf: dir.file("s")) == Data([1, 2, 3, 4, 5]))
    }

    @Test func aFailureMidWriteLeavesTheOldFileAndNoTempFile() throws {
        let dir = IOTestDirectory()
        let url = dir.file("model.safetensors")
        try AtomicFile.write(Array("old contents".utf8), to: url)
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: url) { out in
                try out.write(Array(repeating: UInt8(7), count: 100_000))
                throw Boom()
            }
        }
        #expect(try String(contentsOf: url, encoding: .utf8) == "old contents")
        #expect(dir.listing() == ["model.safetensors"])

        // Same for a target that did not exist: it still does not.
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: dir.file("new")) { out in
                try out.write([1] as [UInt8])
                throw Boom()
            }
        }
        #expect(dir.listing() == ["model.safetensors"])
    }

    @Test func missingDirectoryNamesThePathAndReason() throws {
        let dir = IOTestDirectory()
        let url = dir.file("no/such/dir/latest")
        let e = #expect(throws: AtomicFileError.self) { try AtomicFile.write([1] as [UInt8], to: url) }
        #expect(e?.path == url.path)
        #expect(e?.code == ENOENT)
        #expect(e.map { "\($0)".contains("No such file or directory") } == true)
    }

    @Test func renameOntoADirectoryFailsCleanly() throws {
        let dir = IOTestDirectory()
        let target = dir.file("occupied")
        try FileManager.default.createDirectory(at: target.appendingPathComponent("inner"),
                                                withIntermediateDirectories: true)
        let e = #expect(throws: SafetensorsError.self) {
            try Safetensors.write(["w": Tensor([1, 2] as [Float])], to: target)
        }
        guard case .io(let message)? = e?.problem else {
            Issue.record("expected an io error, got \(String(describing: e))")
            return
        }
        #expect(message.contains("rename"))
        #expect(e?.path == target.path)
        #expect(dir.listing() == ["occupied"], "the temp file was removed")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["inner"])
    }

    @Test func concurrentWritersEachLeaveACompleteFile() async throws {
        let dir = IOTestDirectory()
        let url = dir.file("shared")
        let payloads = (0..<8).map { i in [UInt8](repeating: UInt8(i), count: 64 * 1024) }
        await withTaskGroup(of: Void.self) { group in
            for payload in payloads {
                group.addTask { try? AtomicFile.write(payload, to: url) }
            }
        }
        let final = try [UInt8](Data(contentsOf: url))
        #expect(payloads.contains(final), "the file is exactly one writer's payload, never a mix")
        #expect(dir.listing() == ["shared"])
    }
}
