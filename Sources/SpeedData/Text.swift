// Text for language-model training: a byte-level tokenizer and the corpus loaders.
// Invariant: byte-level ids are the UTF-8 bytes themselves (vocabulary 256), so encode∘decode is lossless.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Byte-level tokenizer: one token per UTF-8 byte.
///
/// ```swift
/// let tok = ByteTokenizer()
/// tok.decode(tok.encode("héllo")) == "héllo"   // true
/// ```
public struct ByteTokenizer: Sendable {
    public init() {}
    public var vocabularySize: Int { 256 }
    public func encode(_ text: String) -> [Int32] { text.utf8.map { Int32($0) } }
    /// Decodes ids (values outside 0...255 are skipped; invalid UTF-8 becomes U+FFFD).
    public func decode(_ ids: [Int32]) -> String {
        String(decoding: ids.compactMap { (0...255).contains($0) ? UInt8($0) : nil }, as: UTF8.self)
    }
}

/// Errors reading a text corpus.
public struct CorpusError: Error, CustomStringConvertible {
    public let description: String
}

/// Plain-text corpora.
public enum TextCorpus {
    /// Debian's `fortunes` package: real English text (quotations, jokes) no one here wrote.
    public static let fortunesPath = "/usr/share/games/fortunes/fortunes"

    /// Reads a UTF-8 text file; fortune files (`%` separator lines) are joined with blank lines.
    public static func load(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CorpusError(description: "cannot read text corpus at \(path)"
                + (path == fortunesPath ? " — install it with `apt-get install fortunes` (scripts/setup.sh does)" : ""))
        }
        let text = String(decoding: data, as: UTF8.self)
        let fortunes = text.split(separator: "\n%\n", omittingEmptySubsequences: true)
        return fortunes.count > 1 ? fortunes.joined(separator: "\n\n") : text
    }
}
