// Mapped safetensors reading: the same bits as `Safetensors.read` + `copyData` for every dtype pair, views that lie
// inside the mapping, no allocation on the destination's backend, and named errors for truncated or corrupt files.
// Invariant: every expected value comes from the eager reader (itself pinned to the Python-written fixture) or from
// bytes written by the test, never from the mapped reader itself.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SpeedCore
import SpeedIO
import SpeedTestSupport
import Testing

private let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/python_tiny.safetensors")

private func rawBytes(_ t: Tensor) -> [UInt8] { Array(UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount)) }

private let floats: [DType] = [.float32, .float64, .float16, .bfloat16]

@Suite struct SafetensorsMappedTests {
    let dir = IOTestDirectory()

    /// Values that round differently in every narrower type (ties, subnormals, overflow, NaN, -0).
    func mixedFile(_ dtype: DType) throws -> URL {
        var values: [Double] = [1.0 / 3.0, -2.5, 1e-6, 65519.0, 70000.0, -0.0, .infinity, 3.0e38, 1e-40, 1.00390625]
        values += (0..<300).map { Double($0) * 0.731 - 97.3 }
        let t = Tensor(values, dtype: dtype)
        let url = dir.file("mixed-\(dtype).safetensors")
        try Safetensors.write(["x": t, "nan": Tensor([Double.nan, -Double.nan], dtype: dtype)],
                              to: url)
        return url
    }

    @Test func everyFixtureTensorReadsAsTheEagerReaderReadsIt() throws {
        let (eager, _) = try Safetensors.read(fixtureURL)
        try Safetensors.withMapped(fixtureURL) { file in
            #expect(file.header == (try Safetensors.header(fixtureURL)))
            for (name, t) in eager {
                let mapped = try file.tensor(name)
                #expect(mapped.dtype == t.dtype && mapped.shape == t.shape, "\(name)")
                #expect(rawBytes(mapped) == rawBytes(t), "\(name)")
            }
        }
    }

    @Test(arguments: floats)
    func conversionsGiveTheBitsOfCopyData(fileType: DType) throws {
        let url = try mixedFile(fileType)
        let (eager, _) = try Safetensors.read(url)
        try Safetensors.withMapped(url) { file in
            for target in floats {
                for name in ["x", "nan"] {
                    let reference = Tensor(empty: eager[name]!.shape, dtype: target)
                    reference.copyData(from: eager[name]!)
                    let mapped = Tensor(empty: eager[name]!.shape, dtype: target)
                    try file.copy(name, into: mapped)
                    #expect(rawBytes(mapped) == rawBytes(reference), "\(fileType) -> \(target) \(name)")
                }
            }
        }
    }

    @Test func integersCopyAndConvertAsCopyData() throws {
        let (eager, _) = try Safetensors.read(fixtureURL)
        try Safetensors.withMapped(fixtureURL) { file in
            for (name, target) in [("i64", DType.int64), ("i64", .float32), ("i32", .int64), ("f32", .int32)] {
                let reference = Tensor(empty: eager[name]!.shape, dtype: target)
                reference.copyData(from: eager[name]!)
                let mapped = Tensor(empty: eager[name]!.shape, dtype: target)
                try file.copy(name, into: mapped)
                #expect(rawBytes(mapped) == rawBytes(reference), "\(name) -> \(target)")
            }
        }
    }

    @Test func bytesAreAViewIntoTheMappingNotACopy() throws {
        let url = try mixedFile(.float32)
        let backend = CPUBackend(threads: 1)
        let device = Device(backend: backend, kind: "cpu")
        let destination = Tensor(empty: [310], dtype: .float32, device: device)
        let eager = try Safetensors.read(url).tensors["x"]!
        let fileBytes = [UInt8](try Data(contentsOf: url))
        let header = try Safetensors.header(url)
        try Safetensors.withMapped(url) { file in
            backend.resetPeakMemory()
            let before = backend.memoryStats.allocatedBytes
            let (start, count) = try file.withBytes(of: "x") { raw in (raw.baseAddress!, raw.count) }
            try file.copy("x", into: destination)
            // The same dtype copies from the mapping: nothing allocated on the destination's backend.
            #expect(backend.memoryStats.peakAllocatedBytes == before)
            #expect(count == 310 * 4)
            // The view starts at the tensor's offset in the file: its bytes are the file's bytes at that offset.
            let offset = header.dataStart + header["x"]!.dataOffsets.lowerBound
            let viewed = try file.withBytes(of: "x") { Array($0) }
            #expect(viewed == Array(fileBytes[offset..<(offset + count)]))
            #expect(try file.withBytes(of: "x") { $0.baseAddress! } == start)
        }
        #expect(rawBytes(destination) == rawBytes(eager))
    }

    @Test func closeUnmapsAndIsIdempotent() throws {
        let file = try MappedSafetensors(fixtureURL)
        #expect(!file.isClosed)
        file.close()
        #expect(file.isClosed)
        file.close()
        var closedInside: MappedSafetensors?
        try Safetensors.withMapped(fixtureURL) { closedInside = $0 }
        #expect(closedInside?.isClosed == true)
    }

    @Test func aFileTruncatedAfterMappingThrowsInsteadOfCrashing() throws {
        let url = try mixedFile(.float32)
        let header = try Safetensors.header(url)
        let size = header.dataStart + header.dataLength
        let file = try MappedSafetensors(url)
        defer { file.close() }
        // Cut the file well inside the last tensor's bytes, below a page boundary of the mapping.
        let last = header.entries.max { $0.dataOffsets.lowerBound < $1.dataOffsets.lowerBound }!
        #expect(truncate(url.path, off_t(header.dataStart + last.dataOffsets.lowerBound)) == 0)
        let e = #expect(throws: SafetensorsError.self) {
            try file.copy(last.name, into: Tensor(empty: last.shape, dtype: last.dtype.dtype!))
        }
        #expect(e?.tensor == last.name)
        #expect(e?.problem == .fileShrank(expectedSize: size, size: header.dataStart + last.dataOffsets.lowerBound))
        #expect(e?.description.contains("truncated or rewritten while being read") == true)
        #expect(throws: SafetensorsError.self) { try file.withBytes(of: last.name) { _ in } }
        // Opening it now fails on the header's own check.
        let reopened = #expect(throws: SafetensorsError.self) { try MappedSafetensors(url) }
        guard case .offsetsOutOfBounds? = reopened?.problem else {
            Issue.record("not out of bounds: \(String(describing: reopened))"); return
        }
    }

    @Test func truncatedAndCorruptFilesKeepTheirNamedErrors() throws {
        let url = try mixedFile(.float32)
        let bytes = [UInt8](try Data(contentsOf: url))
        let cut = dir.file("cut.safetensors")
        try Data(bytes.prefix(5)).write(to: cut)
        #expect((#expect(throws: SafetensorsError.self) { try MappedSafetensors(cut) })?.problem == .fileTooShort(fileSize: 5))
        try Data(bytes.prefix(30)).write(to: cut)
        let beyond = #expect(throws: SafetensorsError.self) { try MappedSafetensors(cut) }
        guard case .headerLengthBeyondFile? = beyond?.problem else { Issue.record("\(String(describing: beyond))"); return }
        let missing = #expect(throws: SafetensorsError.self) { try Safetensors.withMapped(url) { try $0.tensor("nope") } }
        #expect(missing?.tensor == "nope")
        #expect(missing?.problem == .invalidName("not in the file"))
    }

    @Test func checksumsAreVerifiedFromTheMapping() throws {
        let url = dir.file("crc.safetensors")
        try Safetensors.write(["a": Tensor((0..<64).map(Float.init), shape: [64])], checksums: true, to: url)
        let header = try Safetensors.header(url)
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[header.dataStart + 17] ^= 0x04
        try Data(bytes).write(to: url)
        let e = #expect(throws: SafetensorsError.self) {
            try Safetensors.withMapped(url) { try $0.tensor("a") }
        }
        #expect(e?.tensor == "a")
        guard case .checksumMismatch? = e?.problem else { Issue.record("\(String(describing: e))"); return }
        // Unverified, the damaged bytes come through as they are.
        let damaged = try Safetensors.withMapped(url) { try $0.tensor("a", verify: false) }
        #expect(damaged.scalars[4] != 4)
    }

    @Test func unsupportedDTypesAreRefusedByName() throws {
        // A U8 tensor next to an F32 one: the F32 one still loads.
        let url = dir.file("u8.safetensors")
        let json = #"{"f":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"u":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#
        var header = Array(json.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        bytes += withUnsafeBytes(of: Float(2.5)) { Array($0) } + [1, 2, 3, 4]
        try Data(bytes).write(to: url)
        try Safetensors.withMapped(url) { file in
            let f = try file.tensor("f")
            #expect(f.scalars == [2.5])
            let e = #expect(throws: SafetensorsError.self) { try file.tensor("u") }
            #expect(e?.problem == .unsupportedDType("U8"))
        }
    }
}
