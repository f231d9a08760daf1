// Parameters and gradients moved into one contiguous buffer each, every parameter a view into it.
// Invariant: parameter i occupies elements offsets[i] ..< offsets[i] + params[i].count of both
// buffers; the tail up to `paddedCount` (a multiple of the partition count) is zero padding. ZeRO
// drops what it partitions: `grads` is nil from stage 2, `values` from stage 3.

import SpeedCore
import SpeedNN

/// The flat layout DeepSpeed and llm.c use: ZeRO partitions become contiguous slices, the
/// optimizer one fused pass, gradient reduction a few large buckets.
public final class FlatParameters {
    public let names: [String]
    public let params: [Tensor]
    public let offsets: [Int]
    /// Elements actually used by parameters.
    public let count: Int
    /// `count` rounded up to a multiple of `partitions`.
    public let paddedCount: Int
    /// `[paddedCount]` in the model dtype; every parameter is a view into it (nil at ZeRO stage 3,
    /// where each rank keeps only its partition and gathers parameters when a module runs).
    public private(set) var values: Tensor?
    /// `[paddedCount]` gradients; every parameter's `.grad` is a view into it (nil from ZeRO
    /// stage 2, where gradients are reduced into each rank's partition as backward produces them).
    public let grads: Tensor?
    /// The model dtype.
    public let dtype: DType
    /// `[paddedCount]` fp32 master weights when `values` is bf16/fp16 (taken from the original
    /// values before they were rounded), else nil: `values` itself is the master.
    public private(set) var master: Tensor?

    /// Moves `named` parameters (converted to `dtype`) into a flat buffer and points each
    /// parameter's storage and `.grad` at its slice.
    /// - Parameter holdGrads: false for ZeRO stage >= 2 (no full gradient buffer, `.grad` untouched).
    public init(_ named: [(String, Tensor)], dtype: DType, gradDType: DType, partitions: Int = 1, holdGrads: Bool = true) {
        precondition(!named.isEmpty, "FlatParameters: the model has no parameters")
        let device = named[0].1.device
        var offsets: [Int] = []
        var running = 0
        for (name, p) in named {
            precondition(p.device == device, "FlatParameters: parameter \(name) is on \(p.device), others on \(device)")
            offsets.append(running)
            running += p.count
        }
        self.names = named.map(\.0)
        self.params = named.map(\.1)
        self.offsets = offsets
        self.count = running
        self.paddedCount = (running + partitions - 1) / partitions * partitions
        let full = Tensor.zeros([paddedCount], device: device)
        for (p, offset) in zip(params, offsets) {
            full.slice(axis: 0, offset..<(offset + p.count)).copyData(from: p)
        }
        let values = dtype == .float32 ? full : noGrad { full.cast(to: dtype) }
        self.values = values
        self.dtype = dtype
        master = dtype == .float32 ? nil : full
        let grads = holdGrads ? Tensor.zeros([paddedCount], dtype: gradDType, device: device) : nil
        self.grads = grads
        for (p, offset) in zip(params, offsets) {
            p.rebind(storage: values.storage, offset: offset, dtype: dtype)
            p.grad = grads?.slice(axis: 0, offset..<(offset + p.count)).reshape(p.shape)
        }
    }

    /// Drops the full fp32 master copy (ZeRO keeps only its partition of it).
    func releaseMaster() { master = nil }

    /// Drops the full weights (ZeRO-3 keeps only its partition; parameters are rebound first).
    func releaseValues() { values = nil }

    /// The flat range parameter `i` occupies.
    public func range(of i: Int) -> Range<Int> { offsets[i]..<(offsets[i] + params[i].count) }

    /// Sets every gradient to zero (one fill), keeping the views.
    public func zeroGrads() { grads?.fill(0) }

    /// Re-attaches each parameter's `.grad` view (after user code replaced or cleared it).
    public func reattachGrads() {
        guard let grads else { return }
        for (p, offset) in zip(params, offsets) where p.grad?.storage !== grads.storage || p.grad?.offset != offset {
            let view = grads.slice(axis: 0, offset..<(offset + p.count)).reshape(p.shape)
            if let g = p.grad { view.copyData(from: g) } else { view.fill(0) }
            p.grad = view
        }
    }
}

/// How a flat buffer of `paddedCount` elements splits into `ranks` equal, contiguous partitions.
public struct PartitionLayout: Sendable, Equatable {
    public let paddedCount: Int
    public let ranks: Int
    public var share: Int { paddedCount / ranks }

    public init(paddedCount: Int, ranks: Int) {
        precondition(ranks > 0 && paddedCount % ranks == 0, "PartitionLayout: \(paddedCount) elements do not split into \(ranks) partitions")
        self.paddedCount = paddedCount
        self.ranks = ranks
    }

    /// The elements rank `r` owns.
    public func partition(_ r: Int) -> Range<Int> { (r * share)..<((r + 1) * share) }

    /// How many elements of `range` each rank owns (rank order; they lie back to back in `range`),
    /// the counts an uneven reduce-scatter or all-gather of `range` needs.
    ///
    /// ```swift
    /// PartitionLayout(paddedCount: 8, ranks: 2).counts(in: 2..<7)   // [2, 3]
    /// ```
    public func counts(in range: Range<Int>) -> [Int] {
        (0..<ranks).map { r in
            let p = partition(r)
            return Swift.max(0, Swift.min(range.upperBound, p.upperBound) - Swift.max(range.lowerBound, p.lowerBound))
        }
    }
}
