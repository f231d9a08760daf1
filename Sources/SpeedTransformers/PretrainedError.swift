// The errors of loading and saving Hugging Face folders, each naming the file or key and the fix.
// Invariant: a weight-matching error lists every missing, unexpected and mis-shaped key at once, never only the first.

import Foundation

/// Why a Hugging Face folder could not be read or written.
///
/// ```swift
/// do { _ = try AutoModel.fromPretrained(dir) }
/// catch let e as PretrainedError { print(e) }   // names the file or key and what to do
/// ```
public enum PretrainedError: Error, CustomStringConvertible, Equatable {
    /// A file the folder needs is absent.
    case missingFile(path: String, fix: String)
    /// A JSON file (config.json, the shard index) could not be parsed or lacks a key.
    case invalidJSON(path: String, key: String?, problem: String)
    /// No registered architecture matches the config's `architectures` / `model_type`.
    case unknownArchitecture(path: String, modelType: String?, architectures: [String], known: [String])
    /// The checkpoint's weights do not match the model's parameters.
    case weightsMismatch(path: String, missing: [String], unexpected: [String], mismatched: [String])
    /// A config value this implementation does not support.
    case unsupported(path: String, key: String, value: String, supported: String)

    public var description: String {
        switch self {
        case let .missingFile(path, fix):
            return "\(path): no such file. \(fix)"
        case let .invalidJSON(path, key, problem):
            return "\(path)\(key.map { " key \"\($0)\"" } ?? ""): \(problem)"
        case let .unknownArchitecture(path, modelType, architectures, known):
            return "\(path): no registered model for architectures \(architectures) / model_type \(modelType.map { "\"\($0)\"" } ?? "nil"). "
                + "Known: \(known.joined(separator: ", ")). Register one with ModelRegistry.register(_:) and pass the registry to AutoModel.fromPretrained."
        case let .weightsMismatch(path, missing, unexpected, mismatched):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing keys (in the model, not in the files): \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { parts.append("unexpected keys (in the files, not in the model): \(unexpected.joined(separator: ", "))") }
            if !mismatched.isEmpty { parts.append("shape mismatches: \(mismatched.joined(separator: "; "))") }
            return "\(path): the weights do not match the model — " + parts.joined(separator: "; ")
                + ". Check that config.json belongs to these weights, or pass strict: false to load the matching keys and get the rest reported."
        case let .unsupported(path, key, value, supported):
            return "\(path) key \"\(key)\": \(value) is not supported (supported: \(supported))."
        }
    }
}

/// What a non-strict load left out: keys the model has that the files lack (left at their
/// initial values) and keys the files have that the model does not use.
///
/// ```swift
/// let (model, report) = try AutoModel.load(dir, strict: false)
/// report.missing      // e.g. ["classifier.weight", "classifier.bias"] for a fresh head
/// ```
public struct LoadReport: Sendable, Equatable, CustomStringConvertible {
    public var missing: [String] = []
    public var unexpected: [String] = []

    public init(missing: [String] = [], unexpected: [String] = []) {
        self.missing = missing
        self.unexpected = unexpected
    }

    public var isClean: Bool { missing.isEmpty && unexpected.isEmpty }

    public var description: String {
        isClean ? "all weights loaded"
            : "missing: \(missing.isEmpty ? "none" : missing.joined(separator: ", ")); unexpected: \(unexpected.isEmpty ? "none" : unexpected.joined(separator: ", "))"
    }
}
