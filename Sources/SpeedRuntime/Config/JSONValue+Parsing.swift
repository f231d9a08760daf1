// A small hjson-lite reader for ds_config.json: JSON plus comments, trailing commas and bare keys.
// Invariant: a duplicate key is an error (as DeepSpeed's loader), and every syntax error names line, column and key path.

import Foundation

extension JSONValue {
    /// Parses JSON text, also accepting `//`, `#` and `/* */` comments, trailing commas,
    /// single-quoted strings and unquoted keys (`{stage: 2}`), as DeepSpeed's hjson loader does.
    ///
    /// - Throws: ``ConfigError`` with the key path being read and the line and column.
    ///
    /// ```swift
    /// let v = try JSONValue.parse("""
    ///     { "train_batch_size": 8,   // comment
    ///       "fp16": {enabled: true,}, }
    ///     """)
    /// ```
    public static func parse(_ text: String) throws -> JSONValue {
        var parser = LiteJSONParser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }
}

struct LiteJSONParser {
    let bytes: [UInt8]
    var i = 0
    var path: [String] = []

    init(bytes: [UInt8]) {
        self.bytes = bytes
        // Skip a UTF-8 byte-order mark.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    }

    mutating func parseDocument() throws -> JSONValue {
        try skipTrivia()
        let value = try parseValue()
        try skipTrivia()
        if i < bytes.count { throw syntax("unexpected \(describe(bytes[i])) after the end of the JSON value") }
        return value
    }

    // MARK: Values

    mutating func parseValue() throws -> JSONValue {
        guard i < bytes.count else { throw syntax("unexpected end of input, expected a value") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""), UInt8(ascii: "'"): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            for (word, value) in [("true", JSONValue.bool(true)), ("false", .bool(false)), ("null", .null)]
            where matches(word) {
                i += word.utf8.count
                return value
            }
            throw syntax("unexpected \(describe(bytes[i])), expected a value")
        }
    }

    mutating func parseObject() throws -> JSONValue {
        i += 1
        var members: [String: JSONValue] = [:]
        try skipTrivia()
        while true {
            guard i < bytes.count else { throw syntax("unexpected end of input, expected '}'") }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            let key = try parseKey()
            try skipTrivia()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else {
                throw syntax("expected ':' after key \"\(key)\"")
            }
            i += 1
            try skipTrivia()
            path.append(key)
            if members[key] != nil { throw syntax("duplicate key \"\(key)\"") }
            members[key] = try parseValue()
            path.removeLast()
            try skipTrivia()
            guard i < bytes.count else { throw syntax("unexpected end of input, expected ',' or '}'") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                try skipTrivia()
            } else if bytes[i] != UInt8(ascii: "}") {
                throw syntax("unexpected \(describe(bytes[i])), expected ',' or '}'")
            }
        }
    }

    mutating func parseArray() throws -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        try skipTrivia()
        while true {
            guard i < bytes.count else { throw syntax("unexpected end of input, expected ']'") }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            path.append("[\(items.count)]")
            items.append(try parseValue())
            path.removeLast()
            try skipTrivia()
            guard i < bytes.count else { throw syntax("unexpected end of input, expected ',' or ']'") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                try skipTrivia()
            } else if bytes[i] != UInt8(ascii: "]") {
                throw syntax("unexpected \(describe(bytes[i])), expected ',' or ']'")
            }
        }
    }

    mutating func parseKey() throws -> String {
        if bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") { return try parseString() }
        let start = i
        while i < bytes.count, isBareKeyByte(bytes[i]) { i += 1 }
        if i == start { throw syntax("unexpected \(describe(bytes[i])), expected a key") }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    mutating func parseString() throws -> String {
        let quote = bytes[i]
        i += 1
        var scalars = String.UnicodeScalarView()
        var run = i
        func flush(_ end: Int) { scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
        while i < bytes.count {
            let b = bytes[i]
            if b == quote {
                flush(i)
                i += 1
                return String(scalars)
            }
            if b == UInt8(ascii: "\n") { throw syntax("unterminated string") }
            if b == UInt8(ascii: "\\") {
                flush(i)
                i += 1
                guard i < bytes.count else { break }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                    scalars.append(Unicode.Scalar(e))
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{c}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), matches("\\u") {
                        i += 2
                        let low = try hex4()
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw syntax("invalid escape '\\\(Character(Unicode.Scalar(e)))' in string")
                }
                run = i
                continue
            }
            i += 1
        }
        throw syntax("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16)
        else { throw syntax("invalid \\u escape") }
        i += 4
        return v
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = i
        var isInteger = true
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        let digitsStart = i
        while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        if i == digitsStart { throw syntax("invalid number") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            let fracStart = i
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
            if i == fracStart { throw syntax("invalid number: digits expected after '.'") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            let expStart = i
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
            if i == expStart { throw syntax("invalid number: digits expected in the exponent") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if isInteger, let n = Int(text) { return .int(n) }
        guard let d = Double(text) else { throw syntax("invalid number \(text)") }
        return .double(d)
    }

    // MARK: Trivia and helpers

    mutating func skipTrivia() throws {
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D {
                i += 1
            } else if b == UInt8(ascii: "#") || matches("//") {
                while i < bytes.count, bytes[i] != 0x0A { i += 1 }
            } else if matches("/*") {
                let open = i
                i += 2
                while i < bytes.count, !matches("*/") { i += 1 }
                if i >= bytes.count { i = open; throw syntax("unterminated /* comment") }
                i += 2
            } else {
                return
            }
        }
    }

    func matches(_ word: String) -> Bool {
        let w = Array(word.utf8)
        return i + w.count <= bytes.count && bytes[i..<i + w.count].elementsEqual(w)
    }

    func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    func isBareKeyByte(_ b: UInt8) -> Bool {
        isDigit(b) || (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "z"))
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "$")
    }

    func describe(_ b: UInt8) -> String {
        b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : String(format: "byte 0x%02X", b)
    }

    func syntax(_ message: String) -> ConfigError {
        var line = 1, column = 1
        for b in bytes[0..<min(i, bytes.count)] {
            if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
        }
        var keyPath = ""
        for part in path { keyPath += part.hasPrefix("[") || keyPath.isEmpty ? part : ".\(part)" }
        return ConfigError(keyPath: keyPath.isEmpty ? "(root)" : keyPath, value: "line \(line), column \(column)",
                           allowed: "JSON with optional // or /* */ comments and trailing commas",
                           reason: "syntax error at line \(line), column \(column): \(message)")
    }
}
