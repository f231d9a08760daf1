// Unicode character classes as Hugging Face tokenizers (Rust `char` methods, Oniguruma `\s \p{L} \p{N}`, and the
// Unicode 8.0 `unicode_categories` tables of BERT's punctuation and control rules) define them.
// Invariant: text is processed as arrays of Unicode scalars (Rust's `char`), never Swift `Character`s: a grapheme
// cluster such as "e\u{301}" is two scalars to HF, and Swift's String equality (canonical) must not merge tokens.
import Foundation

/// Text as HF sees it: a sequence of code points.
typealias Scalars = [Unicode.Scalar]

extension Unicode.Scalar {
    /// `\p{L}`: Lu, Ll, Lt, Lm, Lo.
    var isLetterHF: Bool {
        if value < 0x80 { return (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}` and Rust's `char::is_numeric`: Nd, Nl, No.
    var isNumberHF: Bool {
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
    var isAlphanumericHF: Bool { properties.isAlphabetic || isNumberHF }

    /// Oniguruma's `\w`: Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control (so U+200D ZWJ and
    /// U+FE0F are word characters but "½" is not).
    var isWordHF: Bool {
        if value < 0x80 { return isLetterHF || isNumberHF || value == 0x5F }
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
                self = .regex(try NSRegularExpression(pattern: r, options: []))
            } catch {
                throw TokenizerError.invalid(key: key, reason: "regex \(r) does not compile (\(error)); SpeedTokenizers uses ICU regular expressions")
            }
        } else {
            throw TokenizerError.invalid(key: key, reason: "a pattern needs \"String\" or \"Regex\"")
        }
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
