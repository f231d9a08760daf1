// Tensor parallelism's collectives as autograd ops (Megatron's f, g and gather) and how a weight is cut into shards.
// Invariant: every rank of a tensor-parallel group runs the same ops in the same order on equal-shaped shards, so a
// replicated activation (a column-parallel layer's input, a row-parallel layer's output) holds equal values on all.

import SpeedCore

/// How a reduction combines a tensor-parallel group's values.
public enum TensorParallelReduction: Sendable { case sum, max }

/// The collectives a tensor-parallel layer needs from its group (the runtime supplies one over a `ProcessGroup`;
/// SpeedNN names only this protocol, so it stays below the communication layer).
///
/// A transport failure inside a layer's forward or backward cannot be thrown through autograd: implementations end
/// the job with an error naming the rank and the collective (never a hang or a silently wrong result).
///
/// ```swift
/// let y = x.copyToTensorParallelRegion(comm)      // identity forward, all-reduce of the gradient backward
/// ```
public protocol TensorParallelCommunicator: AnyObject, Sendable {
    /// This rank's index in the tensor-parallel group (its shard).
    var rank: Int { get }
    /// The tensor-parallel degree.
    var size: Int { get }
    /// Combines `tensor` over the group in place (outside autograd).
    func allReduce(_ tensor: Tensor, _ reduction: TensorParallelReduction)
    /// Concatenates each rank's `input` (`counts[r]` elements from rank r, rank order) into `output` (outside autograd).
    func allGather(_ input: Tensor, into output: Tensor, counts: [Int])
}

/// How a layer's weight is split over a tensor-parallel group.
public enum TensorParallelStyle: Sendable, Equatable {
    /// Output features split (`Linear.weight [out/tp, in]`, bias split): input replicated, output sharded.
    case column
    /// Input features split (`Linear.weight [out, in/tp]`, bias whole, added after the all-reduce): input sharded,
    /// output replicated.
    case row
}

/// A sharded layer's place in its group: the style and the communicator.
public struct TensorParallelShard: Sendable {
    public let style: TensorParallelStyle
    public let comm: any TensorParallelCommunicator
    public init(_ style: TensorParallelStyle, _ comm: any TensorParallelCommunicator) {
        self.style = style
        self.comm = comm
    }
}

/// A model that can shard itself over a tensor-parallel group in place (DeepSpeed's AutoTP rules for one
/// architecture). Conforming is how a custom model joins AutoTP; ``TensorParallelPlan`` covers models whose only
/// sharded layers are `Linear`s found by name.
///
/// ```swift
/// try model.shardForTensorParallel(comm)   // before initialize moves parameters into flat buffers
/// ```
public protocol TensorParallelShardable: Module {
    /// Replaces each sharded weight by this rank's shard and switches its layer to the parallel forward.
    /// - Throws: ``TensorParallelError`` naming the layer and the sizes when a dimension does not split.
    func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws
}

/// A layer or size that cannot be split over the tensor-parallel group.
public struct TensorParallelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Element ranges of an axis cut into `parts` shards: equal when it divides, else the first `size % parts` shards
/// one longer (uneven vocabularies).
///
/// ```swift
/// TensorParallelSplit.ranges(10, parts: 4)   // [0..<3, 3..<6, 6..<8, 8..<10]
/// ```
public enum TensorParallelSplit {
    public static func ranges(_ size: Int, parts: Int) -> [Range<Int>] {
        precondition(parts >= 1, "TensorParallelSplit: parts \(parts) must be >= 1")
        var out: [Range<Int>] = [], start = 0
        for p in 0..<parts {
            let n = size / parts + (p < size % parts ? 1 : 0)
            out.append(start..<(start + n))
            start += n
        }
        return out
    }

    /// Rank `rank`'s piece of `tensor` along `axis`, whose `axis` is `blocks` equal blocks (fused q/k/v: 3) each cut
    /// into `parts` equal shards of whole `unit`s (a head's `headDim`): the concatenation of shard `rank` of every block.
    /// - Throws: ``TensorParallelError`` naming `layer` when a block does not hold a multiple of `parts` units.
    public static func shard(_ tensor: Tensor, axis: Int, blocks: [Int], unit: Int = 1, rank: Int, parts: Int,
                             layer: String) throws -> Tensor {
        precondition(blocks.reduce(0, +) == tensor.shape[axis],
                     "TensorParallelSplit.shard: blocks \(blocks) do not add up to axis \(axis) of \(tensor.shape)")
        var pieces: [Tensor] = []
        var start = 0
        for (b, n) in blocks.enumerated() {
            guard n % unit == 0, (n / unit) % parts == 0 else {
                let what = unit == 1 ? "\(n) features" : "\(n / unit) heads of \(unit)"
                throw TensorParallelError("\(layer): block \(b) of axis \(axis) (shape \(tensor.shape)) has \(what), which does not split into \(parts) tensor-parallel shards; choose an autotp_size that divides it")
            }
            let per = n / parts
            pieces.append(tensor.slice(axis: axis, (start + rank * per)..<(start + (rank + 1) * per)))
            start += n
        }
        return noGrad { pieces.count == 1 ? pieces[0].copy() : Tensor.concat(pieces, axis: axis) }
    }

    /// Replaces `parameter`'s data by its shard, keeping its identity and `requiresGrad`.
    public static func replace(_ parameter: Tensor, with shard: Tensor) {
        parameter.adopt(shard.dtype == parameter.dtype ? shard.copy() : shard.cast(to: parameter.dtype))
    }
}

extension Tensor {
    /// Megatron's `f` (`copy_to_tensor_model_parallel_region`): the identity forward; backward all-reduces (sums) the
    /// gradient over the group, since every shard's output depends on this replicated input.
    public func copyToTensorParallelRegion(_ comm: any TensorParallelCommunicator) -> Tensor {
        if comm.size == 1 { return self }
        return Tensor.record("tp_copy", view(shape), inputs: [self]) { g, _ in
            let sum = g.copy()
            comm.allReduce(sum, .sum)
            return [sum]
        }
    }

    /// Megatron's `g` (`reduce_from_tensor_model_parallel_region`): all-reduces (sums) the partial results forward;
    /// backward is the identity (every rank computes the same loss from the same sum).
    public func reduceFromTensorParallelRegion(_ comm: any TensorParallelCommunicator) -> Tensor {
        if comm.size == 1 { return self }
        let out = noGrad { copy() }
        comm.allReduce(out, .sum)
        return Tensor.record("tp_reduce", out, inputs: [self]) { g, _ in [g] }
    }

    /// Megatron's `gather_from_tensor_model_parallel_region`: concatenates the ranks' last-axis shards (`sizes[r]`
    /// features from rank r) into the whole tensor; backward keeps this rank's slice of the gradient.
    public func gatherFromTensorParallelRegion(_ comm: any TensorParallelCommunicator, sizes: [Int]) -> Tensor {
        if comm.size == 1 { return self }
        precondition(sizes.count == comm.size && sizes[comm.rank] == shape.last,
                     "gatherFromTensorParallelRegion: sizes \(sizes) for \(comm.size) ranks, this rank's last axis is \(shape)")
        let rows = count / Swift.max(1, shape.last!)
        let flat = Tensor(empty: [rows * sizes.reduce(0, +)], dtype: dtype, device: device)
        noGrad { comm.allGather(self, into: flat, counts: sizes.map { $0 * rows }) }
        var start = 0
        let blocks = sizes.map { n -> Tensor in
            defer { start += rows * n }
            return flat.view([rows, n], offset: start)
        }
        let whole = noGrad { Tensor.concat(blocks, axis: 1) }.view(Array(shape.dropLast()) + [sizes.reduce(0, +)])
        let lo = sizes[..<comm.rank].reduce(0, +), mine = sizes[comm.rank]
        return Tensor.record("tp_gather", whole, inputs: [self]) { g, _ in
            [g.slice(axis: g.rank - 1, lo..<(lo + mine)).copy()]
        }
    }
}
