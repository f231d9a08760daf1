// CRC-32C (Castagnoli), table-driven, plus the "masked" form TFRecord files store.
// Invariant: the table is an immutable `static let` built once from the reflected polynomial 0x82F63B78;
// `checksum("123456789")` is 0xE3069283 (the standard check value).

import Foundation

/// CRC-32C (Castagnoli), as used by TFRecord / TensorBoard event files, iSCSI and ext4.
///
/// ```swift
/// CRC32C.checksum(Array("123456789".utf8))   // 0xE3069283
/// CRC32C.masked(CRC32C.checksum(bytes))       // what a TFRecord stores
/// ```
public enum CRC32C {
    /// The CRC-32C of `bytes`. Pass a previous result as `continuing` to checksum data in pieces.
    ///
    /// ```swift
    /// let whole = CRC32C.checksum(a + b)
    /// let same = CRC32C.checksum(b, continuing: CRC32C.checksum(a))
    /// ```
    public static func checksum(_ bytes: some ContiguousBytes, continuing previous: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            var crc = ~previous
            for byte in raw {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
            return ~crc
        }
    }

    /// TFRecord's masking, which keeps a CRC of data that itself contains CRCs well-distributed:
    /// `((crc >> 15) | (crc << 17)) &+ 0xa282ead8`.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The inverse of ``masked(_:)``.
    public static func unmasked(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }

    private static let table: [UInt32] = (0..<256).map { (n: Int) -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }
}
