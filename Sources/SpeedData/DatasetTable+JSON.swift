// JSON Lines and top-level-array JSON files as table rows, with a parser that reports the line and column of a problem.
// Invariant: the bytes were checked as UTF-8 first, so every offset maps to a (line, character column) and strings decode losslessly.

/// A cursor over a UTF-8 buffer that knows its line and character column.
struct TextCursor {
    let bytes: [UInt8]
    let file: String
    var i = 0
    /// 1-based line of `i`, and the byte offset where that line starts.
    var line = 1
    var lineStart = 0

    init(_ bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    var atEnd: Bool { i >= bytes.count }
    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    /// 1-based character (Unicode scalar) column of byte offset `offset` on the current line.
    func column(at offset: Int) -> Int {
        var n = 1
        var k = lineStart
        while k < offset && k < bytes.count {
            if bytes[k] & 0xC0 != 0x80 { n += 1 }
            k += 1
        }
        // A continuation byte at `offset` itself belongs to the character before it.
        return n
    }

    var column: Int { column(at: i) }

    func error(_ message: String, at offset: Int? = nil) -> DatasetError {
        DatasetError(file: file, line: line, column: column(at: offset ?? i), message)
    }

    /// Moves past one byte, keeping line and column.
    mutating func advance() {
        if bytes[i] == UInt8(ascii: "\n") {
            line += 1
            lineStart = i + 1
        }
        i += 1
    }

    mutating func skipWhitespace(newlines: Bool = true) {
        while let b = peek, b == 0x20 || b == 0x09 || b == 0x0D || (newlines && b == 0x0A) { advance() }
    }

    /// A short, printable view of what is at the cursor, for messages.
    var found: String {
        guard !atEnd else { return "the end of the file" }
        if bytes[i] == 0x0A { return "the end of the line" }
        var end = i
        var n = 0
        while end < bytes.count && n < 12 && bytes[end] != 0x0A {
            if bytes[end] & 0xC0 != 0x80 { n += 1 }
            end += 1
        }
        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }
        return "'" + String(decoding: bytes[i..<end], as: UTF8.self) + "'"
    }
}

/// A JSON parser for rows: objects of scalars and flat lists of numbers or strings (datasets' common case).
struct JSONRowParser {
    var cursor: TextCursor
    /// Whether a newline ends the current row (JSON Lines) rather than being whitespace.
    let lineMode: Bool

    init(_ bytes: [UInt8], file: String, lineMode: Bool) {
        cursor = TextCursor(bytes, file: file)
        self.lineMode = lineMode
    }

    mutating func skip() { cursor.skipWhitespace(newlines: !lineMode) }

    mutating func expect(_ byte: UInt8, _ what: String) throws {
        skip()
        guard cursor.peek == byte else {
            throw cursor.error("expected \(what), found \(cursor.found)" + (lineMode && cursor.peek == 0x0A ? " (JSON Lines holds one whole object per line)" : ""))
        }
        cursor.advance()
    }

    /// One object: its cells in order, each with the character column where its value starts.
    mutating func object() throws -> (cells: [(String, DataValue)], columns: [String: Int]) {
        skip()
        guard cursor.peek == UInt8(ascii: "{") else {
            throw cursor.error("expected a JSON object ({\"text\": ..., \"label\": ...}) for a row, found \(cursor.found)")
        }
        cursor.advance()
        var cells: [(String, DataValue)] = []
        var columns: [String: Int] = [:]
        skip()
        if cursor.peek == UInt8(ascii: "}") {
            cursor.advance()
            return (cells, columns)
        }
        while true {
            skip()
            guard cursor.peek == UInt8(ascii: "\"") else {
                throw cursor.error("expected a quoted key, found \(cursor.found)")
            }
            let keyColumn = cursor.column
            let key = try string()
            if columns[key] != nil {
                throw cursor.error("key \"\(key)\" appears twice in this object", at: nil).withColumn(keyColumn)
            }
            try expect(UInt8(ascii: ":"), "':' after the key \"\(key)\"")
            skip()
            columns[key] = cursor.column
            cells.append((key, try value(key: key)))
            skip()
            if cursor.peek == UInt8(ascii: ",") { cursor.advance(); continue }
            if cursor.peek == UInt8(ascii: "}") { cursor.advance(); return (cells, columns) }
            throw cursor.error("expected ',' or '}' in an object, found \(cursor.found)")
        }
    }

    /// A cell: null, true/false, a number, a string, or a flat list of numbers or of strings.
    mutating func value(key: String) throws -> DataValue {
        skip()
        guard let b = cursor.peek else { throw cursor.error("expected a value for \"\(key)\", found the end of the file") }
        switch b {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "["): return try list(key: key)
        case UInt8(ascii: "{"):
            throw cursor.error("\"\(key)\" holds a nested object; rows here hold numbers, strings, booleans, null and flat lists — flatten it into top-level keys")
        default:
            throw cursor.error("expected a value for \"\(key)\", found \(cursor.found)")
        }
    }

    mutating func literal(_ word: String) throws {
        let start = cursor.i
        for byte in word.utf8 {
            guard cursor.peek == byte else { throw cursor.error("invalid literal (expected \(word))", at: start) }
            cursor.advance()
        }
    }

    /// JSON's number grammar; an integer without fraction or exponent that fits 64 bits is an int.
    mutating func number() throws -> DataValue {
        let start = cursor.i
        func digits() -> Int {
            var n = 0
            while let b = cursor.peek, b >= 0x30 && b <= 0x39 { cursor.advance(); n += 1 }
            return n
        }
        if cursor.peek == UInt8(ascii: "-") { cursor.advance() }
        if cursor.peek == UInt8(ascii: "0") {
            cursor.advance()
            if let b = cursor.peek, b >= 0x30 && b <= 0x39 { throw cursor.error("invalid number: a leading zero", at: start) }
        } else if digits() == 0 {
            throw cursor.error("invalid number", at: start)
        }
        var integral = true
        if cursor.peek == UInt8(ascii: ".") {
            integral = false
            cursor.advance()
            if digits() == 0 { throw cursor.error("invalid number: no digits after '.'", at: start) }
        }
        if cursor.peek == UInt8(ascii: "e") || cursor.peek == UInt8(ascii: "E") {
            integral = false
            cursor.advance()
            if cursor.peek == UInt8(ascii: "+") || cursor.peek == UInt8(ascii: "-") { cursor.advance() }
            if digits() == 0 { throw cursor.error("invalid number: no digits in the exponent", at: start) }
        }
        let text = String(decoding: cursor.bytes[start..<cursor.i], as: UTF8.self)
        if integral, let v = Int(text) { return .int(v) }
        guard let d = Double(text), d.isFinite else { throw cursor.error("number \(text) is out of range", at: start) }
        return .double(d)
    }

    /// A quoted string with JSON's escapes (surrogate pairs joined); raw control characters are errors.
    mutating func string() throws -> String {
        let open = cursor.i
        cursor.advance()
        var out: [UInt8] = []
        while true {
            guard let b = cursor.peek, b != 0x0A || !lineMode else {
                throw cursor.error("unterminated string (it opens here)", at: open)
            }
            if b == UInt8(ascii: "\"") { cursor.advance(); break }
            if b < 0x20 {
                throw cursor.error("a raw control character (byte 0x\(String(b, radix: 16))) inside a string; write it as an escape such as \\n")
            }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                cursor.advance()
                continue
            }
            let escape = cursor.i
            cursor.advance()
            guard let e = cursor.peek else { throw cursor.error("unterminated string (it opens here)", at: open) }
            cursor.advance()
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(escape)
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by \u and a low one.
                    guard cursor.peek == UInt8(ascii: "\\") else { throw cursor.error("unpaired surrogate \\u\(String(scalar, radix: 16))", at: escape) }
                    cursor.advance()
                    guard cursor.peek == UInt8(ascii: "u") else { throw cursor.error("unpaired surrogate \\u\(String(scalar, radix: 16))", at: escape) }
                    cursor.advance()
                    let low = try hex4(escape)
                    guard (0xDC00..<0xE000).contains(low) else { throw cursor.error("unpaired surrogate \\u\(String(scalar, radix: 16))", at: escape) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw cursor.error("unpaired surrogate \\u\(String(scalar, radix: 16))", at: escape)
                }
                out += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
            default:
                throw cursor.error("invalid escape '\\\(Character(Unicode.Scalar(e)))' in a string", at: escape)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func hex4(_ escape: Int) throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let b = cursor.peek, let d = Character(Unicode.Scalar(b)).hexDigitValue else {
                throw cursor.error("invalid \\u escape (it needs 4 hex digits)", at: escape)
            }
            v = v << 4 | UInt32(d)
            cursor.advance()
        }
        return v
    }

    /// A flat list: all numbers (ints, or doubles when any has a fraction or exponent) or all strings.
    mutating func list(key: String) throws -> DataValue {
        let open = cursor.i
        cursor.advance()
        var items: [DataValue] = []
        skip()
        if cursor.peek == UInt8(ascii: "]") { cursor.advance(); return .ints([]) }
        while true {
            skip()
            let at = cursor.i
            let item = try value(key: key)
            switch item {
            case .int, .double, .string: break
            default:
                throw cursor.error("\"\(key)\" is a list holding \(item); lists here hold numbers or strings only", at: at)
            }
            if let first = items.first, (first.stringValue == nil) != (item.stringValue == nil) {
                throw cursor.error("\"\(key)\" is a list mixing strings and numbers (\(first) and \(item))", at: at)
            }
            items.append(item)
            skip()
            if cursor.peek == UInt8(ascii: ",") { cursor.advance(); continue }
            if cursor.peek == UInt8(ascii: "]") { cursor.advance(); break }
            throw cursor.error("expected ',' or ']' in the list that opens at column \(cursor.column(at: open)), found \(cursor.found)")
        }
        if items[0].stringValue != nil { return .strings(items.map { $0.stringValue! }) }
        if items.allSatisfy({ $0.intValue != nil }) { return .ints(items.map { $0.intValue! }) }
        return .doubles(items.map { $0.doubleValue! })
    }
}

extension DatasetError {
    func withColumn(_ column: Int) -> DatasetError {
        var copy = self
        copy.column = column
        return copy
    }
}

extension TableBuilder {
    /// Appends the rows of a JSON file: JSON Lines (one object per line; blank lines skipped) or, when the first
    /// non-blank byte is '[', one array of objects.
    mutating func appendJSON(_ bytes: [UInt8], file: String) throws {
        var probe = TextCursor(bytes, file: file)
        probe.skipWhitespace()
        if probe.peek == UInt8(ascii: "[") {
            var parser = JSONRowParser(bytes, file: file, lineMode: false)
            parser.skip()
            parser.cursor.advance()
            parser.skip()
            if parser.cursor.peek == UInt8(ascii: "]") {
                throw parser.cursor.error("the JSON array holds no rows")
            }
            while true {
                parser.skip()
                let line = parser.cursor.line
                let (cells, columns) = try parser.object()
                try append(cells, source: RowSource(file: file, line: line), what: "line \(line)", position: { columns[$0] })
                parser.skip()
                if parser.cursor.peek == UInt8(ascii: ",") { parser.cursor.advance(); continue }
                if parser.cursor.peek == UInt8(ascii: "]") { parser.cursor.advance(); break }
                throw parser.cursor.error("expected ',' or ']' after a row of the JSON array, found \(parser.cursor.found)")
            }
            parser.skip()
            guard parser.cursor.atEnd else {
                throw parser.cursor.error("unexpected \(parser.cursor.found) after the JSON array")
            }
            return
        }
        var parser = JSONRowParser(bytes, file: file, lineMode: true)
        while true {
            parser.skip()
            if parser.cursor.atEnd { break }
            if parser.cursor.peek == 0x0A { parser.cursor.advance(); continue }
            let line = parser.cursor.line
            let (cells, columns) = try parser.object()
            parser.skip()
            if let b = parser.cursor.peek, b != 0x0A {
                throw parser.cursor.error("unexpected \(parser.cursor.found) after the row's object (JSON Lines holds one object per line)")
            }
            try append(cells, source: RowSource(file: file, line: line), what: "line \(line)", position: { columns[$0] })
        }
    }
}
