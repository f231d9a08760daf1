// Llama with Hugging Face's names and layouts: LlamaConfig, LlamaModel, LlamaForCausalLM (Mistral and Qwen2 map onto it).
// Invariant: fused kernels throughout: RMSNorm (fp32 inside), rotary (HF's rotate_half, cos/sin tables built on the host
// from the positions), SwiGLU, and token-major grouped-query attention with the causal / sliding-window / padding mask
// (no K/V repeat, no permutes); `lm_head` is a parameter only when `tie_word_embeddings` is false (tied: logits read
// `model.embed_tokens.weight`, and a file's `lm_head.weight` is dropped).

import Foundation
import SpeedCore
import SpeedNN

/// config.json of a `llama` model (transformers' `LlamaConfig`; absent keys take its defaults). Mistral's and
/// Qwen2's configs decode into it too.
///
/// ```swift
/// let config = LlamaConfig(vocabSize: 100, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2,
///                          numAttentionHeads: 4, numKeyValueHeads: 2)
/// let model = try LlamaForCausalLM(config)
/// ```
public struct LlamaConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    /// nil: `numAttentionHeads` (no grouping).
    public var numKeyValueHeads: Int?
    /// nil: `hiddenSize / numAttentionHeads`.
    public var headDim: Int?
    public var hiddenAct: String
    public var maxPositionEmbeddings: Int
    public var initializerRange: Double
    public var rmsNormEps: Double
    public var tieWordEmbeddings: Bool
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    /// Biases on q, k, v and o projections.
    public var attentionBias: Bool
    public var attentionDropout: Double
    public var mlpBias: Bool
    /// Mistral's / Qwen2's window: query `i` sees keys `j` with `i − window < j ≤ i` (on the layers ``layerTypes``
    /// marks `sliding_attention`; all layers when it is nil).
    public var slidingWindow: Int?
    /// transformers' `layer_types` (`full_attention` / `sliding_attention` per layer); nil: every layer alike. Qwen2's
    /// `max_window_layers` is turned into this when the file has no `layer_types`.
    public var layerTypes: [String]?
    /// Biases on q, k, v only (Qwen2's layout); not a config.json key — set from `model_type`.
    public var qkvBias: Bool = false
    /// The padding token, whose embedding row gets no gradient (`padding_idx`); nil (the default) for none.
    public var padTokenId: Int? = nil

    public init(vocabSize: Int = 32000, hiddenSize: Int = 4096, intermediateSize: Int = 11008, numHiddenLayers: Int = 32,
                numAttentionHeads: Int = 32, numKeyValueHeads: Int? = nil, headDim: Int? = nil, hiddenAct: String = "silu",
                maxPositionEmbeddings: Int = 2048, initializerRange: Double = 0.02, rmsNormEps: Double = 1e-6,
                tieWordEmbeddings: Bool = false, ropeTheta: Double = 10000, ropeScaling: RopeScaling? = nil,
                attentionBias: Bool = false, attentionDropout: Double = 0, mlpBias: Bool = false,
                slidingWindow: Int? = nil, layerTypes: [String]? = nil, qkvBias: Bool = false) {
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads; self.headDim = headDim; self.hiddenAct = hiddenAct
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.initializerRange = initializerRange
        self.rmsNormEps = rmsNormEps; self.tieWordEmbeddings = tieWordEmbeddings; self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling; self.attentionBias = attentionBias; self.attentionDropout = attentionDropout
        self.mlpBias = mlpBias; self.slidingWindow = slidingWindow; self.layerTypes = layerTypes; self.qkvBias = qkvBias
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", initializerRange = "initializer_range"
        case rmsNormEps = "rms_norm_eps", tieWordEmbeddings = "tie_word_embeddings", ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling", ropeParameters = "rope_parameters", attentionBias = "attention_bias"
        case attentionDropout = "attention_dropout", mlpBias = "mlp_bias", slidingWindow = "sliding_window"
        case useSlidingWindow = "use_sliding_window", layerTypes = "layer_types", maxWindowLayers = "max_window_layers"
        case padTokenId = "pad_token_id", originalMaxPositionEmbeddings = "original_max_position_embeddings"
        case partialRotaryFactor = "partial_rotary_factor"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LlamaConfig()
        // transformers 5 writes `rope_parameters` (with rope_theta inside); 4.x wrote `rope_theta` + `rope_scaling`.
        let params = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeParameters)
        let legacy = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling)
        var scaling = params ?? legacy
        let theta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? params?.ropeTheta ?? d.ropeTheta
        scaling?.ropeTheta = nil
        if let partial = try c.decodeIfPresent(Double.self, forKey: .partialRotaryFactor), partial != 1 {
            scaling = scaling ?? RopeScaling()   // kept so validate() refuses it by name
            scaling?.partialRotaryFactor = partial
        }
        if scaling?.ropeType == "default" && scaling?.factor == nil && scaling?.partialRotaryFactor == nil { scaling = nil }
        // A top-level original_max_position_embeddings (Phi-3's layout) wins over the rope dict's, as in transformers.
        if let original = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings),
           let type = scaling?.ropeType, ["llama3", "yarn", "longrope"].contains(type) {
            scaling?.originalMaxPositionEmbeddings = original
        }
        // Qwen2 carries sliding_window but only uses it with use_sliding_window.
        let useWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? true
        let layers = try c.value(.numHiddenLayers, default: d.numHiddenLayers)
        // Qwen2 without layer_types: sliding attention from layer max_window_layers on (transformers' default).
        let types = try c.decodeIfPresent([String].self, forKey: .layerTypes)
            ?? c.decodeIfPresent(Int.self, forKey: .maxWindowLayers).map { m in
                (0..<layers).map { $0 >= m ? "sliding_attention" : "full_attention" }
            }
        self.init(vocabSize: try c.value(.vocabSize, default: d.vocabSize),
                  hiddenSize: try c.value(.hiddenSize, default: d.hiddenSize),
                  intermediateSize: try c.value(.intermediateSize, default: d.intermediateSize),
                  numHiddenLayers: layers,
                  numAttentionHeads: try c.value(.numAttentionHeads, default: d.numAttentionHeads),
                  numKeyValueHeads: try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads),
                  headDim: try c.decodeIfPresent(Int.self, forKey: .headDim),
                  hiddenAct: try c.value(.hiddenAct, default: d.hiddenAct),
                  maxPositionEmbeddings: try c.value(.maxPositionEmbeddings, default: d.maxPositionEmbeddings),
                  initializerRange: try c.value(.initializerRange, default: d.initializerRange),
                  rmsNormEps: try c.value(.rmsNormEps, default: d.rmsNormEps),
                  tieWordEmbeddings: try c.value(.tieWordEmbeddings, default: d.tieWordEmbeddings),
                  ropeTheta: theta, ropeScaling: scaling,
                  attentionBias: try c.value(.attentionBias, default: d.attentionBias),
                  attentionDropout: try c.value(.attentionDropout, default: d.attentionDropout),
                  mlpBias: try c.value(.mlpBias, default: d.mlpBias),
                  slidingWindow: useWindow ? try c.decodeIfPresent(Int.self, forKey: .slidingWindow) : nil,
                  layerTypes: types)
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(kvHeads, forKey: .numKeyValueHeads)
        try c.encode(headSize, forKey: .headDim)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(initializerRange, forKey: .initializerRange)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        var params = ropeScaling ?? RopeScaling()
        params.ropeTheta = ropeTheta
        try c.encode(params, forKey: .ropeParameters)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(attentionDropout, forKey: .attentionDropout)
        try c.encode(mlpBias, forKey: .mlpBias)
        try c.encodeIfPresent(slidingWindow, forKey: .slidingWindow)
        try c.encodeIfPresent(layerTypes, forKey: .layerTypes)
        try c.encodeIfPresent(padTokenId, forKey: .padTokenId)
    }

    /// The sliding window layer `i` attends with (nil: full causal attention).
    public func window(layer i: Int) -> Int? {
        guard let w = slidingWindow else { return nil }
        guard let types = layerTypes, i < types.count else { return w }
        return types[i] == "sliding_attention" ? w : nil
    }

    public var kvHeads: Int { numKeyValueHeads ?? numAttentionHeads }
    public var headSize: Int { headDim ?? hiddenSize / numAttentionHeads }

    /// Rejects what this implementation does not compute, naming the config.json key.
    package func validate(path: String) throws {
        guard numAttentionHeads % kvHeads == 0 else {
            throw PretrainedError.unsupported(path: path, key: "num_key_value_heads", value: "\(kvHeads)",
                                              supported: "a divisor of num_attention_heads (\(numAttentionHeads))")
        }
        guard headSize % 2 == 0 else {
            throw PretrainedError.unsupported(path: path, key: "head_dim", value: "\(headSize)", supported: "an even size")
        }
        _ = try Activation.parse(hiddenAct, key: "hidden_act", path: path)
        if let types = layerTypes, let bad = types.first(where: { $0 != "full_attention" && $0 != "sliding_attention" }) {
            throw PretrainedError.unsupported(path: path, key: "layer_types", value: "\"\(bad)\"",
                                              supported: "full_attention, sliding_attention")
        }
        try validateRope(path: path)
    }
}

/// Llama's RMSNorm: `x · rsqrt(mean(x², last axis) + eps) · weight`, the normalisation in fp32 (the fused kernel).
public final class LlamaRMSNorm: Module {
    public let weight: Tensor
    let eps: Double

    package init(_ dim: Int, eps: Double, dtype: DType, device: Device) {
        weight = Tensor.ones([dim], dtype: dtype, device: device)
        weight.requiresGrad = true
        self.eps = eps
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight, eps: eps) }
}

/// Llama attention: `q_proj`, `k_proj`, `v_proj` (grouped K/V heads), rotary q and k, fused masked attention, `o_proj`.
public final class LlamaAttention: Module {
    @ModuleInfo(key: "q_proj") public var qProj: Linear
    @ModuleInfo(key: "k_proj") public var kProj: Linear
    @ModuleInfo(key: "v_proj") public var vProj: Linear
    @ModuleInfo(key: "o_proj") public var oProj: Linear
    let attnDropout: Dropout
    /// This rank's query and key/value heads (`/ tp` once tensor-parallel sharded: whole kv groups per rank).
    var heads: Int
    var kvHeads: Int
    let headDim: Int
    /// This layer's sliding window (nil: full causal attention).
    let window: Int?

    init(_ c: LlamaConfig, layer: Int, dtype: DType, device: Device, rng: inout RandomStream) {
        window = c.window(layer: layer)
        heads = c.numAttentionHeads
        kvHeads = c.kvHeads
        headDim = c.headSize
        attnDropout = Dropout(c.attentionDropout, rng: &rng)
        super.init()
        let std = c.initializerRange, qkvBias = c.attentionBias || c.qkvBias
        qProj = Linear(c.hiddenSize, heads * headDim, bias: qkvBias, std: std, dtype: dtype, device: device, rng: &rng)
        kProj = Linear(c.hiddenSize, kvHeads * headDim, bias: qkvBias, std: std, dtype: dtype, device: device, rng: &rng)
        vProj = Linear(c.hiddenSize, kvHeads * headDim, bias: qkvBias, std: std, dtype: dtype, device: device, rng: &rng)
        oProj = Linear(heads * headDim, c.hiddenSize, bias: c.attentionBias, std: std, dtype: dtype, device: device, rng: &rng)
    }

    /// `[B, Hkv, T, D]` → `[B, H, T, D]`, each K/V head repeated for its group of query heads (the composed path only).
    func repeatKV(_ x: Tensor) -> Tensor {
        let rep = heads / kvHeads
        if rep == 1 { return x }
        let (b, t) = (x.shape[0], x.shape[2])
        return x.reshape([b, kvHeads, 1, t, headDim]).expand(to: [b, kvHeads, rep, t, headDim])
            .reshape([b, heads, t, headDim])
    }

    /// Rotated q `[B, t, H, D]`, rotated k and v `[B, t, Hkv, D]`: the projections reshaped, token-major.
    func projections(_ x: Tensor, rotary: Rotary) -> (Tensor, Tensor, Tensor) {
        let (b, t) = (x.shape[0], x.shape[1])
        return (rotary.apply(qProj(x).reshape([b, t, heads, headDim])),
                rotary.apply(kProj(x).reshape([b, t, kvHeads, headDim])), vProj(x).reshape([b, t, kvHeads, headDim]))
    }

    /// `x [B, T, C]`; `keyPadding` (`[B, T]` int32, 0 = padding) or nil.
    func forward(_ x: Tensor, rotary: Rotary, keyPadding: Tensor?) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let (q, k, v) = projections(x, rotary: rotary)
        let y: Tensor
        if isTraining && attnDropout.p > 0 {
            // Dropout on the probabilities: the composed path (head-major, K/V repeated, explicit mask).
            let mask = HFAttention.blocked(attentionMask: keyPadding, batch: b, tokens: t, causal: true, window: window,
                                           device: x.device)!
            let heads = [q, k, v].map { $0.permute([0, 2, 1, 3]) }
            y = HFAttention.attend(heads[0], repeatKV(heads[1]), repeatKV(heads[2]), blocked: mask,
                                   scale: 1 / Double(headDim).squareRoot(), dropout: attnDropout).permute([0, 2, 1, 3])
        } else {
            y = Tensor.attention(q, k, v, mask: AttentionMask(causal: true, window: window, keyPadding: keyPadding),
                                 tokenMajor: true)   // [B, T, H, D]
        }
        return oProj(y.reshape([b, t, heads * headDim]))
    }
}

/// Llama's gated MLP: `down_proj(act(gate_proj(x)) · up_proj(x))`, act = `hidden_act` (SiLU: one fused SwiGLU kernel).
public final class LlamaMLP: Module {
    @ModuleInfo(key: "gate_proj") public var gateProj: Linear
    @ModuleInfo(key: "up_proj") public var upProj: Linear
    @ModuleInfo(key: "down_proj") public var downProj: Linear
    /// The gate's activation when it is not SiLU (nil: the fused SwiGLU kernel).
    let gateActivation: Activation?

    init(_ c: LlamaConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        guard let act = Activation(rawValue: c.hiddenAct) else {
            preconditionFailure("hidden_act \(c.hiddenAct) was not validated (LlamaConfig.validate rejects it)")
        }
        gateActivation = act == .silu || act == .swish ? nil : act
        super.init()
        let std = c.initializerRange
        gateProj = Linear(c.hiddenSize, c.intermediateSize, bias: c.mlpBias, std: std, dtype: dtype, device: device, rng: &rng)
        upProj = Linear(c.hiddenSize, c.intermediateSize, bias: c.mlpBias, std: std, dtype: dtype, device: device, rng: &rng)
        downProj = Linear(c.intermediateSize, c.hiddenSize, bias: c.mlpBias, std: std, dtype: dtype, device: device, rng: &rng)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        guard let act = gateActivation else { return downProj(Tensor.swiglu(gate: gateProj(x), up: upProj(x))) }
        return downProj(act(gateProj(x)) * upProj(x))
    }
}

/// One Llama decoder layer: `x + attn(input_layernorm(x))`, then `x + mlp(post_attention_layernorm(x))`.
public final class LlamaDecoderLayer: Module {
    @ModuleInfo(key: "self_attn") public var selfAttn: LlamaAttention
    public let mlp: LlamaMLP
    @ModuleInfo(key: "input_layernorm") public var inputLayernorm: LlamaRMSNorm
    @ModuleInfo(key: "post_attention_layernorm") public var postAttentionLayernorm: LlamaRMSNorm

    package init(_ c: LlamaConfig, layer: Int, dtype: DType, device: Device, rng: inout RandomStream) {
        mlp = LlamaMLP(c, dtype: dtype, device: device, rng: &rng)
        super.init()
        selfAttn = LlamaAttention(c, layer: layer, dtype: dtype, device: device, rng: &rng)
        inputLayernorm = LlamaRMSNorm(c.hiddenSize, eps: c.rmsNormEps, dtype: dtype, device: device)
        postAttentionLayernorm = LlamaRMSNorm(c.hiddenSize, eps: c.rmsNormEps, dtype: dtype, device: device)
    }

    package func forward(_ x: Tensor, rotary: Rotary, keyPadding: Tensor?) -> Tensor {
        let h = x + selfAttn.forward(inputLayernorm(x), rotary: rotary, keyPadding: keyPadding)
        return h + mlp(postAttentionLayernorm(h))
    }
}

/// The bare Llama decoder (`embed_tokens`, `layers.{i}`, `norm`): `input_ids` (+ `attention_mask`, `position_ids`)
/// → `last_hidden_state [B, T, C]`.
///
/// ```swift
/// let model = try LlamaModel.fromPretrained(dir)
/// let h = model(["input_ids": ids]).lastHiddenState!   // [B, T, hidden_size]
/// ```
public final class LlamaModel: Module, PretrainedModel {
    public static let architecture = "LlamaModel"
    public static let modelType = "llama"
    public let config: LlamaConfig
    @ModuleInfo(key: "embed_tokens") public var embedTokens: Embedding
    public let layers: [LlamaDecoderLayer]
    public let norm: LlamaRMSNorm
    let folder: PretrainedFolder?

    /// A randomly initialised model (N(0, initializer_range) weights, unit norms).
    public convenience init(_ config: LlamaConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(config, folder: nil, dtype: dtype, device: device, seed: seed)
    }

    init(_ config: LlamaConfig, folder: PretrainedFolder?, dtype: DType, device: Device, seed: UInt64 = 0) throws {
        try config.validate(path: folder.map { $0.url.appendingPathComponent(PretrainedFolder.configName).path } ?? "LlamaConfig")
        var rng = RandomStream(seed: seed)
        self.config = config
        self.folder = folder
        let embed = Embedding(config.vocabSize, config.hiddenSize, std: config.initializerRange,
                              paddingIndex: config.padTokenId, dtype: dtype, device: device, rng: &rng)
        layers = (0..<config.numHiddenLayers).map { LlamaDecoderLayer(config, layer: $0, dtype: dtype, device: device, rng: &rng) }
        norm = LlamaRMSNorm(config.hiddenSize, eps: config.rmsNormEps, dtype: dtype, device: device)
        super.init()
        embedTokens = embed
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try LlamaModel.decodeConfig(folder), folder: folder, dtype: dtype, device: device)
    }

    /// config.json decoded, with Qwen2's q/k/v biases switched on by its `model_type`.
    package static func decodeConfig(_ folder: PretrainedFolder) throws -> LlamaConfig {
        var config = try folder.decodeConfig(LlamaConfig.self)
        if folder.modelType == "qwen2" { config.qkvBias = true }
        return config
    }

    public func configJSON() throws -> [String: Any] {
        rawConfig(folder).merging(try jsonObject(config)) { $1 }
    }

    /// Strips `model.` (a LlamaForCausalLM file) and drops `lm_head.weight` and rotary `inv_freq` buffers.
    public func sanitize(_ weights: StateDict) -> StateDict { LlamaNames.sanitize(weights, prefix: nil, keepHead: false) }

    /// `[B, T, C]` after `norm`.
    public func hidden(_ inputs: ModuleInputs) -> Tensor {
        guard let ids = inputs.inputIds else { preconditionFailure("LlamaModel: needs \"input_ids\" [batch, time]") }
        precondition(ids.rank == 2, "LlamaModel: input_ids must be [batch, time], got \(ids.shape)")
        let (b, t) = (ids.shape[0], ids.shape[1])
        var x = embedTokens(ids)
        let pos = inputs.positionIds.map { p in
            precondition(p.count == b * t || p.count == t, "position_ids must be [batch, time] or [1, time], got \(p.shape)")
            let host = p.scalars(as: Int.self)
            return host.count == b * t ? host : (0..<(b * t)).map { host[$0 % t] }
        } ?? (0..<(b * t)).map { $0 % t }
        let rotary = Rotary(config, positions: pos, batch: b, tokens: t, dtype: x.dtype, device: ids.device)
        let keyPadding = HFAttention.keyPadding(inputs.attentionMask, batch: b, tokens: t)
        for layer in layers { x = layer.forward(x, rotary: rotary, keyPadding: keyPadding) }
        return norm(x)
    }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        var out = ModuleOutputs()
        out.lastHiddenState = hidden(inputs)
        return out
    }
}

/// Llama with its language-model head: `input_ids` (+ `attention_mask`, `position_ids`, `labels`) → `logits [B, T, V]`
/// and, with labels, the next-token `loss` (labels shifted inside, −100 ignored), as transformers computes it.
/// `lm_head.weight` is its own parameter unless `tie_word_embeddings`.
///
/// ```swift
/// let model = try LlamaForCausalLM.fromPretrained(URL(fileURLWithPath: "tiny-llama"))
/// let out = model(["input_ids": ids, "labels": ids])
/// out.loss!.backward()
/// ```
public class LlamaForCausalLM: Module, PretrainedModel {
    public class var architecture: String { "LlamaForCausalLM" }
    public class var modelType: String { "llama" }
    public let model: LlamaModel
    @ModuleInfo(key: "lm_head") public var lmHead: Linear?

    public init(_ config: LlamaConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        model = try LlamaModel(config, dtype: dtype, device: device, seed: seed)
        super.init()
        makeHead(dtype: dtype, device: device, seed: seed)
    }

    public required init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        model = try LlamaModel(LlamaModel.decodeConfig(folder), folder: folder, dtype: dtype, device: device)
        super.init()
        makeHead(dtype: dtype, device: device, seed: 0)
    }

    private func makeHead(dtype: DType, device: Device, seed: UInt64) {
        guard !config.tieWordEmbeddings else { return }
        var rng = RandomStream(seed: seed &+ 1)
        lmHead = Linear(config.hiddenSize, config.vocabSize, bias: false, std: config.initializerRange, dtype: dtype,
                        device: device, rng: &rng)
    }

    public var config: LlamaConfig { model.config }
    public func configJSON() throws -> [String: Any] { try model.configJSON() }

    /// Adds `model.` to a bare LlamaModel file's names; drops `lm_head.weight` when tied and rotary `inv_freq` buffers.
    public func sanitize(_ weights: StateDict) -> StateDict {
        LlamaNames.sanitize(weights, prefix: "model", keepHead: !config.tieWordEmbeddings)
    }

    /// A tied head reads the embedding's weight outside `embed_tokens`' own forward.
    public override var externalParameters: [Tensor] { lmHead == nil ? [model.embedTokens.weight] : [] }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let hidden = model.hidden(inputs)
        var out = ModuleOutputs()
        if let (local, range, comm) = vocabParallelLogits(hidden) {
            // Tensor-parallel: each rank's vocabulary shard of the logits; the loss never gathers them.
            if let labels = inputs.labels {
                out.loss = local.vocabParallelCrossEntropy(targets: GPT2LMHeadModel.causalTargets(labels), vocabRange: range,
                                                           comm: comm)
            }
            out.logits = local.gatherFromTensorParallelRegion(comm, sizes: TensorParallelSplit.ranges(config.vocabSize, parts: comm.size).map(\.count))
            return out
        }
        let logits = lmHead.map { $0(hidden) } ?? Tensor.matmul(hidden, model.embedTokens.weight, transposeB: true)
        if let labels = inputs.labels { out.loss = GPT2LMHeadModel.causalLoss(logits, labels: labels) }
        out.logits = logits
        return out
    }
}

/// Mistral: Llama's layout and config, with `sliding_window` applied on every layer.
public final class MistralForCausalLM: LlamaForCausalLM {
    public override class var architecture: String { "MistralForCausalLM" }
    public override class var modelType: String { "mistral" }
}

/// Qwen2: Llama's layout with biases on q, k and v (set from `model_type`).
public final class Qwen2ForCausalLM: LlamaForCausalLM {
    public override class var architecture: String { "Qwen2ForCausalLM" }
    public override class var modelType: String { "qwen2" }
}

/// Llama's file-name fixes.
enum LlamaNames {
    static func sanitize(_ weights: StateDict, prefix: String?, keepHead: Bool) -> StateDict {
        var out: StateDict = [:]
        for (name, t) in weights {
            if name.hasSuffix("rotary_emb.inv_freq") { continue }
            if name == "lm_head.weight" {
                if keepHead && prefix != nil { out[name] = t }
                continue
            }
            var key = name
            if key.hasPrefix("model.") { key = String(key.dropFirst("model.".count)) }
            if let prefix { key = "\(prefix).\(key)" }
            out[key] = t
        }
        return out
    }
}
