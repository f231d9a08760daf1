// TensorBoard event files decoded independently here: TFRecord lengths and CRCs, then the protobuf fields.
// Invariant: this file's decoder shares no code with the writer except CRC32C, which is pinned to known vectors.

import Foundation
import SpeedIO
import SpeedRuntime
import SpeedTestSupport
import Testing

/// One decoded protobuf field.
private enum ProtoField: Equatable {
    case varint(UInt64), fixed64(UInt64), fixed32(UInt32), bytes([UInt8])
}

/// A minimal protobuf decoder: (field number, value) pairs in order.
private func decodeProto(_ bytes: [UInt8]) throws -> [(Int, ProtoField)] {
    struct Malformed: Error {}
    var i = 0
    func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < bytes.count, shift < 64 else { throw Malformed() }
            let b = bytes[i]; i += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }
    func fixed(_ n: Int) throws -> UInt64 {
        guard i + n <= bytes.count else { throw Malformed() }
        defer { i += n }
        return bytes[i..<(i + n)].reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    var fields: [(Int, ProtoField)] = []
    while i < bytes.count {
        let key = try varint()
        let field = Int(key >> 3)
        switch key & 7 {
        case 0: fields.append((field, .varint(try varint())))
        case 1: fields.append((field, .fixed64(try fixed(8))))
        case 5: fields.append((field, .fixed32(UInt32(try fixed(4)))))
        case 2:
            let n = Int(try varint())
            guard i + n <= bytes.count else { throw Malformed() }
            fields.append((field, .bytes(Array(bytes[i..<(i + n)]))))
            i += n
        default: throw Malformed()
        }
    }
    return fields
}

/// Splits a TFRecord stream into record payloads, checking both masked CRCs of every record.
private func decodeRecords(_ bytes: [UInt8]) -> [[UInt8]] {
    func le(_ range: Range<Int>) -> UInt64 { bytes[range].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
    var records: [[UInt8]] = []
    var i = 0
    while i < bytes.count {
        guard i + 12 <= bytes.count else { Issue.record("truncated record header at \(i)"); break }
        let length = Int(le(i..<(i + 8)))
        #expect(UInt32(le((i + 8)..<(i + 12))) == CRC32C.masked(CRC32C.checksum(bytes[i..<(i + 8)])),
                "length CRC of record at \(i)")
        let start = i + 12
        guard start + length + 4 <= bytes.count else { Issue.record("truncated record at \(i)"); break }
        let data = Array(bytes[start..<(start + length)])
        #expect(UInt32(le((start + length)..<(start + length + 4))) == CRC32C.masked(CRC32C.checksum(data)),
                "data CRC of record at \(i)")
        records.append(data)
        i = start + length + 4
    }
    return records
}

/// An Event's fields of interest.
private struct DecodedEvent: Equatable {
    var wallTime: Double?
    var step: Int64?
    var fileVersion: String?
    var values: [(tag: String, simpleValue: Float)] = []

    static func == (a: DecodedEvent, b: DecodedEvent) -> Bool {
        a.wallTime == b.wallTime && a.step == b.step && a.fileVersion == b.fileVersion
            && a.values.map(\.tag) == b.values.map(\.tag)
            && a.values.map(\.simpleValue.bitPattern) == b.values.map(\.simpleValue.bitPattern)
    }

    init(wallTime: Double? = nil, step: Int64? = nil, fileVersion: String? = nil,
         values: [(tag: String, simpleValue: Float)] = []) {
        self.wallTime = wallTime; self.step = step; self.fileVersion = fileVersion; self.values = values
    }

    init(_ bytes: [UInt8]) throws {
        for (field, value) in try decodeProto(bytes) {
            switch (field, value) {
            case (1, .fixed64(let bits)): wallTime = Double(bitPattern: bits)
            case (2, .varint(let v)): step = Int64(bitPattern: v)
            case (3, .bytes(let s)): fileVersion = String(decoding: s, as: UTF8.self)
            case (5, .bytes(let summary)):
                for case (1, .bytes(let value)) in try decodeProto(summary) {
                    var tag = "", simple: Float = .nan
                    for (f, v) in try decodeProto(value) {
                        if f == 1, case .bytes(let t) = v { tag = String(decoding: t, as: UTF8.self) }
                        if f == 2, case .fixed32(let b) = v { simple = Float(bitPattern: b) }
                    }
                    values.append((tag, simple))
                }
            default: Issue.record("unexpected Event field \(field): \(value)")
            }
        }
    }
}

@Suite struct MonitorTensorBoardTests {
    @Test func crc32cMatchesKnownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // RFC 3720 (iSCSI) appendix B.4.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        let a = Array("12345".utf8), b = Array("6789".utf8)
        #expect(CRC32C.checksum(b, continuing: CRC32C.checksum(a)) == 0xE306_9283)
    }

    @Test func maskingMatchesTFRecordAndInverts() {
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
        // ((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xa282ead8, computed by hand.
        #expect(CRC32C.masked(0xE306_9283) == 0x2507_C60D &+ 0xA282_EAD8)
        for crc: UInt32 in [0, 1, 0xDEAD_BEEF, .max] { #expect(CRC32C.unmasked(CRC32C.masked(crc)) == crc) }
    }

    @Test func scalarEventHasTheExactProtobufBytes() {
        let event = TensorBoardEvent.scalar(tag: "a", value: 1, step: 1, wallTime: 0)
        #expect(event == [
            0x09, 0, 0, 0, 0, 0, 0, 0, 0,            // wall_time (1, fixed64) = 0.0
            0x10, 0x01,                              // step (2, varint) = 1
            0x2A, 0x0A,                              // summary (5, bytes), 10 bytes
            0x0A, 0x08,                              //   value (1, bytes), 8 bytes
            0x0A, 0x01, 0x61,                        //     tag (1, bytes) = "a"
            0x15, 0x00, 0x00, 0x80, 0x3F,            //     simple_value (2, fixed32) = 1.0f
        ])
        let record = TFRecord.frame(event)
        #expect(record.count == 8 + 4 + event.count + 4)
        #expect(Array(record[0..<8]) == [UInt8(event.count), 0, 0, 0, 0, 0, 0, 0])
        #expect(decodeRecords(record) == [event])
    }

    @Test func eventFileDecodesToTheWrittenScalars() throws {
        let tmp = IOTestDirectory()
        let tb = try TensorBoardMonitor(outputPath: tmp.url.path, jobName: "gpt2", clock: { 1_700_000_000.25 })
        tb.write([
            MonitorEvent(tag: "Train/Samples/train_loss", value: 2.5, step: 64),
            MonitorEvent(tag: "Train/Samples/lr", value: 1e-4, step: 64),
        ])
        tb.write(events: [("Train/Samples/train_loss", 1.25, 1 << 40), ("neg", -3, -5)])
        tb.write([])
        tb.flush()

        let name = URL(fileURLWithPath: tb.path).lastPathComponent
        #expect(URL(fileURLWithPath: tb.path).deletingLastPathComponent().path == tmp.url.path + "/gpt2")
        let parts = name.split(separator: ".")
        #expect(parts.count >= 5 && name.hasPrefix("events.out.tfevents.1700000000."))
        #expect(parts.last == Substring(String(getpid())))

        let records = decodeRecords(try [UInt8](Data(contentsOf: URL(fileURLWithPath: tb.path))))
        let events = try records.map(DecodedEvent.init)
        #expect(events == [
            DecodedEvent(wallTime: 1_700_000_000.25, fileVersion: "brain.Event:2"),
            DecodedEvent(wallTime: 1_700_000_000.25, step: 64, values: [("Train/Samples/train_loss", 2.5)]),
            DecodedEvent(wallTime: 1_700_000_000.25, step: 64, values: [("Train/Samples/lr", Float(1e-4))]),
            DecodedEvent(wallTime: 1_700_000_000.25, step: 1 << 40, values: [("Train/Samples/train_loss", 1.25)]),
            DecodedEvent(wallTime: 1_700_000_000.25, step: -5, values: [("neg", -3)]),
        ])
    }

    @Test func monitorsStartedInTheSameSecondGetDistinctFiles() throws {
        let tmp = IOTestDirectory()
        let a = try TensorBoardMonitor(outputPath: tmp.url.path, jobName: "j", clock: { 42 })
        let b = try TensorBoardMonitor(outputPath: tmp.url.path, jobName: "j", clock: { 42 })
        #expect(a.path != b.path)
        #expect(b.path == a.path + ".1")
        #expect(a.path.hasSuffix(".\(getpid())") && a.path.contains("events.out.tfevents.0000000042."))
        for m in [a, b] {
            let records = decodeRecords(try [UInt8](Data(contentsOf: URL(fileURLWithPath: m.path))))
            #expect(try records.map(DecodedEvent.init) == [DecodedEvent(wallTime: 42, fileVersion: "brain.Event:2")])
        }
    }

    @Test func monitorsWorkThroughTheProtocol() throws {
        let tmp = IOTestDirectory()
        let monitors: [any Monitor] = [
            try CSVMonitor(outputPath: tmp.url.path, jobName: "j"),
            try TensorBoardMonitor(outputPath: tmp.url.path, jobName: "j"),
        ]
        for m in monitors {
            m.write([MonitorEvent(tag: "Train/Samples/lr", value: 0.5, step: 3)])
            m.flush()
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: tmp.url.path + "/j")
        #expect(files.contains("Train_Samples_lr.csv"))
        #expect(files.contains { $0.hasPrefix("events.out.tfevents.") })
    }
}
