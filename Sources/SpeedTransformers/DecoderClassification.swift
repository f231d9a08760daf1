// Sequence classification on decoder LMs (transformers' GPT2ForSequenceClassification and
// GenericForSequenceClassification: Llama / Mistral / Qwen2), the reward models of RLHF: a bias-free `score` on the
// hidden state of each row's last non-padding token. Invariant: the pooled token is the rightmost one that is not
// pad_token_id (so left and right padding both work, an all-padding row pools token 0), as transformers takes it;
// without a pad_token_id only a batch of one row is accepted.

import Foundation
import SpeedCore
import SpeedNN

/// A sequence-classification model, so callers can check labels and batches before they reach the loss.
public protocol SequenceClassifier: PretrainedModel {
    /// The classes (1: regression).
    var numLabels: Int { get }
    /// Why a batch of more than one row cannot be classified (a decoder without `pad_token_id`); nil: it can.
    var batchRefusal: String? { get }
}

extension SequenceClassifier {
    public var batchRefusal: String? { nil }

    /// Checks integer class labels against ``numLabels`` (regression takes any value), naming the first bad one.
    ///
    /// ```swift
    /// if let problem = model.labelProblem([0, 1, 5]) { print(problem) }   // "label 5 (at 2) is not a class of …"
    /// ```
    public func labelProblem(_ labels: [Double]) -> String? {
        guard numLabels > 1 else { return nil }
        for (i, l) in labels.enumerated() where l != l.rounded() || l < 0 || Int(l) >= numLabels {
            return "label \(l) (row \(i)) is not a class of \(Self.architecture), which has num_labels \(numLabels) (classes 0 ..< \(numLabels)); fix the label, or give config.json an id2label with every class"
        }
        return nil
    }
}

extension BertForSequenceClassification: SequenceClassifier { public var numLabels: Int { config.numLabels } }
extension RobertaForSequenceClassification: SequenceClassifier { public var numLabels: Int { config.numLabels } }
extension DistilBertForSequenceClassification: SequenceClassifier { public var numLabels: Int { config.numLabels } }

extension GPT2ForSequenceClassification: SequenceClassifier {
    public var numLabels: Int { head.numLabels }
    public var batchRefusal: String? { head.batchRefusal }
}

extension LlamaForSequenceClassification: SequenceClassifier {
    public var numLabels: Int { head.numLabels }
    public var batchRefusal: String? { head.batchRefusal }
}

/// config.json's classification fields (transformers' PretrainedConfig `id2label`, `problem_type`, `pad_token_id`).
public struct SequenceClassificationConfig: Codable, Sendable, Equatable {
    public var id2label: [String: String]?
    public var problemType: String?
    public var padTokenId: Int?

    public init(numLabels: Int = 2, problemType: String? = nil, padTokenId: Int? = nil) {
        self.problemType = problemType
        self.padTokenId = padTokenId
        self.numLabels = numLabels
    }

    /// `id2label`'s count, 2 when absent (transformers' default).
    public var numLabels: Int {
        get { id2label?.count ?? 2 }
        set { id2label = SequenceClassificationConfig.defaultLabels(newValue) }
    }

    enum CodingKeys: String, CodingKey { case id2label, problemType = "problem_type", padTokenId = "pad_token_id" }

    /// transformers' default `id2label` for `count` classes: `"0"` → `"LABEL_0"`, …
    static func defaultLabels(_ count: Int) -> [String: String] {
        Dictionary(uniqueKeysWithValues: (0..<count).map { ("\($0)", "LABEL_\($0)") })
    }
}

extension SequenceClassificationConfig {
    /// transformers' refusal of batches > 1 without a padding token (it cannot find each row's last token).
    var batchRefusal: String? {
        padTokenId == nil ? "Cannot handle batch sizes > 1 if no padding token is defined: set pad_token_id in config.json (e.g. to eos_token_id, as GPT-2 fine-tuning does)" : nil
    }

    /// `hidden [B, T, C]` at each row's last non-padding token of `ids [B, T]` → `[B, C]` (differentiable).
    func lastTokenStates(_ hidden: Tensor, ids: Tensor) -> Tensor {
        let (b, t, c) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
        guard let pad = padTokenId else {
            precondition(b == 1, "Cannot handle batch sizes > 1 if no padding token is defined (set pad_token_id in config.json), got \(b) rows")
            return hidden.slice(axis: 1, (t - 1)..<t).reshape([1, c])
        }
        let host = ids.scalars(as: Int.self)
        let rows = (0..<b).map { r in r * t + ((0..<t).last { host[r * t + $0] != pad } ?? 0) }
        return Tensor.embedding(hidden.reshape([b * t, c]), ids: Tensor(rows, shape: [b], device: hidden.device))
    }

    /// The pooled logits and, with `labels`, transformers' `ForSequenceClassificationLoss`.
    func outputs(_ logits: Tensor, labels: Tensor?) -> ModuleOutputs {
        var out = ModuleOutputs()
        if let labels {
            out.loss = SequenceClassificationLoss.loss(logits, labels: labels, numLabels: numLabels, problemType: problemType)
        }
        out.logits = logits
        return out
    }

    /// `weights` with a base model's prefix on every key but the `score` head's.
    static func prefixed(_ weights: StateDict, _ prefixer: (StateDict) -> StateDict) -> StateDict {
        var out = prefixer(weights.filter { !$0.key.hasPrefix("score.") })
        for (k, v) in weights where k.hasPrefix("score.") { out[k] = v }
        return out
    }
}

/// GPT-2 with a classifier on the last non-padding token: `input_ids`, `attention_mask` (+ `labels`) →
/// `logits [B, num_labels]` and the `problem_type` loss.
///
/// ```swift
/// let model = try GPT2ForSequenceClassification.fromPretrained(dir)   // config.json sets pad_token_id
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": Tensor([1, 0] as [Int])])
/// ```
public final class GPT2ForSequenceClassification: Module, PretrainedModel {
    public static let architecture = "GPT2ForSequenceClassification"
    public static let modelType = "gpt2"
    public let transformer: GPT2Model
    public let score: Linear
    public let head: SequenceClassificationConfig

    public convenience init(_ config: GPT2Config, head: SequenceClassificationConfig, dtype: DType = .float32,
                            device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try GPT2Model(config, dtype: dtype, device: device, seed: seed), head: head, dtype: dtype,
                      device: device, seed: seed)
    }

    public convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try GPT2Model(folder: folder, dtype: dtype, device: device),
                      head: try folder.decodeConfig(SequenceClassificationConfig.self), dtype: dtype, device: device, seed: 0)
    }

    init(_ transformer: GPT2Model, head: SequenceClassificationConfig, dtype: DType, device: Device, seed: UInt64) throws {
        self.transformer = transformer
        self.head = head
        var rng = RandomStream(seed: seed &+ 1)
        score = Linear(transformer.config.nEmbd, head.numLabels, bias: false, std: transformer.config.initializerRange,
                       dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    public var config: GPT2Config { transformer.config }
    public func configJSON() throws -> [String: Any] {
        try transformer.configJSON().merging(try jsonObject(head)) { $1 }
    }

    /// Adds `transformer.` to a bare GPT2Model file's names (not to `score.*`); drops the LM head and legacy buffers.
    public func sanitize(_ weights: StateDict) -> StateDict {
        SequenceClassificationConfig.prefixed(weights) { GPT2Names.sanitize($0, prefix: "transformer") }
    }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        guard let ids = inputs.inputIds else { preconditionFailure("GPT2ForSequenceClassification: needs \"input_ids\"") }
        return head.outputs(score(head.lastTokenStates(transformer.hidden(inputs), ids: ids)), labels: inputs.labels)
    }
}

/// Llama (and, as subclasses, Mistral and Qwen2) with a classifier on the last non-padding token — a reward model:
/// `input_ids`, `attention_mask` (+ `labels`) → `logits [B, num_labels]` and the `problem_type` loss.
///
/// ```swift
/// let model = try LlamaForSequenceClassification.fromPretrained(dir)   // num_labels 1: a scalar reward
/// let out = model(["input_ids": ids, "attention_mask": mask, "labels": Tensor([0.5, -1.0] as [Float])])
/// ```
public class LlamaForSequenceClassification: Module, PretrainedModel {
    public class var architecture: String { "LlamaForSequenceClassification" }
    public class var modelType: String { "llama" }
    public let model: LlamaModel
    public let score: Linear
    public let head: SequenceClassificationConfig

    public convenience init(_ config: LlamaConfig, head: SequenceClassificationConfig, dtype: DType = .float32,
                            device: Device = .cpu, seed: UInt64 = 0) throws {
        try self.init(try LlamaModel(config, dtype: dtype, device: device, seed: seed), head: head, dtype: dtype,
                      device: device, seed: seed)
    }

    public required convenience init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        try self.init(try LlamaModel(LlamaModel.decodeConfig(folder), folder: folder, dtype: dtype, device: device),
                      head: try folder.decodeConfig(SequenceClassificationConfig.self), dtype: dtype, device: device, seed: 0)
    }

    required init(_ model: LlamaModel, head: SequenceClassificationConfig, dtype: DType, device: Device, seed: UInt64) throws {
        self.model = model
        self.head = head
        var rng = RandomStream(seed: seed &+ 1)
        score = Linear(model.config.hiddenSize, head.numLabels, bias: false, std: model.config.initializerRange,
                       dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    public var config: LlamaConfig { model.config }
    public func configJSON() throws -> [String: Any] { try model.configJSON().merging(try jsonObject(head)) { $1 } }

    /// Adds `model.` to a bare LlamaModel file's names (not to `score.*`); drops `lm_head.weight` and `inv_freq`.
    public func sanitize(_ weights: StateDict) -> StateDict {
        SequenceClassificationConfig.prefixed(weights) { LlamaNames.sanitize($0, prefix: "model", keepHead: false) }
    }

    public override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        guard let ids = inputs.inputIds else { preconditionFailure("\(Self.architecture): needs \"input_ids\"") }
        return head.outputs(score(head.lastTokenStates(model.hidden(inputs), ids: ids)), labels: inputs.labels)
    }
}

/// Mistral with the classifier (Llama's code, `sliding_window` applied).
public final class MistralForSequenceClassification: LlamaForSequenceClassification {
    public override class var architecture: String { "MistralForSequenceClassification" }
    public override class var modelType: String { "mistral" }
}

/// Qwen2 with the classifier (Llama's code with q/k/v biases).
public final class Qwen2ForSequenceClassification: LlamaForSequenceClassification {
    public override class var architecture: String { "Qwen2ForSequenceClassification" }
    public override class var modelType: String { "qwen2" }
}

extension GPT2ForSequenceClassification: TensorParallelShardable {
    /// Shards the transformer (``GPT2Model/shardForTensorParallel(_:)``); `score` stays whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try transformer.shardForTensorParallel(comm, prefix: "transformer.")
    }
}

extension LlamaForSequenceClassification: TensorParallelShardable {
    /// Shards the decoder (``LlamaModel/shardForTensorParallel(_:)``); `score` stays whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        guard comm.size > 1 else { return }
        try model.checkTensorParallel(comm.size, prefix: "model.")
        try model.shardForTensorParallel(comm, prefix: "model.")
    }
}
