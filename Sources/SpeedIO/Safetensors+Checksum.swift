// Per-tensor CRC-32C checksums in a safetensors file's metadata: how they are written and how they are read back.
// Invariant: the `crc32c` metadata value is a JSON object naming every tensor of the file exactly once, each with
// 8 lowercase hex digits — the CRC-32C of that tensor's bytes as stored in the data region.

import Foundation
import SpeedCore

extension Safetensors {
    /// The `__metadata__` key that holds per-tensor CRC-32C checksums, written when `write(…, checksums: true)` is
    /// asked for them (checkpoints always are) and verified by ``read(_:only:verify:)``:
    /// `{"fp32_flat_partition":"1c291ca3","exp_avg":"…"}`. Other safetensors readers ignore it.
    public static let checksumKey = "crc32c"

    /// The `crc32c` metadata value for `tensors` (name, CPU tensor), names in sorted order.
    static func encodeChecksums(_ tensors: [(String, Tensor)]) -> String {
        let fields = tensors.map { name, t in
            (name, CRC32C.parallelChecksum(UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount)))
        }.sorted { $0.0 < $1.0 }
        return "{" + fields.map { "\(JSONText.quoted($0.0)):\"\(hexDigits($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// Parses a `crc32c` metadata value and checks that it names exactly `tensors`.
    static func decodeChecksums(_ text: String, tensors: [String], path: String) throws -> [String: UInt32] {
        let fix = "the header was edited or is corrupt — re-save the file or restore it"
        guard let map = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
            throw SafetensorsError(path: path, problem: .invalidHeader(
                "metadata \"\(checksumKey)\" is not a JSON object of tensor names and 8-digit hex CRC-32C values; \(fix)"))
        }
        var out: [String: UInt32] = [:]
        for (name, value) in map {
            guard value.utf8.count == 8, let crc = UInt32(value, radix: 16) else {
                throw SafetensorsError(path: path, tensor: name, problem: .invalidHeader(
                    "metadata \"\(checksumKey)\" gives it \"\(value)\", not 8 hex digits; \(fix)"))
            }
            out[name] = crc
        }
        for name in tensors where out[name] == nil {
            throw SafetensorsError(path: path, tensor: name, problem: .invalidHeader(
                "metadata \"\(checksumKey)\" records no checksum for it; \(fix)"))
        }
        if let stray = Set(out.keys).subtracting(tensors).sorted().first {
            throw SafetensorsError(path: path, tensor: stray, problem: .invalidHeader(
                "metadata \"\(checksumKey)\" records a checksum for it but the file holds no such tensor; \(fix)"))
        }
        return out
    }

    /// 8 lowercase hex digits.
    static func hexDigits(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
