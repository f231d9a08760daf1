// A Hugging Face model folder: config.json plus model.safetensors or sharded files with their index.
// Invariant: loading maps the weight files (withMappedWeights) and copies each tensor from the mapping straight into
// its parameter, converting dtype on the way, so the weights are read once and no file-sized heap copy exists; the
// mappings end when withMappedWeights returns. `weights()` (eager, every tensor on the heap) is for inspection.

import Foundation
import SpeedCore
import SpeedIO
import SpeedNN

/// The files of a `save_pretrained` folder: `config.json`, and `model.safetensors` or
/// `model-0000k-of-0000n.safetensors` shards listed by `model.safetensors.index.json`.
///
/// ```swift
/// let folder = try PretrainedFolder(URL(fileURLWithPath: "/opt/swiftspeed/models/all-MiniLM-L6-v2"))
/// folder.modelType          // "bert"
/// let weights = try folder.weights()   // ["embeddings.word_embeddings.weight": …, …]
/// ```
public struct PretrainedFolder: Sendable {
    public let url: URL
    /// The raw bytes of config.json.
    public let configData: Data
    /// config.json's `model_type`, when present.
    public let modelType: String?
    /// config.json's `architectures`, empty when absent.
    public let architectures: [String]

    public static let configName = "config.json"
    public static let weightsName = "model.safetensors"
    public static let indexName = "model.safetensors.index.json"

    /// Reads config.json (the weights are read by ``weights()``).
    ///
    /// - Throws: ``PretrainedError`` naming config.json when it is absent or not a JSON object.
    public init(_ url: URL) throws {
        self.url = url
        let configURL = url.appendingPathComponent(Self.configName)
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw PretrainedError.missingFile(path: configURL.path,
                fix: "A Hugging Face model folder needs config.json next to its safetensors (write one with save_pretrained or savePretrained).")
        }
        configData = data
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PretrainedError.invalidJSON(path: configURL.path, key: nil, problem: "is not a JSON object; re-save the model")
        }
        modelType = object["model_type"] as? String
        architectures = object["architectures"] as? [String] ?? []
    }

    /// The weight files: the single `model.safetensors`, or the shards the index names (sorted).
    ///
    /// - Throws: ``PretrainedError`` when neither exists or the index is malformed.
    public func weightFiles() throws -> [URL] {
        let single = url.appendingPathComponent(Self.weightsName)
        if FileManager.default.fileExists(atPath: single.path) { return [single] }
        let index = url.appendingPathComponent(Self.indexName)
        guard let data = FileManager.default.contents(atPath: index.path) else {
            throw PretrainedError.missingFile(path: single.path,
                fix: "Neither \(Self.weightsName) nor \(Self.indexName) is in \(url.path); SwiftSpeed reads safetensors only (convert a pytorch_model.bin with transformers: model.save_pretrained(dir, safe_serialization=True)).")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PretrainedError.invalidJSON(path: index.path, key: nil, problem: "is not a JSON object")
        }
        guard let map = object["weight_map"] as? [String: String] else {
            throw PretrainedError.invalidJSON(path: index.path, key: "weight_map",
                                              problem: "missing or not an object of tensor name to file name")
        }
        return Set(map.values).sorted().map { url.appendingPathComponent($0) }
    }

    /// Every tensor of every weight file, by its name in the files, on the CPU in the file's dtype.
    ///
    /// ```swift
    /// let weights = try folder.weights()
    /// weights["transformer.wte.weight"]?.shape   // [50257, 768]
    /// ```
    /// - Throws: ``PretrainedError`` for a missing shard, `SafetensorsError` for a malformed file.
    public func weights() throws -> StateDict {
        var out: StateDict = [:]
        for file in try weightFiles() {
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw PretrainedError.missingFile(path: file.path,
                    fix: "\(Self.indexName) names this shard; copy the complete folder again.")
            }
            let (tensors, _) = try Safetensors.read(file)
            for (name, tensor) in tensors {
                guard out[name] == nil else {
                    throw PretrainedError.invalidJSON(path: file.path, key: name,
                                                      problem: "the tensor is in more than one shard; re-save the model")
                }
                out[name] = tensor
            }
        }
        return out
    }

    /// Maps every weight file for the duration of `body` and gives it each tensor by its name in the files;
    /// no tensor data is read until a ``MappedWeight`` is copied. The files are unmapped when `body` returns.
    ///
    /// ```swift
    /// try folder.withMappedWeights { weights in
    ///     try weights["transformer.wte.weight"]!.copy(into: model.transformer.wte.weight)
    /// }
    /// ```
    /// - Throws: ``PretrainedError`` for a missing shard or a tensor in two shards, `SafetensorsError` for a
    ///   malformed file, or what `body` throws.
    public func withMappedWeights<R>(_ body: ([String: MappedWeight]) throws -> R) throws -> R {
        var files: [MappedSafetensors] = []
        defer { for f in files { f.close() } }
        var out: [String: MappedWeight] = [:]
        for url in try weightFiles() {
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw PretrainedError.missingFile(path: url.path,
                    fix: "\(Self.indexName) names this shard; copy the complete folder again.")
            }
            let file = try MappedSafetensors(url)
            files.append(file)
            for entry in file.header.entries {
                guard out[entry.name] == nil else {
                    throw PretrainedError.invalidJSON(path: url.path, key: entry.name,
                                                      problem: "the tensor is in more than one shard; re-save the model")
                }
                out[entry.name] = MappedWeight(file: file, entry: entry)
            }
        }
        return try body(out)
    }

    /// Decodes config.json into `T`, naming the key on failure.
    public func decodeConfig<T: Decodable>(_ type: T.Type) throws -> T {
        try Self.decode(type, from: configData, path: url.appendingPathComponent(Self.configName).path)
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) }
        catch let DecodingError.keyNotFound(key, _) {
            throw PretrainedError.invalidJSON(path: path, key: key.stringValue, problem: "is required but absent")
        } catch let DecodingError.typeMismatch(_, context) {
            throw PretrainedError.invalidJSON(path: path, key: context.codingPath.map(\.stringValue).joined(separator: "."),
                                              problem: context.debugDescription)
        } catch let DecodingError.valueNotFound(_, context) {
            throw PretrainedError.invalidJSON(path: path, key: context.codingPath.map(\.stringValue).joined(separator: "."),
                                              problem: "is null; give it a value")
        } catch {
            throw PretrainedError.invalidJSON(path: path, key: nil, problem: "\(error)")
        }
    }
}

/// One tensor of a mapped weight file (``PretrainedFolder/withMappedWeights(_:)``): its shape and dtype from the
/// header, its bytes copied on demand.
///
/// ```swift
/// let w: MappedWeight = weights["lm_head.weight"]!
/// w.shape                       // [32000, 4096]
/// try w.copy(into: head.weight) // BF16 in the file, F32 in the model: converted on the way
/// ```
public struct MappedWeight {
    public let file: MappedSafetensors
    public let entry: SafetensorsHeader.Entry

    public var shape: [Int] { entry.shape }
    public var dtype: SafetensorsDType { entry.dtype }

    /// Copies the tensor into `destination` (see ``MappedSafetensors/copy(_:into:verify:)``).
    public func copy(into destination: Tensor) throws { try file.copy(entry.name, into: destination) }
}
