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

/// How one parameter of a sharded model is cut, as data: enough to cut the whole tensor for any rank and to join the
/// shards again (checkpoints saved at one tensor-parallel size and loaded at another, consolidation to one file).
///
/// ```swift
/// let qkv = TensorParallelLayout(axis: 0, blocks: [768, 768, 768], unit: 64)   // whole heads of q, k and v
/// let mine = try qkv.shard(whole, rank: 1, parts: 2)
/// let back = qkv.merge([shard0, shard1])                                        // == whole
/// ```
public struct TensorParallelLayout: Codable, Sendable, Equatable {
    /// The axis that is split (0: a Linear's output features or an embedding's rows, 1: a Linear's input features).
    public var axis: Int
    /// The whole tensor's `axis` as consecutive blocks split separately (fused q/k/v: three); one block otherwise.
    public var blocks: [Int]
    /// Shards hold whole units (a head's size); 1 for plain features.
    public var unit: Int
    /// A single block split as ``TensorParallelSplit/ranges(_:parts:)`` (the first shards one longer when it does not
    /// divide: a vocabulary); false requires every block to divide into whole units per shard.
    public var uneven: Bool

    public init(axis: Int, blocks: [Int], unit: Int = 1, uneven: Bool = false) {
        precondition(!uneven || blocks.count == 1, "TensorParallelLayout: an uneven split has one block, got \(blocks)")
        self.axis = axis; self.blocks = blocks; self.unit = unit; self.uneven = uneven
    }

    /// Rank `rank`'s shard of `whole` (a new tensor).
    /// - Throws: ``TensorParallelError`` when a block does not divide into `parts` shards of whole units.
    public func shard(_ whole: Tensor, rank: Int, parts: Int, name: String = "tensor") throws -> Tensor {
        if uneven {
            let ranges = TensorParallelSplit.ranges(whole.shape[axis], parts: parts)
            guard ranges.allSatisfy({ !$0.isEmpty }) else {
                throw TensorParallelError("\(name): \(whole.shape[axis]) rows do not split into \(parts) tensor-parallel shards; choose a smaller autotp_size")
            }
            return noGrad { whole.slice(axis: axis, ranges[rank]).copy() }
        }
        return try TensorParallelSplit.shard(whole, axis: axis, blocks: blocks, unit: unit, rank: rank, parts: parts, layer: name)
    }

    /// The whole tensor from every rank's shard (rank order): the inverse of ``shard(_:rank:parts:name:)``.
    public func merge(_ shards: [Tensor]) -> Tensor {
        let parts = shards.count
        if uneven || blocks.count == 1 { return noGrad { Tensor.concat(shards, axis: axis) } }
        var pieces: [Tensor] = []
        var start = Array(repeating: 0, count: parts)
        for n in blocks {
            let per = n / parts
            for r in 0..<parts {
                pieces.append(shards[r].slice(axis: axis, start[r]..<(start[r] + per)))
                start[r] += per
            }
        }
        return noGrad { Tensor.concat(pieces, axis: axis) }
    }
}

extension Module {
    /// Every sharded parameter's layout, by its `namedParameters()` name; parameters not listed are replicated
    /// (whole and equal on every rank of the tensor-parallel group).
    public func tensorParallelLayouts() -> [String: TensorParallelLayout] {
        var out: [String: TensorParallelLayout] = [:]
        for (path, m) in namedModules() {
            let prefix = path.isEmpty ? "" : path + "."
            if let linear = m as? Linear, let layout = linear.weightLayout {
                out[prefix + "weight"] = layout
                if let bias = linear.biasLayout { out[prefix + "bias"] = bias }
            } else if let e = m as? Embedding, e.vocabularyShard != nil {
                out[prefix + "weight"] = TensorParallelLayout(axis: 0, blocks: [e.wholeRows], uneven: true)
            } else if let custom = m as? TensorParallelLayoutProviding {
                for (name, layout) in custom.ownTensorParallelLayouts { out[prefix + name] = layout }
            }
        }
        return out
    }
}

/// A layer of its own kind (GPT-2's Conv1D, …) that reports how its sharded parameters are cut, by own name.
public protocol TensorParallelLayoutProviding: Module {
    var ownTensorParallelLayouts: [String: TensorParallelLayout] { get }
    /// The group this layer is sharded over (nil while unsharded); the default is nil.
    var ownTensorParallelCommunicator: (any TensorParallelCommunicator)? { get }
}

extension TensorParallelLayoutProviding {
    public var ownTensorParallelCommunicator: (any TensorParallelCommunicator)? { nil }
}

extension Module {
    /// The tensor-parallel group this module's sharded layers exchange over (the first one found: a sharded `Linear`,
    /// a vocabulary-sharded `Embedding` or a ``TensorParallelLayoutProviding`` layer); nil for an unsharded module.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// model.tensorParallelCommunicator()?.size   // comm.size
    /// ```
    public func tensorParallelCommunicator() -> (any TensorParallelCommunicator)? {
        for (_, m) in namedModules() {
            if let linear = m as? Linear, let tp = linear.tensorParallel { return tp.comm }
            if let e = m as? Embedding, let shard = e.vocabularyShard { return shard.comm }
            if let custom = m as? TensorParallelLayoutProviding, let comm = custom.ownTensorParallelCommunicator { return comm }
        }
        return nil
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
