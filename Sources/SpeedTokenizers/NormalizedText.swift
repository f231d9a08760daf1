// Text under normalization with, for each scalar, the range of original scalars it came from (HF's NormalizedString,
// counted in code points as Python's `offsets` are), so token offsets point into the text the caller gave.
// Invariant: `aligns == nil` means scalar i came from original scalar `base + i` (nothing changed the length yet);
// every rewrite goes through `transform`, which assigns alignments exactly as HF's `transform_range` does.
import Foundation

/// Normalized scalars and their alignment to the original input.
struct NormalizedText: Sendable {
    var scalars: Scalars
    /// Original range of each scalar; nil while the text is the original run `base ..< base + count`.
    var aligns: [Range<Int>]?
    /// Where this piece starts in the original input (HF's `original_shift`).
    var base: Int

    init(_ scalars: Scalars, base: Int = 0) {
        self.scalars = scalars
        self.aligns = nil
        self.base = base
    }

    init(scalars: Scalars, aligns: [Range<Int>]?, base: Int) {
        self.scalars = scalars
        self.aligns = aligns
        self.base = base
    }

    var count: Int { scalars.count }
    var isEmpty: Bool { scalars.isEmpty }

    /// The original range of scalar `i`.
    @inline(__always)
    func align(_ i: Int) -> Range<Int> {
        if let aligns { return aligns[i] }
        return (base + i)..<(base + i + 1)
    }

    /// The original range of the normalized scalars `r` (HF's `convert_offsets` from the normalized side): from the
    /// first one's start to the last one's end.
    func original(_ r: Range<Int>) -> Range<Int> {
        guard !r.isEmpty else { return r.lowerBound + base..<r.lowerBound + base }
        let lo = align(r.lowerBound).lowerBound, hi = align(r.upperBound - 1).upperBound
        return lo..<max(lo, hi)
    }

    /// The normalized scalars `r` as their own piece (HF's `slice`), keeping their alignment.
    func slice(_ r: Range<Int>) -> NormalizedText {
        let start = r.isEmpty ? base : align(r.lowerBound).lowerBound
        return NormalizedText(scalars: Array(scalars[r]), aligns: aligns.map { Array($0[r]) }, base: start)
    }

    /// The alignments, materialized.
    func alignments() -> [Range<Int>] { aligns ?? (0..<count).map { (base + $0)..<(base + $0 + 1) } }

    /// Replaces the text by `changes`, HF's `transform` over the whole text: each `(c, 0)` replaces the next scalar
    /// (and takes its alignment), `(c, -n)` replaces the next one and removes the n after it, `(c, 1)` is inserted
    /// and shares the alignment of the scalar before it; `initialOffset` scalars are removed first.
    mutating func transform(_ changes: [(Unicode.Scalar, Int)], initialOffset: Int = 0) {
        let old = alignments()
        var out = Scalars()
        out.reserveCapacity(changes.count)
        var newAligns: [Range<Int>] = []
        newAligns.reserveCapacity(changes.count)
        var offset = initialOffset
        for (c, change) in changes {
            let a: Range<Int>
            if change > 0 {
                a = offset >= 1 ? old[min(offset, old.count) - 1] : base..<base
            } else {
                a = offset < old.count ? old[offset] : (old.last.map { $0.upperBound..<$0.upperBound } ?? base..<base)
                offset += 1 - change
            }
            out.append(c)
            newAligns.append(a)
        }
        scalars = out
        aligns = newAligns
    }

    /// Each scalar replaced by `f(scalar)` (one or more scalars, all aligned to it; HF's `(c, 0), (c2, 1)...`).
    /// Returns without touching the alignment when every scalar maps to exactly one.
    mutating func flatMap(_ f: (Unicode.Scalar) -> Scalars?) {
        var out = Scalars()
        out.reserveCapacity(scalars.count)
        var expanded: [Range<Int>]? = nil
        for (i, c) in scalars.enumerated() {
            guard let m = f(c) else {
                out.append(c)
                expanded?.append(align(i))
                continue
            }
            if m.count != 1 && expanded == nil { expanded = (0..<i).map(align) }
            out.append(contentsOf: m)
            if expanded != nil { let a = align(i); for _ in m { expanded!.append(a) } }
        }
        if let expanded { aligns = expanded }
        scalars = out
    }

    /// Keeps the scalars where `keep` holds, each with its own alignment (HF's `filter`).
    mutating func filter(_ keep: (Unicode.Scalar) -> Bool) {
        guard scalars.contains(where: { !keep($0) }) else { return }
        var out = Scalars(), kept: [Range<Int>] = []
        out.reserveCapacity(scalars.count)
        kept.reserveCapacity(scalars.count)
        for (i, c) in scalars.enumerated() where keep(c) {
            out.append(c)
            kept.append(align(i))
        }
        scalars = out
        aligns = kept
    }

    /// `prefix` before the first scalar, every scalar of it aligned to that first scalar (HF's `prepend`).
    mutating func prepend(_ prefix: Scalars) {
        guard !scalars.isEmpty, !prefix.isEmpty else { return }
        var all = alignments()
        all.insert(contentsOf: repeatElement(all[0], count: prefix.count), at: 0)
        scalars.insert(contentsOf: prefix, at: 0)
        aligns = all
    }

    /// Each match of `matches` (sorted, non-overlapping) replaced by `content`, whose scalars take the alignment of
    /// the match's last scalar (HF's `replace`, which inserts them after removing the match).
    mutating func replace(_ matches: [Range<Int>], with content: Scalars) {
        guard !matches.isEmpty else { return }
        if content.count == 1 && matches.allSatisfy({ $0.count == 1 }) {
            for m in matches { scalars[m.lowerBound] = content[0] }
            return
        }
        var out = Scalars(), newAligns: [Range<Int>] = []
        var last = 0
        for m in matches {
            out.append(contentsOf: scalars[last..<m.lowerBound])
            for i in last..<m.lowerBound { newAligns.append(align(i)) }
            let a = align(m.upperBound - 1)
            out.append(contentsOf: content)
            for _ in content { newAligns.append(a) }
            last = m.upperBound
        }
        out.append(contentsOf: scalars[last...])
        for i in last..<scalars.count { newAligns.append(align(i)) }
        scalars = out
        aligns = newAligns
    }

    /// The scalars `r`, alignments kept (HF's strip: the removed ones take theirs with them).
    mutating func keep(_ r: Range<Int>) {
        guard r != 0..<count else { return }
        self = NormalizedText(scalars: Array(scalars[r]), aligns: alignments()[r].map { $0 }, base: base)
    }
}
