// Writing Hugging Face safetensors files: 8-byte LE header length, padded JSON header, raw LE tensor bytes.
// Invariant: files are written through AtomicFile, so the target holds the old file or the complete new one;
// a dictionary is written sorted by (dtype rank, name) as the Rust reference does, which keeps every tensor
// element-aligned (larger elements first) and the bytes identical to Python's for the same tensors.

import Foundation
import SpeedCore

/// Reads and writes the safetensors format (Hugging Face's `model.safetensors`), checkpoints' tensor format.
///
/// Supported dtypes: F64, F32, F16, BF16, I64, I32. Other safetensors dtypes (U8, BOOL, F8_*, …) are
/// listed by ``header(_:)`` and refused by ``read(_:only:)`` unless left out with `only:`.
/// Data is little-endian, as on every platform SwiftSpeed runs on.
///
/// ```swift
/// let url = URL(fileURLWithPath: "model.safetensors")
/// try Safetensors.write(["w": Tensor([1, 2, 3] as [Float])], metadata: ["format": "pt"], to: url)
/// let (tensors, metadata) = try Safetensors.read(url)
/// tensors["w"]!.scalars   // [1.0, 2.0, 3.0]
/// metadata["format"]      // "pt"
/// ```
public enum Safetensors {
    /// Writes `tensors` and `metadata` to `url` atomically (temp file, fsync, rename).
    ///
    /// Tensors are laid out in the reference implementation's order — by dtype (I64, F64, F32, I32,
    /// BF16, F16), then by name — so the same tensors give the same bytes as Python's `save_file`, and
    /// each tensor's data is aligned to its element size. Tensors on other devices are copied to the
    /// CPU first.
    ///
    /// ```swift
    /// try Safetensors.write(model.stateDict(), metadata: ["format": "pt"], to: url)
    /// ```
    /// - Parameter checksums: also record each tensor's CRC-32C under ``checksumKey`` (replacing any
    ///   such key of `metadata`), so that ``read(_:only:verify:)`` detects changed bytes.
    /// - Throws: ``SafetensorsError`` for a tensor named `__metadata__` or an I/O failure; the
    ///   file at `url` is then unchanged.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], checksums: Bool = false,
                             to url: URL) throws {
        let ordered = tensors.sorted { a, b in
            let (rankA, rankB) = (fileOrderRank(a.value.dtype), fileOrderRank(b.value.dtype))
            return rankA != rankB ? rankA > rankB : a.key < b.key
        }
        try write(ordered.map { ($0.key, $0.value) }, metadata: metadata, checksums: checksums, to: url)
    }

    /// Writes `tensors` in the order given (names must be unique).
    ///
    /// ```swift
    /// try Safetensors.write([("embed", embed), ("head", head)], to: url)
    /// ```
    /// - Parameter checksums: also record each tensor's CRC-32C under ``checksumKey``.
    /// - Throws: ``SafetensorsError`` for a repeated name, a tensor named `__metadata__`, or an I/O
    ///   failure; the file at `url` is then unchanged.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], checksums: Bool = false,
                             to url: URL) throws {
        let path = url.path
        var seen = Set<String>()
        for (name, _) in tensors {
            guard name != "__metadata__" else {
                throw SafetensorsError(path: path, tensor: name, problem: .invalidName(
                    "\"__metadata__\" is reserved for the metadata map and cannot name a tensor"))
            }
            guard seen.insert(name).inserted else {
                throw SafetensorsError(path: path, tensor: name, problem: .invalidName("the name is used twice"))
            }
        }

        let host = noGrad { tensors.map { ($0.0, $0.1.device.isCPU ? $0.1 : $0.1.to(.cpu)) } }
        var entries: [SafetensorsHeader.Entry] = []
        var offset = 0
        for (name, t) in host {
            entries.append(.init(name: name, dtype: SafetensorsDType(t.dtype), shape: t.shape,
                                 dataOffsets: offset..<(offset + t.byteCount)))
            offset += t.byteCount
        }
        var metadata = metadata
        if checksums { metadata[checksumKey] = encodeChecksums(host) }
        let header = SafetensorsHeader(entries: entries, metadata: metadata, headerLength: 0, dataLength: offset)
        let json = header.encodedJSON()

        do {
            try AtomicFile.write(to: url) { out in
                var length = UInt64(json.count).littleEndian
                try withUnsafeBytes(of: &length) { try out.write($0) }
                try out.write(json)
                for (_, t) in host where t.byteCount > 0 {
                    try out.write(UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount))
                }
            }
        } catch let error as AtomicFileError {
            throw SafetensorsError(path: path, problem: .io(error.message))
        }
    }

    /// The Rust reference's dtype order (its `Dtype` enum), largest first when sorted descending.
    private static func fileOrderRank(_ dtype: DType) -> Int {
        switch dtype {
        case .int64: 6
        case .float64: 5
        case .float32: 4
        case .int32: 3
        case .bfloat16: 2
        case .float16: 1
        }
    }
}
