// The standard layers: Linear, Embedding, LayerNorm, Dropout, Sequential and activation modules.
// Invariant: weights use PyTorch's layouts (`Linear.weight` is [out, in]) so state dicts map one to one.

import SpeedCore

/// `y = x · weightᵀ + bias`, weight `[out, in]`.
///
/// ```swift
/// var rng = RandomStream(seed: 0)
/// let fc = Linear(768, 2048, rng: &rng)
/// let y = fc(Tensor.zeros([16, 768]))   // [16, 2048]
/// ```
public final class Linear: Module {
    public let weight: Tensor   // [out, in]
    public let bias: Tensor?    // [out]

    /// PyTorch's default init (uniform ±1/√in) unless `std` is given (normal, GPT-2 style: bias 0).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, std: Double? = nil,
                dtype: DType = .float32, device: Device = .cpu, rng: inout RandomStream) {
        if let std {
            weight = Tensor.randn([outFeatures, inFeatures], std: std, dtype: dtype, device: device, rng: &rng)
            self.bias = bias ? Tensor.zeros([outFeatures], dtype: dtype, device: device) : nil
        } else {
            let bound = 1 / Double(inFeatures).squareRoot()
            weight = Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, dtype: dtype, device: device, rng: &rng)
            self.bias = bias ? Tensor.uniform([outFeatures], low: -bound, high: bound, dtype: dtype, device: device, rng: &rng) : nil
        }
        weight.requiresGrad = true
        self.bias?.requiresGrad = true
        super.init()
    }

    /// Set by ``shard(_:_:blocks:unit:)``: this layer holds one tensor-parallel shard and exchanges partial results.
    public private(set) var tensorParallel: TensorParallelShard?
    /// How `weight` and `bias` were cut (nil unsharded; the bias of a row-parallel layer stays whole).
    public private(set) var weightLayout: TensorParallelLayout?
    public private(set) var biasLayout: TensorParallelLayout?

    public override func forward(_ x: Tensor) -> Tensor {
        guard let tp = tensorParallel else { return Tensor.linear(x, weight: weight, bias: bias) }
        switch tp.style {
        case .column:
            return Tensor.linear(x.copyToTensorParallelRegion(tp.comm), weight: weight, bias: bias)
        case .row:
            // The bias is whole on every rank, so it is added once, after the partial products are summed.
            let y = Tensor.linear(x, weight: weight, bias: nil).reduceFromTensorParallelRegion(tp.comm)
            return bias.map { y + $0 } ?? y
        }
    }

    /// Keeps this rank's shard of the weight (Megatron's ColumnParallelLinear / RowParallelLinear): `.column` splits
    /// the output features — each of `blocks` (fused q/k/v: three equal blocks; default one) in `unit`s (a head's
    /// size) — and the bias with them; `.row` splits the input features and keeps the bias whole.
    /// - Throws: ``TensorParallelError`` naming `name` when a block does not divide into `comm.size` shards.
    ///
    /// ```swift
    /// try attn.qkv.shard(.column, comm, blocks: [c, c, c], unit: headDim, name: "blocks.0.attn.qkv")
    /// try attn.proj.shard(.row, comm, unit: headDim, name: "blocks.0.attn.proj")
    /// ```
    /// `uneven` (one block, `.column` only) cuts as ``TensorParallelSplit/ranges(_:parts:)`` does, the first shards one
    /// longer when the features do not divide: an untied LM head split like its vocabulary-parallel embedding.
    public func shard(_ style: TensorParallelStyle, _ comm: any TensorParallelCommunicator, blocks: [Int]? = nil,
                      unit: Int = 1, uneven: Bool = false, name: String) throws {
        precondition(tensorParallel == nil, "Linear.shard: \(name) is already sharded")
        precondition(!uneven || (style == .column && blocks == nil && unit == 1),
                     "Linear.shard: \(name): an uneven split is a plain column split, got \(style), blocks \(blocks ?? []), unit \(unit)")
        let axis = style == .column ? 0 : 1
        let blocks = blocks ?? [weight.shape[axis]]
        let layout = TensorParallelLayout(axis: axis, blocks: blocks, unit: unit, uneven: uneven)
        let w = try layout.shard(weight, rank: comm.rank, parts: comm.size, name: name)
        if style == .column, let bias {
            let b = TensorParallelLayout(axis: 0, blocks: blocks, unit: unit, uneven: uneven)
            TensorParallelSplit.replace(bias, with: try b.shard(bias, rank: comm.rank, parts: comm.size, name: name))
            biasLayout = b
        }
        TensorParallelSplit.replace(weight, with: w)
        weightLayout = layout
        tensorParallel = TensorParallelShard(style, comm)
    }
}

/// A lookup table `[count, dim]` indexed by integer ids.
public final class Embedding: Module {
    public let weight: Tensor   // [count, dim]
    /// PyTorch's `padding_idx`: this row gets no gradient (Hugging Face's BERT passes `pad_token_id`).
    public let paddingIndex: Int?

    public init(_ count: Int, _ dim: Int, std: Double = 1, paddingIndex: Int? = nil, dtype: DType = .float32,
                device: Device = .cpu, rng: inout RandomStream) {
        weight = Tensor.randn([count, dim], std: std, dtype: dtype, device: device, rng: &rng)
        weight.requiresGrad = true
        wholeRows = count
        self.paddingIndex = paddingIndex.flatMap { (0..<count).contains($0) ? $0 : nil }
        super.init()
    }

    /// Set by ``shardVocabulary(_:name:)``: this rank holds rows `range` of the whole table (Megatron's
    /// VocabParallelEmbedding).
    public private(set) var vocabularyShard: (range: Range<Int>, comm: any TensorParallelCommunicator)?
    /// The whole table's rows (the vocabulary), also once sharded.
    public private(set) var wholeRows: Int

    /// `ids` (int32/int64, any shape) → `ids.shape + [dim]`.
    public override func forward(_ ids: Tensor) -> Tensor {
        guard let (range, comm) = vocabularyShard else {
            return Tensor.embedding(weight, ids: ids, paddingIndex: paddingIndex)
        }
        // Ids outside this shard look up local row 0 and are zeroed; the all-reduce sums the one owner's row in.
        let all = ids.scalars(as: Int.self)
        let local = Tensor(all.map { range.contains($0) ? Int32($0 - range.lowerBound) : 0 }, shape: ids.shape, device: ids.device)
        let here = Tensor(all.map { range.contains($0) ? 1.0 : 0.0 }, shape: ids.shape + [1], dtype: weight.dtype, device: ids.device)
        let pad = paddingIndex.flatMap { range.contains($0) ? $0 - range.lowerBound : nil }
        return (Tensor.embedding(weight, ids: local, paddingIndex: pad) * here).reduceFromTensorParallelRegion(comm)
    }

    /// Keeps this rank's rows of the table (the vocabulary split as ``TensorParallelSplit/ranges(_:parts:)`` does,
    /// uneven when it does not divide) and looks ids up across the group.
    ///
    /// ```swift
    /// try model.wte.shardVocabulary(comm, name: "wte")   // [V, C] -> [V/tp, C]
    /// ```
    public func shardVocabulary(_ comm: any TensorParallelCommunicator, name: String) throws {
        precondition(vocabularyShard == nil, "Embedding.shardVocabulary: \(name) is already sharded")
        let ranges = TensorParallelSplit.ranges(weight.shape[0], parts: comm.size)
        guard ranges.allSatisfy({ !$0.isEmpty }) else {
            throw TensorParallelError("\(name): \(weight.shape[0]) rows do not split into \(comm.size) tensor-parallel shards; choose a smaller autotp_size")
        }
        let mine = ranges[comm.rank]
        wholeRows = weight.shape[0]
        TensorParallelSplit.replace(weight, with: noGrad { weight.slice(axis: 0, mine) })
        vocabularyShard = (mine, comm)
    }
}

/// Layer normalisation over the last axis with learnable scale and shift.
public final class LayerNorm: Module {
    public let weight: Tensor   // [dim]
    public let bias: Tensor     // [dim]
    public let eps: Double

    public init(_ dim: Int, eps: Double = 1e-5, dtype: DType = .float32, device: Device = .cpu) {
        weight = Tensor.ones([dim], dtype: dtype, device: device, requiresGrad: true)
        bias = Tensor.zeros([dim], dtype: dtype, device: device, requiresGrad: true)
        self.eps = eps
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }
}

/// Inverted dropout, active only in training mode. Its own counter-based stream makes masks
/// reproducible from the seed alone.
public final class Dropout: Module {
    public let p: Double
    /// Advanced by every training-mode call; save and restore it to replay the same masks.
    public var rng: RandomStream

    public init(_ p: Double, rng: inout RandomStream) {
        precondition(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got \(p)")
        self.p = p
        self.rng = rng.split()
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        isTraining && p > 0 ? x.dropout(p, rng: &rng) : x
    }
}

extension Module {
    /// Gives every `Dropout` below this module a fresh stream drawn from `seed`, in `namedModules()` order — what
    /// `torch.manual_seed` before training does to a model's dropout masks (a loaded model's streams are otherwise
    /// the same on every run).
    ///
    /// ```swift
    /// let model = try AutoModel.fromPretrained(dir)
    /// model.seedDropout(42)
    /// ```
    public func seedDropout(_ seed: UInt64) {
        var rng = RandomStream(seed: seed)
        for (_, m) in namedModules() {
            if let d = m as? Dropout { d.rng = rng.split() }
        }
    }
}

/// Runs its layers in order.
public final class Sequential: Module {
    public let layers: [Module]

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
    }

    public convenience init(_ layers: Module...) { self.init(layers) }

    public override func forward(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }
}

/// Activation modules, for `Sequential`.
public final class ReLU: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.relu() }
}

public final class GELU: Module {
    public let approximate: Bool
    public init(approximate: Bool = true) { self.approximate = approximate; super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x.gelu(approximate: approximate) }
}

public final class Tanh: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.tanh() }
}

public final class Sigmoid: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.sigmoid() }
}
