// RoBERTa with Hugging Face's names: RobertaModel, RobertaForSequenceClassification, RobertaForMaskedLM on BERT's
// encoder. Invariant: only three things differ from BERT — positions count from pad_token_id + 1 over the non-padding
// tokens (padding sits at pad_token_id), the classifier is a dense + tanh head on the <s> state (no pooler), and the
// MLM head is dense, GELU, LayerNorm and the tied decoder with its own bias.

import Foundation
import SpeedCore
import SpeedNN

/// RoBERTa's encoder (BERT's, with RoBERTa's positions and config defaults: vocab_size 50265, pad_token_id 1).
///
/// ```swift
/// let model = try RobertaModel.fromPretrained(URL(fileURLWithPath: "roberta-base"))
/// let h = model(["input_ids": ids, "attention_mask": mask]).lastHiddenState!   // [B, T, 768]
/// ```
public final class RobertaModel: BertModel {
    public override class var architecture: String { "RobertaModel" }
    public override class var modelType: String { "roberta" }

    /// A randomly initialised RoBERTa encoder for `config` (its ``BertConfig/robertaPositions`` is set).
    public convenience init(roberta config: BertConfig, addPoolingLayer: Bool = true, dtype: DType = .float32,
                            device: Device = .cpu, seed: UInt64 = 0) throws {
        var c = config
        c.robertaPositions = true
        try self.init(c, folder: nil, addPoolingLayer: addPoolingLayer, dtype: dtype, device: device, seed: seed)
    }

    /// config.json with RobertaConfig's defaults where it is silent, and RoBERTa's positions.
    override class func decodeConfig(_ folder: PretrainedFolder) throws -> BertConfig {
        var c = try folder.decodeConfig(BertConfig.self)
        let raw = (try? JSONSerialization.jsonObject(with: folder.configData)) as? [String: Any] ?? [:]
        if raw["vocab_size"] == nil { c.vocabSize = 50265 }
        if raw["pad_token_id"] == nil { c.padTokenId = 1 }
        c.robertaPositions = true
        return c
    }
}

/// RoBERTa's classification head: `features[:, 0]` → dropout → dense → tanh → dropout → out_proj.
public final class RobertaClassificationHead: Module {
    public let dense: Linear
    @ModuleInfo(key: "out_proj") public var outProj: Linear
    let dropout: Dropout

    init(_ c: BertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        dense = Linear(c.hiddenSize, c.hiddenSize, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        dropout = Dropout(c.classifierDropout ?? c.hiddenDropoutProb, rng: &rng)
        super.init()
        outProj = Linear(c.hiddenSize, c.numLabels, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
    }

    /// `hidden [B, T, C]` → `logits [B, num_labels]`.
    public override func forward(_ hidden: Tensor) -> Tensor {
        let (b, c) = (hidden.shape[0], hidden.shape[2])
        let first = hidden.slice(axis: 1, 0..<1).reshape([b, c])   // [B, C], the <s> token
        return outProj(dropout(dense(dropout(first)).tanh()))
    }
}

/// RoBERTa with its classification head: `input_ids`, `attention_mask` (+ `labels`) → `logits [B, num_labels]`
/// and the loss by transformers' `problem_type` rule (MSE, cross-entropy or BCE-with-logits).
///
/// ```swift
/// let model = try RobertaForSequenceClassification.fromPretrained(dir)
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": Tensor([1, 0] as [Int])])
/// ```
public final class RobertaForSequenceClassification: Module, PretrainedModel {
    public static let architecture = "RobertaForSequenceClassification"
    public static let modelType = "roberta"
    public let roberta: RobertaModel
    public let classifier: RobertaClassificationHead

    public convenience init(_ config: BertConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try RobertaModel(roberta: config, addPoolingLayer: false, dtype: dtype, device: device, seed: seed),
                      dtype: dtype, device: device, seed: seed)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try RobertaModel(folder: folder, addPoolingLayer: false, dtype: dtype, device: device), dtype: dtype,
                      device: device, seed: 0)
    }

    init(_ roberta: RobertaModel, dtype: DType, device: Device, seed: UInt64) throws {
        var rng = RandomStream(seed: seed &+ 1)
        self.roberta = roberta
        classifier = RobertaClassificationHead(roberta.config, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    public var config: BertConfig { roberta.config }
    public func configJSON() throws -> [String: Any] { try roberta.configJSON() }

    /// Adds `roberta.` to a bare RobertaModel file's names and drops its pooler (this model has none, as in
    /// transformers); renames `gamma`/`beta`.
    public func sanitize(_ weights: StateDict) -> StateDict {
        BertNames.sanitize(weights, prefix: "roberta", base: "roberta") { $0.hasPrefix("roberta.pooler.") }
    }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let logits = classifier(roberta.hidden(inputs))
        var out = ModuleOutputs()
        if let labels = inputs.labels {
            out.loss = SequenceClassificationLoss.loss(logits, labels: labels, numLabels: config.numLabels,
                                                       problemType: config.problemType)
        }
        out.logits = logits
        return out
    }
}

/// `lm_head`: dense, GELU, `layer_norm`, then the tied decoder (the word embedding) plus `bias`.
public final class RobertaLMHead: Module {
    public let dense: Linear
    @ModuleInfo(key: "layer_norm") public var layerNorm: LayerNorm
    public let bias: Tensor

    init(_ c: BertConfig, dtype: DType, device: Device, rng: inout RandomStream) {
        dense = Linear(c.hiddenSize, c.hiddenSize, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        bias = Tensor.zeros([c.vocabSize], dtype: dtype, device: device, requiresGrad: true)
        super.init()
        layerNorm = LayerNorm(c.hiddenSize, eps: c.layerNormEps, dtype: dtype, device: device)
    }
}

/// RoBERTa with the masked-LM head: `input_ids`, `attention_mask` (+ `labels`, −100 where not masked) →
/// `logits [B, T, V]` and the MLM `loss`.
///
/// ```swift
/// let model = try RobertaForMaskedLM.fromPretrained(dir)
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": labels])
/// ```
public final class RobertaForMaskedLM: Module, PretrainedModel {
    public static let architecture = "RobertaForMaskedLM"
    public static let modelType = "roberta"
    public let roberta: RobertaModel
    @ModuleInfo(key: "lm_head") public var lmHead: RobertaLMHead

    public convenience init(_ config: BertConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try RobertaModel(roberta: config, addPoolingLayer: false, dtype: dtype, device: device, seed: seed),
                      dtype: dtype, device: device, seed: seed)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try RobertaModel(folder: folder, addPoolingLayer: false, dtype: dtype, device: device), dtype: dtype,
                      device: device, seed: 0)
    }

    init(_ roberta: RobertaModel, dtype: DType, device: Device, seed: UInt64) throws {
        var rng = RandomStream(seed: seed &+ 2)
        self.roberta = roberta
        super.init()
        lmHead = RobertaLMHead(roberta.config, dtype: dtype, device: device, rng: &rng)
    }

    public var config: BertConfig { roberta.config }
    public func configJSON() throws -> [String: Any] { try roberta.configJSON() }

    /// Adds `roberta.`; drops the tied `lm_head.decoder.*` and the pooler; renames `gamma`/`beta`.
    public func sanitize(_ weights: StateDict) -> StateDict {
        BertNames.sanitize(weights, prefix: "roberta", base: "roberta") {
            $0.hasPrefix("lm_head.decoder.") || $0.hasPrefix("roberta.pooler.")
        }
    }

    /// The tied decoder reads the word embedding outside its own forward.
    public override var externalParameters: [Tensor] { [roberta.embeddings.wordEmbeddings.weight] }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = lmHead.layerNorm(lmHead.dense(roberta.hidden(inputs)).gelu(approximate: false))   // the exact GELU, whatever hidden_act says
        let logits = Tensor.matmul(h, roberta.embeddings.wordEmbeddings.weight, transposeB: true) + lmHead.bias   // [B, T, V]
        var out = ModuleOutputs()
        if let labels = inputs.labels { out.loss = logits.crossEntropy(targets: labels, ignoreIndex: -100) }
        out.logits = logits
        return out
    }
}
