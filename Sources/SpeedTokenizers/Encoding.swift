// The result of encoding one text (or pair), and the padding and truncation of batches.
// Invariant: ids, tokens, typeIds, attentionMask and specialTokensMask always have the same length.
import Foundation

/// Token ids with the parallel arrays a model takes, as HF's `Encoding`.
///
/// ```swift
/// let e = tokenizer.encode("Hello world")
/// print(e.ids, e.attentionMask)
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

    public init(ids: [Int] = [], tokens: [String] = [], typeIds: [Int] = [], attentionMask: [Int] = [],
                specialTokensMask: [Int] = []) {
        self.ids = ids; self.tokens = tokens; self.typeIds = typeIds; self.attentionMask = attentionMask
        self.specialTokensMask = specialTokensMask
    }

    public var count: Int { ids.count }

    mutating func append(id: Int, token: String, typeId: Int, special: Bool) {
        ids.append(id); tokens.append(token); typeIds.append(typeId); attentionMask.append(1)
        specialTokensMask.append(special ? 1 : 0)
    }

    mutating func append(_ other: Encoding) {
        ids += other.ids; tokens += other.tokens; typeIds += other.typeIds; attentionMask += other.attentionMask
        specialTokensMask += other.specialTokensMask
    }

    /// Keeps the first (`fromEnd == false`) or last `n` tokens.
    mutating func truncate(to n: Int, fromEnd: Bool = false) {
        guard count > n else { return }
        func cut<T>(_ a: [T]) -> [T] { fromEnd ? Array(a.suffix(n)) : Array(a.prefix(n)) }
        ids = cut(ids); tokens = cut(tokens); typeIds = cut(typeIds); attentionMask = cut(attentionMask)
        specialTokensMask = cut(specialTokensMask)
    }

    /// Pads to `length` with the given token.
    mutating func pad(to length: Int, id: Int, token: String, typeId: Int, left: Bool) {
        let k = length - count
        guard k > 0 else { return }
        func ext<T>(_ a: [T], _ v: T) -> [T] { left ? Array(repeating: v, count: k) + a : a + Array(repeating: v, count: k) }
        ids = ext(ids, id); tokens = ext(tokens, token); typeIds = ext(typeIds, typeId)
        attentionMask = ext(attentionMask, 0); specialTokensMask = ext(specialTokensMask, 1)
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
