// BERT's config and encoder with Hugging Face's names: embeddings, encoder.layer.{i}, pooler; BertModel.
// Invariant: attention is bidirectional with a key-padding mask only (the fused kernel: padded keys get zero
// probability), so every position's output, padded or not, equals transformers' eager attention as long as a row keeps
// at least one token.

import Foundation
import SpeedCore
import SpeedNN

/// config.json of a `bert` model (transformers' `BertConfig`; absent keys take its defaults).
///
/// ```swift
/// var config = BertConfig(vocabSize: 100, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
///                         intermediateSize: 64)
/// config.numLabels = 3
/// let model = try BertForSequenceClassification(config)
/// ```
public struct BertConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var hiddenDropoutProb: Double
    public var attentionProbsDropoutProb: Double
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var initializerRange: Double
    public var layerNormEps: Double
    public var positionEmbeddingType: String
    public var classifierDropout: Double?
    /// Class names by index (`"0"` → `"LABEL_0"`); its count is ``numLabels``.
    public var id2label: [String: String]?
    /// `"regression"`, `"single_label_classification"` or `"multi_label_classification"`; nil:
    /// inferred from num_labels and the labels' dtype, as transformers does.
    public var problemType: String?
    /// The padding token; its word embedding row gets no gradient (`padding_idx`). 0 when absent, as in transformers.
    public var padTokenId: Int?
    /// RoBERTa's positions: counted from `pad_token_id + 1` over the non-padding tokens, padding at `pad_token_id`
    /// (transformers' `create_position_ids_from_input_ids`). Not a config.json key: the RoBERTa types set it.
    public var robertaPositions = false

    public init(vocabSize: Int = 30522, hiddenSize: Int = 768, numHiddenLayers: Int = 12, numAttentionHeads: Int = 12,
                intermediateSize: Int = 3072, hiddenAct: String = "gelu", hiddenDropoutProb: Double = 0.1,
                attentionProbsDropoutProb: Double = 0.1, maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2,
                initializerRange: Double = 0.02, layerNormEps: Double = 1e-12, positionEmbeddingType: String = "absolute",
                classifierDropout: Double? = nil, id2label: [String: String]? = nil, problemType: String? = nil,
                padTokenId: Int? = 0) {
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads; self.intermediateSize = intermediateSize; self.hiddenAct = hiddenAct
        self.hiddenDropoutProb = hiddenDropoutProb; self.attentionProbsDropoutProb = attentionProbsDropoutProb
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.typeVocabSize = typeVocabSize
        self.initializerRange = initializerRange; self.layerNormEps = layerNormEps
        self.positionEmbeddingType = positionEmbeddingType; self.classifierDropout = classifierDropout
        self.id2label = id2label; self.problemType = problemType; self.padTokenId = padTokenId
    }

    /// The classifier's outputs: `id2label`'s count, 2 when absent (transformers' default).
    public var numLabels: Int {
        get { id2label?.count ?? 2 }
        set { id2label = SequenceClassificationConfig.defaultLabels(newValue) }
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size", hiddenAct = "hidden_act"
        case hiddenDropoutProb = "hidden_dropout_prob", attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case maxPositionEmbeddings = "max_position_embeddings", typeVocabSize = "type_vocab_size"
        case initializerRange = "initializer_range", layerNormEps = "layer_norm_eps"
        case positionEmbeddingType = "position_embedding_type", classifierDropout = "classifier_dropout"
        case id2label, problemType = "problem_type", padTokenId = "pad_token_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BertConfig()
        self.init(vocabSize: try c.value(.vocabSize, default: d.vocabSize),
                  hiddenSize: try c.value(.hiddenSize, default: d.hiddenSize),
                  numHiddenLayers: try c.value(.numHiddenLayers, default: d.numHiddenLayers),
                  numAttentionHeads: try c.value(.numAttentionHeads, default: d.numAttentionHeads),
                  intermediateSize: try c.value(.intermediateSize, default: d.intermediateSize),
                  hiddenAct: try c.value(.hiddenAct, default: d.hiddenAct),
                  hiddenDropoutProb: try c.value(.hiddenDropoutProb, default: d.hiddenDropoutProb),
                  attentionProbsDropoutProb: try c.value(.attentionProbsDropoutProb, default: d.attentionProbsDropoutProb),
                  maxPositionEmbeddings: try c.value(.maxPositionEmbeddings, default: d.maxPositionEmbeddings),
                  typeVocabSize: try c.value(.typeVocabSize, default: d.typeVocabSize),
                  initializerRange: try c.value(.initializerRange, default: d.initializerRange),
                  layerNormEps: try c.value(.layerNormEps, default: d.layerNormEps),
                  positionEmbeddingType: try c.value(.positionEmbeddingType, default: d.positionEmbeddingType),
                  classifierDropout: try c.decodeIfPresent(Double.self, forKey: .classifierDropout),
                  id2label: try c.decodeIfPresent([String: String].self, forKey: .id2label),
                  problemType: try c.decodeIfPresent(String.self, forKey: .problemType),
                  padTokenId: c.contains(.padTokenId) ? try c.decodeIfPresent(Int.self, forKey: .padTokenId) : d.padTokenId)
    }

    func validate(path: String) throws -> Activation {
        guard hiddenSize % numAttentionHeads == 0 else {
            throw PretrainedError.unsupported(path: path, key: "num_attention_heads", value: "\(numAttentionHeads)",
                                              supported: "a divisor of hidden_size (\(hiddenSize))")
        }
        guard positionEmbeddingType == "absolute" else {
            throw PretrainedError.unsupported(path: path, key: "position_embedding_type", value: "\"\(positionEmbeddingType)\"",
                                              supported: "\"absolute\"")
        }
        return try Activation.parse(hiddenAct, key: "hidden_act", path: path)
    }
}

/// Word + position + token-type embeddings, LayerNorm, dropout.
public final class BertEmbeddings: Module {
    @ModuleInfo(key: "word_embeddings") public var wordEmbeddings: Embedding
    @ModuleInfo(key: "position_embeddings") public var positionEmbeddings: Embedding
    @ModuleInfo(key: "token_type_embeddings") public var tokenTypeEmbeddings: Embedding
    @ModuleInfo(key: "LayerNorm") public var layerNorm: LayerNorm
    let dropout: Dropout

    init(_ c: BertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        dropout = Dropout(c.hiddenDropoutProb, rng: &rng)
        super.init()
        let std = c.initializerRange
        wordEmbeddings = Embedding(c.vocabSize, c.hiddenSize, std: std, paddingIndex: c.padTokenId, dtype: dtype,
                                   device: device, rng: &rng)
        positionEmbeddings = Embedding(c.maxPositionEmbeddings, c.hiddenSize, std: std,
                                       paddingIndex: c.robertaPositions ? c.padTokenId : nil, dtype: dtype, device: device,
                                       rng: &rng)
        tokenTypeEmbeddings = Embedding(c.typeVocabSize, c.hiddenSize, std: std, dtype: dtype, device: device, rng: &rng)
        layerNorm = LayerNorm(c.hiddenSize, eps: c.layerNormEps, dtype: dtype, device: device)
    }

    func forward(ids: Tensor, tokenTypes: Tensor?, positionIds: Tensor?, config: BertConfig) -> Tensor {
        let (b, t) = (ids.shape[0], ids.shape[1])
        let types = tokenTypes ?? Tensor((0..<(b * t)).map { _ in 0 }, shape: [b, t], device: ids.device)
        let pos = positionIds ?? (config.robertaPositions ? Self.robertaPositions(ids, padding: config.padTokenId ?? 1)
                                                          : positions(b, t, device: ids.device))
        let x = wordEmbeddings(ids) + tokenTypeEmbeddings(types) + positionEmbeddings(pos)
        return dropout(layerNorm(x))
    }

    /// `ids [B, T]` → RoBERTa's positions `[B, T]`: padding + the running count of non-padding tokens, padding itself.
    static func robertaPositions(_ ids: Tensor, padding: Int) -> Tensor {
        let (b, t) = (ids.shape[0], ids.shape[1])
        let host = ids.scalars(as: Int.self)
        var out = [Int](repeating: padding, count: b * t)
        for row in 0..<b {
            var count = 0
            for j in 0..<t where host[row * t + j] != padding {
                count += 1
                out[row * t + j] = padding + count
            }
        }
        return Tensor(out, shape: [b, t], device: ids.device)
    }
}

/// `query`, `key`, `value` projections and key-padding-masked attention (fused; composed only for training-time
/// attention dropout).
public final class BertSelfAttention: Module {
    public let query: Linear, key: Linear, value: Linear
    let dropout: Dropout
    /// This rank's heads: `num_attention_heads`, or that `/ tp` once tensor-parallel sharded.
    var heads: Int
    let headDim: Int

    init(_ c: BertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        let (n, std) = (c.hiddenSize, c.initializerRange)
        headDim = c.hiddenSize / c.numAttentionHeads
        query = Linear(n, n, std: std, dtype: dtype, device: device, rng: &rng)
        key = Linear(n, n, std: std, dtype: dtype, device: device, rng: &rng)
        value = Linear(n, n, std: std, dtype: dtype, device: device, rng: &rng)
        dropout = Dropout(c.attentionProbsDropoutProb, rng: &rng)
        heads = c.numAttentionHeads
        super.init()
    }

    /// `x [B, T, C]`; `keyPadding` (`[B, T]` int32, 0 = padding) or nil.
    func forward(_ x: Tensor, keyPadding: Tensor?) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let d = headDim, c = heads * headDim   // this rank's heads' width (hidden_size unsharded)
        if isTraining && dropout.p > 0 {
            let blocked = HFAttention.blocked(attentionMask: keyPadding, batch: b, tokens: t, causal: false, device: x.device)
            let y = HFAttention.attend(HFAttention.heads(query(x), heads), HFAttention.heads(key(x), heads),
                                       HFAttention.heads(value(x), heads), blocked: blocked,
                                       scale: 1 / Double(d).squareRoot(), dropout: dropout)
            return HFAttention.merge(y)
        }
        let (q, k, v) = (query(x).reshape([b, t, heads, d]), key(x).reshape([b, t, heads, d]), value(x).reshape([b, t, heads, d]))
        return Tensor.attention(q, k, v, mask: AttentionMask(keyPadding: keyPadding), tokenMajor: true).reshape([b, t, c])
    }
}

/// `dense`, dropout, then `LayerNorm(x + residual)` (BertSelfOutput and BertOutput).
public final class BertResidualOutput: Module {
    public let dense: Linear
    @ModuleInfo(key: "LayerNorm") public var layerNorm: LayerNorm
    let dropout: Dropout

    init(_ inFeatures: Int, _ c: BertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        dense = Linear(inFeatures, c.hiddenSize, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        dropout = Dropout(c.hiddenDropoutProb, rng: &rng)
        super.init()
        layerNorm = LayerNorm(c.hiddenSize, eps: c.layerNormEps, dtype: dtype, device: device)
    }

    func forward(_ x: Tensor, residual: Tensor) -> Tensor { layerNorm(dropout(dense(x)) + residual) }
}

/// `attention.self` + `attention.output`.
public final class BertAttention: Module {
    @ModuleInfo(key: "self") public var selfAttention: BertSelfAttention
    public let output: BertResidualOutput

    init(_ c: BertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        output = BertResidualOutput(c.hiddenSize, c, dtype: dtype, device: device, rng: &rng)
        super.init()
        selfAttention = BertSelfAttention(c, dtype: dtype, device: device, rng: &rng)
    }
}

/// `intermediate.dense` with the activation.
public final class BertIntermediate: Module {
    public let dense: Linear
    let act: Activation

    init(_ c: BertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        dense = Linear(c.hiddenSize, c.intermediateSize, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        self.act = act
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { act(dense(x)) }
}

/// One post-LayerNorm encoder layer.
public final class BertLayer: Module, EncoderLayer {
    public let attention: BertAttention
    public let intermediate: BertIntermediate
    public let output: BertResidualOutput

    init(_ c: BertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        attention = BertAttention(c, dtype: dtype, device: device, rng: &rng)
        intermediate = BertIntermediate(c, act: act, dtype: dtype, device: device, rng: &rng)
        output = BertResidualOutput(c.intermediateSize, c, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    func forward(_ x: Tensor, keyPadding: Tensor?) -> Tensor {
        let a = attention.output.forward(attention.selfAttention.forward(x, keyPadding: keyPadding), residual: x)
        return output.forward(intermediate(a), residual: a)
    }

    /// `hidden_states` (+ `key_padding`, `[B, T]` int32): the call form `checkpointed` recomputes.
    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        ModuleOutputs([("hidden_states", forward(inputs["hidden_states"]!, keyPadding: inputs["key_padding"]))])
    }
}

/// `encoder.layer.{i}`.
public final class BertEncoder: Module {
    public let layer: [BertLayer]

    init(_ c: BertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        layer = (0..<c.numHiddenLayers).map { _ in BertLayer(c, act: act, dtype: dtype, device: device, rng: &rng) }
        super.init()
    }
}

/// `pooler.dense` + tanh on the first ([CLS]) token.
public final class BertPooler: Module {
    public let dense: Linear

    init(_ c: BertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        dense = Linear(c.hiddenSize, c.hiddenSize, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    /// `hidden [B, T, C]` → `[B, C]`.
    public override func forward(_ hidden: Tensor) -> Tensor {
        let (b, c) = (hidden.shape[0], hidden.shape[2])
        return dense(hidden.slice(axis: 1, 0..<1).reshape([b, c])).tanh()
    }
}

/// The bare BERT encoder (`embeddings`, `encoder`, `pooler`): `input_ids` (+ `attention_mask`,
/// `token_type_ids`, `position_ids`) → `last_hidden_state [B, T, C]` and `pooler_output [B, C]`.
///
/// ```swift
/// let model = try BertModel.fromPretrained(URL(fileURLWithPath: "/opt/swiftspeed/models/all-MiniLM-L6-v2"))
/// let out = model(["input_ids": ids, "attention_mask": mask])
/// out.lastHiddenState!.shape   // [B, T, 384]
/// ```
public class BertModel: Module, PretrainedModel, ActivationCheckpointable {
    public class var architecture: String { "BertModel" }
    public class var modelType: String { "bert" }
    /// HF's `gradient_checkpointing`: every encoder layer recomputed in backward while training.
    public var activationCheckpointing = ActivationCheckpointing.off
    public let config: BertConfig
    public let embeddings: BertEmbeddings
    public let encoder: BertEncoder
    public let pooler: BertPooler?
    let folder: PretrainedFolder?

    /// A randomly initialised encoder (N(0, initializer_range) weights), with a pooler unless
    /// `addPoolingLayer` is false.
    public convenience init(_ config: BertConfig, addPoolingLayer: Bool = true, dtype: DType = .float32,
                            device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(config, folder: nil, addPoolingLayer: addPoolingLayer, dtype: dtype, device: device, seed: seed)
    }

    init(_ config: BertConfig, folder: PretrainedFolder?, addPoolingLayer: Bool, dtype: DType, device: Device,
         seed: UInt64 = 0) throws {
        let act = try config.validate(path: folder.map { $0.url.appendingPathComponent(PretrainedFolder.configName).path } ?? "BertConfig")
        var rng = RandomStream(seed: seed)
        self.config = config
        self.folder = folder
        embeddings = BertEmbeddings(config, dtype: dtype, device: device, rng: &rng)
        encoder = BertEncoder(config, act: act, dtype: dtype, device: device, rng: &rng)
        pooler = addPoolingLayer ? BertPooler(config, dtype: dtype, device: device, rng: &rng) : nil
        super.init()
    }

    public required convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(folder: folder, addPoolingLayer: true, dtype: dtype, device: device)
    }

    convenience init(folder: PretrainedFolder, addPoolingLayer: Bool, dtype: DType, device: Device) throws {
        try self.init(try Self.decodeConfig(folder), folder: folder, addPoolingLayer: addPoolingLayer,
                      dtype: dtype, device: device)
    }

    /// config.json as this family reads it (RobertaModel: its defaults and positions).
    class func decodeConfig(_ folder: PretrainedFolder) throws -> BertConfig { try folder.decodeConfig(BertConfig.self) }

    public func configJSON() throws -> [String: Any] {
        rawConfig(folder).merging(try jsonObject(config)) { $1 }
    }

    /// Strips `bert.` (a task model's file); drops the `position_ids` / `token_type_ids` buffers
    /// older files carry; renames `gamma`/`beta`.
    public func sanitize(_ weights: StateDict) -> StateDict { BertNames.sanitize(weights, prefix: nil, base: Self.modelType) }

    /// `last_hidden_state [B, T, C]`.
    public func hidden(_ inputs: ModuleInputs) -> Tensor {
        guard let ids = inputs.inputIds else { preconditionFailure("BertModel: needs \"input_ids\" [batch, time]") }
        precondition(ids.rank == 2, "BertModel: input_ids must be [batch, time], got \(ids.shape)")
        let (b, t) = (ids.shape[0], ids.shape[1])
        precondition(t <= config.maxPositionEmbeddings,
                     "BertModel: sequence length \(t) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        let x = embeddings.forward(ids: ids, tokenTypes: inputs.tokenTypeIds, positionIds: inputs.positionIds, config: config)
        return runEncoder(encoder.layer, x, keyPadding: HFAttention.keyPadding(inputs.attentionMask, batch: b, tokens: t),
                          checkpointing: activationCheckpointing, training: isTraining)
    }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        var out = ModuleOutputs()
        let h = hidden(inputs)
        out.lastHiddenState = h
        if let pooler { out["pooler_output"] = pooler(h) }
        return out
    }
}

/// BERT's file-name fixes.
enum BertNames {
    /// `prefix` "bert" (or "roberta") for task models (added to bare names), nil for the base model (stripped);
    /// `base` the family's prefix in files.
    static func sanitize(_ weights: StateDict, prefix: String?, base: String = "bert",
                         drop: (String) -> Bool = { _ in false }) -> StateDict {
        var out: StateDict = [:]
        for (name, t) in weights {
            var key = name
            if key.hasSuffix(".gamma") { key = String(key.dropLast(6)) + ".weight" }
            if key.hasSuffix(".beta") { key = String(key.dropLast(5)) + ".bias" }
            if key.hasPrefix(base + ".") { key = String(key.dropFirst(base.count + 1)) }
            if key == "embeddings.position_ids" || key == "embeddings.token_type_ids" { continue }
            let base = key.hasPrefix("embeddings.") || key.hasPrefix("encoder.") || key.hasPrefix("pooler.")
            if let prefix, base { key = "\(prefix).\(key)" }
            if drop(key) { continue }
            out[key] = t
        }
        return out
    }
}
