// The one error type of SpeedTokenizers: every case names the file or key at fault and the fix.
// Invariant: errors are thrown only while loading; encoding and decoding a loaded tokenizer never throw.
import Foundation

/// Why a tokenizer could not be loaded.
///
/// ```swift
/// do { _ = try Tokenizer(contentsOf: url) } catch let e as TokenizerError { print(e) }
/// ```
public enum TokenizerError: Error, CustomStringConvertible, Sendable {
    /// The file is missing or unreadable.
    case unreadable(path: String, reason: String)
    /// The JSON does not match the tokenizer.json schema.
    case malformed(path: String, reason: String)
    /// A component `type` (normalizer, pre-tokenizer, model, post-processor, decoder) SpeedTokenizers does not implement.
    case unsupported(key: String, type: String)
    /// A value is missing or inconsistent (an unknown token, a merge whose parts are not in the vocabulary...).
    case invalid(key: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason); pass a tokenizer.json or a folder holding one"
        case let .malformed(path, reason):
            return "\(path) is not a Hugging Face tokenizer.json: \(reason); re-save it with `tokenizer.save(path)` from the tokenizers library"
        case let .unsupported(key, type):
            return "\(key): type \"\(type)\" is not supported by SpeedTokenizers; see docs/SpeedTokenizers.md for the supported components"
        case let .invalid(key, reason):
            return "\(key): \(reason)"
        }
    }
}
