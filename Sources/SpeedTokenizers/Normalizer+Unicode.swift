// NFD/NFKD/NFC/NFKC as HF computes them: the (char, change) stream of the `unicode-normalization-alignments` crate
// (per-scalar decomposition, canonical reordering, then recomposition), applied with NormalizedText.transform.
// Invariant: the scalars are the standard normal forms (decompositions and pair compositions come from Foundation),
// limited to the code points the crate's older tables decompose (Normalizer+Tables.swift);
// the changes are the crate's — a decomposition's first scalar 0 and the rest 1, a composition k + ch gets
// change(k) + change(ch) - 1 — so the alignments, including those of reordered marks, are HF's.
import Foundation

extension Normalizer {
    /// NFD (`compatibility: false`) or NFKD of `t`, with HF's alignments.
    static func decompose(_ t: inout NormalizedText, compatibility: Bool) {
        let plain: UInt32 = compatibility ? 0xA0 : 0xC0   // below this nothing decomposes
        guard !t.scalars.allSatisfy({ $0.value < plain }) else { return }
        t.transform(decomposed(t.scalars, compatibility: compatibility))
    }

    /// NFC or NFKC of `t`, with HF's alignments.
    static func compose(_ t: inout NormalizedText, compatibility: Bool) {
        // Below U+00A0 nothing decomposes and nothing composes with an ASCII scalar.
        guard !t.scalars.allSatisfy({ $0.value < 0xA0 }) else { return }
        t.transform(recomposed(decomposed(t.scalars, compatibility: compatibility)))
    }

    /// The decomposition stream: each scalar's full decomposition (first 0, rest 1), then every run of non-starters
    /// stably sorted by canonical combining class.
    static func decomposed(_ s: Scalars, compatibility: Bool) -> [(Unicode.Scalar, Int)] {
        var out: [(Unicode.Scalar, Int)] = []
        out.reserveCapacity(s.count + 4)
        var classes: [UInt8] = []
        classes.reserveCapacity(s.count + 4)
        var memo: [UInt32: Scalars] = [:]
        var pending = 0
        func push(_ c: Unicode.Scalar, _ change: Int) {
            let ccc = combiningClass(c)
            if ccc == 0 { sortRun(&out, &classes, from: pending); pending = out.count }
            out.append((c, change))
            classes.append(ccc)
        }
        for c in s {
            if c.value < 0xC0 && !(compatibility && c.value >= 0xA0) {
                push(c, 0)
                continue
            }
            let d: Scalars
            if !inRanges(compatibility ? hfCompatibilityDecomposable : hfCanonicalDecomposable, c.value) {
                d = [c]   // the crate's tables predate this decomposition (e.g. U+32FF, Unicode 12.1)
            } else if let m = memo[c.value] { d = m } else {
                let text = String(Character(c))
                d = Array((compatibility ? text.decomposedStringWithCompatibilityMapping
                                         : text.decomposedStringWithCanonicalMapping).unicodeScalars)
                memo[c.value] = d
            }
            for (i, x) in d.enumerated() { push(x, i == 0 ? 0 : 1) }
        }
        sortRun(&out, &classes, from: pending)
        return out
    }

    /// Stable insertion sort of `out[from...]` by combining class (runs are a few scalars long).
    private static func sortRun(_ out: inout [(Unicode.Scalar, Int)], _ classes: inout [UInt8], from: Int) {
        guard out.count - from > 1 else { return }
        for i in (from + 1)..<out.count {
            var j = i
            while j > from && classes[j - 1] > classes[j] {
                out.swapAt(j - 1, j)
                classes.swapAt(j - 1, j)
                j -= 1
            }
        }
    }

    /// The canonical combining class as the crate's tables have it: marks newer than them are starters (class 0).
    static func combiningClass(_ c: Unicode.Scalar) -> UInt8 {
        guard c.value >= 0x300 else { return 0 }
        let k = c.properties.canonicalCombiningClass.rawValue
        return k == 0 || inRanges(hfNonStarters, c.value) ? k : 0
    }

    /// Hangul's algorithmic compositions, L + V and LV + T (Foundation's NFC misses LV + T for a precomposed LV).
    static func hangul(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Unicode.Scalar? {
        let (s0, l0, v0, t0) = (UInt32(0xAC00), UInt32(0x1100), UInt32(0x1161), UInt32(0x11A7))
        if (l0..<(l0 + 19)).contains(a.value) && (v0..<(v0 + 21)).contains(b.value) {
            return Unicode.Scalar(s0 + ((a.value - l0) * 21 + (b.value - v0)) * 28)
        }
        if (s0..<(s0 + 11172)).contains(a.value) && (a.value - s0) % 28 == 0
            && ((t0 + 1)..<(t0 + 28)).contains(b.value) {
            return Unicode.Scalar(a.value + (b.value - t0))
        }
        return nil
    }

    /// The crate's recomposition state machine over a decomposition stream.
    static func recomposed(_ input: [(Unicode.Scalar, Int)]) -> [(Unicode.Scalar, Int)] {
        var out: [(Unicode.Scalar, Int)] = []
        out.reserveCapacity(input.count)
        var composee: (Unicode.Scalar, Int)? = nil
        var lastClass: UInt8? = nil
        var buffer: [(Unicode.Scalar, Int)] = []
        var memo: [UInt64: Unicode.Scalar?] = [:]
        func pair(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Unicode.Scalar? {
            if b.value < 0x300 { return nil }
            if let h = hangul(a, b) { return h }
            let key = UInt64(a.value) << 32 | UInt64(b.value)
            if let hit = memo[key] { return hit }
            // `a` decomposed first: ICU leaves a composite + starter pair alone ("\u{CCA}\u{CD5}" is not
            // recomposed to U+0CCB) though NFC of the full decomposition composes it.
            var view = String(Character(a)).decomposedStringWithCanonicalMapping.unicodeScalars
            view.append(b)
            let composed = String(view).precomposedStringWithCanonicalMapping.unicodeScalars
            let r = composed.count == 1 ? composed.first : nil
            memo[key] = r
            return r
        }
        for (ch, change) in input {
            let cls = combiningClass(ch)
            guard let k = composee else {
                if cls != 0 { out.append((ch, change)) } else { composee = (ch, change) }
                continue
            }
            if let l = lastClass {
                if l >= cls {
                    // Blocked from the composee.
                    if cls == 0 {
                        out.append(k); out += buffer; buffer.removeAll()
                        composee = (ch, change); lastClass = nil
                    } else {
                        buffer.append((ch, change)); lastClass = cls
                    }
                    continue
                }
                if let r = pair(k.0, ch) { composee = (r, k.1 + change - 1); continue }
                buffer.append((ch, change)); lastClass = cls
            } else {
                if let r = pair(k.0, ch) { composee = (r, k.1 + change - 1); continue }
                if cls == 0 { out.append(k); composee = (ch, change); continue }
                buffer.append((ch, change)); lastClass = cls
            }
        }
        if let k = composee { out.append(k) }
        out += buffer
        return out
    }
}
