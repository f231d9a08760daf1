// Pre-tokenizers: ByteLevel, BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace, Split, Digits, Punctuation,
// CharDelimiterSplit, UnicodeScripts, FixedLength, Sequence. Each splits a list of pieces (NormalizedText, alignment kept) into finer pieces; the model then runs on
// each piece alone, and each final piece is one word (HF's word ids).
// Invariant: splitting never reorders or drops code points except where HF's behavior is `Removed` (whitespace in
// BERT and WhitespaceSplit) and UnicodeScripts' leading spaces; ByteLevel and Metaspace rewrite text, through NormalizedText's HF-aligned edits.
import Foundation

/// How a Split keeps its delimiters (HF's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// The pieces of `s` split at the `matches` (sorted, non-overlapping) with HF's delimiter behaviors.
func split(_ s: NormalizedText, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool = false) -> [NormalizedText] {
    splitRanges(count: s.count, matches: matches, behavior: behavior, invert: invert).map { s.slice($0) }
}

/// The non-empty ranges of `0..<count` that splitting at `matches` gives.
func splitRanges(count: Int, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool = false) -> [Range<Int>] {
    // (range, isMatch) covering s.
    var parts: [(Range<Int>, Bool)] = []
    var last = 0
    for m in matches {
        if last < m.lowerBound { parts.append((last..<m.lowerBound, false)) }
        parts.append((m, true))
        last = m.upperBound
    }
    if last < count { parts.append((last..<count, false)) }
    if invert { parts = parts.map { ($0.0, !$0.1) } }
    var out: [Range<Int>] = []
    var previousMatch = false
    switch behavior {
    case .removed: out = parts.filter { !$0.1 }.map(\.0)
    case .isolated: out = parts.map(\.0)
    case .contiguous:
        for (r, isMatch) in parts {
            if isMatch == previousMatch, let prev = out.last { out[out.count - 1] = prev.lowerBound..<r.upperBound } else { out.append(r) }
            previousMatch = isMatch
        }
    case .mergedWithPrevious:
        for (r, isMatch) in parts {
            if isMatch && !previousMatch, let prev = out.last { out[out.count - 1] = prev.lowerBound..<r.upperBound } else { out.append(r) }
            previousMatch = isMatch
        }
    case .mergedWithNext:
        for (r, isMatch) in parts.reversed() {
            if isMatch && !previousMatch, let next = out.last { out[out.count - 1] = r.lowerBound..<next.upperBound } else { out.append(r) }
            previousMatch = isMatch
        }
        out.reverse()
    }
    return out.filter { !$0.isEmpty }
}

indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case bert
    case whitespace
    case whitespaceSplit
    case metaspace(replacement: Unicode.Scalar, prepend: String, split: Bool)
    case split(Pattern, SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case punctuation(SplitBehavior)
    /// HF's `CharDelimiterSplit`: split on one character, which is removed.
    case charDelimiter(Unicode.Scalar)
    case unicodeScripts
    case fixedLength(Int)
    case sequence([PreTokenizer])

    init(_ c: PreTokenizerConfig, key: String = "pre_tokenizer") throws {
        func behavior(_ def: SplitBehavior) throws -> SplitBehavior {
            guard let b = c.behavior else { return def }
            guard let v = SplitBehavior(rawValue: b) else {
                throw TokenizerError.invalid(key: "\(key).behavior", reason: "unknown behavior \(b); use Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous")
            }
            return v
        }
        switch c.type {
        case "ByteLevel": self = .byteLevel(addPrefixSpace: c.addPrefixSpace ?? true, useRegex: c.useRegex ?? true)
        case "BertPreTokenizer": self = .bert
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Metaspace":
            let r = (c.replacement ?? "\u{2581}").unicodeScalars.first ?? "\u{2581}"
            let scheme = c.prependScheme ?? ((c.addPrefixSpace ?? true) ? "always" : "never")
            self = .metaspace(replacement: r, prepend: scheme, split: c.split ?? true)
        case "Split":
            guard let p = c.pattern else { throw TokenizerError.invalid(key: "\(key).pattern", reason: "Split needs a pattern") }
            self = .split(try Pattern(p, key: "\(key).pattern"), try behavior(.removed), invert: c.invert ?? false)
        case "Digits": self = .digits(individual: c.individualDigits ?? false)
        case "Punctuation": self = .punctuation(try behavior(.isolated))
        case "CharDelimiterSplit":
            guard let d = c.delimiter, d.unicodeScalars.count == 1 else {
                throw TokenizerError.invalid(key: "\(key).delimiter", reason: "CharDelimiterSplit needs a one-character delimiter, got \(c.delimiter.map { "\"\($0)\"" } ?? "none")")
            }
            self = .charDelimiter(d.unicodeScalars.first!)
        case "UnicodeScripts": self = .unicodeScripts
        case "FixedLength":
            let n = c.length ?? 5
            guard n > 0 else { throw TokenizerError.invalid(key: "\(key).length", reason: "must be at least 1, got \(n)") }
            self = .fixedLength(n)
        case "Sequence":
            self = .sequence(try (c.pretokenizers ?? []).enumerated().map {
                try PreTokenizer($0.element, key: "\(key).pretokenizers[\($0.offset)]")
            })
        default: throw TokenizerError.unsupported(key: key, type: c.type)
        }
    }

    /// Splits each piece into finer ones (empty pieces are dropped, as HF's PreTokenizedString drops them).
    func apply(_ pieces: [NormalizedText]) -> [NormalizedText] {
        switch self {
        case .sequence(let ps): return ps.reduce(pieces) { $1.apply($0) }
        default:
            var out: [NormalizedText] = []
            out.reserveCapacity(pieces.count)
            for p in pieces { out.append(contentsOf: apply(p).filter { !$0.isEmpty }) }
            return out
        }
    }

    private func apply(_ s: NormalizedText) -> [NormalizedText] {
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex):
            var t = s
            if addPrefixSpace && t.scalars.first != " " { t.prepend([" "]) }
            var words = useRegex ? ByteLevel.split(t.scalars).map { t.slice($0) } : [t]
            for i in words.indices { ByteLevel.encode(&words[i]) }
            return words
        case .bert:
            var out: [Range<Int>] = []
            var start = 0
            let c = s.scalars
            for i in c.indices {
                if c[i].isWhitespaceHF {
                    if start < i { out.append(start..<i) }
                    start = i + 1
                } else if c[i].isBertPunctuation {
                    if start < i { out.append(start..<i) }
                    out.append(i..<(i + 1))
                    start = i + 1
                }
            }
            if start < c.count { out.append(start..<c.count) }
            return out.map { s.slice($0) }
        case .whitespace:
            // `\w+|[^\w\s]+`
            var out: [Range<Int>] = []
            let c = s.scalars
            var i = 0
            while i < c.count {
                if c[i].isWhitespaceHF { i += 1; continue }
                let word = c[i].isWordHF
                var j = i + 1
                while j < c.count && !c[j].isWhitespaceHF && c[j].isWordHF == word { j += 1 }
                out.append(i..<j); i = j
            }
            return out.map { s.slice($0) }
        case .whitespaceSplit:
            var out: [Range<Int>] = []
            var start: Int? = nil
            for (i, c) in s.scalars.enumerated() {
                if c.isWhitespaceHF {
                    if let b = start { out.append(b..<i); start = nil }
                } else if start == nil {
                    start = i
                }
            }
            if let b = start { out.append(b..<s.count) }
            return out.map { s.slice($0) }
        case let .metaspace(replacement, prepend, doSplit):
            var t = s
            let spaces = t.scalars.indices.filter { t.scalars[$0] == " " }.map { $0..<($0 + 1) }
            t.replace(spaces, with: [replacement])
            // "first": only the piece that starts the input (HF: its original offset is 0).
            if (prepend == "always" || (prepend == "first" && t.base == 0)) && t.scalars.first != replacement {
                t.prepend([replacement])
            }
            guard doSplit else { return [t] }
            let ms = t.scalars.indices.filter { t.scalars[$0] == replacement }.map { $0..<($0 + 1) }
            return PreTokenizers.split(t, matches: ms, behavior: .mergedWithNext)
        case let .split(pattern, behavior, invert):
            return PreTokenizers.split(s, matches: pattern.matches(in: s.scalars), behavior: behavior, invert: invert)
        case .digits(let individual):
            let ms = s.scalars.indices.filter { s.scalars[$0].isNumericHF }.map { $0..<($0 + 1) }
            return PreTokenizers.split(s, matches: ms, behavior: individual ? .isolated : .contiguous)
        case .punctuation(let behavior):
            let ms = s.scalars.indices.filter { s.scalars[$0].isBertPunctuation }.map { $0..<($0 + 1) }
            return PreTokenizers.split(s, matches: ms, behavior: behavior)
        case .charDelimiter(let d):
            let ms = s.scalars.indices.filter { s.scalars[$0] == d }.map { $0..<($0 + 1) }
            return PreTokenizers.split(s, matches: ms, behavior: .removed)
        case .unicodeScripts:
            // A cut wherever the script changes; "Any" (space) joins either side. As HF, the pieces run from the
            // first cut (a leading run of Any, and an all-Any text, give nothing).
            var cuts: [Int] = []
            var last: UInt8? = nil
            for (i, c) in s.scalars.enumerated() {
                let k = c.scriptClassHF
                guard k != 0 else { continue }
                if last != k { cuts.append(i) }
                last = k
            }
            cuts.append(s.count)
            return zip(cuts, cuts.dropFirst()).map { s.slice($0..<$1) }
        case .fixedLength(let n):
            return stride(from: 0, to: s.count, by: n).map { s.slice($0..<Swift.min($0 + n, s.count)) }
        case .sequence: return apply([s])
        }
    }
}

/// Namespace so the free `split` reads unambiguously inside PreTokenizer (whose case is also named `split`).
enum PreTokenizers {
    static func split(_ s: NormalizedText, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool = false) -> [NormalizedText] {
        SpeedTokenizers.split(s, matches: matches, behavior: behavior, invert: invert)
    }
}
