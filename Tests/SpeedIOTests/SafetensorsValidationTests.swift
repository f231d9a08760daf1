// Corrupt safetensors files: each defect is a SafetensorsError naming the file, the tensor and the problem.
// Invariant: every case here must throw from both header(_:) and read(_:) — a bad file is never half-loaded.

import Foundation
import SpeedCore
import SpeedIO
import SpeedTestSupport
import Testing

@Suite struct SafetensorsValidationTests {
    /// A valid three-tensor file's bytes and its header length.
    static func validFile() throws -> (bytes: [UInt8], headerLength: Int) {
        let dir = IOTestDirectory()
        try Safetensors.write([
            "a": Tensor([1, 2, 3, 4] as [Float]),
            "b": Tensor([5, 6] as [Float], dtype: .bfloat16),
            "c": Tensor([7, 8] as [Int]),
        ], metadata: ["k": "v"], to: dir.file("ok.safetensors"))
        let bytes = try [UInt8](Data(contentsOf: dir.file("ok.safetensors")))
        let n = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        return (bytes, n)
    }

    /// Writes `bytes` to a file and returns the error both readers throw (they must agree).
    func error(reading bytes: [UInt8], file: String = "bad.safetensors") throws -> SafetensorsError? {
        let dir = IOTestDirectory()
        let url = dir.file(file)
        try Data(bytes).write(to: url)
        let fromHeader = #expect(throws: SafetensorsError.self) { try Safetensors.header(url) }
        let fromRead = #expect(throws: SafetensorsError.self) { try Safetensors.read(url) }
        #expect(fromHeader == fromRead)
        if let fromRead {
            #expect(fromRead.path == url.path)
            #expect("\(fromRead)".hasPrefix(url.path), "the message names the file")
        }
        return fromRead
    }

    @Test func truncationAtEveryRegionIsCaught() throws {
        let (bytes, n) = try Self.validFile()
        for cut in [0, 1, 7] {
            #expect(try error(reading: Array(bytes.prefix(cut)))?.problem == .fileTooShort(fileSize: cut))
        }
        for cut in [8, 9, 8 + n / 2, 8 + n - 1] {
            #expect(try error(reading: Array(bytes.prefix(cut)))?.problem
                    == .headerLengthBeyondFile(headerLength: UInt64(n), fileSize: cut))
        }
        // Inside the data region: the header promises bytes the file no longer has.
        for cut in [8 + n, 8 + n + 3, bytes.count - 1] {
            let e = try error(reading: Array(bytes.prefix(cut)))
            guard case .offsetsOutOfBounds(_, let end, let length)? = e?.problem else {
                Issue.record("cut at \(cut): expected offsetsOutOfBounds, got \(String(describing: e))")
                continue
            }
            #expect(length == cut - 8 - n && end > length)
            #expect(e?.tensor != nil)
        }
    }

    @Test func corruptHeaderLengthIsCaught() throws {
        let (bytes, n) = try Self.validFile()
        func with(length: UInt64) -> [UInt8] {
            withUnsafeBytes(of: length.littleEndian) { Array($0) } + bytes[8...]
        }
        // A flipped high bit: far beyond the file.
        let huge = UInt64(n) | (1 << 62)
        #expect(try error(reading: with(length: huge))?.problem
                == .headerLengthBeyondFile(headerLength: huge, fileSize: bytes.count))
        // Shorter: the JSON is cut mid-way. Longer: binary data after the JSON.
        for wrong in [UInt64(n - 8), UInt64(n + 8)] {
            guard case .invalidHeader? = try error(reading: with(length: wrong))?.problem else {
                Issue.record("header length \(wrong) (true \(n)) was not reported as an invalid header")
                continue
            }
        }
    }

    @Test func headerAboveTheFormatLimitIsRefusedWithoutReadingIt() throws {
        let dir = IOTestDirectory()
        let url = dir.file("huge.safetensors")
        let n = UInt64(SafetensorsHeader.maxHeaderLength + 8)
        try Data(withUnsafeBytes(of: n.littleEndian) { Array($0) }).write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 8 + n)   // sparse: no 100 MB written
        try handle.close()
        let e = #expect(throws: SafetensorsError.self) { try Safetensors.header(url) }
        #expect(e?.problem == .headerTooLarge(headerLength: n))
    }

    @Test func overlappingOffsetsNameBothTensors() throws {
        let json = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let e = try error(reading: craftSafetensors(json: json, data: Array(repeating: 0, count: 12)))
        #expect(e?.tensor == "b")
        #expect(e?.problem == .overlappingOffsets(other: "a"))
        #expect(e.map { "\($0)".contains("\"b\"") && "\($0)".contains("\"a\"") } == true)
    }

    @Test func gapsAndTrailingBytesAreUncoveredData() throws {
        let gap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#
        let e1 = try error(reading: craftSafetensors(json: gap, data: Array(repeating: 0, count: 20)))
        #expect(e1?.tensor == "b")
        #expect(e1?.problem == .uncoveredData(begin: 8, end: 12))

        let trailing = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let e2 = try error(reading: craftSafetensors(json: trailing, data: Array(repeating: 0, count: 12)))
        #expect(e2?.tensor == nil)
        #expect(e2?.problem == .uncoveredData(begin: 8, end: 12))

        let late = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(try error(reading: craftSafetensors(json: late, data: Array(repeating: 0, count: 8)))?.problem
                == .uncoveredData(begin: 0, end: 4))
    }

    @Test func byteCountMustMatchShapeTimesDTypeSize() throws {
        let json = #"{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}}"#
        let e = try error(reading: craftSafetensors(json: json, data: Array(repeating: 0, count: 8)))
        #expect(e?.tensor == "w")
        #expect(e?.problem == .byteCountMismatch(shape: [3], dtype: "BF16", expected: 6, found: 8))
    }

    @Test func offsetsOutOfOrderOrPastTheEnd() throws {
        let backwards = #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#
        #expect(try error(reading: craftSafetensors(json: backwards, data: Array(repeating: 0, count: 8)))?.problem
                == .offsetsOutOfBounds(begin: 8, end: 4, dataLength: 8))
        let past = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        #expect(try error(reading: craftSafetensors(json: past, data: Array(repeating: 0, count: 8)))?.problem
                == .offsetsOutOfBounds(begin: 0, end: 16, dataLength: 8))
    }

    @Test func unknownDTypeAndBadShapes() throws {
        let unknown = #"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#
        let e = try error(reading: craftSafetensors(json: unknown, data: Array(repeating: 0, count: 16)))
        #expect(e?.tensor == "w" && e?.problem == .unknownDType("F128"))
        let negative = #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#
        #expect(try error(reading: craftSafetensors(json: negative, data: []))?.problem == .invalidShape([-1]))
        let overflow = #"{"w":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#
        #expect(try error(reading: craftSafetensors(json: overflow, data: []))?.problem
                == .invalidShape([1 << 62, 4]))
    }

    @Test(arguments: [
        ("{not json", nil),
        ("[1, 2]", nil),
        (#"{"w": 3}"#, "w"),
        (#"{"w":{"dtype":"F32","shape":[1]}}"#, "w"),
        (#"{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, "w"),
        (#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, "w"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, "w"),
        (#"{"__metadata__":{"k":1}}"#, nil),
    ] as [(String, String?)])
    func malformedHeadersAreInvalidHeader(json: String, tensor: String?) throws {
        let e = try error(reading: craftSafetensors(json: json, data: [0, 0, 0, 0]))
        guard case .invalidHeader? = e?.problem else {
            Issue.record("\(json): expected invalidHeader, got \(String(describing: e))")
            return
        }
        #expect(e?.tensor == tensor)
    }

    @Test func invalidUTF8HeaderIsInvalidHeader() throws {
        var bytes = craftSafetensors(json: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#, data: [])
        bytes[10] = 0xFF
        guard case .invalidHeader? = try error(reading: bytes)?.problem else {
            Issue.record("invalid UTF-8 was accepted")
            return
        }
    }

    @Test func missingFilesAreIOErrorsAndDirectoriesAreNotRegularFiles() throws {
        let dir = IOTestDirectory()
        let missing = #expect(throws: SafetensorsError.self) { try Safetensors.read(dir.file("nope.safetensors")) }
        guard case .io(let message)? = missing?.problem else { Issue.record("not an io error"); return }
        #expect(message.contains("No such file"))
        let directory = #expect(throws: SafetensorsError.self) { try Safetensors.header(dir.url) }
        #expect(directory?.problem == .notARegularFile(kind: "a directory"))
    }
}
