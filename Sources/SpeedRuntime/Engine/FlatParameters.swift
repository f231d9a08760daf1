// Parameters and gradients moved into one contiguous buffer each, every parameter a view into it.
// Invariant: parameter i occupies elements offsets[i] ..< offsets[i] + params[i].count of both
// buffers; the tail up to `paddedCount` (a multiple of the partition count) is zero padding.

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
    /// `[paddedCount]` in the model dtype; every parameter is a view into it.
    public let values: Tensor
    /// `[paddedCount]` gradients; every parameter's `.grad` is a view into it.
    public let grads: Tensor
    /// `[paddedCount]` fp32 master weights when `values` is bf16/fp16 (taken from the original
    /// values before they were rounded), else nil: `values` itself is the master.
    public private(set) var master: Tensor?

    /// Moves `named` parameters (converted to `dtype`) into a flat buffer and points each
    /// parameter's storage and `.grad` at its slice.
    public init(_ named: [(String, Tensor)], dtype: DType, gradDType: DType, partitions: Int = 1) {
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
        values = dtype == .float32 ? full : noGrad { full.cast(to: dtype) }
        master = dtype == .float32 ? nil : full
        grads = Tensor.zeros([paddedCount], dtype: gradDType, device: device)
        for (p, offset) in zip(params, offsets) {
            p.rebind(storage: values.storage, offset: offset, dtype: dtype)
            p.grad = grads.slice(axis: 0, offset..<(offset + p.count)).reshape(p.shape)
        }
    }

    /// Drops the full fp32 master copy (ZeRO keeps only its partition of it).
    func releaseMaster() { master = nil }

    /// Sets every gradient to zero (one fill), keeping the views.
    public func zeroGrads() { grads.fill(0) }

    /// Re-attaches each parameter's `.grad` view (after user code replaced or cleared it).
    public func reattachGrads() {
        for (p, offset) in zip(params, offsets) where p.grad?.storage !== grads.storage || p.grad?.offset != offset {
            let view = grads.slice(axis: 0, offset..<(offset + p.count)).reshape(p.shape)
            if let g = p.grad { view.copyData(from: g) } else { view.fill(0) }
            p.grad = view
        }
    }
}
