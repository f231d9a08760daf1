// Decoders, tokens back to text: ByteLevel, WordPiece, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder,
// CTC, Sequence. Each rewrites the token list (HF's `decode_chain`); the tokenizer joins the result with "".
// Invariant: a decoder never sees ids, only token strings, so added tokens decode as their content.
import Foundation

indirect enum TokenDecoder: Sendable {
    case byteLevel
    case wordPiece(prefix: String, cleanup: Bool)
    case metaspace(replacement: String, prepend: Bool)
    case byteFallback
    case fuse
    case strip(content: String, start: Int, stop: Int)
    case replace(Pattern, String)
    case bpe(suffix: String)
    case ctc(pad: String, wordDelimiter: String, cleanup: Bool)
    case sequence([TokenDecoder])

    init(_ c: DecoderConfig, key: String = "decoder") throws {
        switch c.type {
        case "ByteLevel": self = .byteLevel
        case "WordPiece": self = .wordPiece(prefix: c.prefix ?? "##", cleanup: c.cleanup ?? true)
        case "Metaspace":
            let scheme = c.prependScheme ?? ((c.addPrefixSpace ?? true) ? "always" : "never")
            self = .metaspace(replacement: c.replacement ?? "\u{2581}", prepend: scheme != "never")
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip": self = .strip(content: c.content ?? " ", start: c.start ?? 0, stop: c.stop ?? 0)
        case "Replace":
            guard let p = c.pattern else { throw TokenizerError.invalid(key: "\(key).pattern", reason: "Replace needs a pattern") }
            self = .replace(try Pattern(p, key: "\(key).pattern"), c.content ?? "")
        case "BPEDecoder": self = .bpe(suffix: c.suffix ?? "</w>")
        case "CTC":
            self = .ctc(pad: c.padToken ?? "<pad>", wordDelimiter: c.wordDelimiterToken ?? "|", cleanup: c.cleanup ?? true)
        case "Sequence":
            self = .sequence(try (c.decoders ?? []).enumerated().map {
                try TokenDecoder($0.element, key: "\(key).decoders[\($0.offset)]")
            })
        default: throw TokenizerError.unsupported(key: key, type: c.type)
        }
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            return [ByteLevel.decode(tokens.joined())]
        case let .wordPiece(prefix, cleanup):
            return tokens.enumerated().map { i, t in
                var t = t
                // By scalar: "##" + a combining mark is one Character, and must still lose its "##".
                if i != 0 {
                    let (u, p) = (t.unicodeScalars, prefix.unicodeScalars)
                    t = u.starts(with: p) ? String(u.dropFirst(p.count)) : " " + t
                }
                return cleanup ? TokenDecoder.cleanup(t) : t
            }
        case let .metaspace(replacement, prepend):
            return tokens.enumerated().map { i, t in
                let r = replacement.unicodeScalars
                var u = Scalars(t.unicodeScalars)
                if r.count == 1 { u = u.map { $0 == r.first! ? " " : $0 } } else {
                    u = Scalars(t.replacingOccurrences(of: replacement, with: " ").unicodeScalars)
                }
                if i == 0 && prepend && u.first == " " { u.removeFirst() }
                return String(u)
            }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count))
                }
                pending = []
            }
            for t in tokens {
                let u = Array(t.utf8)
                if u.count == 6, t.hasPrefix("<0x"), t.hasSuffix(">"), let b = UInt8(t.dropFirst(3).prefix(2), radix: 16) {
                    pending.append(b)
                } else {
                    flush(); out.append(t)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { t in
                // HF strips the content character by character (scalars: " " + a combining mark stays two).
                var s = Substring(t).unicodeScalars
                let c = content.unicodeScalars
                var k = 0
                while k < start, s.starts(with: c) { s = s.dropFirst(c.count); k += 1 }
                k = 0
                while k < stop, s.reversed().starts(with: c.reversed()) { s = s.dropLast(c.count); k += 1 }
                return String(String.UnicodeScalarView(s))
            }
        case let .replace(pattern, content):
            return tokens.map { String(Normalizer.replace(pattern, content.scalars).apply($0.scalars)) }
        case .bpe(let suffix):
            return tokens.enumerated().map { i, t in
                t.replacingOccurrences(of: suffix, with: i == tokens.count - 1 ? "" : " ")
            }
        case let .ctc(pad, wordDelimiter, cleanup):
            // Repeats collapse (compared by scalars, as HF's bytes), blanks go, the delimiter becomes a space.
            var out: [String] = []
            var previous: String? = nil
            for t in tokens {
                defer { previous = t }
                if let p = previous, p.unicodeScalars.elementsEqual(t.unicodeScalars) { continue }
                var r = pad.isEmpty ? t : t.replacingOccurrences(of: pad, with: "")
                if cleanup {
                    r = TokenDecoder.cleanup(r)
                    if !wordDelimiter.isEmpty { r = r.replacingOccurrences(of: wordDelimiter, with: " ") }
                }
                if !r.isEmpty { out.append(r) }
            }
            return out
        case .sequence(let ds):
            return ds.reduce(tokens) { $1.decodeChain($0) }
        }
    }

    /// WordPiece's `cleanup`: English tokenization artifacts (" ." -> ".", " n't" -> "n't"...).
    static func cleanup(_ s: String) -> String {
        var s = s
        for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                       (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            s = s.replacingOccurrences(of: a, with: b)
        }
        return s
    }
}
