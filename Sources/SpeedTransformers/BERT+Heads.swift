// BERT's task models: BertForSequenceClassification (pooler + classifier) and BertForMaskedLM (tied decoder).
// Invariant: the MLM decoder is not a parameter: logits read `bert.embeddings.word_embeddings.weight` and add
// `cls.predictions.bias`, so `cls.predictions.decoder.*` never appear in the state dict (save_pretrained omits them too).

import Foundation
import SpeedCore
import SpeedNN

/// BERT with a classifier on the pooled [CLS] state: `input_ids`, `attention_mask`,
/// `token_type_ids` (+ `labels`) → `logits [B, num_labels]` and, with labels, the `loss`:
/// MSE when num_labels is 1 (regression), cross-entropy for integer labels, BCE-with-logits for
/// float multi-label targets — transformers' `problem_type` rule.
///
/// ```swift
/// let model = try BertForSequenceClassification.fromPretrained(dir)
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": Tensor([2, 0] as [Int])])
/// out.loss!.backward()
/// ```
public final class BertForSequenceClassification: Module, PretrainedModel {
    public static let architecture = "BertForSequenceClassification"
    public static let modelType = "bert"
    public let bert: BertModel
    let dropout: Dropout
    public let classifier: Linear

    public convenience init(_ config: BertConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try BertModel(config, dtype: dtype, device: device, seed: seed), dtype: dtype, device: device, seed: seed)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try BertModel(folder: folder, addPoolingLayer: true, dtype: dtype, device: device), dtype: dtype,
                      device: device, seed: 0)
    }

    init(_ bert: BertModel, dtype: DType, device: Device, seed: UInt64) throws {
        let c = bert.config
        var rng = RandomStream(seed: seed &+ 1)
        self.bert = bert
        dropout = Dropout(c.classifierDropout ?? c.hiddenDropoutProb, rng: &rng)
        classifier = Linear(c.hiddenSize, c.numLabels, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    public var config: BertConfig { bert.config }
    public func configJSON() throws -> [String: Any] { try bert.configJSON() }

    /// Adds `bert.` to a bare BertModel file's names (the classifier is then missing: train it,
    /// loading with strict: false); drops legacy buffers, renames `gamma`/`beta`.
    public func sanitize(_ weights: StateDict) -> StateDict { BertNames.sanitize(weights, prefix: "bert") }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = bert.hidden(inputs)
        guard let pooler = bert.pooler else { preconditionFailure("BertForSequenceClassification: the encoder has no pooler") }
        let logits = classifier(dropout(pooler(h)))
        var out = ModuleOutputs()
        if let labels = inputs.labels { out.loss = loss(logits, labels: labels) }
        out.logits = logits
        return out
    }

    /// transformers' rule: regression for one label, single-label CE for integer labels, else multi-label BCE.
    func loss(_ logits: Tensor, labels: Tensor) -> Tensor {
        SequenceClassificationLoss.loss(logits, labels: labels, numLabels: config.numLabels, problemType: config.problemType)
    }
}

/// transformers' sequence-classification loss (BERT's and RoBERTa's heads): `problem_type`, else regression for one
/// label, single-label cross-entropy for integer labels, multi-label BCE-with-logits for float ones.
enum SequenceClassificationLoss {
    static func loss(_ logits: Tensor, labels: Tensor, numLabels n: Int, problemType: String?) -> Tensor {
        let problem = problemType ?? (n == 1 ? "regression"
            : labels.dtype.isFloatingPoint ? "multi_label_classification" : "single_label_classification")
        switch problem {
        case "regression":
            return n == 1 ? logits.reshape([logits.count]).mseLoss(labels.reshape([labels.count]).cast(to: logits.dtype))
                          : logits.mseLoss(labels.cast(to: logits.dtype))
        case "single_label_classification":
            return logits.crossEntropy(targets: labels.reshape([labels.count]))
        default:
            // mean(max(x, 0) − x·y + log(1 + exp(−|x|))): BCEWithLogitsLoss, stable.
            let y = labels.cast(to: logits.dtype)
            return (logits.relu() - logits * y + ((-logits.abs()).exp() + 1).log()).mean()
        }
    }
}

/// The masked-LM head's `transform`: dense, activation, LayerNorm.
public final class BertPredictionHeadTransform: Module {
    public let dense: Linear
    @ModuleInfo(key: "LayerNorm") public var layerNorm: LayerNorm
    let act: Activation

    init(_ c: BertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        dense = Linear(c.hiddenSize, c.hiddenSize, std: c.initializerRange, dtype: dtype, device: device, rng: &rng)
        self.act = act
        super.init()
        layerNorm = LayerNorm(c.hiddenSize, eps: c.layerNormEps, dtype: dtype, device: device)
    }

    public override func forward(_ x: Tensor) -> Tensor { layerNorm(act(dense(x))) }
}

/// `cls.predictions`: `transform` and the decoder bias (the decoder weight is the word embedding).
public final class BertLMPredictionHead: Module {
    public let transform: BertPredictionHeadTransform
    public let bias: Tensor

    init(_ c: BertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        transform = BertPredictionHeadTransform(c, act: act, dtype: dtype, device: device, rng: &rng)
        bias = Tensor.zeros([c.vocabSize], dtype: dtype, device: device, requiresGrad: true)
        super.init()
    }
}

/// `cls`.
public final class BertOnlyMLMHead: Module {
    public let predictions: BertLMPredictionHead

    init(_ c: BertConfig, act: Activation, dtype: DType, device: Device, rng: inout RandomStream) {
        predictions = BertLMPredictionHead(c, act: act, dtype: dtype, device: device, rng: &rng)
        super.init()
    }
}

/// BERT with the masked-LM head (no pooler): `input_ids`, `attention_mask`, `token_type_ids`
/// (+ `labels`, −100 where not masked) → `logits [B, T, V]` and the MLM `loss`.
///
/// ```swift
/// let model = try BertForMaskedLM.fromPretrained(dir)
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": labels])
/// ```
public final class BertForMaskedLM: Module, PretrainedModel {
    public static let architecture = "BertForMaskedLM"
    public static let modelType = "bert"
    public let bert: BertModel
    public let cls: BertOnlyMLMHead

    public convenience init(_ config: BertConfig, dtype: DType = .float32, device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try BertModel(config, addPoolingLayer: false, dtype: dtype, device: device, seed: seed),
                      dtype: dtype, device: device, seed: seed)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try BertModel(folder: folder, addPoolingLayer: false, dtype: dtype, device: device), dtype: dtype,
                      device: device, seed: 0)
    }

    init(_ bert: BertModel, dtype: DType, device: Device, seed: UInt64) throws {
        let c = bert.config
        let act = try c.validate(path: "config.json")
        var rng = RandomStream(seed: seed &+ 2)
        self.bert = bert
        cls = BertOnlyMLMHead(c, act: act, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    public var config: BertConfig { bert.config }
    public func configJSON() throws -> [String: Any] { try bert.configJSON() }

    /// Adds `bert.`; drops the tied `cls.predictions.decoder.*`, the pooler (this model has
    /// none, as in transformers) and legacy buffers; renames `gamma`/`beta`.
    public func sanitize(_ weights: StateDict) -> StateDict {
        BertNames.sanitize(weights, prefix: "bert") { $0.hasPrefix("cls.predictions.decoder.") || $0.hasPrefix("bert.pooler.") }
    }

    /// The tied decoder reads the word embedding outside its own forward.
    public override var externalParameters: [Tensor] { [bert.embeddings.wordEmbeddings.weight] }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = cls.predictions.transform(bert.hidden(inputs))
        let logits = Tensor.matmul(h, bert.embeddings.wordEmbeddings.weight, transposeB: true) + cls.predictions.bias
        var out = ModuleOutputs()
        if let labels = inputs.labels { out.loss = logits.crossEntropy(targets: labels, ignoreIndex: -100) }
        out.logits = logits
        return out
    }
}
