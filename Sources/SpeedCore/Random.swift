// Counter-based random numbers: element i of a draw depends only on (seed, offset + i), never on threads.
// Invariant: the same (seed, offset) always yields the same bits on every backend and thread count.

/// A counter-based random stream (a SplitMix64-style hash of seed and counter), so parallel kernels
/// can draw element `i` independently and results do not depend on how work is split.
///
/// ```swift
/// var rng = RandomStream(seed: 42)
/// let w = Tensor.randn([256, 256], std: 0.02, rng: &rng)
/// ```
public struct RandomStream: Sendable, Hashable, Codable {
    public var seed: UInt64
    /// The counter of the next draw; advanced by the number of elements each draw consumes.
    public var offset: UInt64

    public init(seed: UInt64, offset: UInt64 = 0) {
        self.seed = seed
        self.offset = offset
    }

    /// Reserves `count` counters and returns the first; the caller hashes `(seed, first + i)`.
    public mutating func advance(by count: Int) -> UInt64 {
        let first = offset
        offset &+= UInt64(count)
        return first
    }

    /// A new independent stream derived from this one (for a child module, a layer, ...).
    public mutating func split() -> RandomStream {
        RandomStream(seed: RandomStream.bits(seed: seed, counter: advance(by: 1)))
    }

    /// 64 random bits for `(seed, counter)`: two rounds of SplitMix64 finalisation.
    @inlinable
    public static func bits(seed: UInt64, counter: UInt64) -> UInt64 {
        var z = seed &+ counter &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        z = (z ^ seed.byteSwapped) &* 0xD6E8_FEB8_6659_FD93
        return z ^ (z >> 32)
    }

    /// A uniform Float in [0, 1) for `(seed, counter)` (24 random bits).
    @inlinable
    public static func uniform(seed: UInt64, counter: UInt64) -> Float {
        Float(bits(seed: seed, counter: counter) >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform Double in (0, 1) for `(seed, counter)` (53 random bits, never 0).
    @inlinable
    public static func uniformOpen(seed: UInt64, counter: UInt64) -> Double {
        (Double(bits(seed: seed, counter: counter) >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
    }
}
