// Added tokens (special or not) found in the input before the model runs, with HF's single_word/lstrip/rstrip rules.
// Invariant: matching is leftmost-longest over code points; tokens with `normalized: false` are matched in the raw
// text, the others in the normalized text against their normalized content, exactly HF's two passes.
import Foundation

struct AddedVocabulary: Sendable {
    struct Entry: Sendable {
        let token: AddedToken
        let pattern: Scalars
    }
    /// Added tokens by first code point, longest first; one table per pass.
    let raw: [Unicode.Scalar: [Entry]]
    let normalized: [Unicode.Scalar: [Entry]]
    let byId: [Int: AddedToken]
    let byContent: [[UInt8]: AddedToken]

    init(_ tokens: [AddedToken], normalizer: Normalizer?) {
        var raw: [Unicode.Scalar: [Entry]] = [:], norm: [Unicode.Scalar: [Entry]] = [:]
        var byId: [Int: AddedToken] = [:], byContent: [[UInt8]: AddedToken] = [:]
        for t in tokens {
            byId[t.id] = t
            byContent[Array(t.content.utf8)] = t
            let pattern = t.normalized ? (normalizer?.apply(t.content.scalars) ?? t.content.scalars) : t.content.scalars
            guard let f = pattern.first else { continue }
            if t.normalized { norm[f, default: []].append(Entry(token: t, pattern: pattern)) } else {
                raw[f, default: []].append(Entry(token: t, pattern: pattern))
            }
        }
        self.raw = raw.mapValues { $0.sorted { $0.pattern.count > $1.pattern.count } }
        self.normalized = norm.mapValues { $0.sorted { $0.pattern.count > $1.pattern.count } }
        self.byId = byId
        self.byContent = byContent
    }

    var isEmpty: Bool { byId.isEmpty }

    /// `s` cut into (range, nil) and (matched range, added token id) pieces, in order.
    func split(_ s: Scalars, normalizedPass: Bool) -> [(Range<Int>, Int?)] {
        let table = normalizedPass ? normalized : raw
        guard !table.isEmpty, !s.isEmpty else { return [(0..<s.count, nil)] }
        var out: [(Range<Int>, Int?)] = []
        var startOffset = 0
        var i = 0
        while i < s.count {
            guard let candidates = table[s[i]],
                  let e = candidates.first(where: { i + $0.pattern.count <= s.count && s[i..<(i + $0.pattern.count)].elementsEqual($0.pattern) })
            else { i += 1; continue }
            var start = i, stop = i + e.pattern.count
            let t = e.token
            // The scan goes on after the match itself, whatever lstrip/rstrip take (as the automaton does).
            i = stop
            if t.singleWord {
                let startSpace = start == 0 || !s[start - 1].isAlphanumericHF
                let stopSpace = stop == s.count || !s[stop].isAlphanumericHF
                if !startSpace || !stopSpace { continue }
            }
            if t.lstrip {
                var k = start
                while k > 0 && s[k - 1].isWhitespaceHF { k -= 1 }
                start = max(k, startOffset)
            }
            if t.rstrip {
                while stop < s.count && s[stop].isWhitespaceHF { stop += 1 }
                i = stop
            }
            if startOffset < start { out.append((startOffset..<start, nil)) }
            out.append((start..<stop, t.id))
            startOffset = stop
        }
        if startOffset < s.count { out.append((startOffset..<s.count, nil)) }
        return out
    }
}
