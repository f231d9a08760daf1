// Safetensors round trips (every dtype, bit-exact), metadata, ordering, and the Python-written fixture.
// Invariant: the fixture's expected values here are the ones scripts/make_safetensors_fixture.py writes.

import Foundation
import SpeedCore
import SpeedIO
import SpeedTestSupport
import Testing

/// The raw bytes of a CPU tensor's elements.
private func rawBytes(_ t: Tensor) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount))
}

/// A tensor of `dtype` whose bytes are exactly `bytes` (for bit-exact checks).
private func tensor(bytes: [UInt8], shape: [Int], dtype: DType) -> Tensor {
    let t = Tensor(empty: shape, dtype: dtype)
    bytes.withUnsafeBytes { t.rawPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return t
}

private func bytes<T>(of values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

private let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/python_tiny.safetensors")

@Suite struct SafetensorsTests {
    @Test(arguments: DType.allCases)
    func everyDTypeRoundTripsBitExactly(dtype: DType) throws {
        let dir = IOTestDirectory()
        // Bit patterns that would be damaged by any conversion: NaN payloads, -0, denormals, extremes.
        let raw: [UInt8] = (0..<(6 * dtype.byteSize)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 0x81) }
        let t = tensor(bytes: raw, shape: [2, 3], dtype: dtype)
        try Safetensors.write(["x": t], to: dir.file("x.safetensors"))
        let (tensors, metadata) = try Safetensors.read(dir.file("x.safetensors"))
        let back = try #require(tensors["x"])
        #expect(back.dtype == dtype)
        #expect(back.shape == [2, 3])
        #expect(rawBytes(back) == raw)
        #expect(metadata.isEmpty)
    }

    @Test func bf16ValuesSurviveExactly() throws {
        let dir = IOTestDirectory()
        let bits: [UInt16] = [0x3F80, 0xC000, 0x7FC1, 0xFF80, 0x0001, 0x8000, 0x7F7F]
        let t = tensor(bytes: bytes(of: bits), shape: [7], dtype: .bfloat16)
        try Safetensors.write(["w": t], to: dir.file("b.safetensors"))
        let back = try #require(try Safetensors.read(dir.file("b.safetensors")).tensors["w"])
        #expect(Array(UnsafeBufferPointer(start: back.pointer(as: UInt16.self), count: 7)) == bits)
    }

    @Test func metadataEmptyAndScalarTensorsRoundTrip() throws {
        let dir = IOTestDirectory()
        let url = dir.file("m.safetensors")
        let metadata = ["format": "pt", "quote\"and\\slash": "line\nbreak\t\u{1}é✓"]
        try Safetensors.write([
            "empty": Tensor.zeros([0, 4]),
            "scalar": Tensor(scalar: 7, dtype: .float64),
            "ids": Tensor([1, -2, 3] as [Int32]),
        ], metadata: metadata, to: url)
        let (tensors, meta) = try Safetensors.read(url)
        #expect(meta == metadata)
        #expect(tensors["empty"]?.shape == [0, 4])
        #expect(tensors["empty"]?.count == 0)
        #expect(tensors["scalar"]?.shape == [])
        #expect(tensors["scalar"]?.item() == 7)
        #expect(tensors["ids"]?.scalars(as: Int32.self) == [1, -2, 3])
    }

    @Test func onlyEmptyTensorsAndNoTensorsAreValidFiles() throws {
        let dir = IOTestDirectory()
        try Safetensors.write([:], to: dir.file("none.safetensors"))
        #expect(try Safetensors.read(dir.file("none.safetensors")).tensors.isEmpty)
        try Safetensors.write(["e": Tensor.zeros([3, 0])], to: dir.file("e.safetensors"))
        #expect(try Safetensors.read(dir.file("e.safetensors")).tensors["e"]?.shape == [3, 0])
    }

    @Test func headerIsPaddedTo8AndDictionaryIsOrderedByDTypeThenName() throws {
        let dir = IOTestDirectory()
        let url = dir.file("o.safetensors")
        try Safetensors.write([
            "b": Tensor([1, 2] as [Float]), "a": Tensor([1] as [Float], dtype: .float16),
            "c": Tensor([1] as [Double]), "d": Tensor([5] as [Int]),
        ], metadata: ["k": "v"], to: url)
        let data = try [UInt8](Data(contentsOf: url))
        let n = Int(data[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        #expect(n % 8 == 0)
        let json = String(decoding: data[8..<(8 + n)], as: UTF8.self)
        #expect(json.trimmingCharacters(in: .whitespaces) == #"{"__metadata__":{"k":"v"},"#
            + #""d":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"#
            + #""c":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},"#
            + #""a":{"dtype":"F16","shape":[1],"data_offsets":[24,26]}}"#)
        #expect(data.count == 8 + n + 26)

        let header = try Safetensors.header(url)
        #expect(header.entries.map(\.name) == ["d", "c", "b", "a"])
        #expect(header.headerLength == n)
        #expect(header.dataStart == 8 + n)
        #expect(header["b"] == SafetensorsHeader.Entry(name: "b", dtype: .f32, shape: [2], dataOffsets: 16..<24))
        #expect(header.metadata == ["k": "v"])
    }

    @Test func orderedListKeepsItsOrderAndRejectsDuplicatesAndReservedNames() throws {
        let dir = IOTestDirectory()
        let url = dir.file("l.safetensors")
        try Safetensors.write([("z", Tensor([1] as [Float])), ("a", Tensor([2] as [Double]))], to: url)
        #expect(try Safetensors.header(url).entries.map(\.name) == ["z", "a"])

        let dup = #expect(throws: SafetensorsError.self) {
            try Safetensors.write([("w", Tensor([1] as [Float])), ("w", Tensor([2] as [Float]))], to: url)
        }
        #expect(dup?.tensor == "w")
        let reserved = #expect(throws: SafetensorsError.self) {
            try Safetensors.write(["__metadata__": Tensor([1] as [Float])], to: url)
        }
        #expect(reserved?.tensor == "__metadata__")
        #expect(try Safetensors.header(url).entries.map(\.name) == ["z", "a"], "failed writes left the file alone")
    }

    @Test func viewsWriteTheirOwnElementsOnly() throws {
        let dir = IOTestDirectory()
        let base = Tensor((0..<12).map(Float.init), shape: [3, 4])
        let row = Tensor(storage: base.storage, offset: 4, shape: [4], dtype: .float32)
        try Safetensors.write(["row": row], to: dir.file("v.safetensors"))
        #expect(try Safetensors.read(dir.file("v.safetensors")).tensors["row"]?.scalars == [4, 5, 6, 7])
    }

    @Test func readOnlyLoadsTheRequestedNames() throws {
        let dir = IOTestDirectory()
        let url = dir.file("s.safetensors")
        try Safetensors.write(["a": Tensor([1] as [Float]), "b": Tensor([2] as [Float])], to: url)
        let (some, _) = try Safetensors.read(url, only: ["b"])
        #expect(Array(some.keys) == ["b"])
        let missing = #expect(throws: SafetensorsError.self) { try Safetensors.read(url, only: ["b", "nope"]) }
        #expect(missing?.tensor == "nope")
    }

    // MARK: - The Python-written fixture

    @Test func pythonFixtureReadsWithExactValues() throws {
        let (t, metadata) = try Safetensors.read(fixtureURL)
        #expect(metadata == ["format": "pt", "source": "scripts/make_safetensors_fixture.py"])
        #expect(t.keys.sorted() == ["bf16", "empty", "f16", "f32", "f64", "i32", "i64", "scalar"])

        let f32 = try #require(t["f32"])
        #expect(f32.dtype == .float32 && f32.shape == [2, 3])
        #expect(rawBytes(f32) == bytes(of: [1.5, -2.25, 3.0e38, 0.0, -0.0, Float.infinity] as [Float]))

        let bf16 = try #require(t["bf16"])
        #expect(bf16.dtype == .bfloat16 && bf16.shape == [2, 3])
        #expect(rawBytes(bf16) == bytes(of: [0x3F80, 0xC000, 0x3FC0, 0x4049, 0x7F80, 0x0080] as [UInt16]))
        #expect(bf16.scalars == [1, -2, 1.5, 3.140625, .infinity, Float(bitPattern: 0x0080_0000)])

        let f16 = try #require(t["f16"])
        #expect(f16.dtype == .float16 && f16.shape == [2, 2])
        #expect(rawBytes(f16) == bytes(of: [0x3800, 0xBC00, 0x7BFF, 0x0001] as [UInt16]))

        let f64 = try #require(t["f64"])
        #expect(f64.dtype == .float64 && f64.shape == [3])
        #expect(rawBytes(f64) == bytes(of: [1.0 / 3.0, -1e300, 2.5] as [Double]))

        #expect(t["i64"]?.dtype == .int64)
        #expect(t["i64"].map(rawBytes) == bytes(of: [-9_007_199_254_740_993, 1 << 62] as [Int64]))
        #expect(t["i32"]?.shape == [3, 1])
        #expect(t["i32"].map(rawBytes) == bytes(of: [-1, 0, Int32.max] as [Int32]))
        #expect(t["scalar"]?.shape == [] && t["scalar"]?.item() == 42)
        #expect(t["empty"]?.shape == [0, 4] && t["empty"]?.dtype == .float32)
    }

    @Test func swiftWritesTheFixtureByteForByte() throws {
        let (t, metadata) = try Safetensors.read(fixtureURL)
        let dir = IOTestDirectory()
        try Safetensors.write(t, metadata: metadata, to: dir.file("again.safetensors"))
        let ours = try Data(contentsOf: dir.file("again.safetensors"))
        let python = try Data(contentsOf: fixtureURL)
        #expect(ours == python, "same tensors and metadata should give the Rust reference's exact bytes")
    }

    @Test func headerListsDTypesTensorsCannotHoldAndReadSkipsThemWithOnly() throws {
        let dir = IOTestDirectory()
        let url = dir.file("u8.safetensors")
        let json = #"{"mask":{"dtype":"BOOL","shape":[4],"data_offsets":[8,12]},"#
            + #""w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        try Data(craftSafetensors(json: json, data: bytes(of: [1, 2] as [Float]) + [1, 0, 1, 1])).write(to: url)
        let header = try Safetensors.header(url)
        #expect(header["mask"]?.dtype == .bool)
        #expect(header["mask"]?.dtype.dtype == nil)
        let error = #expect(throws: SafetensorsError.self) { try Safetensors.read(url) }
        #expect(error?.tensor == "mask")
        #expect(error?.problem == .unsupportedDType("BOOL"))
        #expect(try Safetensors.read(url, only: ["w"]).tensors["w"]?.scalars == [1, 2])
    }

    @Test func dtypeNamesMapBothWays() {
        for dtype in DType.allCases {
            #expect(SafetensorsDType(dtype).dtype == dtype)
            #expect(SafetensorsDType(dtype).byteSize == dtype.byteSize)
        }
        #expect(SafetensorsDType(.bfloat16).rawValue == "BF16")
        #expect(SafetensorsDType(rawValue: "F8_E4M3")?.byteSize == 1)
    }
}

/// A safetensors file made of `json` (padded with spaces to a multiple of 8 unless `pad` is false)
/// and `data` — for crafting valid and invalid files by hand.
func craftSafetensors(json: String, data: [UInt8], pad: Bool = true, headerLength: UInt64? = nil) -> [UInt8] {
    var header = Array(json.utf8)
    if pad { header += Array(repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8) }
    let n = headerLength ?? UInt64(header.count)
    return withUnsafeBytes(of: n.littleEndian) { Array($0) } + header + data
}
