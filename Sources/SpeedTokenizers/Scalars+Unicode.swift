// Unicode character classes as Hugging Face tokenizers (Rust `char` methods, Oniguruma `\s \p{L} \p{N}`, and the
// Unicode 8.0 `unicode_categories` tables of BERT's punctuation and control rules) define them.
// Invariant: text is processed as arrays of Unicode scalars (Rust's `char`), never Swift `Character`s: a grapheme
// cluster such as "e\u{301}" is two scalars to HF, and Swift's String equality (canonical) must not merge tokens.
import Foundation

/// Text as HF sees it: a sequence of code points.
typealias Scalars = [Unicode.Scalar]

extension Unicode.Scalar {
    /// In Unicode 16.0: HF's regex engines (Oniguruma, Rust's regex crate) do not know the characters Unicode 17
    /// added, which Swift's stdlib and Rust's char methods do.
    var isInOnigUnicode: Bool {
        guard let age = properties.age else { return false }
        return age.major <= 16
    }

    /// Oniguruma's `\p{L}`: Lu, Ll, Lt, Lm, Lo, as of Unicode 16.
    var isLetterHF: Bool {
        if value < 0x80 { return (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A }
        guard isInOnigUnicode else { return false }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// Oniguruma's `\p{N}`: Nd, Nl, No, as of Unicode 16.
    var isNumberHF: Bool { value < 0x80 ? value >= 0x30 && value <= 0x39 : isInOnigUnicode && isNumericHF }

    /// Rust's `char::is_numeric` (Digits): Nd, Nl, No in Rust's Unicode (17, as Swift's).
    var isNumericHF: Bool {
        if value < 0x80 { return value >= 0x30 && value <= 0x39 }
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// `\s` and Rust's `char::is_whitespace`: the White_Space property.
    var isWhitespaceHF: Bool {
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        return properties.isWhitespace
    }

    /// Assigned by Unicode 8.0: the tables of the `unicode_categories` crate behind HF's BERT and Punctuation
    /// rules, which see every later character as unassigned.
    var isInUnicode8: Bool {
        guard let age = properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// `unicode_categories`' `is_punctuation`: the P* categories, as of Unicode 8.0.
    var isPunctuationHF: Bool {
        guard isInUnicode8 else { return false }
        if value == 0x166D || value == 0x111C9 { return true }   // Po in Unicode 8.0, recategorised since
        switch properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// BERT's punctuation: ASCII punctuation (which includes `$+<=>^`|~`) or any P* character.
    var isBertPunctuation: Bool {
        if value < 0x80 {
            return (value >= 33 && value <= 47) || (value >= 58 && value <= 64) || (value >= 91 && value <= 96)
                || (value >= 123 && value <= 126)
        }
        return isPunctuationHF
    }

    /// A combining mark (General_Category Mark), what StripAccents removes.
    var isMarkHF: Bool {
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// Rust's `char::is_alphanumeric`: Alphabetic or numeric.
    var isAlphanumericHF: Bool { properties.isAlphabetic || isNumericHF }

    /// The Whitespace pre-tokenizer's `\w` (Rust's regex crate): Alphabetic, Mark, Decimal_Number,
    /// Connector_Punctuation, Join_Control, as of Unicode 16 — so U+200D ZWJ is a word character but "½" is not.
    /// (Split patterns run on Oniguruma, whose `\w` differs: see `Pattern.oniguruma`.)
    var isWordHF: Bool {
        if value < 0x80 { return isLetterHF || isNumberHF || value == 0x5F }
        guard isInOnigUnicode else { return false }
        let p = properties
        if p.isAlphabetic || isMarkHF || p.isJoinControl { return true }
        return p.generalCategory == .decimalNumber || p.generalCategory == .connectorPunctuation
    }
}

extension String {
    /// The string's code points.
    var scalars: Scalars { Array(unicodeScalars) }

    init(_ scalars: some Sequence<Unicode.Scalar>) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self = String(view)
    }
}

/// UTF-8 bytes of code points: the vocabulary key (byte-exact, unlike Swift's canonical String equality).
func utf8Key(_ scalars: some Collection<Unicode.Scalar>, prefix: [UInt8] = [], suffix: [UInt8] = []) -> [UInt8] {
    var out = prefix
    out.reserveCapacity(prefix.count + scalars.count + suffix.count)
    for s in scalars { out.append(contentsOf: UTF8.encode(s)!) }
    out.append(contentsOf: suffix)
    return out
}

/// Scalar-index ranges of `regex`'s matches in `text` (NSRegularExpression works in UTF-16 offsets).
func regexMatches(_ regex: NSRegularExpression, in text: Scalars) -> [Range<Int>] {
    let string = String(text)
    let ns = string as NSString
    // UTF-16 offset -> scalar index.
    var utf16ToScalar = [Int](repeating: 0, count: ns.length + 1)
    var u = 0
    for (i, s) in text.enumerated() {
        let w = s.utf16.count
        for k in 0..<w { utf16ToScalar[u + k] = i }
        u += w
    }
    utf16ToScalar[ns.length] = text.count
    return regex.matches(in: string, range: NSRange(location: 0, length: ns.length)).compactMap { m in
        guard m.range.location != NSNotFound, m.range.length > 0 else { return nil }
        return utf16ToScalar[m.range.location]..<utf16ToScalar[m.range.location + m.range.length]
    }
}

/// Literal, non-overlapping, left-to-right occurrences of `needle`.
func literalMatches(_ needle: Scalars, in text: Scalars) -> [Range<Int>] {
    guard !needle.isEmpty, needle.count <= text.count else { return [] }
    var out: [Range<Int>] = []
    var i = 0
    while i + needle.count <= text.count {
        if text[i] == needle[0] && Array(text[i..<(i + needle.count)]) == needle {
            out.append(i..<(i + needle.count))
            i += needle.count
        } else {
            i += 1
        }
    }
    return out
}

/// A `{"String": ...}` or `{"Regex": ...}` pattern, compiled.
enum Pattern: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe.
    case literal(Scalars)
    case regex(NSRegularExpression)

    init(_ config: PatternConfig, key: String) throws {
        if let s = config.string {
            self = .literal(s.scalars)
        } else if let r = config.regex {
            do {
                self = .regex(try NSRegularExpression(pattern: Pattern.oniguruma(r), options: []))
            } catch {
                throw TokenizerError.invalid(key: key, reason: "regex \(r) does not compile (\(error)); SpeedTokenizers uses ICU regular expressions")
            }
        } else {
            throw TokenizerError.invalid(key: key, reason: "a pattern needs \"String\" or \"Regex\"")
        }
    }

    /// Oniguruma's `\w` as an ICU set: Alphabetic, Mark, Nd, Pc and, from its Latin-1 table, "²³¹¼½¾" (not Join_Control);
    /// the same text works alone and nested in a bracket expression.
    static let onigWord = #"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE}"#

    /// `regex` with `\w` / `\W` spelled as Oniguruma (HF's engine) means them: ICU's `\w` also takes U+200C/D and
    /// leaves out "²³¹¼½¾". Every other class (`\p{..}`, `\s`, `\d`) already agrees, checked for every code point.
    static func oniguruma(_ regex: String) -> String {
        var out = "", escaped = false, quoted = false
        for c in regex {
            if quoted {   // \Q ... \E: literal text
                out.append(c)
                if escaped && c == "E" { quoted = false }
                escaped = !escaped && c == "\\"
                continue
            }
            if escaped {
                escaped = false
                switch c {
                case "w": out.removeLast(); out += "[\(onigWord)]"
                case "W": out.removeLast(); out += "[^\(onigWord)]"
                case "Q": out.append(c); quoted = true
                default: out.append(c)
                }
                continue
            }
            out.append(c)
            escaped = c == "\\"
        }
        return out
    }

    func matches(in text: Scalars) -> [Range<Int>] {
        switch self {
        case .literal(let s): return literalMatches(s, in: text)
        case .regex(let r): return regexMatches(r, in: text)
        }
    }
}

extension Unicode.Scalar {
    /// The script class HF's UnicodeScripts pre-tokenizer gives this code point (0 = "Any": space and code points its
    /// Unicode 9 table lacks; Hiragana, Katakana and U+30FC are Han), from the generated `unicodeScriptRuns`.
    var scriptClassHF: UInt8 {
        let key = value << 8 | 0xFF
        var lo = 0, hi = unicodeScriptRuns.count   // the last run starting at or before `value`
        while lo < hi {
            let mid = (lo + hi) / 2
            if unicodeScriptRuns[mid] <= key { lo = mid + 1 } else { hi = mid }
        }
        return UInt8(truncatingIfNeeded: unicodeScriptRuns[lo - 1])
    }
}
