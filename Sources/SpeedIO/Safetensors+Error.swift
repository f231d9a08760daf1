// Why a safetensors file could not be read or written: the file, the tensor at fault (if any) and the problem.
// Invariant: readers detect every problem listed here before returning any tensor, so a throw means nothing loaded.

/// A safetensors file that could not be read or written.
///
/// ```swift
/// do { _ = try Safetensors.read(url) }
/// catch let error as SafetensorsError {
///     print(error)
///     // model.safetensors: tensor "wte.weight": data_offsets [0, 100) hold 100 bytes,
///     // but shape [10, 4] of F32 needs 160
/// }
/// ```
public struct SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What is wrong.
    public enum Problem: Equatable, Sendable {
        /// The file is shorter than the 8-byte header length field.
        case fileTooShort(fileSize: Int)
        /// The header length field points past the end of the file (typical of truncation).
        case headerLengthBeyondFile(headerLength: UInt64, fileSize: Int)
        /// The header length exceeds the 100 MB limit every safetensors reader enforces.
        case headerTooLarge(headerLength: UInt64)
        /// The header is not JSON of the expected form (the message says where).
        case invalidHeader(String)
        /// A `dtype` string that no safetensors version defines.
        case unknownDType(String)
        /// A valid safetensors dtype that SwiftSpeed tensors cannot hold (U8, BOOL, F8_*, …).
        case unsupportedDType(String)
        /// A negative dimension, or a shape whose byte size overflows.
        case invalidShape([Int])
        /// `data_offsets` with begin > end, or an end past the data region.
        case offsetsOutOfBounds(begin: Int, end: Int, dataLength: Int)
        /// This tensor's bytes overlap another tensor's.
        case overlappingOffsets(other: String)
        /// Bytes of the data region that no tensor claims (a gap, or trailing bytes).
        case uncoveredData(begin: Int, end: Int)
        /// `end - begin` differs from shape × dtype size.
        case byteCountMismatch(shape: [Int], dtype: String, expected: Int, found: Int)
        /// A name used twice, `__metadata__` used as a tensor name, or a requested name not in the file.
        case invalidName(String)
        /// The OS refused an operation (open, read, write, rename …); the message says which and why.
        case io(String)
        /// The path is not a regular file (a FIFO, a directory, a device …); `kind` says what it is.
        case notARegularFile(kind: String)
        /// The tensor's bytes do not have the CRC-32C the header's ``Safetensors/checksumKey`` metadata records.
        case checksumMismatch(recorded: UInt32, computed: UInt32)
        /// The file became shorter than its header describes after it was opened (and mapped): it was truncated or
        /// rewritten in place while being read. Reading the missing bytes of a mapping would crash the process.
        case fileShrank(expectedSize: Int, size: Int)
    }

    /// The file involved.
    public var path: String
    /// The tensor at fault, when the problem belongs to one.
    public var tensor: String?
    public var problem: Problem

    public init(path: String, tensor: String? = nil, problem: Problem) {
        self.path = path
        self.tensor = tensor
        self.problem = problem
    }

    public var description: String {
        let subject = tensor.map { "\(path): tensor \"\($0)\"" } ?? path
        return "\(subject): \(problemDescription)"
    }

    private var problemDescription: String {
        switch problem {
        case .fileTooShort(let size):
            return "file is \(size) bytes, shorter than the 8-byte header length field; "
                + "it is not a safetensors file or was truncated"
        case .headerLengthBeyondFile(let n, let size):
            // A zip archive (PyTorch's .bin/.pt) starts with "PK": a common wrong file.
            let zip = n & 0xFFFF == 0x4B50
                ? " (it starts with \"PK\": a zip archive such as a PyTorch .bin/.pt file?)" : ""
            return "header length field says \(n) bytes but only \(max(size - 8, 0)) follow it; "
                + "the file is truncated or not a safetensors file\(zip)"
        case .headerTooLarge(let n):
            return "header length \(n) exceeds the 100,000,000-byte limit of the safetensors format"
        case .invalidHeader(let message):
            return "invalid JSON header: \(message)"
        case .unknownDType(let name):
            let known = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "unknown dtype \"\(name)\" (safetensors defines \(known))"
        case .unsupportedDType(let name):
            let held = SafetensorsDType.allCases.filter { $0.dtype != nil }.map(\.rawValue).joined(separator: ", ")
            return "dtype \(name) is not supported by SwiftSpeed tensors (they hold \(held)); "
                + "read the other tensors with Safetensors.read(_:only:)"
        case .invalidShape(let shape):
            return "invalid shape \(shape): dimensions must be non-negative and the byte size must fit in an Int"
        case .offsetsOutOfBounds(let begin, let end, let length):
            return "data_offsets [\(begin), \(end)) do not fit the \(length)-byte data region"
        case .overlappingOffsets(let other):
            return "its bytes overlap those of tensor \"\(other)\""
        case .uncoveredData(let begin, let end):
            return "bytes [\(begin), \(end)) of the data region belong to no tensor"
        case .byteCountMismatch(let shape, let dtype, let expected, let found):
            return "data_offsets hold \(found) bytes, but shape \(shape) of \(dtype) needs \(expected)"
        case .invalidName(let message):
            return message
        case .io(let message):
            return message
        case .notARegularFile(let kind):
            return "is \(kind), not a regular file; safetensors and checkpoint files must be regular files "
                + "(opening it is refused so that a read cannot block) — put the saved file back in its place"
        case .fileShrank(let expected, let size):
            return "the file is now \(size) bytes but its header describes \(expected): it was truncated or rewritten "
                + "while being read (reading on would crash the process); let the writer finish, or replace files "
                + "by writing a new one and renaming it over the old"
        case .checksumMismatch(let recorded, let computed):
            return "checksum mismatch: the header records CRC32C \(Self.hex(recorded)) for its data but the bytes "
                + "give \(Self.hex(computed)); the file is corrupt; re-save or restore it"
        }
    }

    /// `0x` and 8 hex digits.
    static func hex(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}
