// Layers Hugging Face checkpoints need beyond SpeedNN's: Conv1D ([in, out] weight), activations by name, attention masks.
// Invariant: models attend with the fused `Tensor.attention(..., mask:)`; the composed masked attention here (matmul,
// where, softmax) is kept for what the kernel lacks, attention-probability dropout while training, and for GPT-2's
// cache; its blocked scores take the dtype's lowest value, as transformers' eager path does.

import SpeedCore
import SpeedNN

/// GPT-2's `Conv1D`: a linear layer with the weight stored `[in, out]`, `y = x·W + b`.
///
/// ```swift
/// var rng = RandomStream(seed: 0)
/// let c = Conv1D(32, 96, std: 0.02, rng: &rng)   // weight [32, 96]
/// let y = c(Tensor.zeros([2, 5, 32]))             // [2, 5, 96]
/// ```
public final class Conv1D: Module {
    public let weight: Tensor   // [in, out]
    public let bias: Tensor     // [out]

    public init(_ inFeatures: Int, _ outFeatures: Int, std: Double, dtype: DType = .float32, device: Device = .cpu,
                rng: inout RandomStream) {
        weight = Tensor.randn([inFeatures, outFeatures], std: std, dtype: dtype, device: device, rng: &rng)
        bias = Tensor.zeros([outFeatures], dtype: dtype, device: device)
        weight.requiresGrad = true
        bias.requiresGrad = true
        super.init()
    }

    /// Set by ``shard(_:_:blocks:unit:name:)``: this layer holds one tensor-parallel shard.
    public private(set) var tensorParallel: TensorParallelShard?
    /// How `weight` and `bias` were cut (nil unsharded; a row-parallel layer's bias stays whole).
    public private(set) var weightLayout: TensorParallelLayout?
    public private(set) var biasLayout: TensorParallelLayout?

    public override func forward(_ x: Tensor) -> Tensor {
        guard let tp = tensorParallel else { return Tensor.matmul(x, weight) + bias }
        switch tp.style {
        case .column:
            return Tensor.matmul(x.copyToTensorParallelRegion(tp.comm), weight) + bias        // [..., out/tp]
        case .row:
            // The bias is whole on every rank: added once, after the partial products are summed.
            return Tensor.matmul(x, weight).reduceFromTensorParallelRegion(tp.comm) + bias    // [..., out]
        }
    }

    /// Keeps this rank's shard, as `Linear.shard` does but for the `[in, out]` layout: `.column` splits the output
    /// features (axis 1 of the weight; each of `blocks` — fused q/k/v: three — in `unit`s, a head's size) and the
    /// bias with them; `.row` splits the input features (axis 0) and keeps the bias whole.
    /// - Throws: ``TensorParallelError`` naming `name` when a block does not divide into `comm.size` shards.
    ///
    /// ```swift
    /// try attn.cAttn.shard(.column, comm, blocks: [c, c, c], unit: headDim, name: "h.0.attn.c_attn")
    /// try attn.cProj.shard(.row, comm, unit: headDim, name: "h.0.attn.c_proj")
    /// ```
    public func shard(_ style: TensorParallelStyle, _ comm: any TensorParallelCommunicator, blocks: [Int]? = nil,
                      unit: Int = 1, name: String) throws {
        precondition(tensorParallel == nil, "Conv1D.shard: \(name) is already sharded")
        let axis = style == .column ? 1 : 0
        let layout = TensorParallelLayout(axis: axis, blocks: blocks ?? [weight.shape[axis]], unit: unit)
        let w = try layout.shard(weight, rank: comm.rank, parts: comm.size, name: name)
        if style == .column {
            let b = TensorParallelLayout(axis: 0, blocks: layout.blocks, unit: unit)
            TensorParallelSplit.replace(bias, with: try b.shard(bias, rank: comm.rank, parts: comm.size, name: name))
            biasLayout = b
        }
        TensorParallelSplit.replace(weight, with: w)
        weightLayout = layout
        tensorParallel = TensorParallelShard(style, comm)
    }
}

extension Conv1D: TensorParallelLayoutProviding {
    public var ownTensorParallelLayouts: [String: TensorParallelLayout] {
        var out: [String: TensorParallelLayout] = [:]
        if let weightLayout { out["weight"] = weightLayout }
        if let biasLayout { out["bias"] = biasLayout }
        return out
    }

    public var ownTensorParallelCommunicator: (any TensorParallelCommunicator)? { tensorParallel?.comm }
}

/// A config.json `activation_function` / `hidden_act` value (transformers' `ACT2FN` names).
public enum Activation: String, Sendable, Codable, CaseIterable {
    /// The exact erf GELU (`"gelu"`, BERT's; `"gelu_python"` is the same function).
    case gelu
    case geluPython = "gelu_python"
    /// The tanh approximation (`"gelu_new"`, GPT-2's; `"gelu_pytorch_tanh"`, `"gelu_fast"` and `"gelu_accurate"`
    /// are the same function written differently).
    case geluNew = "gelu_new"
    case geluPytorchTanh = "gelu_pytorch_tanh"
    case geluFast = "gelu_fast"
    case geluAccurate = "gelu_accurate"
    /// `x · σ(1.702 x)` (CLIP's).
    case quickGelu = "quick_gelu"
    case relu
    case silu
    /// transformers' alias of `silu`.
    case swish
    case sigmoid
    case tanh
    /// The identity.
    case linear

    /// Parses `name`, naming `key` in `path` when it is not supported.
    static func parse(_ name: String, key: String, path: String) throws -> Activation {
        guard let a = Activation(rawValue: name) else {
            throw PretrainedError.unsupported(path: path, key: key, value: "\"\(name)\"",
                                              supported: Activation.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return a
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .gelu, .geluPython: x.gelu(approximate: false)
        case .geluNew, .geluPytorchTanh, .geluFast, .geluAccurate: x.gelu(approximate: true)
        case .quickGelu: x * (x * 1.702).sigmoid()
        case .relu: x.relu()
        case .silu, .swish: x.silu()
        case .sigmoid: x.sigmoid()
        case .tanh: x.tanh()
        case .linear: x
        }
    }
}

/// Attention masks built on the host from `attention_mask` (1 = attend, 0 = padding), and the composed attention.
enum HFAttention {
    /// `attention_mask` as the fused kernel's key padding (`[B, T]`, int32), or nil when it hides nothing.
    static func keyPadding(_ attentionMask: Tensor?, batch: Int, tokens: Int) -> Tensor? {
        guard let m = attentionMask else { return nil }
        precondition(m.shape == [batch, tokens], "attention_mask must be [batch, time] = [\(batch), \(tokens)], got \(m.shape)")
        let keys = m.scalars(as: Int32.self)
        return keys.contains(0) ? Tensor(keys, shape: [batch, tokens], device: m.device) : nil
    }

    /// `[B, 1, Tq or 1, Tk]` with 1 where attention is blocked: padded keys, future keys when `causal`, and keys
    /// `window` or more positions back; nil when nothing is blocked.
    static func blocked(attentionMask: Tensor?, batch: Int, tokens: Int, causal: Bool, window: Int? = nil,
                        device: Device) -> Tensor? {
        let keys: [Int32]? = attentionMask.map { m in
            precondition(m.shape == [batch, tokens],
                         "attention_mask must be [batch, time] = [\(batch), \(tokens)], got \(m.shape)")
            return m.scalars(as: Int32.self)
        }
        if !causal {
            guard let keys, keys.contains(0) else { return nil }
            return Tensor(keys.map { $0 == 0 ? Float(1) : 0 }, shape: [batch, 1, 1, tokens], device: device)
        }
        var out = [Float](repeating: 0, count: batch * tokens * tokens)
        for b in 0..<batch {
            for i in 0..<tokens {
                for j in 0..<tokens where j > i || window.map({ j <= i - $0 }) == true || keys?[b * tokens + j] == 0 {
                    out[(b * tokens + i) * tokens + j] = 1
                }
            }
        }
        return Tensor(out, shape: [batch, 1, tokens, tokens], device: device)
    }

    /// `softmax(q·kᵀ·scale, masked)·v` for `q, k, v: [B, H, T, D]`, optionally dropping probabilities.
    static func attend(_ q: Tensor, _ k: Tensor, _ v: Tensor, blocked: Tensor?, scale: Double,
                       dropout: Dropout?) -> Tensor {
        var scores = Tensor.matmul(q, k, transposeB: true) * scale            // [B, H, T, T]
        if let blocked {
            let lowest = q.dtype == .float16 ? -65504.0 : q.dtype == .float64 ? -Double.greatestFiniteMagnitude
                : -Double(Float.greatestFiniteMagnitude)
            scores = scores.maskedFill(blocked.cast(to: scores.dtype), lowest)
        }
        var probs = scores.softmax(axis: -1)
        if let dropout { probs = dropout(probs) }
        return Tensor.matmul(probs, v)                                      // [B, H, T, D]
    }

    /// `[B, T, C]` → `[B, H, T, D]`.
    static func heads(_ x: Tensor, _ h: Int) -> Tensor {
        let (b, t, c) = (x.shape[0], x.shape[1], x.shape[2])
        return x.reshape([b, t, h, c / h]).permute([0, 2, 1, 3])
    }

    /// `[B, H, T, D]` → `[B, T, H·D]`.
    static func merge(_ x: Tensor) -> Tensor {
        let (b, h, t, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        return x.permute([0, 2, 1, 3]).reshape([b, t, h * d])
    }
}

/// Positions `0..<t` as int64 on `device`.
func positions(_ batch: Int, _ t: Int, device: Device) -> Tensor {
    Tensor((0..<(batch * t)).map { $0 % t }, shape: [batch, t], device: device)
}

/// A block's inputs for a checkpointed call: the hidden states and, when there is one, the attention mask.
func checkpointInputs(_ hidden: Tensor, _ blocked: Tensor?) -> ModuleInputs {
    var inputs: ModuleInputs = ["hidden_states": hidden]
    if let blocked { inputs["blocked"] = blocked }
    return inputs
}

/// A bidirectional encoder layer (BERT's, DistilBERT's): `x [B, T, C]` and the key padding, and the named-inputs
/// form (`hidden_states`, `key_padding`) that `checkpointed` recomputes.
protocol EncoderLayer: Module {
    func forward(_ x: Tensor, keyPadding: Tensor?) -> Tensor
}

/// `x` through `layers`, each recomputed in backward when `checkpointing` is on while training (HF's
/// `gradient_checkpointing`).
func runEncoder<L: EncoderLayer>(_ layers: [L], _ x: Tensor, keyPadding: Tensor?, checkpointing: ActivationCheckpointing,
                                 training: Bool) -> Tensor {
    var x = x
    for layer in layers {
        if checkpointing.enabled && training {
            var inputs: ModuleInputs = ["hidden_states": x]
            if let keyPadding { inputs["key_padding"] = keyPadding }
            x = layer.checkpointed(inputs, saveInputsOn: checkpointing.saveInputsOn)["hidden_states"]!
        } else {
            x = layer.forward(x, keyPadding: keyPadding)
        }
    }
    return x
}

