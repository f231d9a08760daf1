// Normalizers: BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, Replace, Prepend, Strip, ByteLevel,
// Precompiled, Nmt, Sequence, each rewriting a NormalizedText and its alignment to the original text.
// Invariant: each normalizer maps code points and alignments exactly as HF's NormalizedString does (lowercase is per
// code point, with no final-sigma context; StripAccents removes marks but does not decompose; BERT's accent strip
// removes only Mn after NFD; NF* go through HF's (char, change) stream, so reordered marks swap alignments as in HF).
import Foundation

indirect enum Normalizer: Sendable {
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case nfc, nfd, nfkc, nfkd, lowercase, stripAccents
    case replace(Pattern, Scalars)
    case prepend(Scalars)
    case strip(left: Bool, right: Bool)
    case byteLevel
    /// SentencePiece's NMT rules (HF's `Nmt`): C0/C1 controls dropped, tab/newlines, zero-width and line separators,
    /// U+2581, BOM and U+FFFD become spaces.
    case nmt
    case precompiled(PrecompiledCharsmap)
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
        case "Nmt": self = .nmt
        case "Precompiled":
            guard let map = c.precompiledCharsmap else {
                throw TokenizerError.invalid(key: "\(key).precompiled_charsmap", reason: "Precompiled needs the base64 precompiled_charsmap of its SentencePiece model; re-save the tokenizer with `tokenizer.save(path)`")
            }
            self = .precompiled(try PrecompiledCharsmap(base64: map, key: "\(key).precompiled_charsmap"))
        case "Sequence":
            self = .sequence(try (c.normalizers ?? []).enumerated().map {
                try Normalizer($0.element, key: "\(key).normalizers[\($0.offset)]")
            })
        default: throw TokenizerError.unsupported(key: key, type: c.type)
        }
    }

    /// The normalized scalars of `s` (for added tokens' content, where alignment does not matter).
    func apply(_ s: Scalars) -> Scalars {
        var t = NormalizedText(s)
        apply(&t)
        return t.scalars
    }

    /// Normalizes `t` in place, keeping each scalar's alignment to the original text as HF's NormalizedString does.
    func apply(_ t: inout NormalizedText) {
        switch self {
        case let .bert(clean, chinese, strip, lower):
            if clean {
                t.filter { c in !(c.value == 0 || c.value == 0xFFFD || Normalizer.isControl(c)) }
                if t.scalars.contains(where: { $0 != " " && $0.isWhitespaceHF }) {
                    t.scalars = t.scalars.map { $0.isWhitespaceHF ? " " : $0 }
                }
            }
            if chinese && t.scalars.contains(where: Normalizer.isChinese) {
                t.flatMap { Normalizer.isChinese($0) ? [" ", $0, " "] : nil }
            }
            if strip {
                Normalizer.decompose(&t, compatibility: false)
                t.filter { $0.value < 0x300 || !inRanges(hfBertAccentMarks, $0.value) }
            }
            if lower { Normalizer.lower(&t) }
        case .nfc: Normalizer.compose(&t, compatibility: false)
        case .nfd: Normalizer.decompose(&t, compatibility: false)
        case .nfkc: Normalizer.compose(&t, compatibility: true)
        case .nfkd: Normalizer.decompose(&t, compatibility: true)
        case .lowercase: Normalizer.lower(&t)
        case .stripAccents: t.filter { $0.value < 0x300 || !inRanges(hfStripAccentsMarks, $0.value) }
        case let .replace(pattern, content): t.replace(pattern.matches(in: t.scalars), with: content)
        case .prepend(let p): t.prepend(p)
        case let .strip(left, right):
            var lo = 0, hi = t.count
            if left { while lo < hi && t.scalars[lo].isWhitespaceHF { lo += 1 } }
            if right { while hi > lo && t.scalars[hi - 1].isWhitespaceHF { hi -= 1 } }
            t.keep(lo..<hi)
        case .byteLevel: ByteLevel.encode(&t)
        case .nmt:
            t.filter { c in
                switch c.value { case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x8F, 0x9F: false; default: true }
            }
            if t.scalars.contains(where: Normalizer.nmtSpace) { t.scalars = t.scalars.map { Normalizer.nmtSpace($0) ? " " : $0 } }
        case .precompiled(let map): map.apply(&t)
        case .sequence(let ns): for n in ns { n.apply(&t) }
        }
    }

    static func nmtSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B...0x200F, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD: true
        default: false
        }
    }

    static func lower(_ t: inout NormalizedText) {
        if t.scalars.allSatisfy({ $0.value < 0x80 }) {
            for i in t.scalars.indices where t.scalars[i].value >= 0x41 && t.scalars[i].value <= 0x5A {
                t.scalars[i] = Unicode.Scalar(t.scalars[i].value + 32)!
            }
            return
        }
        t.flatMap { c in
            if c.value < 0x80 { return c.value >= 0x41 && c.value <= 0x5A ? [Unicode.Scalar(c.value + 32)!] : nil }
            let m = c.properties.lowercaseMapping.unicodeScalars
            return m.count == 1 && m.first == c ? nil : Array(m)
        }
    }

    static func lower(_ s: Scalars) -> Scalars {
        var t = NormalizedText(s)
        lower(&t)
        return t.scalars
    }

    /// BERT's control characters as HF `tokenizers` has them: Cc, Cf, Cs, Co as of Unicode 8.0 (its category
    /// tables) — not unassigned code points, which stay and become [UNK] — except tab, newline and carriage return.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        guard c.isInUnicode8 else { return false }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse: return true
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
