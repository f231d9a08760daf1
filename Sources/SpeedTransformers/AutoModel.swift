// AutoModel and the registry that maps config.json's architectures / model_type to a model type.
// Invariant: the registry is a value (no global mutable state); `architectures` wins over `model_type`, and a
// model_type alone picks the first type registered for it.

import Foundation
import SpeedCore
import SpeedNN

/// Which Swift type builds each Hugging Face architecture. Extend a copy of ``standard``:
///
/// ```swift
/// var registry = ModelRegistry.standard
/// registry.register(MyLlamaForCausalLM.self)            // by its architecture and model_type
/// let model = try AutoModel.fromPretrained(dir, registry: registry)
/// ```
public struct ModelRegistry: Sendable {
    private var byArchitecture: [String: any PretrainedModel.Type] = [:]
    private var byModelType: [String: any PretrainedModel.Type] = [:]

    public init() {}

    /// GPT-2 (`GPT2LMHeadModel`, `GPT2Model`), BERT (`BertModel`, `BertForMaskedLM`,
    /// `BertForSequenceClassification`), RoBERTa (`RobertaModel`, `RobertaForMaskedLM`,
    /// `RobertaForSequenceClassification`), DistilBERT (`DistilBertModel`, `DistilBertForMaskedLM`,
    /// `DistilBertForSequenceClassification`), the decoders' `…ForSequenceClassification` (GPT-2, Llama, Mistral,
    /// Qwen2) and Llama (`LlamaForCausalLM`, `LlamaModel`, plus `MistralForCausalLM` and
    /// `Qwen2ForCausalLM` on the same code). A bare `model_type` picks the first listed.
    public static let standard: ModelRegistry = {
        var r = ModelRegistry()
        for t: any PretrainedModel.Type in [GPT2LMHeadModel.self, GPT2Model.self, BertModel.self,
                                            BertForMaskedLM.self, BertForSequenceClassification.self, RobertaModel.self,
                                            RobertaForMaskedLM.self, RobertaForSequenceClassification.self,
                                            DistilBertModel.self, DistilBertForMaskedLM.self,
                                            DistilBertForSequenceClassification.self,
                                            LlamaForCausalLM.self, LlamaModel.self, MistralForCausalLM.self,
                                            Qwen2ForCausalLM.self, GPT2ForSequenceClassification.self,
                                            LlamaForSequenceClassification.self, MistralForSequenceClassification.self,
                                            Qwen2ForSequenceClassification.self] {
            r.register(t)
        }
        return r
    }()

    /// Registers `type` under its ``PretrainedModel/architecture``, and under its `model_type`
    /// unless that already has a type (pass `asDefault: true` to replace it).
    public mutating func register(_ type: any PretrainedModel.Type, asDefault: Bool = false) {
        byArchitecture[type.architecture] = type
        if asDefault || byModelType[type.modelType] == nil { byModelType[type.modelType] = type }
    }

    /// The type for config.json's `architectures` (first match) or else its `model_type`.
    public func type(architectures: [String], modelType: String?) -> (any PretrainedModel.Type)? {
        for a in architectures { if let t = byArchitecture[a] { return t } }
        return modelType.flatMap { byModelType[$0] }
    }

    /// The registered architecture names, sorted.
    public var architectures: [String] { byArchitecture.keys.sorted() }
}

/// Loads any registered Hugging Face model from a folder, like transformers' `AutoModel`.
///
/// ```swift
/// let model = try AutoModel.fromPretrained(URL(fileURLWithPath: "tiny-gpt2"))
/// let out = model(["input_ids": Tensor([[1, 2, 3]] as [[Int32]])])
/// out.logits!.shape   // [1, 3, vocab]
/// ```
public enum AutoModel {
    /// The model config.json's `architectures` (or `model_type`) names, with its weights loaded.
    ///
    /// - Throws: ``PretrainedError`` for an unknown architecture, missing files, or weights
    ///   that do not match (strict: all missing/unexpected/mis-shaped keys in one error).
    public static func fromPretrained(_ dir: URL, dtype: DType = .float32, device: Device = .cpu, strict: Bool = true,
                                      registry: ModelRegistry = .standard) throws -> any PretrainedModel {
        try load(dir, dtype: dtype, device: device, strict: strict, registry: registry).model
    }

    /// ``fromPretrained(_:dtype:device:strict:registry:)`` that also returns what a non-strict load left out.
    public static func load(_ dir: URL, dtype: DType = .float32, device: Device = .cpu, strict: Bool = true,
                            registry: ModelRegistry = .standard) throws -> (model: any PretrainedModel, report: LoadReport) {
        let folder = try PretrainedFolder(dir)
        guard let type = registry.type(architectures: folder.architectures, modelType: folder.modelType) else {
            throw PretrainedError.unknownArchitecture(path: dir.appendingPathComponent(PretrainedFolder.configName).path,
                                                      modelType: folder.modelType, architectures: folder.architectures,
                                                      known: registry.architectures)
        }
        let model = try type.init(folder: folder, dtype: dtype, device: device)
        let report = try model.loadWeights(from: folder, strict: strict)
        return (model, report)
    }
}
