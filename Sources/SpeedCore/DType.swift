// Element types a tensor can hold, and the bfloat16 scalar Swift lacks.
// Invariant: bf16 <-> fp32 conversion rounds to nearest-even and keeps NaN a NaN (never rounds it to inf).

/// The element type of a tensor.
///
/// ```swift
/// let x = Tensor.zeros([2, 3], dtype: .bfloat16)
/// x.dtype.byteSize   // 2
/// ```
public enum DType: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case float32, float64, bfloat16, float16, int32, int64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float64, .int64: 8
        case .bfloat16, .float16: 2
        }
    }

    public var isFloatingPoint: Bool { self != .int32 && self != .int64 }

    /// True for the 16-bit floating types, which the CPU backend computes in fp32.
    public var isHalf: Bool { self == .bfloat16 || self == .float16 }

    public var description: String { rawValue }
}

/// A brain-float 16 value: the top 16 bits of an IEEE fp32.
public struct BFloat16: Sendable, Hashable, CustomStringConvertible {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// Rounds `value` to the nearest bf16, ties to even.
    @inlinable
    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        } else {
            let rounding = UInt32(0x7FFF) &+ ((bits >> 16) & 1)
            bitPattern = UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
        }
    }

    /// Rounds `value` to the nearest bf16, ties to even, in one step (no double rounding via fp32):
    /// it rounds to fp32 "to odd" (truncate, then set the last bit if inexact), which keeps the
    /// information the final rounding needs because fp32 carries 16 more bits than bf16.
    public init(_ value: Double) {
        var f = Float(value)
        if f.isFinite && Double(f) != value {
            if Swift.abs(Double(f)) > Swift.abs(value) { f = Float(bitPattern: f.bitPattern - 1) }
            f = Float(bitPattern: f.bitPattern | 1)
        }
        self.init(f)
    }

    @inlinable
    public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    public var description: String { "\(float)" }
}
