// The safetensors JSON header: dtypes, per-tensor entries, parsing with full validation, and encoding.
// Invariant: a parsed header's entries, sorted by offset, tile the data region exactly — no gap, no overlap,
// each exactly shape × dtype size bytes — so any entry can be read without further checks.

import Foundation
import SpeedCore

/// The element types the safetensors format defines (`"dtype"` in the header).
///
/// ```swift
/// SafetensorsDType(.bfloat16).rawValue   // "BF16"
/// SafetensorsDType.u8.dtype              // nil: SwiftSpeed tensors cannot hold it
/// ```
public enum SafetensorsDType: String, Sendable, Hashable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16", i64 = "I64", i32 = "I32"
    case u64 = "U64", u32 = "U32", i16 = "I16", u16 = "U16", i8 = "I8", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", f8e4m3fnuz = "F8_E4M3FNUZ", f8e5m2fnuz = "F8_E5M2FNUZ"
    case f8e8m0 = "F8_E8M0", c64 = "C64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64, .c64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz, .f8e8m0: 1
        }
    }

    /// The SwiftSpeed dtype with the same bytes, or nil when tensors cannot hold this type.
    public var dtype: DType? {
        switch self {
        case .f64: .float64
        case .f32: .float32
        case .f16: .float16
        case .bf16: .bfloat16
        case .i64: .int64
        case .i32: .int32
        default: nil
        }
    }

    /// The safetensors name of a SwiftSpeed dtype.
    public init(_ dtype: DType) {
        switch dtype {
        case .float64: self = .f64
        case .float32: self = .f32
        case .float16: self = .f16
        case .bfloat16: self = .bf16
        case .int64: self = .i64
        case .int32: self = .i32
        }
    }
}

/// A safetensors file's header: what tensors it holds and where, without their data.
///
/// ```swift
/// let header = try Safetensors.header(URL(fileURLWithPath: "model.safetensors"))
/// for entry in header.entries { print(entry.name, entry.dtype, entry.shape) }
/// header.metadata["format"]   // "pt"
/// ```
public struct SafetensorsHeader: Sendable, Equatable {
    /// One tensor's description.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var dtype: SafetensorsDType
        public var shape: [Int]
        /// Byte range within the data region (add ``SafetensorsHeader/dataStart`` for file offsets).
        public var dataOffsets: Range<Int>

        public init(name: String, dtype: SafetensorsDType, shape: [Int], dataOffsets: Range<Int>) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.dataOffsets = dataOffsets
        }
    }

    /// The tensors in file order (ascending data offset).
    public var entries: [Entry]
    /// The `__metadata__` map (empty when absent).
    public var metadata: [String: String]
    /// Byte length N of the JSON header, padding included.
    public var headerLength: Int
    /// Byte length of the data region after the header.
    public var dataLength: Int
    /// Each tensor's CRC-32C, from the ``Safetensors/checksumKey`` metadata (nil when the file records none).
    /// When present it names every tensor of the file, no more and no less (checked on parsing).
    public var checksums: [String: UInt32]? = nil

    /// File offset of the data region: the 8-byte length field plus the header.
    public var dataStart: Int { 8 + headerLength }

    /// The entry named `name`, if present.
    public subscript(name: String) -> Entry? { entries.first { $0.name == name } }

    /// Safetensors readers refuse headers above 100 MB; so do we (a corrupt length must not allocate).
    public static let maxHeaderLength = 100_000_000
}

// MARK: - Parsing and validation

extension SafetensorsHeader {
    /// Parses and validates `json` (the N header bytes) for a file whose data region is `dataLength` bytes.
    static func parse(_ json: [UInt8], dataLength: Int, path: String) throws -> SafetensorsHeader {
        let raw: RawHeader
        do {
            raw = try JSONDecoder().decode(RawHeader.self, from: Data(json))
        } catch let problem as HeaderProblem {
            throw SafetensorsError(path: path, tensor: problem.tensor, problem: .invalidHeader(problem.message))
        } catch {
            throw SafetensorsError(path: path, problem: .invalidHeader(Self.describe(error, json: json)))
        }

        var entries: [Entry] = []
        entries.reserveCapacity(raw.tensors.count)
        for t in raw.tensors {
            func fail(_ p: SafetensorsError.Problem) -> SafetensorsError {
                SafetensorsError(path: path, tensor: t.name, problem: p)
            }
            guard let dtype = SafetensorsDType(rawValue: t.dtype) else { throw fail(.unknownDType(t.dtype)) }
            guard let bytes = Self.byteCount(shape: t.shape, elementSize: dtype.byteSize) else {
                throw fail(.invalidShape(t.shape))
            }
            let (begin, end) = (t.offsets[0], t.offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw fail(.offsetsOutOfBounds(begin: begin, end: end, dataLength: dataLength))
            }
            guard end - begin == bytes else {
                throw fail(.byteCountMismatch(shape: t.shape, dtype: dtype.rawValue, expected: bytes,
                                              found: end - begin))
            }
            entries.append(Entry(name: t.name, dtype: dtype, shape: t.shape, dataOffsets: begin..<end))
        }

        // Sorted by offset, the entries must tile [0, dataLength) exactly.
        entries.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name)
                     < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        var covered = 0
        var previous: String?
        for e in entries {
            let begin = e.dataOffsets.lowerBound
            if begin < covered {
                throw SafetensorsError(path: path, tensor: e.name,
                                       problem: .overlappingOffsets(other: previous ?? ""))
            }
            if begin > covered {
                throw SafetensorsError(path: path, tensor: e.name,
                                       problem: .uncoveredData(begin: covered, end: begin))
            }
            covered = e.dataOffsets.upperBound
            previous = e.name
        }
        if covered != dataLength {
            throw SafetensorsError(path: path, problem: .uncoveredData(begin: covered, end: dataLength))
        }
        let checksums = try raw.metadata[Safetensors.checksumKey].map {
            try Safetensors.decodeChecksums($0, tensors: entries.map(\.name), path: path)
        }
        return SafetensorsHeader(entries: entries, metadata: raw.metadata, headerLength: json.count,
                                 dataLength: dataLength, checksums: checksums)
    }

    /// shape × elementSize, or nil for a negative dimension or overflow.
    static func byteCount(shape: [Int], elementSize: Int) -> Int? {
        var total = elementSize
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = product
        }
        return total
    }

    private static func describe(_ error: Error, json: [UInt8]) -> String {
        let start = String(decoding: json.prefix(48), as: UTF8.self)
            .unicodeScalars.map { $0.value < 0x20 || $0 == "\u{FFFD}" ? "?" : String($0) }.joined()
        let hint = " (the header starts with \"\(start)\")"
        guard let decoding = error as? DecodingError else { return "\(error)\(hint)" }
        switch decoding {
        case .dataCorrupted(let context):
            let underlying = context.underlyingError.map { ": \($0)" } ?? ""
            return "not valid UTF-8 JSON\(underlying)\(hint)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context):
            return "\(context.debugDescription)\(hint)"
        @unknown default:
            return "\(decoding)\(hint)"
        }
    }
}

/// A header problem found while decoding, before the file's sizes are considered.
private struct HeaderProblem: Error {
    var tensor: String?
    var message: String
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// The header as JSON says it, checked only for form (types and presence of fields).
private struct RawHeader: Decodable {
    struct RawEntry {
        var name: String
        var dtype: String
        var shape: [Int]
        var offsets: [Int]
    }

    var tensors: [RawEntry] = []
    var metadata: [String: String] = [:]

    init(from decoder: Decoder) throws {
        let top: KeyedDecodingContainer<AnyKey>
        do { top = try decoder.container(keyedBy: AnyKey.self) } catch DecodingError.typeMismatch {
            throw HeaderProblem(message: "the header must be a JSON object of tensor entries")
        }
        for key in top.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
            let name = key.stringValue
            if name == "__metadata__" {
                guard let map = try? top.decode([String: String].self, forKey: key) else {
                    throw HeaderProblem(message: "\"__metadata__\" must be an object mapping strings to strings")
                }
                metadata = map
                continue
            }
            func problem(_ message: String) -> HeaderProblem { HeaderProblem(tensor: name, message: message) }
            guard let entry = try? top.nestedContainer(keyedBy: AnyKey.self, forKey: key) else {
                throw problem("the entry must be an object with \"dtype\", \"shape\" and \"data_offsets\"")
            }
            guard let dtype = try? entry.decode(String.self, forKey: AnyKey("dtype")) else {
                throw problem("\"dtype\" is missing or not a string")
            }
            guard let shape = try? entry.decode([Int].self, forKey: AnyKey("shape")) else {
                throw problem("\"shape\" is missing or not an array of integers")
            }
            guard let offsets = try? entry.decode([Int].self, forKey: AnyKey("data_offsets")),
                  offsets.count == 2 else {
                throw problem("\"data_offsets\" is missing or not an array of two integers [begin, end]")
            }
            tensors.append(RawEntry(name: name, dtype: dtype, shape: shape, offsets: offsets))
        }
    }
}

// MARK: - Encoding

extension SafetensorsHeader {
    /// The header's JSON bytes, padded with spaces to a multiple of 8 (so the data region is 8-aligned).
    /// Metadata comes first, then the entries in the order given.
    func encodedJSON() -> [UInt8] {
        var json = "{"
        var first = true
        func separator() { if first { first = false } else { json += "," } }
        if !metadata.isEmpty {
            separator()
            json += "\"__metadata__\":{"
            json += metadata.sorted { $0.key < $1.key }
                .map { "\(Self.quoted($0.key)):\(Self.quoted($0.value))" }
                .joined(separator: ",")
            json += "}"
        }
        for e in entries {
            separator()
            let shape = e.shape.map(String.init).joined(separator: ",")
            json += "\(Self.quoted(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(e.dataOffsets.lowerBound),\(e.dataOffsets.upperBound)]}"
        }
        json += "}"
        var bytes = Array(json.utf8)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8))
        return bytes
    }

    /// `s` as a JSON string literal (the config's JSON writer does the escaping).
    static func quoted(_ s: String) -> String { JSONText.quoted(s) }
}
