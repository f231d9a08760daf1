// Normalizers: BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, Replace, Prepend, Strip, ByteLevel, Sequence.
// Invariant: each normalizer maps code points to code points exactly as HF's NormalizedString does (lowercase is per
// code point, with no final-sigma context; StripAccents removes marks but does not decompose).
import Foundation

indirect enum Normalizer: Sendable {
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case nfc, nfd, nfkc, nfkd, lowercase, stripAccents
    case replace(Pattern, Scalars)
    case prepend(Scalars)
    case strip(left: Bool, right: Bool)
    case byteLevel
    case sequence([Normalizer])

    init(_ c: NormalizerConfig, key: String = "normalizer") throws {
        switch c.type {
        case "BertNormalizer":
            let lower = c.lowercase ?? true
            self = .bert(cleanText: c.cleanText ?? true, handleChineseChars: c.handleChineseChars ?? true,
                         stripAccents: c.stripAccents ?? lower, lowercase: lower)
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "StripAccents": self = .stripAccents
        case "Replace":
            guard let p = c.pattern else { throw TokenizerError.invalid(key: "\(key).pattern", reason: "Replace needs a pattern") }
            self = .replace(try Pattern(p, key: "\(key).pattern"), (c.content ?? "").scalars)
        case "Prepend": self = .prepend((c.prepend ?? "").scalars)
        case "Strip": self = .strip(left: c.stripLeft ?? true, right: c.stripRight ?? true)
        case "ByteLevel": self = .byteLevel
        case "Sequence":
            self = .sequence(try (c.normalizers ?? []).enumerated().map {
                try Normalizer($0.element, key: "\(key).normalizers[\($0.offset)]")
            })
        default: throw TokenizerError.unsupported(key: key, type: c.type)
        }
    }

    func apply(_ s: Scalars) -> Scalars {
        switch self {
        case let .bert(clean, chinese, strip, lower):
            var out = s
            if clean {
                out = out.compactMap { c in
                    if c.value == 0 || c.value == 0xFFFD || Normalizer.isControl(c) { return nil }
                    return c.isWhitespaceHF ? " " : c
                }
            }
            if chinese {
                var padded: Scalars = []
                padded.reserveCapacity(out.count)
                for c in out {
                    if Normalizer.isChinese(c) { padded.append(" "); padded.append(c); padded.append(" ") } else { padded.append(c) }
                }
                out = padded
            }
            if strip { out = Normalizer.nfd(out).filter { !$0.isMarkHF } }
            if lower { out = Normalizer.lower(out) }
            return out
        case .nfc: return String(s).precomposedStringWithCanonicalMapping.scalars
        case .nfd: return Normalizer.nfd(s)
        case .nfkc: return String(s).precomposedStringWithCompatibilityMapping.scalars
        case .nfkd: return String(s).decomposedStringWithCompatibilityMapping.scalars
        case .lowercase: return Normalizer.lower(s)
        case .stripAccents: return s.filter { !$0.isMarkHF }
        case let .replace(pattern, content):
            var out: Scalars = []
            var last = 0
            for r in pattern.matches(in: s) {
                out.append(contentsOf: s[last..<r.lowerBound])
                out.append(contentsOf: content)
                last = r.upperBound
            }
            out.append(contentsOf: s[last...])
            return out
        case .prepend(let p): return s.isEmpty ? s : p + s
        case let .strip(left, right):
            var lo = 0, hi = s.count
            if left { while lo < hi && s[lo].isWhitespaceHF { lo += 1 } }
            if right { while hi > lo && s[hi - 1].isWhitespaceHF { hi -= 1 } }
            return Array(s[lo..<hi])
        case .byteLevel: return ByteLevel.encode(s)
        case .sequence(let ns): return ns.reduce(s) { $1.apply($0) }
        }
    }

    static func nfd(_ s: Scalars) -> Scalars {
        if s.allSatisfy({ $0.value < 0x80 }) { return s }
        return String(s).decomposedStringWithCanonicalMapping.scalars
    }

    static func lower(_ s: Scalars) -> Scalars {
        var out: Scalars = []
        out.reserveCapacity(s.count)
        for c in s {
            if c.value < 0x80 {
                out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 32)! : c)
            } else {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    /// BERT's control characters: Cc, Cf, Cs, Co, Cn, except tab, newline and carriage return.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// The CJK Unified Ideograph blocks BERT pads with spaces.
    static func isChinese(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}
