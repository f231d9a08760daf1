// GPT-2's byte-level alphabet: each of the 256 bytes as a printable code point, and GPT-2's word-splitting regex.
// Invariant: bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF map to themselves; the other 68 map to U+0100... in byte
// order, so the table is a bijection and decoding is its inverse.
import Foundation

enum ByteLevel {
    /// byte -> code point.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    /// code point -> byte (nil for code points outside the alphabet).
    static let scalarToByte: [UInt32: UInt8] = {
        var out: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { out[s.value] = UInt8(b) }
        return out
    }()

    /// The UTF-8 bytes of `text`, each as its alphabet code point.
    static func encode(_ text: some Collection<Unicode.Scalar>) -> Scalars {
        var out: Scalars = []
        out.reserveCapacity(text.count)
        for s in text { for b in UTF8.encode(s)! { out.append(byteToScalar[Int(b)]) } }
        return out
    }

    /// `encode` in place: each scalar becomes the alphabet code points of its bytes, all aligned to it.
    static func encode(_ t: inout NormalizedText) {
        t.flatMap { s in
            if s.value < 0x80 { return [byteToScalar[Int(s.value)]] }
            return UTF8.encode(s)!.map { byteToScalar[Int($0)] }
        }
    }

    /// Inverse of `encode`, decoding the bytes as UTF-8 (invalid sequences become U+FFFD, as HF's lossy decode).
    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        for s in text.unicodeScalars {
            if let b = scalarToByte[s.value] { bytes.append(b) } else { bytes.append(contentsOf: UTF8.encode(s)!) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// GPT-2's split, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, as a scanner.
    static func split(_ s: Scalars) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let n = s.count
        var i = 0
        func isOther(_ c: Unicode.Scalar) -> Bool { !c.isWhitespaceHF && !c.isLetterHF && !c.isNumberHF }
        while i < n {
            let c = s[i]
            // Contractions.
            if c == "'" && i + 1 < n {
                let a = s[i + 1]
                if a == "s" || a == "t" || a == "m" || a == "d" { out.append(i..<(i + 2)); i += 2; continue }
                if i + 2 < n {
                    let b = s[i + 2]
                    if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") {
                        out.append(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`.
            let start = i
            var j = i
            if c == " " && i + 1 < n { j = i + 1 }
            let head = s[j]
            // 0: letters, 1: numbers, 2: neither (nor whitespace); -1: whitespace.
            func cls(_ c: Unicode.Scalar) -> Int { c.isLetterHF ? 0 : c.isNumberHF ? 1 : isOther(c) ? 2 : -1 }
            let k0 = cls(head)
            if k0 >= 0 {
                var k = j + 1
                while k < n && cls(s[k]) == k0 { k += 1 }
                out.append(start..<k); i = k; continue
            }
            // `\s+(?!\S)` then `\s+`.
            var k = i
            while k < n && s[k].isWhitespaceHF { k += 1 }
            if k == n || k - i == 1 {
                out.append(i..<k); i = k
            } else {
                out.append(i..<(k - 1)); i = k - 1
            }
        }
        return out
    }
}
