// transformers' AutoModelForSequenceClassification.from_pretrained(dir, num_labels:): a task model from any folder of
// the family — a bare base model (BertModel, RobertaModel, DistilBertModel) gets a freshly initialised head, as
// from_pretrained does.
// Invariant: only head keys (`classifier.*`, the pooler) may be missing; any other missing key is an error, and a
// checkpoint whose head has another number of labels is refused rather than silently re-initialised.

import Foundation
import SpeedCore
import SpeedNN

/// A sequence-classification model loaded from a Hugging Face folder, with what was freshly initialised.
///
/// ```swift
/// let (model, report) = try AutoModelForSequenceClassification.fromPretrained(
///     URL(fileURLWithPath: "/opt/swiftspeed/models/all-MiniLM-L6-v2"), numLabels: 2)
/// report.newlyInitialized   // ["classifier.bias", "classifier.weight"]
/// ```
public enum AutoModelForSequenceClassification {
    /// The keys a task head may lack in a base-model checkpoint (trained from scratch, as in transformers).
    static func isHeadKey(_ key: String) -> Bool {
        key.hasPrefix("classifier.") || key.hasPrefix("pre_classifier.") || key.hasPrefix("bert.pooler.")
            || key.hasPrefix("score.")
    }

    /// The decoder families' classifiers, by `model_type`.
    static let decoderClassifiers: [String: any PretrainedModel.Type] = [
        "gpt2": GPT2ForSequenceClassification.self, "llama": LlamaForSequenceClassification.self,
        "mistral": MistralForSequenceClassification.self, "qwen2": Qwen2ForSequenceClassification.self,
    ]

    /// Loads `dir` as a sequence classifier with `numLabels` classes (nil: the folder's own `id2label` count).
    ///
    /// - Throws: ``PretrainedError`` for a family without a sequence-classification head, a weight that is missing
    ///   outside the head, or a checkpoint head with another number of labels.
    public static func fromPretrained(_ dir: URL, numLabels: Int? = nil, dtype: DType = .float32, device: Device = .cpu,
                                      seed: UInt64 = 42) throws -> (model: any PretrainedModel, report: LoadReport,
                                                                    newlyInitialized: [String]) {
        let folder = try PretrainedFolder(dir)
        let configPath = dir.appendingPathComponent(PretrainedFolder.configName).path
        func family(_ type: String, _ prefix: String) -> Bool {
            folder.modelType == type || folder.architectures.contains { $0.hasPrefix(prefix) }
        }
        /// The checkpoint's own head size, when the folder is this classifier; `n`, checked against it, else.
        func labels(_ config: Int, saved: Bool) throws -> Int? {
            guard let n = numLabels else { return nil }
            precondition(n >= 1, "AutoModelForSequenceClassification: numLabels must be >= 1, got \(n)")
            if saved, config != n {
                throw PretrainedError.unsupported(
                    path: configPath, key: "num_labels", value: "\(n)",
                    supported: "\(config), the checkpoint's classifier size (its head would be re-initialised; train from the base model instead)")
            }
            return config == n ? nil : n
        }
        let model: any PretrainedModel
        if family("distilbert", "DistilBert") {
            var config = try folder.decodeConfig(DistilBertConfig.self)
            let saved = folder.architectures.contains(DistilBertForSequenceClassification.architecture)
            if let n = try labels(config.numLabels, saved: saved) { config.numLabels = n }
            model = try DistilBertForSequenceClassification(
                DistilBertModel(config, folder: folder, dtype: dtype, device: device, seed: seed), dtype: dtype,
                device: device, seed: seed)
        } else if family("roberta", "Roberta") || family("bert", "Bert") {
            let roberta = family("roberta", "Roberta")
            var config = try (roberta ? RobertaModel.self : BertModel.self).decodeConfig(folder)
            let head = roberta ? RobertaForSequenceClassification.architecture : BertForSequenceClassification.architecture
            if let n = try labels(config.numLabels, saved: folder.architectures.contains(head)) { config.numLabels = n }
            model = roberta
                ? try RobertaForSequenceClassification(
                    RobertaModel(config, folder: folder, addPoolingLayer: false, dtype: dtype, device: device, seed: seed),
                    dtype: dtype, device: device, seed: seed)
                : try BertForSequenceClassification(
                    BertModel(config, folder: folder, addPoolingLayer: true, dtype: dtype, device: device, seed: seed),
                    dtype: dtype, device: device, seed: seed)
        } else if let type = decoderClassifiers[folder.modelType ?? ""] {
            // Decoder LMs (reward models): `score` on the last non-padding token.
            var head = try folder.decodeConfig(SequenceClassificationConfig.self)
            let saved = folder.architectures.contains(type.architecture)
            if let n = try labels(head.numLabels, saved: saved) { head.numLabels = n }
            if folder.modelType == "gpt2" {
                model = try GPT2ForSequenceClassification(GPT2Model(folder: folder, dtype: dtype, device: device),
                                                          head: head, dtype: dtype, device: device, seed: seed)
            } else {
                let body = try LlamaModel(LlamaModel.decodeConfig(folder), folder: folder, dtype: dtype, device: device)
                model = try (type as! LlamaForSequenceClassification.Type).init(body, head: head, dtype: dtype,
                                                                                device: device, seed: seed)
            }
        } else {
            throw PretrainedError.unsupported(path: configPath, key: "model_type", value: "\"\(folder.modelType ?? "?")\"",
                                              supported: "\"bert\", \"roberta\", \"distilbert\", \"gpt2\", \"llama\", \"mistral\" or \"qwen2\" (their ForSequenceClassification models) for sequence classification")
        }
        let report = try model.loadWeights(from: folder, strict: false)
        let missingBody = report.missing.filter { !isHeadKey($0) }
        guard missingBody.isEmpty else {
            throw PretrainedError.weightsMismatch(path: dir.path, missing: missingBody, unexpected: [], mismatched: [])
        }
        return (model, report, report.missing)
    }
}

/// transformers' `AutoModelForCausalLM.from_pretrained(dir)`: a folder's decoder-only LM (GPT-2, Llama, Mistral, Qwen2).
///
/// ```swift
/// let model = try AutoModelForCausalLM.fromPretrained(URL(fileURLWithPath: "tiny-gpt2"))
/// model(["input_ids": ids, "labels": ids]).loss   // next-token cross-entropy
/// ```
public enum AutoModelForCausalLM {
    /// - Throws: ``PretrainedError`` as ``AutoModel/fromPretrained(_:dtype:device:strict:registry:)``, or
    ///   `unsupported` for a folder whose model is not a causal LM (e.g. a BERT classifier).
    public static func fromPretrained(_ dir: URL, dtype: DType = .float32, device: Device = .cpu)
        throws -> any PretrainedModel & CausalLanguageModel
    {
        let model = try AutoModel.fromPretrained(dir, dtype: dtype, device: device)
        guard let lm = model as? any PretrainedModel & CausalLanguageModel else {
            throw PretrainedError.unsupported(path: dir.appendingPathComponent(PretrainedFolder.configName).path,
                                              key: "architectures", value: "\(type(of: model))",
                                              supported: "a causal LM (GPT2LMHeadModel, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)")
        }
        return lm
    }
}
