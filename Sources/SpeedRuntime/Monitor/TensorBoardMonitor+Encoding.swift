// TensorBoard event-file bytes, by hand: TFRecord framing and the few protobuf fields of Event/Summary/Value.
// Invariant: a record is [len u64 LE][masked crc32c(len) u32 LE][data][masked crc32c(data) u32 LE], and the
// protobuf uses only the field numbers of tensorflow/core/util/event.proto and summary.proto listed below.

import Foundation
import SpeedIO

/// TFRecord framing, the container of TensorBoard event files.
///
/// ```swift
/// let record = TFRecord.frame(TensorBoardEvent.scalar(tag: "loss", value: 0.5, step: 1, wallTime: 0))
/// ```
package enum TFRecord {
    /// `data` framed as one record.
    package static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = littleEndianBytes(UInt64(data.count))
        out += length
        out += littleEndianBytes(CRC32C.masked(CRC32C.checksum(length)))
        out += data
        out += littleEndianBytes(CRC32C.masked(CRC32C.checksum(data)))
        return out
    }
}

/// Serialized `tensorflow.Event` messages.
///
/// Field numbers used: Event.wall_time = 1 (double), Event.step = 2 (int64), Event.file_version = 3
/// (string), Event.summary = 5 (Summary); Summary.value = 1 (repeated Value); Value.tag = 1 (string),
/// Value.simple_value = 2 (float).
///
/// ```swift
/// let first = TensorBoardEvent.fileVersion(wallTime: 1_700_000_000)   // "brain.Event:2"
/// ```
package enum TensorBoardEvent {
    /// The version marker every event file starts with.
    package static let fileVersionString = "brain.Event:2"

    /// `Event{wall_time, file_version: "brain.Event:2"}`.
    package static func fileVersion(wallTime: Double) -> [UInt8] {
        var out: [UInt8] = []
        appendDouble(field: 1, wallTime, to: &out)
        appendBytes(field: 3, Array(fileVersionString.utf8), to: &out)
        return out
    }

    /// `Event{wall_time, step, summary: Summary{value: [Value{tag, simple_value}]}}` — what PyTorch's
    /// `SummaryWriter.add_scalar` writes (simple_value is a float32, as in TensorBoard).
    package static func scalar(tag: String, value: Double, step: Int, wallTime: Double) -> [UInt8] {
        var summaryValue: [UInt8] = []
        appendBytes(field: 1, Array(tag.utf8), to: &summaryValue)
        appendFloat(field: 2, Float(value), to: &summaryValue)
        var summary: [UInt8] = []
        appendBytes(field: 1, summaryValue, to: &summary)

        var event: [UInt8] = []
        appendDouble(field: 1, wallTime, to: &event)
        appendVarint(field: 2, UInt64(bitPattern: Int64(step)), to: &event)
        appendBytes(field: 5, summary, to: &event)
        return event
    }

    // Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.

    private static func appendTag(_ field: Int, wireType: UInt64, to out: inout [UInt8]) {
        appendRawVarint(UInt64(field) << 3 | wireType, to: &out)
    }

    private static func appendVarint(field: Int, _ value: UInt64, to out: inout [UInt8]) {
        appendTag(field, wireType: 0, to: &out)
        appendRawVarint(value, to: &out)
    }

    private static func appendDouble(field: Int, _ value: Double, to out: inout [UInt8]) {
        appendTag(field, wireType: 1, to: &out)
        out += littleEndianBytes(value.bitPattern)
    }

    private static func appendFloat(field: Int, _ value: Float, to out: inout [UInt8]) {
        appendTag(field, wireType: 5, to: &out)
        out += littleEndianBytes(value.bitPattern)
    }

    private static func appendBytes(field: Int, _ bytes: [UInt8], to out: inout [UInt8]) {
        appendTag(field, wireType: 2, to: &out)
        appendRawVarint(UInt64(bytes.count), to: &out)
        out += bytes
    }

    private static func appendRawVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}

/// The bytes of `value` in little-endian order.
private func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}
