// GPT-2 with Hugging Face's names and layouts: GPT2Config, GPT2Model, GPT2LMHeadModel.
// Invariant: lm_head is not a parameter: logits read `transformer.wte.weight` (tied), so the state dict has no
// `lm_head.weight` — exactly what save_pretrained stores — and a file that carries one has it dropped by sanitize.

import Foundation
import SpeedCore
import SpeedNN

/// config.json of a `gpt2` model (transformers' `GPT2Config`; absent keys take its defaults).
///
/// ```swift
/// let config = GPT2Config(vocabSize: 100, nPositions: 16, nEmbd: 32, nLayer: 2, nHead: 4)
/// let model = GPT2LMHeadModel(config)
/// ```
public struct GPT2Config: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var nPositions: Int
    public var nEmbd: Int
    public var nLayer: Int
    public var nHead: Int
    /// The MLP's inner width; nil: 4·nEmbd.
    public var nInner: Int?
    public var activationFunction: String
    public var residPdrop: Double
    public var embdPdrop: Double
    public var attnPdrop: Double
    public var layerNormEpsilon: Double
    public var initializerRange: Double
    public var scaleAttnWeights: Bool
    /// HF's `scale_attn_by_inverse_layer_idx`: block i's attention scores are further divided by i + 1.
    public var scaleAttnByInverseLayerIdx: Bool

    public init(vocabSize: Int = 50257, nPositions: Int = 1024, nEmbd: Int = 768, nLayer: Int = 12, nHead: Int = 12,
                nInner: Int? = nil, activationFunction: String = "gelu_new", residPdrop: Double = 0.1,
                embdPdrop: Double = 0.1, attnPdrop: Double = 0.1, layerNormEpsilon: Double = 1e-5,
                initializerRange: Double = 0.02, scaleAttnWeights: Bool = true,
                scaleAttnByInverseLayerIdx: Bool = false) {
        self.vocabSize = vocabSize; self.nPositions = nPositions; self.nEmbd = nEmbd; self.nLayer = nLayer
        self.nHead = nHead; self.nInner = nInner; self.activationFunction = activationFunction
        self.residPdrop = residPdrop; self.embdPdrop = embdPdrop; self.attnPdrop = attnPdrop
        self.layerNormEpsilon = layerNormEpsilon; self.initializerRange = initializerRange
        self.scaleAttnWeights = scaleAttnWeights; self.scaleAttnByInverseLayerIdx = scaleAttnByInverseLayerIdx
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", nPositions = "n_positions", nEmbd = "n_embd", nLayer = "n_layer"
        case nHead = "n_head", nInner = "n_inner", activationFunction = "activation_function"
        case residPdrop = "resid_pdrop", embdPdrop = "embd_pdrop", attnPdrop = "attn_pdrop"
        case layerNormEpsilon = "layer_norm_epsilon", initializerRange = "initializer_range"
        case scaleAttnWeights = "scale_attn_weights", scaleAttnByInverseLayerIdx = "scale_attn_by_inverse_layer_idx"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GPT2Config()
        self.init(vocabSize: try c.value(.vocabSize, default: d.vocabSize),
                  nPositions: try c.value(.nPositions, default: d.nPositions),
                  nEmbd: try c.value(.nEmbd, default: d.nEmbd), nLayer: try c.value(.nLayer, default: d.nLayer),
                  nHead: try c.value(.nHead, default: d.nHead), nInner: try c.decodeIfPresent(Int.self, forKey: .nInner),
                  activationFunction: try c.value(.activationFunction, default: d.activationFunction),
                  residPdrop: try c.value(.residPdrop, default: d.residPdrop),
                  embdPdrop: try c.value(.embdPdrop, default: d.embdPdrop),
                  attnPdrop: try c.value(.attnPdrop, default: d.attnPdrop),
                  layerNormEpsilon: try c.value(.layerNormEpsilon, default: d.layerNormEpsilon),
                  initializerRange: try c.value(.initializerRange, default: d.initializerRange),
                  scaleAttnWeights: try c.value(.scaleAttnWeights, default: d.scaleAttnWeights),
                  scaleAttnByInverseLayerIdx: try c.value(.scaleAttnByInverseLayerIdx,
                                                          default: d.scaleAttnByInverseLayerIdx))
    }

    /// Rejects what this implementation does not compute, naming the config.json key.
    package func validate(path: String) throws -> Activation {
        guard nEmbd % nHead == 0 else {
            throw PretrainedError.unsupported(path: path, key: "n_head", value: "\(nHead)",
                                              supported: "a divisor of n_embd (\(nEmbd))")
        }
        return try Activation.parse(activationFunction, key: "activation_function", path: path)
    }
}

/// GPT-2 attention: `c_attn` (Conv1D C → 3C), causal softmax, `c_proj` (C → C).
public final class GPT2Attention: Module {
    @ModuleInfo(key: "c_attn") public var cAttn: Conv1D
    @ModuleInfo(key: "c_proj") public var cProj: Conv1D
    @ModuleInfo(key: "attn_dropout") var attnDropout: Dropout
    @ModuleInfo(key: "resid_dropout") var residDropout: Dropout
    /// This rank's heads: `n_head`, or `n_head / tp` once tensor-parallel sharded.
    var heads: Int
    let headDim: Int
    /// The softmax's score scale: 1/√d (or 1 without `scale_attn_weights`), ÷ (layer + 1) with
    /// `scale_attn_by_inverse_layer_idx`.
    let scale: Double

    init(_ c: GPT2Config, layer: Int, dtype: DType, device: Device, rng: inout RandomStream) {
        heads = c.nHead
        headDim = c.nEmbd / c.nHead
        scale = (c.scaleAttnWeights ? 1 / Double(headDim).squareRoot() : 1)
            / (c.scaleAttnByInverseLayerIdx ? Double(layer + 1) : 1)
        super.init()
        let std = c.initializerRange
        cAttn = Conv1D(c.nEmbd, 3 * c.nEmbd, std: std, dtype: dtype, device: device, rng: &rng)
        cProj = Conv1D(c.nEmbd, c.nEmbd, std: std / Double(2 * c.nLayer).squareRoot(), dtype: dtype, device: device, rng: &rng)
        attnDropout = Dropout(c.attnPdrop, rng: &rng)
        residDropout = Dropout(c.residPdrop, rng: &rng)
    }

    /// `x [B, T, C]`; `blocked` (causal + padding, `[B, 1, T, T]`) selects the composed path.
    func forward(_ x: Tensor, blocked: Tensor?) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let d = headDim, c = heads * headDim   // this rank's heads' width (all of n_embd unsharded)
        let qkv = cAttn(x)                       // [B, T, 3c]: [q | k | v] of this rank's heads
        let y: Tensor
        if blocked == nil && !(isTraining && attnDropout.p > 0) {
            y = Tensor.attention(packed: qkv.reshape([b, t, 3, heads, d]), causal: true, scale: scale).reshape([b, t, c])
        } else {
            let parts = qkv.split([c, c, c], axis: 2)
            let mask = blocked ?? HFAttention.blocked(attentionMask: nil, batch: b, tokens: t, causal: true, device: x.device)
            y = HFAttention.merge(HFAttention.attend(HFAttention.heads(parts[0], heads), HFAttention.heads(parts[1], heads),
                                                         HFAttention.heads(parts[2], heads), blocked: mask, scale: scale,
                                                         dropout: attnDropout))
        }
        return residDropout(cProj(y))
    }
}

/// GPT-2's MLP: `c_fc` (C → inner), activation, `c_proj` (inner → C), dropout.
public final class GPT2MLP: Module {
    @ModuleInfo(key: "c_fc") public var cFc: Conv1D
    @ModuleInfo(key: "c_proj") public var cProj: Conv1D
    let dropout: Dropout
    let act: Activation

    init(_ c: GPT2Config, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        let inner = c.nInner ?? 4 * c.nEmbd
        self.act = act
        dropout = Dropout(c.residPdrop, rng: &rng)
        super.init()
        cFc = Conv1D(c.nEmbd, inner, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        cProj = Conv1D(inner, c.nEmbd, std: c.initializerRange / Double(2 * c.nLayer).squareRoot(), dtype: dtype,
                       device: device, rng: &rng)
    }

    public override func forward(_ x: Tensor) -> Tensor { dropout(cProj(act(cFc(x)))) }
}

/// One GPT-2 block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
public final class GPT2Block: Module {
    @ModuleInfo(key: "ln_1") public var ln1: LayerNorm
    public let attn: GPT2Attention
    @ModuleInfo(key: "ln_2") public var ln2: LayerNorm
    public let mlp: GPT2MLP

    /// `layer`: this block's index `i` in `h.{i}` (the inverse-layer scale reads it).
    package init(_ c: GPT2Config, layer: Int, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        attn = GPT2Attention(c, layer: layer, dtype: dtype, device: device, rng: &rng)
        mlp = GPT2MLP(c, act: act, dtype: dtype, device: device, rng: &rng)
        super.init()
        ln1 = LayerNorm(c.nEmbd, eps: c.layerNormEpsilon, dtype: dtype, device: device)
        ln2 = LayerNorm(c.nEmbd, eps: c.layerNormEpsilon, dtype: dtype, device: device)
    }

    package func forward(_ x: Tensor, blocked: Tensor?) -> Tensor {
        let h = x + attn.forward(ln1(x), blocked: blocked)
        return h + mlp(ln2(h))
    }

    /// `hidden_states` (+ `blocked`): the call form `checkpointed` recomputes.
    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        ModuleOutputs([("hidden_states", forward(inputs["hidden_states"]!, blocked: inputs["blocked"]))])
    }
}

/// The bare GPT-2 transformer (`wte`, `wpe`, `h.{i}`, `ln_f`): `input_ids` (+ `attention_mask`,
/// `token_type_ids`, `position_ids`) → `last_hidden_state [B, T, C]`.
///
/// ```swift
/// let model = try GPT2Model.fromPretrained(dir)
/// let h = model(["input_ids": ids]).lastHiddenState!   // [B, T, n_embd]
/// ```
public final class GPT2Model: Module, PretrainedModel, ActivationCheckpointable {
    public static let architecture = "GPT2Model"
    public static let modelType = "gpt2"
    /// HF's `gradient_checkpointing`: every block recomputed in backward while training.
    public var activationCheckpointing = ActivationCheckpointing.off
    public let config: GPT2Config
    public let wte: Embedding
    public let wpe: Embedding
    let drop: Dropout
    public let h: [GPT2Block]
    @ModuleInfo(key: "ln_f") public var lnF: LayerNorm
    let folder: PretrainedFolder?

    /// A randomly initialised model (GPT-2's init: N(0, initializer_range), residual projections scaled).
    public convenience init(_ config: GPT2Config, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(config, folder: nil, dtype: dtype, device: device, seed: seed)
    }

    init(_ config: GPT2Config, folder: PretrainedFolder?, dtype: DType, device: Device, seed: UInt64 = 0) throws {
        let act = try config.validate(path: folder.map { $0.url.appendingPathComponent(PretrainedFolder.configName).path } ?? "GPT2Config")
        var rng = RandomStream(seed: seed)
        self.config = config
        self.folder = folder
        wte = Embedding(config.vocabSize, config.nEmbd, std: config.initializerRange, dtype: dtype, device: device, rng: &rng)
        wpe = Embedding(config.nPositions, config.nEmbd, std: config.initializerRange, dtype: dtype, device: device, rng: &rng)
        drop = Dropout(config.embdPdrop, rng: &rng)
        h = (0..<config.nLayer).map { GPT2Block(config, layer: $0, act: act, dtype: dtype, device: device, rng: &rng) }
        super.init()
        lnF = LayerNorm(config.nEmbd, eps: config.layerNormEpsilon, dtype: dtype, device: device)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try folder.decodeConfig(GPT2Config.self), folder: folder, dtype: dtype, device: device)
    }

    public func configJSON() throws -> [String: Any] {
        rawConfig(folder).merging(try jsonObject(config)) { $1 }
    }

    /// Strips `transformer.` (a GPT2LMHeadModel file) and drops `lm_head.weight` and the legacy
    /// `attn.bias` / `attn.masked_bias` buffers.
    public func sanitize(_ weights: StateDict) -> StateDict { GPT2Names.sanitize(weights, prefix: nil) }

    /// `[B, T, C]` after `ln_f`.
    public func hidden(_ inputs: ModuleInputs) -> Tensor {
        guard let ids = inputs.inputIds else { preconditionFailure("GPT2Model: needs \"input_ids\" [batch, time]") }
        precondition(ids.rank == 2, "GPT2Model: input_ids must be [batch, time], got \(ids.shape)")
        let (b, t) = (ids.shape[0], ids.shape[1])
        precondition(t <= config.nPositions, "GPT2Model: sequence length \(t) exceeds n_positions \(config.nPositions)")
        var x = wte(ids) + wpe(inputs.positionIds ?? positions(b, t, device: ids.device))
        if let types = inputs.tokenTypeIds { x = x + wte(types) }
        x = drop(x)
        let keys = inputs.attentionMask.map { m in m.scalars(as: Int32.self).contains(0) ? m : nil } ?? nil
        let blocked = keys.flatMap {
            HFAttention.blocked(attentionMask: $0, batch: b, tokens: t, causal: true, device: ids.device)
        }
        for block in h {
            x = activationCheckpointing.enabled && isTraining
                ? block.checkpointed(checkpointInputs(x, blocked), saveInputsOn: activationCheckpointing.saveInputsOn)["hidden_states"]!
                : block.forward(x, blocked: blocked)
        }
        return lnF(x)
    }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        var out = ModuleOutputs()
        out.lastHiddenState = hidden(inputs)
        return out
    }
}

/// GPT-2 with its language-model head tied to `transformer.wte`: `input_ids` (+ `attention_mask`,
/// `labels`) → `logits [B, T, V]` and, with labels, the next-token `loss` (labels are shifted
/// inside, −100 is ignored), as transformers computes it.
///
/// ```swift
/// let model = try GPT2LMHeadModel.fromPretrained(URL(fileURLWithPath: "gpt2"))
/// let out = model(["input_ids": ids, "labels": ids])
/// out.loss!.backward()
/// ```
public final class GPT2LMHeadModel: Module, PretrainedModel {
    public static let architecture = "GPT2LMHeadModel"
    public static let modelType = "gpt2"
    public let transformer: GPT2Model

    public init(_ config: GPT2Config, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        transformer = try GPT2Model(config, dtype: dtype, device: device, seed: seed)
        super.init()
    }

    public init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        transformer = try GPT2Model(folder: folder, dtype: dtype, device: device)
        super.init()
    }

    public var config: GPT2Config { transformer.config }
    public func configJSON() throws -> [String: Any] { try transformer.configJSON() }

    /// Adds `transformer.` to a bare GPT2Model file's names; drops `lm_head.weight` (tied) and
    /// the legacy `attn.bias` / `attn.masked_bias` buffers.
    public func sanitize(_ weights: StateDict) -> StateDict { GPT2Names.sanitize(weights, prefix: "transformer") }

    /// The tied head reads the embedding's weight outside `wte`'s own forward.
    public override var externalParameters: [Tensor] { [transformer.wte.weight] }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let hidden = transformer.hidden(inputs)
        var out = ModuleOutputs()
        if let (range, comm) = transformer.wte.vocabularyShard {
            // Tensor-parallel: each rank's vocabulary shard of the logits; the loss never gathers them.
            let local = Tensor.matmul(hidden.copyToTensorParallelRegion(comm), transformer.wte.weight, transposeB: true)   // [B, T, V/tp]
            if let labels = inputs.labels {
                out.loss = local.vocabParallelCrossEntropy(targets: Self.causalTargets(labels), vocabRange: range, comm: comm)
            }
            out.logits = local.gatherFromTensorParallelRegion(comm, sizes: TensorParallelSplit.ranges(config.vocabSize, parts: comm.size).map(\.count))
            return out
        }
        let logits = Tensor.matmul(hidden, transformer.wte.weight, transposeB: true)
        if let labels = inputs.labels { out.loss = Self.causalLoss(logits, labels: labels) }
        out.logits = logits
        return out
    }

    /// Mean cross-entropy of `logits[:, t]` against `labels[:, t + 1]`, ignoring −100 (the last
    /// position has no target): transformers' `ForCausalLMLoss`.
    public static func causalLoss(_ logits: Tensor, labels: Tensor) -> Tensor {
        logits.crossEntropy(targets: causalTargets(labels), ignoreIndex: -100)
    }

    /// `labels [B, T]` shifted one position left, −100 in the last column: position t's target is token t + 1.
    static func causalTargets(_ labels: Tensor) -> Tensor {
        let (b, t) = (labels.shape[0], labels.shape[1])
        let host = labels.scalars(as: Int.self)
        var shifted = [Int](repeating: -100, count: b * t)
        for i in 0..<b { for j in 0..<(t - 1) { shifted[i * t + j] = host[i * t + j + 1] } }
        return Tensor(shifted, shape: [b, t], device: labels.device)
    }
}

/// GPT-2's file-name fixes.
enum GPT2Names {
    static func sanitize(_ weights: StateDict, prefix: String?) -> StateDict {
        var out: StateDict = [:]
        for (name, t) in weights {
            if name == "lm_head.weight" || name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") { continue }
            var key = name
            if key.hasPrefix("transformer.") { key = String(key.dropFirst("transformer.".count)) }
            if let prefix { key = "\(prefix).\(key)" }
            out[key] = t
        }
        return out
    }
}
