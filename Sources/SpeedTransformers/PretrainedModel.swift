// The protocol every Hugging Face model implements, with typed fromPretrained and the weight-matching step.
// Invariant: `sanitize` maps file names to module keys before matching, so the model never sees a tied, legacy or
// differently prefixed name; strict loading checks every key (shapes and dtypes from the headers) before any tensor
// is copied, and tensors are copied from the mapped files straight into the parameters.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    ///
    /// Decide by name only and return the given tensors themselves: loading then copies each one straight from
    /// the mapped file into its parameter. A `sanitize` that returns new tensors (a transpose, a concatenation)
    /// still works, but makes loading read every tensor of the files onto the heap first.
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

    /// Maps `folder`'s safetensors, sanitizes the names and copies each tensor from the mapping into its
    /// parameter (dtype converted): the files are read once and never held whole in memory.
    ///
    /// - Throws: ``PretrainedError/weightsMismatch(path:missing:unexpected:mismatched:)`` listing
    ///   every bad key (before anything is copied); mis-shaped keys are errors even when `strict` is false.
    ///   A `SafetensorsError` while copying (a checksum mismatch, a file truncated meanwhile) leaves the
    ///   parameters partly loaded: discard the model.
    @discardableResult
    public func loadWeights(from folder: PretrainedFolder, strict: Bool = true) throws -> LoadReport {
        let mapped: LoadReport? = try folder.withMappedWeights { files in
            guard let weights = sanitizedMapping(files) else { return nil }
            let own = stateDict()
            let report = try matchWeights(weights.mapValues { ($0.shape, $0.dtype) }, own: own, path: folder.url.path,
                                          strict: strict)
            for (name, p) in own.sorted(by: { $0.key < $1.key }) {
                try weights[name]?.copy(into: p)
            }
            return report
        }
        // A sanitize that made new tensors: read them all and load them as a state dict.
        let report = try mapped ?? loadSanitized(sanitize(try folder.weights()), path: folder.url.path, strict: strict)
        eval()
        return report
    }

    /// `sanitize` applied to the mapped tensors' names, or nil when it returned a tensor it was not given.
    ///
    /// It is given placeholders with the files' shapes and dtypes, on a CPU device whose memory is reserved
    /// address space (anonymous `MAP_NORESERVE` mappings: no memory is used until written), so a `sanitize` that
    /// reads shapes or even computes sees what it expects and costs nothing when it only renames.
    func sanitizedMapping(_ files: [String: MappedWeight]) -> [String: MappedWeight]? {
        let placeholder = Device(backend: CPUBackend(threads: 1, memory: .reservedAddressSpace), kind: "cpu")
        var names: [ObjectIdentifier: String] = [:]
        var placeholders: StateDict = [:]
        for (name, weight) in files {
            let t = Tensor(empty: weight.shape, dtype: weight.dtype.dtype ?? .float32, device: placeholder)
            names[ObjectIdentifier(t)] = name
            placeholders[name] = t
        }
        var out: [String: MappedWeight] = [:]
        for (key, t) in sanitize(placeholders) {
            guard let name = names[ObjectIdentifier(t)] else { return nil }
            out[key] = files[name]
        }
        return out
    }

    /// Matches `weights` (module keys) against the model and copies them in.
    func loadSanitized(_ weights: StateDict, path: String, strict: Bool) throws -> LoadReport {
        let own = stateDict()
        let report = try matchWeights(weights.mapValues { ($0.shape, SafetensorsDType($0.dtype)) }, own: own,
                                      path: path, strict: strict)
        try load(stateDict: weights.filter { own[$0.key] != nil }, strict: false)
        return report
    }

    /// Checks file shapes and dtypes (by module key) against the model's state: missing, unexpected and
    /// mismatched keys, all of them in one error.
    func matchWeights(_ weights: [String: ([Int], SafetensorsDType)], own: StateDict, path: String,
                      strict: Bool) throws -> LoadReport {
        var report = LoadReport()
        var mismatched: [String] = []
        for (name, p) in own.sorted(by: { $0.key < $1.key }) {
            guard let (shape, dtype) = weights[name] else { report.missing.append(name); continue }
            if shape != p.shape { mismatched.append("\(name): model \(p.shape), file \(shape)") }
            if let fileType = dtype.dtype {
                if !fileType.isFloatingPoint && p.dtype.isFloatingPoint {
                    mismatched.append("\(name): model \(p.dtype), file \(fileType)")
                }
            } else {
                mismatched.append("\(name): model \(p.dtype), file \(dtype.rawValue), which SwiftSpeed cannot hold")
            }
        }
        report.unexpected = weights.keys.filter { own[$0] == nil }.sorted()
        if !mismatched.isEmpty || (strict && !report.isClean) {
            throw PretrainedError.weightsMismatch(path: path, missing: strict ? report.missing : [],
                                                  unexpected: strict ? report.unexpected : [], mismatched: mismatched)
        }
        return report
    }
}

extension HostMemory {
    /// Anonymous private mappings with no swap reserved: zero pages until written, so a tensor allocated here
    /// costs address space only (sanitize's placeholders).
    static let reservedAddressSpace = HostMemory(
        allocate: { bytes in
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            precondition(p != nil && p != MAP_FAILED, "could not reserve \(bytes) bytes of address space (errno \(errno))")
            return p!
        },
        free: { pointer, bytes in _ = munmap(pointer, bytes) })
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
