// GPT-2: pre-LayerNorm transformer blocks, tanh-GELU MLP, learned positions, LM head tied to wte.
// Invariant: initialisation is GPT-2's — N(0, 0.02) everywhere, residual projections scaled by
// 1/√(2·layers), biases 0, LayerNorm (1, 0) — drawn from one seed, so a config + seed is a model.

import SpeedCore

/// GPT-2 hyper-parameters.
///
/// ```swift
/// let config = GPTConfig.gptMini          // 5,289,472 parameters
/// var rng = RandomStream(seed: 1337)
/// let model = GPT(config, rng: &rng)
/// ```
public struct GPTConfig: Codable, Sendable, Hashable {
    public var vocabSize: Int
    public var contextLength: Int
    public var layers: Int
    public var heads: Int
    public var embedDim: Int
    public var dropout: Double
    public var layerNormEps: Double
    /// Checkpoint every transformer block: keep only the blocks' inputs in forward and recompute
    /// each block in backward (Hugging Face's `gradient_checkpointing`). A training choice, not an
    /// architecture one: weights, names and results are the same either way. Becomes the model's
    /// ``GPT/activationCheckpointing``, which the runtime's `activation_checkpointing` block configures.
    public var checkpointActivations: Bool

    public init(vocabSize: Int, contextLength: Int, layers: Int, heads: Int, embedDim: Int,
                dropout: Double = 0, layerNormEps: Double = 1e-5, checkpointActivations: Bool = false) {
        precondition(embedDim % heads == 0, "GPTConfig: embedDim \(embedDim) is not divisible by heads \(heads)")
        self.vocabSize = vocabSize; self.contextLength = contextLength; self.layers = layers
        self.heads = heads; self.embedDim = embedDim; self.dropout = dropout; self.layerNormEps = layerNormEps
        self.checkpointActivations = checkpointActivations
    }

    private enum CodingKeys: String, CodingKey {
        case vocabSize, contextLength, layers, heads, embedDim, dropout, layerNormEps, checkpointActivations
    }

    /// Decodes configs written before `checkpointActivations` existed (it defaults to false).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vocabSize: try c.decode(Int.self, forKey: .vocabSize),
                  contextLength: try c.decode(Int.self, forKey: .contextLength),
                  layers: try c.decode(Int.self, forKey: .layers), heads: try c.decode(Int.self, forKey: .heads),
                  embedDim: try c.decode(Int.self, forKey: .embedDim),
                  dropout: try c.decode(Double.self, forKey: .dropout),
                  layerNormEps: try c.decode(Double.self, forKey: .layerNormEps),
                  checkpointActivations: try c.decodeIfPresent(Bool.self, forKey: .checkpointActivations) ?? false)
    }

    /// BENCHMARKS.md B1: L=4, H=4, C=256, T=128, V=8192.
    public static let gptMini = GPTConfig(vocabSize: 8192, contextLength: 128, layers: 4, heads: 4, embedDim: 256)
    /// GPT-2 small (124M): L=12, H=12, C=768, T=1024, V=50257.
    public static let gpt2Small = GPTConfig(vocabSize: 50257, contextLength: 1024, layers: 12, heads: 12, embedDim: 768)

    /// A preset by name: "gpt-mini" or "gpt2-small".
    public static func preset(_ name: String) -> GPTConfig? {
        switch name {
        case "gpt-mini": .gptMini
        case "gpt2-small", "gpt2": .gpt2Small
        default: nil
        }
    }
}

/// Multi-head causal self-attention with one fused QKV projection and the fused attention op.
public final class CausalSelfAttention: Module {
    public let qkv: Linear    // C -> 3C
    public let proj: Linear   // C -> C
    /// The heads this rank computes: all of them, or its share once tensor-parallel sharded.
    public internal(set) var heads: Int
    public let headDim: Int

    public init(_ c: GPTConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        qkv = Linear(c.embedDim, 3 * c.embedDim, std: 0.02, dtype: dtype, device: device, rng: &rng)
        proj = Linear(c.embedDim, c.embedDim, std: 0.02 / Double(2 * c.layers).squareRoot(), dtype: dtype,
                      device: device, rng: &rng)
        heads = c.heads
        headDim = c.embedDim / c.heads
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        let (b, t, d) = (x.shape[0], x.shape[1], headDim)
        let packed = qkv(x).reshape([b, t, 3, heads, d])          // [B, T, 3, H, D] (H this rank's heads)
        let y = Tensor.attention(packed: packed, causal: true)    // [B, T, H, D]
        return proj(y.reshape([b, t, heads * d]))
    }
}

/// The position-wise feed-forward network: C → 4C → GELU(tanh) → C.
public final class MLP: Module {
    public let fc: Linear
    public let proj: Linear

    public init(_ c: GPTConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        fc = Linear(c.embedDim, 4 * c.embedDim, std: 0.02, dtype: dtype, device: device, rng: &rng)
        proj = Linear(4 * c.embedDim, c.embedDim, std: 0.02 / Double(2 * c.layers).squareRoot(), dtype: dtype,
                      device: device, rng: &rng)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { proj(fc(x).gelu()) }
}

/// One pre-LayerNorm transformer block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
public final class Block: Module {
    public let ln1: LayerNorm
    public let attn: CausalSelfAttention
    public let ln2: LayerNorm
    public let mlp: MLP
    public let residualDropout: Dropout

    public init(_ c: GPTConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        ln1 = LayerNorm(c.embedDim, eps: c.layerNormEps, dtype: dtype, device: device)
        attn = CausalSelfAttention(c, dtype: dtype, device: device, rng: &rng)
        ln2 = LayerNorm(c.embedDim, eps: c.layerNormEps, dtype: dtype, device: device)
        mlp = MLP(c, dtype: dtype, device: device, rng: &rng)
        residualDropout = Dropout(c.dropout, rng: &rng)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        let h = x + residualDropout(attn(ln1(x)))
        return h + residualDropout(mlp(ln2(h)))
    }
}

/// GPT-2 language model: `ids [B, T]` → `logits [B, T, V]`.
///
/// With activation checkpointing on (``GPTConfig/checkpointActivations`` or
/// ``activationCheckpointing``), each block is a checkpoint: forward keeps only the blocks'
/// inputs, and backward recomputes one block at a time, with the same loss and gradients.
public final class GPT: Module, ActivationCheckpointable {
    public let config: GPTConfig
    public let wte: Embedding   // [V, C], also the output projection
    public let wpe: Embedding   // [T, C]
    public let embedDropout: Dropout
    public let blocks: [Block]
    public let lnF: LayerNorm
    /// Whether blocks are checkpointed (from `config.checkpointActivations`) and where their saved
    /// inputs live. Settable at any time; takes effect at the next forward.
    public var activationCheckpointing: ActivationCheckpointing

    public init(_ config: GPTConfig, dtype: DType = .float32, device: Device = .cpu, rng: inout RandomStream) {
        self.config = config
        wte = Embedding(config.vocabSize, config.embedDim, std: 0.02, dtype: dtype, device: device, rng: &rng)
        wpe = Embedding(config.contextLength, config.embedDim, std: 0.02, dtype: dtype, device: device, rng: &rng)
        embedDropout = Dropout(config.dropout, rng: &rng)
        blocks = (0..<config.layers).map { _ in Block(config, dtype: dtype, device: device, rng: &rng) }
        lnF = LayerNorm(config.embedDim, eps: config.layerNormEps, dtype: dtype, device: device)
        activationCheckpointing = ActivationCheckpointing(enabled: config.checkpointActivations)
        super.init()
    }

    /// The final hidden states `[B, T, C]` (before the tied LM head).
    public func hidden(_ ids: Tensor) -> Tensor {
        precondition(ids.rank == 2, "GPT: ids must be [batch, time], got \(ids.shape)")
        let t = ids.shape[1]
        precondition(t <= config.contextLength, "GPT: sequence length \(t) exceeds contextLength \(config.contextLength)")
        let positions = Tensor((0..<t).map { $0 }, device: ids.device)
        var x = embedDropout(wte(ids) + wpe(positions))
        let ac = activationCheckpointing
        for block in blocks { x = ac.enabled ? block.checkpointed(x, saveInputsOn: ac.saveInputsOn) : block(x) }
        return lnF(x)
    }

    public override func forward(_ ids: Tensor) -> Tensor {
        let h = hidden(ids)                                          // [B, T, C]
        guard let (_, comm) = wte.vocabularyShard else { return Tensor.matmul(h, wte.weight, transposeB: true) }   // [B, T, V]
        let local = Tensor.matmul(h.copyToTensorParallelRegion(comm), wte.weight, transposeB: true)   // [B, T, V/tp]
        let sizes = TensorParallelSplit.ranges(config.vocabSize, parts: comm.size).map(\.count)
        return local.gatherFromTensorParallelRegion(comm, sizes: sizes)                              // [B, T, V]
    }

    /// The tied output projection reads the embedding's weight outside `wte`'s own forward.
    public override var externalParameters: [Tensor] { [wte.weight] }

    /// Mean next-token cross-entropy of `ids [B, T]` against `targets [B, T]`.
    /// Tensor-parallel sharded, the logits stay sharded (vocab-parallel cross-entropy, no gather).
    public func loss(_ ids: Tensor, targets: Tensor) -> Tensor {
        guard let (range, comm) = wte.vocabularyShard else { return self(ids).crossEntropy(targets: targets) }
        for hook in forwardPreHooks { hook(self) }
        let h = hidden(ids)                                                                          // [B, T, C]
        let local = Tensor.matmul(h.copyToTensorParallelRegion(comm), wte.weight, transposeB: true)   // [B, T, V/tp]
        return local.vocabParallelCrossEntropy(targets: targets, vocabRange: range, comm: comm)
    }
}

/// The first seed's model: Linear(768 → 2048), ReLU, Linear(2048 → 768).
public final class SimpleModel: Module {
    public let linear1: Linear
    public let linear2: Linear

    public init(inFeatures: Int = 768, hidden: Int = 2048, dtype: DType = .float32, device: Device = .cpu,
                rng: inout RandomStream) {
        linear1 = Linear(inFeatures, hidden, dtype: dtype, device: device, rng: &rng)
        linear2 = Linear(hidden, inFeatures, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { linear2(linear1(x).relu()) }
}
