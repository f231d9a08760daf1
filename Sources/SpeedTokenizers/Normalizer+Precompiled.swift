// The `Precompiled` normalizer of SentencePiece conversions (T5, ALBERT, XLNet, mT5, XLM-R...): the model's
// `precompiled_charsmap`, a double-array trie over UTF-8 bytes whose leaves point into a pool of NUL-ended replacements.
// Invariant: lookups are HF's (the spm_precompiled crate): a grapheme under 6 UTF-8 bytes is looked up whole first, else
// each scalar alone; the first (shortest) key of the trie that prefixes the chunk replaces the whole chunk; the changes
// are HF's `replace`, applied with NormalizedText.transform. A malformed trie or pool index is "no replacement", never a trap.
import Foundation

/// A SentencePiece `precompiled_charsmap`: `[u32 LE trie size in bytes][trie: u32 LE units][replacement pool]`.
///
/// ```swift
/// let map = try PrecompiledCharsmap(base64: charsmap, key: "normalizer.precompiled_charsmap")
/// map.replacement(Array("\u{FB01}".utf8))   // ["f", "i"] with sentencepiece's nmt_nfkc map
/// ```
struct PrecompiledCharsmap: Sendable {
    /// The double-array trie (Darts' units: label in bits 0-7 and 31, has-leaf bit 8, offset in bits 10-31 scaled
    /// by bit 9; a leaf unit's low 31 bits are a byte index into `pool`).
    let units: [UInt32]
    /// NUL-ended UTF-8 replacement strings.
    let pool: [UInt8]

    init(base64: String, key: String) throws {
        guard let data = Data(base64Encoded: base64) else {
            throw TokenizerError.invalid(key: key, reason: "is not valid base64 (\(base64.utf8.count) characters); copy the value from the model's tokenizer.json unchanged")
        }
        try self.init(blob: [UInt8](data), key: key)
    }

    init(blob: [UInt8], key: String) throws {
        guard blob.count >= 4 else {
            throw TokenizerError.invalid(key: key, reason: "is truncated: \(blob.count) bytes, fewer than the 4 of its trie size; re-save the tokenizer from the SentencePiece model")
        }
        let size = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        let n = size / 4
        guard blob.count - 4 >= n * 4 else {
            throw TokenizerError.invalid(key: key, reason: "is truncated: its trie has \(size) bytes but only \(blob.count - 4) follow the size; re-save the tokenizer from the SentencePiece model")
        }
        var units = [UInt32](repeating: 0, count: n)
        for i in 0..<n {
            let o = 4 + 4 * i
            units[i] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24
        }
        // As the crate, a trie size that is not a multiple of 4 leaves its last bytes to the pool.
        let pool = Array(blob[(4 + 4 * n)...])
        guard String(validating: pool, as: UTF8.self) != nil else {
            throw TokenizerError.invalid(key: key, reason: "its replacement strings (\(pool.count) bytes after the trie) are not UTF-8; re-save the tokenizer from the SentencePiece model")
        }
        self.units = units
        self.pool = pool
    }

    /// The replacement of the first key of the trie that is a prefix of `key` (HF's `transform`: a NUL byte ends the
    /// key), nil when there is none.
    func replacement(_ key: some Sequence<UInt8>) -> Scalars? {
        guard !units.isEmpty else { return nil }
        @inline(__always) func offset(_ u: UInt32) -> Int { Int(u >> 10) << Int((u & 0x200) >> 6) }
        var pos = offset(units[0])
        for c in key {
            if c == 0 { break }
            pos ^= Int(c)
            guard pos < units.count else { return nil }
            let unit = units[pos]
            if unit & 0x8000_00FF != UInt32(c) { return nil }
            pos ^= offset(unit)
            if (unit >> 8) & 1 == 1 {
                guard pos < units.count else { return nil }
                return string(at: Int(units[pos] & 0x7FFF_FFFF))
            }
        }
        return nil
    }

    /// The NUL-ended string at byte `index` of the pool; nil when `index` is past the pool or inside a scalar.
    private func string(at index: Int) -> Scalars? {
        guard index <= pool.count else { return nil }
        let end = pool[index...].firstIndex(of: 0) ?? pool.count
        return String(validating: pool[index..<end], as: UTF8.self).map { Array($0.unicodeScalars) }
    }

    /// Normalizes `t` as HF's `Precompiled` normalizer, alignments included.
    func apply(_ t: inout NormalizedText) {
        let s = t.scalars
        guard !s.isEmpty else { return }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: s)
        var changes: [(Unicode.Scalar, Int)] = []
        changes.reserveCapacity(s.count)
        var modified = false
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        var i = 0
        for grapheme in String(view) {
            let n = grapheme.unicodeScalars.count
            let cluster = s[i..<(i + n)]
            i += n
            bytes.removeAll(keepingCapacity: true)
            for c in cluster { UTF8.encode(c) { bytes.append($0) } }
            if bytes.count < 6, let r = replacement(bytes) {
                modified = true
                Self.replace(&changes, replacing: n, with: r)
                continue
            }
            if n == 1 && bytes.count < 6 { changes.append((cluster.first!, 0)); continue }   // the same lookup failed
            for c in cluster {
                bytes.removeAll(keepingCapacity: true)
                UTF8.encode(c) { bytes.append($0) }
                if let r = replacement(bytes) {
                    modified = true
                    Self.replace(&changes, replacing: 1, with: r)
                } else {
                    changes.append((c, 0))
                }
            }
        }
        precondition(i == s.count, "Precompiled: graphemes cover \(i) of \(s.count) scalars")
        if modified { t.transform(changes) }
    }

    /// HF's `replace` for `old` scalars becoming `new`: each new one replaces (0); when longer, the last extra ones
    /// are inserted (1); when shorter, the change stream's last entry (whichever chunk it came from) removes the rest.
    static func replace(_ changes: inout [(Unicode.Scalar, Int)], replacing old: Int, with new: Scalars) {
        let diff = new.count - old
        for c in new { changes.append((c, 0)) }
        if diff > 0 {
            for k in (changes.count - diff)..<changes.count { changes[k].1 = 1 }
        } else if diff < 0, !changes.isEmpty {
            changes[changes.count - 1].1 += diff
        }
    }
}
