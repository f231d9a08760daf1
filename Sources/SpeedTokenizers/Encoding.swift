// The result of encoding one text (or pair), and the padding and truncation of batches.
// Invariant: ids, tokens, typeIds, attentionMask, specialTokensMask, offsets, wordIds and sequenceIds always have the
// same length.
import Foundation

/// Token ids with the parallel arrays a model takes, as HF's `Encoding`.
///
/// ```swift
/// let e = bert.encode("Héllo wörld")
/// e.ids            // [101, 7592, 2088, 102]
/// e.offsets        // [0..<0, 0..<5, 6..<11, 0..<0]: code points of the text given, as Python's `offsets`
/// e.wordIds        // [nil, 0, 1, nil]
/// e.sequenceIds    // [nil, 0, 0, nil]
/// ```
public struct Encoding: Sendable, Equatable, Codable {
    public var ids: [Int]
    public var tokens: [String]
    /// 0 for the first sequence and its special tokens, 1 for the pair's (as the post-processor assigns them).
    public var typeIds: [Int]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [Int]
    /// 1 where the post-processor added a special token ([CLS], [SEP]...), 0 elsewhere (added tokens typed in the
    /// text count as ordinary tokens here, as in HF).
    public var specialTokensMask: [Int]
    /// Each token's range of Unicode scalars (code points, Python's string indices) in the text it came from — the
    /// first text or the pair, each counted from its own start — through every normalizer, as HF's `offsets` and
    /// transformers' `offset_mapping`; `0..<0` for special tokens the post-processor added and for padding.
    public var offsets: [Range<Int>]
    /// The index of the pre-tokenizer word (HF's split) each token belongs to, counted per sequence; nil for
    /// post-processor special tokens and padding (HF's `word_ids`).
    public var wordIds: [Int?]
    /// 0 or 1: which input each token comes from; nil for post-processor special tokens and padding (HF's
    /// `sequence_ids`).
    public var sequenceIds: [Int?]

    /// Offsets, word ids and sequence ids default to those of special tokens (`0..<0`, nil, nil) for every id.
    public init(ids: [Int] = [], tokens: [String] = [], typeIds: [Int] = [], attentionMask: [Int] = [],
                specialTokensMask: [Int] = [], offsets: [Range<Int>]? = nil, wordIds: [Int?]? = nil,
                sequenceIds: [Int?]? = nil) {
        self.ids = ids; self.tokens = tokens; self.typeIds = typeIds; self.attentionMask = attentionMask
        self.specialTokensMask = specialTokensMask
        self.offsets = offsets ?? Array(repeating: 0..<0, count: ids.count)
        self.wordIds = wordIds ?? Array(repeating: nil, count: ids.count)
        self.sequenceIds = sequenceIds ?? Array(repeating: nil, count: ids.count)
    }

    public var count: Int { ids.count }

    /// transformers' `offset_mapping`: `[(start, end)]` per token.
    ///
    /// ```swift
    /// bert.encode("Hello").offsetMapping   // [(0, 0), (0, 5), (0, 0)]
    /// ```
    public var offsetMapping: [(Int, Int)] { offsets.map { ($0.lowerBound, $0.upperBound) } }

    mutating func append(id: Int, token: String, typeId: Int, special: Bool, offsets span: Range<Int> = 0..<0,
                         word: Int? = nil, sequence: Int? = nil) {
        ids.append(id); tokens.append(token); typeIds.append(typeId); attentionMask.append(1)
        specialTokensMask.append(special ? 1 : 0)
        offsets.append(span); wordIds.append(word); sequenceIds.append(sequence)
    }

    mutating func append(_ other: Encoding) {
        ids += other.ids; tokens += other.tokens; typeIds += other.typeIds; attentionMask += other.attentionMask
        specialTokensMask += other.specialTokensMask
        offsets += other.offsets; wordIds += other.wordIds; sequenceIds += other.sequenceIds
    }

    /// Keeps the first (`fromEnd == false`) or last `n` tokens.
    mutating func truncate(to n: Int, fromEnd: Bool = false) {
        guard count > n else { return }
        func cut<T>(_ a: [T]) -> [T] { fromEnd ? Array(a.suffix(n)) : Array(a.prefix(n)) }
        ids = cut(ids); tokens = cut(tokens); typeIds = cut(typeIds); attentionMask = cut(attentionMask)
        specialTokensMask = cut(specialTokensMask)
        offsets = cut(offsets); wordIds = cut(wordIds); sequenceIds = cut(sequenceIds)
    }

    /// Pads to `length` with the given token.
    mutating func pad(to length: Int, id: Int, token: String, typeId: Int, left: Bool) {
        let k = length - count
        guard k > 0 else { return }
        func ext<T>(_ a: [T], _ v: T) -> [T] { left ? Array(repeating: v, count: k) + a : a + Array(repeating: v, count: k) }
        ids = ext(ids, id); tokens = ext(tokens, token); typeIds = ext(typeIds, typeId)
        attentionMask = ext(attentionMask, 0); specialTokensMask = ext(specialTokensMask, 1)
        offsets = ext(offsets, 0..<0); wordIds = ext(wordIds, nil); sequenceIds = ext(sequenceIds, nil)
    }

    /// HF's ByteLevel `trim_offsets`: a token's leading and trailing spaces (`Ġ` or whitespace) are left out of its
    /// offsets, except the one space `add_prefix_space` put before the first token.
    mutating func trimOffsets(addPrefixSpace: Bool) {
        let space = ByteLevel.byteToScalar[0x20]
        func isSpace(_ c: Unicode.Scalar) -> Bool { c == space || c.isWhitespaceHF }
        for i in tokens.indices {
            let t = tokens[i].unicodeScalars
            var leading = 0
            for c in t { if isSpace(c) { leading += 1 } else { break } }
            guard leading > 0 || t.last.map(isSpace) == true else { continue }
            var trailing = 0
            for c in t.reversed() { if isSpace(c) { trailing += 1 } else { break } }
            var (start, end) = (offsets[i].lowerBound, offsets[i].upperBound)
            if leading > 0 {
                if (i == 0 || start == 0) && addPrefixSpace && leading == 1 { leading = 0 }
                start = min(start + leading, end)
            }
            if trailing > 0 && end >= trailing { end = max(end - trailing, start) }
            offsets[i] = start..<end
        }
    }
}

/// Batch padding, as HF's `PaddingParams`.
///
/// ```swift
/// let batch = tokenizer.encodeBatch(["a", "b c d"], padding: .init(strategy: .longest))
/// ```
public struct Padding: Sendable, Codable, Equatable {
    public enum Strategy: Sendable, Codable, Equatable {
        /// To the longest encoding of the batch.
        case longest
        /// To exactly this many tokens (longer encodings are left as they are; truncate them first).
        case fixed(Int)
    }
    public var strategy: Strategy
    /// Pad on the left instead of the right.
    public var left: Bool
    public var padToMultipleOf: Int?
    public var padId: Int
    public var padTypeId: Int
    public var padToken: String

    public init(strategy: Strategy = .longest, left: Bool = false, padToMultipleOf: Int? = nil, padId: Int = 0,
                padTypeId: Int = 0, padToken: String = "[PAD]") {
        self.strategy = strategy; self.left = left; self.padToMultipleOf = padToMultipleOf; self.padId = padId
        self.padTypeId = padTypeId; self.padToken = padToken
    }
}

/// Truncation to a maximum length, special tokens included, as HF's `TruncationParams` with `longest_first`.
///
/// ```swift
/// let e = tokenizer.encode("a long text", truncation: .init(maxLength: 8))
/// ```
public struct Truncation: Sendable, Codable, Equatable {
    public enum Strategy: String, Sendable, Codable { case longestFirst, onlyFirst, onlySecond }
    public var maxLength: Int
    public var strategy: Strategy
    /// Drop tokens from the start instead of the end.
    public var fromStart: Bool

    public init(maxLength: Int, strategy: Strategy = .longestFirst, fromStart: Bool = false) {
        self.maxLength = maxLength; self.strategy = strategy; self.fromStart = fromStart
    }

    /// Truncates the two sequences (before special tokens) so that with `added` special tokens they fit.
    func apply(_ a: inout Encoding, _ b: inout Encoding?, added: Int) {
        let total = a.count + (b?.count ?? 0) + added
        guard total > maxLength else { return }
        let target = max(0, maxLength - added)
        guard var p = b else { a.truncate(to: target, fromEnd: fromStart); return }
        switch strategy {
        case .onlyFirst: a.truncate(to: max(0, a.count - (total - maxLength)), fromEnd: fromStart)
        case .onlySecond: p.truncate(to: max(0, p.count - (total - maxLength)), fromEnd: fromStart)
        case .longestFirst:
            var n1 = a.count, n2 = p.count
            let swap = n1 > n2
            if swap { Swift.swap(&n1, &n2) }
            n2 = n1 > target ? n1 : max(n1, target - n1)
            if n1 + n2 > target {
                n1 = target / 2
                n2 = n1 + target % 2
            }
            if swap { Swift.swap(&n1, &n2) }
            a.truncate(to: n1, fromEnd: fromStart)
            p.truncate(to: n2, fromEnd: fromStart)
        }
        b = p
    }
}
