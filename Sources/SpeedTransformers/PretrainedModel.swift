// The protocol every Hugging Face model implements, with typed fromPretrained and the weight-matching step.
// Invariant: `sanitize` maps file names to module keys before matching, so the model never sees a tied, legacy or
// differently prefixed name; strict loading checks every key before any tensor is copied.

import Foundation
import SpeedCore
import SpeedIO
import SpeedNN

/// A model that reads and writes Hugging Face folders (MLX-examples' shape: a Codable config per
/// `config.json`, a `sanitize` step from file names to module keys).
///
/// ```swift
/// let model = try GPT2LMHeadModel.fromPretrained(dir)       // typed
/// let any = try AutoModel.fromPretrained(dir)               // by config.json's architectures
/// let out = model(["input_ids": ids, "labels": ids])
/// try model.savePretrained(outDir)
/// ```
public protocol PretrainedModel: Module {
    /// The Hugging Face class name written to config.json's `architectures`, e.g. `"GPT2LMHeadModel"`.
    static var architecture: String { get }
    /// config.json's `model_type`, e.g. `"gpt2"`.
    static var modelType: String { get }

    /// A model with freshly initialised weights for `folder`'s config.json.
    init(folder: PretrainedFolder, dtype: DType, device: Device) throws

    /// config.json's fields for this model (merged over the loaded config.json when saving).
    func configJSON() throws -> [String: Any]

    /// File names to module keys: drop tied and legacy buffers, rename `gamma`/`beta`, add or
    /// strip the base model's prefix. The default returns `weights` unchanged.
    func sanitize(_ weights: StateDict) -> StateDict
}

extension PretrainedModel {
    public func sanitize(_ weights: StateDict) -> StateDict { weights }

    /// Loads `dir` (config.json + safetensors) into this model type.
    ///
    /// - Parameters:
    ///   - dtype: the training dtype; F32, F16 and BF16 tensors in the files are converted to it.
    ///   - strict: when true (default), any missing, unexpected or mis-shaped key is an error that
    ///     lists all of them; when false, matching keys load and the rest are in ``LoadReport``.
    ///
    /// ```swift
    /// let model = try BertForSequenceClassification.fromPretrained(dir, dtype: .float32)
    /// ```
    public static func fromPretrained(_ dir: URL, dtype: DType = .float32, device: Device = .cpu,
                                      strict: Bool = true) throws -> Self {
        try load(dir, dtype: dtype, device: device, strict: strict).model
    }

    /// ``fromPretrained(_:dtype:device:strict:)`` that also returns what a non-strict load left out.
    public static func load(_ dir: URL, dtype: DType = .float32, device: Device = .cpu,
                            strict: Bool = true) throws -> (model: Self, report: LoadReport) {
        let folder = try PretrainedFolder(dir)
        let model = try Self(folder: folder, dtype: dtype, device: device)
        let report = try model.loadWeights(from: folder, strict: strict)
        return (model, report)
    }

    /// Reads `folder`'s safetensors, sanitizes the names and copies them in (dtype converted).
    ///
    /// - Throws: ``PretrainedError/weightsMismatch(path:missing:unexpected:mismatched:)`` listing
    ///   every bad key; mis-shaped keys are errors even when `strict` is false.
    @discardableResult
    public func loadWeights(from folder: PretrainedFolder, strict: Bool = true) throws -> LoadReport {
        let weights = sanitize(try folder.weights())
        let report = try loadSanitized(weights, path: folder.url.path, strict: strict)
        eval()
        return report
    }

    /// Matches `weights` (module keys) against the model and copies them in.
    func loadSanitized(_ weights: StateDict, path: String, strict: Bool) throws -> LoadReport {
        let own = stateDict()
        var report = LoadReport()
        var mismatched: [String] = []
        for (name, p) in own.sorted(by: { $0.key < $1.key }) {
            guard let w = weights[name] else { report.missing.append(name); continue }
            if w.shape != p.shape { mismatched.append("\(name): model \(p.shape), file \(w.shape)") }
            if !w.dtype.isFloatingPoint && p.dtype.isFloatingPoint {
                mismatched.append("\(name): model \(p.dtype), file \(w.dtype)")
            }
        }
        report.unexpected = weights.keys.filter { own[$0] == nil }.sorted()
        if !mismatched.isEmpty || (strict && !report.isClean) {
            throw PretrainedError.weightsMismatch(path: path, missing: strict ? report.missing : [],
                                                  unexpected: strict ? report.unexpected : [], mismatched: mismatched)
        }
        try load(stateDict: weights.filter { own[$0.key] != nil }, strict: false)
        return report
    }
}

/// Decoding helpers for Hugging Face config fields: absent keys take the transformers default.
extension KeyedDecodingContainer {
    func value<T: Decodable>(_ key: Key, default value: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? value
    }
}

/// A key for dynamic config.json fields.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
