// Checksums and regular files: CRC32C's slicing-by-8 equals the bytewise definition for every split, per-tensor
// checksums written into the metadata catch flipped and zeroed bytes (by tensor), and FIFOs are refused unopened.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SpeedCore
import SpeedIO
import SpeedTestSupport
import Testing

/// The CRC-32C definition, one bit at a time (no tables).
private func bitwiseCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

@Suite struct CRC32CSlicingTests {
    @Test func slicingEqualsTheBitwiseDefinitionAtEveryLengthAndAlignment() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        for start in 0..<9 {
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] where start + length <= bytes.count {
                let piece = Array(bytes[start..<(start + length)])
                #expect(CRC32C.checksum(piece) == bitwiseCRC32C(piece), "start \(start) length \(length)")
            }
        }
        // In pieces, split anywhere.
        for cut in [0, 1, 5, 8, 13, 299, 300] {
            let a = Array(bytes[..<cut]), b = Array(bytes[cut...])
            #expect(CRC32C.checksum(b, continuing: CRC32C.checksum(a)) == bitwiseCRC32C(bytes))
            #expect(CRC32C.combine(CRC32C.checksum(a), CRC32C.checksum(b), lengthOfSecond: b.count) == bitwiseCRC32C(bytes))
        }
    }

    @Test func theParallelChecksumEqualsTheSerialOneForEveryPieceSize() {
        let bytes = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 11) }
        let serial = CRC32C.checksum(bytes)
        bytes.withUnsafeBytes { raw in
            for piece in [1, 7, 4096, 33_334, 50_001, 100_003, 1 << 20] {
                #expect(CRC32C.parallelChecksum(raw, pieceSize: piece) == serial, "piece \(piece)")
            }
            #expect(CRC32C.parallelChecksum(raw) == serial)
        }
    }
}

@Suite struct SafetensorsChecksumTests {
    let dir = IOTestDirectory()

    /// A file of two F32 tensors with checksums, and the byte offset of tensor `b`'s data in it.
    func written(checksums: Bool = true) throws -> (URL, bOffset: Int) {
        let url = dir.file("t.safetensors")
        try Safetensors.write([("a", Tensor((0..<64).map(Float.init), shape: [64])),
                               ("b", Tensor((0..<32).map { Float($0) * 0.5 + 1 }, shape: [32]))],
                              metadata: ["format": "pt"], checksums: checksums, to: url)
        let header = try Safetensors.header(url)
        return (url, header.dataStart + header["b"]!.dataOffsets.lowerBound)
    }

    func edit(_ url: URL, _ body: (inout [UInt8]) -> Void) throws {
        var bytes = [UInt8](try Data(contentsOf: url))
        body(&bytes)
        try Data(bytes).write(to: url)
    }

    @Test func checksumsAreRecordedForEveryTensorAndReadBack() throws {
        let (url, _) = try written()
        let header = try Safetensors.header(url)
        #expect(header.checksums.map { Set($0.keys) } == ["a", "b"])
        #expect(header.metadata["format"] == "pt")
        let (tensors, metadata) = try Safetensors.read(url)
        #expect(tensors["b"]!.scalars[3] == 2.5)
        #expect(metadata[Safetensors.checksumKey]?.contains("\"a\":\"") == true)
        // Without the option nothing is recorded, as before (files stay identical to Python's).
        let (plain, _) = try written(checksums: false)
        #expect(try Safetensors.header(plain).checksums == nil)
    }

    @Test func aFlippedBitIsAChecksumMismatchNamingTheTensor() throws {
        let (url, offset) = try written()
        try edit(url) { $0[offset + 5] ^= 0x10 }
        let e = #expect(throws: SafetensorsError.self) { try Safetensors.read(url) }
        #expect(e?.tensor == "b")
        guard case .checksumMismatch? = e?.problem else { Issue.record("not a checksum mismatch: \(String(describing: e))"); return }
        #expect(e?.description.contains("checksum mismatch") == true)
        #expect(e?.description.contains(url.path) == true)
        #expect(e?.description.contains("the file is corrupt; re-save or restore it") == true)
        // Reading only the intact tensor succeeds; verify: false reads the damaged bytes as they are.
        #expect(try Safetensors.read(url, only: ["a"]).tensors["a"]?.count == 64)
        #expect(try Safetensors.read(url, verify: false).tensors["b"]?.count == 32)
    }

    @Test func zeroedDataIsAChecksumMismatch() throws {
        let (url, offset) = try written()
        try edit(url) { for i in offset..<(offset + 128) { $0[i] = 0 } }
        let e = #expect(throws: SafetensorsError.self) { try Safetensors.read(url) }
        #expect(e?.tensor == "b")
        guard case .checksumMismatch(let recorded, let computed)? = e?.problem else { Issue.record("not a mismatch"); return }
        #expect(recorded != computed && computed == CRC32C.checksum([UInt8](repeating: 0, count: 128)))
    }

    @Test func filesWithoutChecksumsReadUnverified() throws {
        let (url, offset) = try written(checksums: false)
        try edit(url) { $0[offset] ^= 1 }
        #expect(try Safetensors.read(url).tensors.count == 2)
    }

    @Test(arguments: [
        (#"not json"#, nil as String?, "is not a JSON object"),
        (#"{"a":"12345678"}"#, "b", "records no checksum for it"),
        (#"{"a":"12345678","b":"0000000g"}"#, "b", "not 8 hex digits"),
        (#"{"a":"12345678","b":"1234567"}"#, "b", "not 8 hex digits"),
        (#"{"a":"12345678","b":"12345678","c":"12345678"}"#, "c", "no such tensor"),
    ])
    func malformedChecksumMetadataIsAnInvalidHeader(value: String, tensor: String?, message: String) throws {
        let url = dir.file("m.safetensors")
        try Safetensors.write([("a", Tensor([1, 2] as [Float])), ("b", Tensor([3] as [Float]))],
                              metadata: [Safetensors.checksumKey: value], to: url)
        let e = #expect(throws: SafetensorsError.self) { try Safetensors.header(url) }
        #expect(e?.tensor == tensor)
        guard case .invalidHeader(let text)? = e?.problem else { Issue.record("not an invalid header"); return }
        #expect(text.contains(message) && text.contains("\"crc32c\""), "\(text)")
    }

    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let fifo = dir.file("pipe.safetensors")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        // A blocking open would wait for a writer forever; this must return at once.
        let e = #expect(throws: SafetensorsError.self) { try Safetensors.read(fifo) }
        #expect(e?.problem == .notARegularFile(kind: "a FIFO (named pipe)"))
        #expect(e?.description.contains(fifo.path) == true)
        #expect(throws: SafetensorsError.self) { try Safetensors.header(fifo) }
    }
}
