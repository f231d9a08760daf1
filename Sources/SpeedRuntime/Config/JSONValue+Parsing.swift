// ds_config.json text → JSONValue: Foundation's JSON5 decoder reads it; this file adds only DeepSpeed's own rules.
// Invariant: `#` comments are accepted; duplicate keys, nesting deeper than `maxNesting` and syntax errors throw a
// ConfigError naming line, column and key path (Foundation on Linux reports no position, so a pre-scan does).

import Foundation

extension JSONValue {
    /// Deepest nesting of arrays and objects accepted (Foundation's own JSON5 limit), checked without recursion.
    public static let maxNesting = 512

    /// Parses JSON5 (`//` and `/* */` comments, trailing commas, single-quoted strings, bare keys such as
    /// `{stage: 2}`) plus `#` comments, as DeepSpeed's hjson loader accepts them; a duplicate key is an error.
    ///
    /// - Throws: ``ConfigError`` with the key path being read and the line and column.
    ///
    /// ```swift
    /// let v = try JSONValue.parse("""
    ///     { "train_batch_size": 8,   # comment
    ///       "fp16": {enabled: true,}, }
    ///     """)
    /// ```
    public static func parse(_ text: String) throws -> JSONValue {
        var scan = ConfigTextScan(bytes: Array(text.utf8))
        try scan.run()
        let tree: JSONValue
        do {
            tree = try ConfigTextScan.json5.decode(JSONValue.self, from: Data(scan.bytes))
        } catch {
            var check = ConfigTextScan(bytes: scan.bytes, checkTokens: true)   // finds the token Foundation refused
            try check.run()
            throw check.fail("Foundation's JSON5 reader refused it (\(error))", at: 0)
        }
        // Codable reads 16.0 and 5e7 as integers; keep what was written.
        return scan.writtenAsDouble.reduce(tree) { $0.markingDouble(at: $1[...]) }
    }

    private func markingDouble(at path: ArraySlice<ConfigTextScan.Part>) -> JSONValue {
        switch (self, path.first) {
        case (.int(let n), nil): return .double(Double(n))
        case (.object(var members), .key(let key)?):
            members[key] = members[key]?.markingDouble(at: path.dropFirst())
            return .object(members)
        case (.array(var items), .index(let n)?) where items.indices.contains(n):
            items[n] = items[n].markingDouble(at: path.dropFirst())
            return .array(items)
        default: return self
        }
    }
}

/// One pass over config text, without recursion: blanks `#` comments and follows the structure (strings, comments,
/// `{}[]:,`), leaving keys and scalars to Foundation; throws what Foundation would not say, or not say where.
struct ConfigTextScan {
    enum Part { case key(String), index(Int) }
    private enum Expect: String {
        case value = "a value", item = "a value or ']'", key = "a key or '}'", colon = "':' after the key"
        case next = "','", end = "the end of input"
    }

    static var json5: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        return decoder
    }

    private(set) var bytes: [UInt8]
    /// Decode each key and scalar with Foundation as it is met (after Foundation refused the whole text).
    var checkTokens = false
    /// Paths of the numbers written with a fraction or an exponent.
    private(set) var writtenAsDouble: [[Part]] = []
    private var i = 0
    private var path: [Part] = []
    /// Open containers: the keys seen so far (objects) or nil (arrays), and the item count.
    private var open: [(keys: Set<String>?, count: Int)] = []

    init(bytes: [UInt8], checkTokens: Bool = false) {
        self.bytes = bytes
        self.checkTokens = checkTokens
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }   // UTF-8 byte-order mark
    }

    mutating func run() throws {
        var expect = Expect.value
        while true {
            try skipTrivia()
            let inObject = open.last?.keys != nil
            let expected = expect == .next ? "',' or '\(inObject ? "}" : "]")'" : expect.rawValue
            guard i < bytes.count else {
                if expect == .end { return }
                throw fail("unexpected end of input, expected \(expected)")
            }
            let c = Character(Unicode.Scalar(bytes[i])), bare = !"{}[]:,".contains(c)
            switch (c, expect) {
            case ("{", .value), ("{", .item), ("[", .value), ("[", .item):
                beginValue()
                if open.count == JSONValue.maxNesting { throw fail("nesting deeper than \(JSONValue.maxNesting) levels") }
                open.append((c == "{" ? [] : nil, 0))
                i += 1
                expect = c == "{" ? .key : .item
            case ("}", .key), ("]", .item):
                expect = close()
            case ("}", .next) where inObject, ("]", .next) where !inObject:
                expect = close()
            case (":", .colon):
                i += 1
                expect = .value
            case (",", .next):
                i += 1
                expect = inObject ? .key : .item
            case (_, .key) where bare:
                let start = i, key = try token(isKey: true)
                if !open[open.count - 1].keys!.insert(key).inserted { throw fail("duplicate key \"\(key)\"", at: start) }
                path.append(.key(key))
                expect = .colon
            case (_, .value) where bare, (_, .item) where bare:
                beginValue()
                _ = try token(isKey: false)
                expect = endValue()
            default:
                let what = bytes[i] >= 0x20 && bytes[i] < 0x7F ? "'\(c)'" : String(format: "byte 0x%02X", bytes[i])
                throw fail("unexpected \(what)" + (expect == .end ? " after the end of the JSON value" : ", expected \(expected)"))
            }
        }
    }

    private mutating func beginValue() {
        guard let last = open.indices.last, open[last].keys == nil else { return }
        path.append(.index(open[last].count))
        open[last].count += 1
    }

    private mutating func close() -> Expect {
        open.removeLast()
        i += 1
        return endValue()
    }

    private mutating func endValue() -> Expect {
        if open.isEmpty { return .end }
        path.removeLast()
        return .next
    }

    /// Reads a string or a bare word (a key or a scalar); returns the key it spells, or the text.
    private mutating func token(isKey: Bool) throws -> String {
        let start = i, quoted = bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'")
        if quoted {
            i += 1
            while i < bytes.count, bytes[i] != bytes[start], bytes[i] != 0x0A { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
            guard i < bytes.count, bytes[i] == bytes[start] else { throw fail("unterminated string") }
            i += 1
        } else {
            while i < bytes.count, !" \t\r\n{}[]:,\"'#".utf8.contains(bytes[i]), !commentStarts() { i += 1 }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if isKey {
            guard text.contains("\\") || checkTokens else { return quoted ? String(text.dropFirst().dropLast()) : text }
            guard let key = (try? Self.json5.decode([String: Int].self, from: Data("{\(text): 0}".utf8)))?.keys.first
            else { throw fail("invalid key \(text)", at: start) }
            return key
        }
        if checkTokens, (try? Self.json5.decode(JSONValue.self, from: Data("[\(text)]".utf8))) == nil {
            throw fail("invalid value \(text)", at: start)
        }
        let hex = text.drop { "+-".contains($0) }.lowercased().hasPrefix("0x")
        if !quoted && !hex && text.contains(where: { ".eE".contains($0) }) { writtenAsDouble.append(path) }
        return text
    }

    private mutating func skipTrivia() throws {
        while i < bytes.count {
            if " \t\r\n".utf8.contains(bytes[i]) { i += 1; continue }
            let hash = bytes[i] == UInt8(ascii: "#")
            guard hash || commentStarts() else { return }
            if hash || bytes[i + 1] == UInt8(ascii: "/") {
                // Foundation's JSON5 has no `#` comments: they become spaces (offsets stay as written).
                while i < bytes.count, bytes[i] != 0x0A { if hash { bytes[i] = 0x20 }; i += 1 }
            } else {
                let open = i
                i += 2
                while i + 1 < bytes.count, bytes[i] != UInt8(ascii: "*") || bytes[i + 1] != UInt8(ascii: "/") { i += 1 }
                if i + 1 >= bytes.count { throw fail("unterminated /* comment", at: open) }
                i += 2
            }
        }
    }

    private func commentStarts() -> Bool {
        i + 1 < bytes.count && bytes[i] == UInt8(ascii: "/") && "/*".utf8.contains(bytes[i + 1])
    }

    func fail(_ message: String, at offset: Int? = nil) -> ConfigError {
        var line = 1, column = 1
        for b in bytes[0..<min(offset ?? i, bytes.count)] {
            if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
        }
        let keyPath = path.reduce("") { s, part in
            switch part {
            case .key(let k): s.isEmpty ? k : "\(s).\(k)"
            case .index(let n): "\(s)[\(n)]"
            }
        }
        return ConfigError(keyPath: keyPath.isEmpty ? "(root)" : keyPath, value: "line \(line), column \(column)",
                           allowed: "JSON5 (comments, trailing commas, bare keys) with # comments, no duplicate keys",
                           reason: "syntax error at line \(line), column \(column): \(message)")
    }
}
