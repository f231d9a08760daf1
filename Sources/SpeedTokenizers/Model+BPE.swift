// The BPE model: merges by rank over a word's symbols (with their byte lengths, for offsets), with byte fallback, unk
// fusing and a per-word cache of tokens and spans.
// Invariant: merge ranks are keyed by the packed pair of ids `left << 32 | right`, and both merge paths (the scan for
// short words, the heap for long ones) apply the lowest rank first, leftmost among equals, as HF does.
import Foundation
import Synchronization

final class BPEModel: TokenModel {
    struct Merge: Sendable { let rank: Int32; let id: Int32 }
    let vocab: Vocabulary
    let merges: [UInt64: Merge]
    let unkId: Int?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let prefix: [UInt8]
    let suffix: [UInt8]
    /// byte -> id of `<0xXX>` (nil where the vocabulary lacks it), when byte_fallback is on.
    let byteIds: [Int?]?
    private let cache = Mutex<[[UInt8]: [ModelToken]]>([:])
    static let cacheCapacity = 10_000
    init(_ c: ModelConfig, key: String = "model") throws {
        vocab = try Vocabulary(c.vocab, key: "\(key).vocab")
        var merges: [UInt64: Merge] = [:]
        merges.reserveCapacity(c.merges.count)
        let prefix = c.continuingSubwordPrefix ?? ""
        for (rank, m) in c.merges.enumerated() {
            guard m.count == 2 else {
                throw TokenizerError.invalid(key: "\(key).merges[\(rank)]", reason: "a merge is two tokens, \"a b\" or [\"a\", \"b\"]; got \(m)")
            }
            guard let a = vocab.ids[Array(m[0].utf8)], let b = vocab.ids[Array(m[1].utf8)] else {
                throw TokenizerError.invalid(key: "\(key).merges[\(rank)]", reason: "merge \(m) names a token missing from the vocabulary")
            }
            let rightPart = !prefix.isEmpty && m[1].hasPrefix(prefix) ? String(m[1].dropFirst(prefix.count)) : m[1]
            guard let ab = vocab.ids[Array((m[0] + rightPart).utf8)] else {
                throw TokenizerError.invalid(key: "\(key).merges[\(rank)]", reason: "merge result \(m[0] + rightPart) is missing from the vocabulary")
            }
            let k = UInt64(a) << 32 | UInt64(b)
            if merges[k] == nil { merges[k] = Merge(rank: Int32(rank), id: Int32(ab)) }
        }
        self.merges = merges
        if let u = c.unkToken {
            guard let id = vocab.ids[Array(u.utf8)] else {
                throw TokenizerError.invalid(key: "\(key).unk_token", reason: "unk token \(u) is not in the vocabulary")
            }
            unkId = id
        } else {
            unkId = nil
        }
        fuseUnk = c.fuseUnk ?? false
        byteFallback = c.byteFallback ?? false
        ignoreMerges = c.ignoreMerges ?? false
        self.prefix = Array(prefix.utf8)
        suffix = Array((c.endOfWordSuffix ?? "").utf8)
        let v = vocab
        byteIds = byteFallback ? (0..<256).map { v.ids[Array(String(format: "<0x%02X>", $0).utf8)] } : nil
    }

    var vocabularySize: Int { vocab.ids.count }
    func id(of token: [UInt8]) -> Int? { vocab.ids[token] }
    func token(of id: Int) -> String? { vocab.token(id) }

    func tokenize(_ word: Scalars) -> [ModelToken] {
        guard !word.isEmpty else { return [] }
        let key = utf8Key(word)
        if ignoreMerges, let id = vocab.ids[key] { return [ModelToken(id, nil, 0..<word.count)] }
        if let hit = cache.withLock({ $0[key] }) { return hit }
        // HF's merge_word: symbols with their UTF-8 lengths; an unknown scalar is its bytes' <0xXX> tokens (one byte
        // each), else an unk (fused with the unk before it when fuse_unk), else dropped.
        var symbols: [Int] = [], lens: [Int] = []
        symbols.reserveCapacity(word.count)
        lens.reserveCapacity(word.count)
        var unk: (id: Int, len: Int)? = nil
        for (i, c) in word.enumerated() {
            let k = utf8Key(CollectionOfOne(c), prefix: i > 0 ? prefix : [], suffix: i == word.count - 1 ? suffix : [])
            let byteLength = c.utf8.count
            if let id = vocab.ids[k] {
                if let u = unk { symbols.append(u.id); lens.append(u.len); unk = nil }
                symbols.append(id); lens.append(byteLength)
                continue
            }
            if let byteIds, k.allSatisfy({ byteIds[Int($0)] != nil }) {
                for b in k { symbols.append(byteIds[Int(b)]!); lens.append(1) }
                continue
            }
            guard let unkId else { continue }
            if let u = unk {
                if fuseUnk { unk = (u.id, u.len + byteLength); continue }
                symbols.append(u.id); lens.append(u.len)
            }
            unk = (unkId, byteLength)
        }
        if let u = unk { symbols.append(u.id); lens.append(u.len) }
        if symbols.count > 48 {
            (symbols, lens) = mergeLong(symbols, lens)
        } else {
            mergeShort(&symbols, &lens)
        }
        let tokens = Self.tokens(symbols, byteLengths: lens, word: word)
        cache.withLock { c in
            if c.count >= BPEModel.cacheCapacity { c.removeAll(keepingCapacity: true) }
            c[key] = tokens
        }
        return tokens
    }

    /// Tokens with scalar spans from symbol byte lengths, as HF's offsets are byte sums mapped back to scalars: a
    /// token starts in the scalar holding its first byte and ends after the scalar holding its last.
    static func tokens(_ ids: [Int], byteLengths: [Int], word: Scalars) -> [ModelToken] {
        var out: [ModelToken] = []
        out.reserveCapacity(ids.count)
        if word.allSatisfy({ $0.value < 0x80 }) {
            var at = 0
            for (id, n) in zip(ids, byteLengths) {
                let lo = min(at, word.count), hi = min(at + n, word.count)
                out.append(ModelToken(id, nil, lo..<max(lo, hi)))
                at += n
            }
            return out
        }
        // starts[i]: byte offset of scalar i.
        var starts = [Int](repeating: 0, count: word.count + 1)
        for (i, c) in word.enumerated() { starts[i + 1] = starts[i] + c.utf8.count }
        func scalar(containing byte: Int) -> Int {
            var lo = 0, hi = word.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if starts[mid] <= byte { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }
        var at = 0
        for (id, n) in zip(ids, byteLengths) {
            let lo = scalar(containing: at), hi = n > 0 ? scalar(containing: at + n - 1) + 1 : lo
            out.append(ModelToken(id, nil, lo..<max(lo, hi)))
            at += n
        }
        return out
    }

    /// Lowest rank first, leftmost among equal ranks: a scan per merge, fastest for ordinary words.
    func mergeShort(_ symbols: inout [Int], _ lens: inout [Int]) {
        while symbols.count > 1 {
            var best: (rank: Int32, at: Int, id: Int32)? = nil
            for i in 0..<(symbols.count - 1) {
                if let m = merges[UInt64(symbols[i]) << 32 | UInt64(symbols[i + 1])], m.rank < (best?.rank ?? .max) {
                    best = (m.rank, i, m.id)
                }
            }
            guard let b = best else { break }
            symbols[b.at] = Int(b.id)
            symbols.remove(at: b.at + 1)
            lens[b.at] += lens[b.at + 1]
            lens.remove(at: b.at + 1)
        }
    }

    /// The same order with a heap over (rank, position) and a linked list, O(n log n) for long words (HF's algorithm).
    func mergeLong(_ initial: [Int], _ initialLens: [Int]) -> ([Int], [Int]) {
        var ids = initial, lens = initialLens
        var next = Array(1...ids.count), prev = Array(-1..<(ids.count - 1))
        next[ids.count - 1] = -1
        var alive = [Bool](repeating: true, count: ids.count)
        var heap = MinHeap()
        func push(_ i: Int) {
            let j = next[i]
            guard j >= 0, let m = merges[UInt64(ids[i]) << 32 | UInt64(ids[j])] else { return }
            heap.push(.init(rank: m.rank, pos: Int32(i), left: Int32(ids[i]), right: Int32(ids[j])))
        }
        for i in 0..<(ids.count - 1) { push(i) }
        while let e = heap.pop() {
            let i = Int(e.pos)
            let j = next[i]
            // Stale: one side was merged away or changed since this entry was pushed.
            guard alive[i], j >= 0, ids[i] == Int(e.left), ids[j] == Int(e.right) else { continue }
            ids[i] = Int(merges[UInt64(e.left) << 32 | UInt64(e.right)]!.id)
            lens[i] += lens[j]
            alive[j] = false
            next[i] = next[j]
            if next[j] >= 0 { prev[next[j]] = i }
            if prev[i] >= 0 { push(prev[i]) }
            push(i)
        }
        var out: [Int] = [], outLens: [Int] = []
        var i = 0
        while i >= 0 { out.append(ids[i]); outLens.append(lens[i]); i = next[i] }
        return (out, outLens)
    }
}

/// A binary min-heap of merge candidates ordered by (rank, position).
struct MinHeap {
    struct Entry { let rank: Int32; let pos: Int32; let left: Int32; let right: Int32 }
    private var items: [Entry] = []

    private static func less(_ a: Entry, _ b: Entry) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos }

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard MinHeap.less(items[i], items[p]) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && MinHeap.less(items[l], items[m]) { m = l }
                if r < items.count && MinHeap.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
