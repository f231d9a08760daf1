// DistilBERT with Hugging Face's names: DistilBertModel, DistilBertForSequenceClassification, DistilBertForMaskedLM.
// Invariant: the math is BERT's post-LayerNorm encoder without token types (LayerNorm eps fixed at 1e-12, as
// transformers has it); only the dropouts sit elsewhere (none after the attention's out_lin), so eval outputs equal
// BERT's kernels' and training matches transformers' dropout placement.

import Foundation
import SpeedCore
import SpeedNN

/// config.json of a `distilbert` model (transformers' `DistilBertConfig`; absent keys take its defaults).
///
/// ```swift
/// var config = DistilBertConfig(vocabSize: 100, dim: 32, nLayers: 2, nHeads: 4, hiddenDim: 64)
/// config.numLabels = 2
/// let model = try DistilBertForSequenceClassification(config)
/// ```
public struct DistilBertConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    /// Fixed sine/cosine position embeddings (loaded from the file, not trained).
    public var sinusoidalPosEmbds: Bool
    public var nLayers: Int
    public var nHeads: Int
    public var dim: Int
    public var hiddenDim: Int
    public var dropout: Double
    public var attentionDropout: Double
    public var activation: String
    public var initializerRange: Double
    public var seqClassifDropout: Double
    public var padTokenId: Int?
    public var id2label: [String: String]?
    public var problemType: String?

    public init(vocabSize: Int = 30522, maxPositionEmbeddings: Int = 512, sinusoidalPosEmbds: Bool = false,
                nLayers: Int = 6, nHeads: Int = 12, dim: Int = 768, hiddenDim: Int = 3072, dropout: Double = 0.1,
                attentionDropout: Double = 0.1, activation: String = "gelu", initializerRange: Double = 0.02,
                seqClassifDropout: Double = 0.2, padTokenId: Int? = 0, id2label: [String: String]? = nil,
                problemType: String? = nil) {
        self.vocabSize = vocabSize; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.sinusoidalPosEmbds = sinusoidalPosEmbds; self.nLayers = nLayers; self.nHeads = nHeads; self.dim = dim
        self.hiddenDim = hiddenDim; self.dropout = dropout; self.attentionDropout = attentionDropout
        self.activation = activation; self.initializerRange = initializerRange; self.seqClassifDropout = seqClassifDropout
        self.padTokenId = padTokenId; self.id2label = id2label; self.problemType = problemType
    }

    /// The classifier's outputs: `id2label`'s count, 2 when absent (transformers' default).
    public var numLabels: Int {
        get { id2label?.count ?? 2 }
        set { id2label = SequenceClassificationConfig.defaultLabels(newValue) }
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case sinusoidalPosEmbds = "sinusoidal_pos_embds", nLayers = "n_layers", nHeads = "n_heads", dim
        case hiddenDim = "hidden_dim", dropout, attentionDropout = "attention_dropout", activation
        case initializerRange = "initializer_range", seqClassifDropout = "seq_classif_dropout"
        case padTokenId = "pad_token_id", id2label, problemType = "problem_type"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DistilBertConfig()
        self.init(vocabSize: try c.value(.vocabSize, default: d.vocabSize),
                  maxPositionEmbeddings: try c.value(.maxPositionEmbeddings, default: d.maxPositionEmbeddings),
                  sinusoidalPosEmbds: try c.value(.sinusoidalPosEmbds, default: d.sinusoidalPosEmbds),
                  nLayers: try c.value(.nLayers, default: d.nLayers), nHeads: try c.value(.nHeads, default: d.nHeads),
                  dim: try c.value(.dim, default: d.dim), hiddenDim: try c.value(.hiddenDim, default: d.hiddenDim),
                  dropout: try c.value(.dropout, default: d.dropout),
                  attentionDropout: try c.value(.attentionDropout, default: d.attentionDropout),
                  activation: try c.value(.activation, default: d.activation),
                  initializerRange: try c.value(.initializerRange, default: d.initializerRange),
                  seqClassifDropout: try c.value(.seqClassifDropout, default: d.seqClassifDropout),
                  padTokenId: c.contains(.padTokenId) ? try c.decodeIfPresent(Int.self, forKey: .padTokenId) : d.padTokenId,
                  id2label: try c.decodeIfPresent([String: String].self, forKey: .id2label),
                  problemType: try c.decodeIfPresent(String.self, forKey: .problemType))
    }

    func validate(path: String) throws -> Activation {
        guard dim % nHeads == 0 else {
            throw PretrainedError.unsupported(path: path, key: "n_heads", value: "\(nHeads)", supported: "a divisor of dim (\(dim))")
        }
        return try Activation.parse(activation, key: "activation", path: path)
    }
}

/// Word + position embeddings, LayerNorm, dropout.
public final class DistilBertEmbeddings: Module {
    @ModuleInfo(key: "word_embeddings") public var wordEmbeddings: Embedding
    @ModuleInfo(key: "position_embeddings") public var positionEmbeddings: Embedding
    @ModuleInfo(key: "LayerNorm") public var layerNorm: LayerNorm
    let dropout: Dropout

    init(_ c: DistilBertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        dropout = Dropout(c.dropout, rng: &rng)
        super.init()
        let std = c.initializerRange
        wordEmbeddings = Embedding(c.vocabSize, c.dim, std: std, paddingIndex: c.padTokenId, dtype: dtype, device: device,
                                   rng: &rng)
        positionEmbeddings = Embedding(c.maxPositionEmbeddings, c.dim, std: std, dtype: dtype, device: device, rng: &rng)
        positionEmbeddings.weight.requiresGrad = !c.sinusoidalPosEmbds
        layerNorm = LayerNorm(c.dim, eps: 1e-12, dtype: dtype, device: device)
    }

    func forward(ids: Tensor, positionIds: Tensor?) -> Tensor {
        let (b, t) = (ids.shape[0], ids.shape[1])
        return dropout(layerNorm(wordEmbeddings(ids) + positionEmbeddings(positionIds ?? positions(b, t, device: ids.device))))
    }
}

/// `q_lin`, `k_lin`, `v_lin`, key-padding-masked attention (fused; composed only for training-time attention dropout),
/// `out_lin`.
public final class DistilBertSelfAttention: Module {
    @ModuleInfo(key: "q_lin") public var qLin: Linear
    @ModuleInfo(key: "k_lin") public var kLin: Linear
    @ModuleInfo(key: "v_lin") public var vLin: Linear
    @ModuleInfo(key: "out_lin") public var outLin: Linear
    let dropout: Dropout
    /// This rank's heads: `n_heads`, or that `/ tp` once tensor-parallel sharded.
    var heads: Int
    let headDim: Int

    init(_ c: DistilBertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        heads = c.nHeads
        headDim = c.dim / c.nHeads
        dropout = Dropout(c.attentionDropout, rng: &rng)
        super.init()
        let (n, std) = (c.dim, c.initializerRange)
        qLin = Linear(n, n, std: std, dtype: dtype, device: device, rng: &rng)
        kLin = Linear(n, n, std: std, dtype: dtype, device: device, rng: &rng)
        vLin = Linear(n, n, std: std, dtype: dtype, device: device, rng: &rng)
        outLin = Linear(n, n, std: std, dtype: dtype, device: device, rng: &rng)
    }

    /// `x [B, T, C]`; `keyPadding` (`[B, T]` int32, 0 = padding) or nil.
    func forward(_ x: Tensor, keyPadding: Tensor?) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let d = headDim, c = heads * headDim   // this rank's heads' width (dim unsharded)
        if isTraining && dropout.p > 0 {
            let blocked = HFAttention.blocked(attentionMask: keyPadding, batch: b, tokens: t, causal: false, device: x.device)
            let y = HFAttention.attend(HFAttention.heads(qLin(x), heads), HFAttention.heads(kLin(x), heads),
                                       HFAttention.heads(vLin(x), heads), blocked: blocked,
                                       scale: 1 / Double(d).squareRoot(), dropout: dropout)
            return outLin(HFAttention.merge(y))
        }
        let (q, k, v) = (qLin(x).reshape([b, t, heads, d]), kLin(x).reshape([b, t, heads, d]), vLin(x).reshape([b, t, heads, d]))
        return outLin(Tensor.attention(q, k, v, mask: AttentionMask(keyPadding: keyPadding), tokenMajor: true).reshape([b, t, c]))
    }
}

/// `ffn`: `lin1`, the activation, `lin2`, dropout.
public final class DistilBertFFN: Module {
    public let lin1: Linear, lin2: Linear
    let act: Activation
    let dropout: Dropout

    init(_ c: DistilBertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        dropout = Dropout(c.dropout, rng: &rng)
        lin1 = Linear(c.dim, c.hiddenDim, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        lin2 = Linear(c.hiddenDim, c.dim, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        self.act = act
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { dropout(lin2(act(lin1(x)))) }
}

/// `transformer.layer.{i}`: attention, `sa_layer_norm(attention + x)`, ffn, `output_layer_norm(ffn + ·)`.
public final class DistilBertTransformerBlock: Module, EncoderLayer {
    public let attention: DistilBertSelfAttention
    @ModuleInfo(key: "sa_layer_norm") public var saLayerNorm: LayerNorm
    public let ffn: DistilBertFFN
    @ModuleInfo(key: "output_layer_norm") public var outputLayerNorm: LayerNorm

    init(_ c: DistilBertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        attention = DistilBertSelfAttention(c, dtype: dtype, device: device, rng: &rng)
        ffn = DistilBertFFN(c, act: act, dtype: dtype, device: device, rng: &rng)
        super.init()
        saLayerNorm = LayerNorm(c.dim, eps: 1e-12, dtype: dtype, device: device)
        outputLayerNorm = LayerNorm(c.dim, eps: 1e-12, dtype: dtype, device: device)
    }

    func forward(_ x: Tensor, keyPadding: Tensor?) -> Tensor {
        let a = saLayerNorm(attention.forward(x, keyPadding: keyPadding) + x)
        return outputLayerNorm(ffn(a) + a)
    }

    /// `hidden_states` (+ `key_padding`, `[B, T]` int32): the call form `checkpointed` recomputes.
    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        ModuleOutputs([("hidden_states", forward(inputs["hidden_states"]!, keyPadding: inputs["key_padding"]))])
    }
}

/// `transformer.layer`.
public final class DistilBertTransformer: Module {
    public let layer: [DistilBertTransformerBlock]

    init(_ c: DistilBertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        layer = (0..<c.nLayers).map { _ in DistilBertTransformerBlock(c, act: act, dtype: dtype, device: device, rng: &rng) }
        super.init()
    }
}

/// DistilBERT's encoder: `input_ids`, `attention_mask` → `last_hidden_state [B, T, dim]`.
///
/// ```swift
/// let model = try DistilBertModel.fromPretrained(URL(fileURLWithPath: "distilbert-base-uncased"))
/// let h = model(["input_ids": ids, "attention_mask": mask]).lastHiddenState!
/// ```
public final class DistilBertModel: Module, PretrainedModel, ActivationCheckpointable {
    public static let architecture = "DistilBertModel"
    public static let modelType = "distilbert"
    /// HF's `gradient_checkpointing`: every layer recomputed in backward while training.
    public var activationCheckpointing = ActivationCheckpointing.off
    public let config: DistilBertConfig
    public let embeddings: DistilBertEmbeddings
    public let transformer: DistilBertTransformer
    let folder: PretrainedFolder?

    public convenience init(_ config: DistilBertConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(config, folder: nil, dtype: dtype, device: device, seed: seed)
    }

    init(_ config: DistilBertConfig, folder: PretrainedFolder?, dtype: DType, device: Device, seed: UInt64 = 0) throws {
        let act = try config.validate(path: folder.map { $0.url.appendingPathComponent(PretrainedFolder.configName).path } ?? "DistilBertConfig")
        var rng = RandomStream(seed: seed)
        self.config = config
        self.folder = folder
        embeddings = DistilBertEmbeddings(config, dtype: dtype, device: device, rng: &rng)
        transformer = DistilBertTransformer(config, act: act, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try folder.decodeConfig(DistilBertConfig.self), folder: folder, dtype: dtype, device: device)
    }

    public func configJSON() throws -> [String: Any] { rawConfig(folder).merging(try jsonObject(config)) { $1 } }

    /// Strips `distilbert.` (a task model's file) and drops the `position_ids` buffer older files carry.
    public func sanitize(_ weights: StateDict) -> StateDict { DistilBertNames.sanitize(weights, prefix: nil) }

    /// `last_hidden_state [B, T, dim]`.
    public func hidden(_ inputs: ModuleInputs) -> Tensor {
        guard let ids = inputs.inputIds else { preconditionFailure("DistilBertModel: needs \"input_ids\" [batch, time]") }
        precondition(ids.rank == 2, "DistilBertModel: input_ids must be [batch, time], got \(ids.shape)")
        let (b, t) = (ids.shape[0], ids.shape[1])
        precondition(t <= config.maxPositionEmbeddings,
                     "DistilBertModel: sequence length \(t) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        return runEncoder(transformer.layer, embeddings.forward(ids: ids, positionIds: inputs.positionIds),
                          keyPadding: HFAttention.keyPadding(inputs.attentionMask, batch: b, tokens: t),
                          checkpointing: activationCheckpointing, training: isTraining)
    }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        var out = ModuleOutputs()
        out.lastHiddenState = hidden(inputs)
        return out
    }
}

/// DistilBERT with its classifier on the [CLS] state: `pre_classifier`, ReLU, dropout, `classifier`
/// (`input_ids`, `attention_mask` + `labels` → `logits [B, num_labels]` and transformers' `problem_type` loss).
///
/// ```swift
/// let model = try DistilBertForSequenceClassification.fromPretrained(dir)
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": Tensor([1, 0] as [Int])])
/// ```
public final class DistilBertForSequenceClassification: Module, PretrainedModel {
    public static let architecture = "DistilBertForSequenceClassification"
    public static let modelType = "distilbert"
    public let distilbert: DistilBertModel
    @ModuleInfo(key: "pre_classifier") public var preClassifier: Linear
    public let classifier: Linear
    let dropout: Dropout

    public convenience init(_ config: DistilBertConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try DistilBertModel(config, dtype: dtype, device: device, seed: seed), dtype: dtype, device: device, seed: seed)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try DistilBertModel(folder: folder, dtype: dtype, device: device), dtype: dtype, device: device, seed: 0)
    }

    init(_ distilbert: DistilBertModel, dtype: DType, device: Device, seed: UInt64) throws {
        let c = distilbert.config
        var rng = RandomStream(seed: seed &+ 1)
        self.distilbert = distilbert
        dropout = Dropout(c.seqClassifDropout, rng: &rng)
        classifier = Linear(c.dim, c.numLabels, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        super.init()
        preClassifier = Linear(c.dim, c.dim, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
    }

    public var config: DistilBertConfig { distilbert.config }
    public func configJSON() throws -> [String: Any] { try distilbert.configJSON() }

    /// Adds `distilbert.` to a bare DistilBertModel file's names.
    public func sanitize(_ weights: StateDict) -> StateDict { DistilBertNames.sanitize(weights, prefix: "distilbert") }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = distilbert.hidden(inputs)
        let (b, c) = (h.shape[0], h.shape[2])
        let first = h.slice(axis: 1, 0..<1).reshape([b, c])   // [B, dim], the [CLS] token
        let logits = classifier(dropout(preClassifier(first).relu()))
        var out = ModuleOutputs()
        if let labels = inputs.labels {
            out.loss = SequenceClassificationLoss.loss(logits, labels: labels, numLabels: config.numLabels,
                                                       problemType: config.problemType)
        }
        out.logits = logits
        return out
    }
}

/// `vocab_projector`'s own parameter: the bias (its weight is the word embedding, tied).
public final class DistilBertVocabProjector: Module {
    public let bias: Tensor

    init(_ c: DistilBertConfig, dtype: DType, device: Device) {
        bias = Tensor.zeros([c.vocabSize], dtype: dtype, device: device, requiresGrad: true)
        super.init()
    }
}

/// DistilBERT with the masked-LM head: `vocab_transform`, the activation, `vocab_layer_norm`, then the tied
/// `vocab_projector` (`input_ids`, `attention_mask` + `labels`, −100 where not masked → `logits [B, T, V]`, `loss`).
///
/// ```swift
/// let model = try DistilBertForMaskedLM.fromPretrained(dir)
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": labels])
/// ```
public final class DistilBertForMaskedLM: Module, PretrainedModel {
    public static let architecture = "DistilBertForMaskedLM"
    public static let modelType = "distilbert"
    public let distilbert: DistilBertModel
    @ModuleInfo(key: "vocab_transform") public var vocabTransform: Linear
    @ModuleInfo(key: "vocab_layer_norm") public var vocabLayerNorm: LayerNorm
    @ModuleInfo(key: "vocab_projector") public var vocabProjector: DistilBertVocabProjector
    let act: Activation

    public convenience init(_ config: DistilBertConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try DistilBertModel(config, dtype: dtype, device: device, seed: seed), dtype: dtype, device: device, seed: seed)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try DistilBertModel(folder: folder, dtype: dtype, device: device), dtype: dtype, device: device, seed: 0)
    }

    init(_ distilbert: DistilBertModel, dtype: DType, device: Device, seed: UInt64) throws {
        let c = distilbert.config
        act = try c.validate(path: "config.json")
        var rng = RandomStream(seed: seed &+ 2)
        self.distilbert = distilbert
        super.init()
        vocabTransform = Linear(c.dim, c.dim, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        vocabLayerNorm = LayerNorm(c.dim, eps: 1e-12, dtype: dtype, device: device)
        vocabProjector = DistilBertVocabProjector(c, dtype: dtype, device: device)
    }

    public var config: DistilBertConfig { distilbert.config }
    public func configJSON() throws -> [String: Any] { try distilbert.configJSON() }

    /// Adds `distilbert.`; drops the tied `vocab_projector.weight`.
    public func sanitize(_ weights: StateDict) -> StateDict {
        DistilBertNames.sanitize(weights, prefix: "distilbert") { $0 == "vocab_projector.weight" }
    }

    /// The tied projector reads the word embedding outside its own forward.
    public override var externalParameters: [Tensor] { [distilbert.embeddings.wordEmbeddings.weight] }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = vocabLayerNorm(act(vocabTransform(distilbert.hidden(inputs))))
        let logits = Tensor.matmul(h, distilbert.embeddings.wordEmbeddings.weight, transposeB: true) + vocabProjector.bias   // [B, T, V]
        var out = ModuleOutputs()
        if let labels = inputs.labels { out.loss = logits.crossEntropy(targets: labels, ignoreIndex: -100) }
        out.logits = logits
        return out
    }
}

/// DistilBERT's file-name fixes.
enum DistilBertNames {
    /// `prefix` "distilbert" for task models (added to bare names), nil for DistilBertModel (stripped).
    static func sanitize(_ weights: StateDict, prefix: String?, drop: (String) -> Bool = { _ in false }) -> StateDict {
        var out: StateDict = [:]
        for (name, t) in weights {
            var key = name
            if key.hasPrefix("distilbert.") { key = String(key.dropFirst("distilbert.".count)) }
            if key == "embeddings.position_ids" { continue }
            if let prefix, key.hasPrefix("embeddings.") || key.hasPrefix("transformer.") { key = "\(prefix).\(key)" }
            if drop(key) { continue }
            out[key] = t
        }
        return out
    }
}
