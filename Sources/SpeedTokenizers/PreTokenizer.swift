// Pre-tokenizers: ByteLevel, BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace, Split, Digits, Punctuation,
// Sequence. Each splits a list of pieces into finer pieces; the model then runs on each piece alone.
// Invariant: splitting never reorders or drops code points except where HF's behavior is `Removed` (whitespace in
// BERT and WhitespaceSplit); ByteLevel is the only one that rewrites text (bytes to its alphabet).
import Foundation

/// How a Split keeps its delimiters (HF's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// Splits `s` at the `matches` (sorted, non-overlapping) with HF's delimiter behaviors.
func split(_ s: Scalars, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool = false) -> [Scalars] {
    // (range, isMatch) covering s.
    var parts: [(Range<Int>, Bool)] = []
    var last = 0
    for m in matches {
        if last < m.lowerBound { parts.append((last..<m.lowerBound, false)) }
        parts.append((m, true))
        last = m.upperBound
    }
    if last < s.count { parts.append((last..<s.count, false)) }
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
    return out.filter { !$0.isEmpty }.map { Array(s[$0]) }
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
        case "Sequence":
            self = .sequence(try (c.pretokenizers ?? []).enumerated().map {
                try PreTokenizer($0.element, key: "\(key).pretokenizers[\($0.offset)]")
            })
        default: throw TokenizerError.unsupported(key: key, type: c.type)
        }
    }

    /// Splits each piece; `first` says the first piece starts the input (Metaspace's `prepend_scheme: first`).
    func apply(_ pieces: [Scalars], first: Bool) -> [Scalars] {
        switch self {
        case .sequence(let ps): return ps.reduce(pieces) { $1.apply($0, first: first) }
        default:
            var out: [Scalars] = []
            for (i, p) in pieces.enumerated() { out.append(contentsOf: apply(p, first: first && i == 0)) }
            return out
        }
    }

    private func apply(_ s: Scalars, first: Bool) -> [Scalars] {
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex):
            var t = s
            if addPrefixSpace && t.first != " " { t.insert(" ", at: 0) }
            let words = useRegex ? ByteLevel.split(t).map { Array(t[$0]) } : [t]
            return words.map { ByteLevel.encode($0) }
        case .bert:
            var out: [Scalars] = []
            var cur: Scalars = []
            for c in s {
                if c.isWhitespaceHF {
                    if !cur.isEmpty { out.append(cur); cur = [] }
                } else if c.isBertPunctuation {
                    if !cur.isEmpty { out.append(cur); cur = [] }
                    out.append([c])
                } else {
                    cur.append(c)
                }
            }
            if !cur.isEmpty { out.append(cur) }
            return out
        case .whitespace:
            // `\w+|[^\w\s]+`
            var out: [Scalars] = []
            var i = 0
            while i < s.count {
                if s[i].isWhitespaceHF { i += 1; continue }
                let word = s[i].isWordHF
                var j = i + 1
                while j < s.count && !s[j].isWhitespaceHF && s[j].isWordHF == word { j += 1 }
                out.append(Array(s[i..<j])); i = j
            }
            return out
        case .whitespaceSplit:
            return s.split(whereSeparator: { $0.isWhitespaceHF }).map(Array.init)
        case let .metaspace(replacement, prepend, doSplit):
            var t = s.map { $0 == " " ? replacement : $0 }
            if (prepend == "always" || (prepend == "first" && first)) && t.first != replacement && !t.isEmpty {
                t.insert(replacement, at: 0)
            }
            guard doSplit else { return [t] }
            let ms = t.indices.filter { t[$0] == replacement }.map { $0..<($0 + 1) }
            return PreTokenizers.split(t, matches: ms, behavior: .mergedWithNext)
        case let .split(pattern, behavior, invert):
            return PreTokenizers.split(s, matches: pattern.matches(in: s), behavior: behavior, invert: invert)
        case .digits(let individual):
            let ms = s.indices.filter { s[$0].isNumberHF }.map { $0..<($0 + 1) }
            return PreTokenizers.split(s, matches: ms, behavior: individual ? .isolated : .contiguous)
        case .punctuation(let behavior):
            let ms = s.indices.filter { s[$0].isBertPunctuation }.map { $0..<($0 + 1) }
            return PreTokenizers.split(s, matches: ms, behavior: behavior)
        case .sequence: return apply([s], first: first)
        }
    }
}

/// Namespace so the free `split` reads unambiguously inside PreTokenizer (whose case is also named `split`).
enum PreTokenizers {
    static func split(_ s: Scalars, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool = false) -> [Scalars] {
        SpeedTokenizers.split(s, matches: matches, behavior: behavior, invert: invert)
    }
}
