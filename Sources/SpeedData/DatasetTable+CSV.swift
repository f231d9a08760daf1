// CSV files as table rows: an RFC 4180 reader (header row, quoted fields) and pandas' per-column type inference.
// Invariant: cells stay text until every row of the split is read, then each column gets one type from all its cells.

/// One CSV field: its text (quotes removed) and where it started.
struct CSVField {
    var text: String
    var quoted: Bool
}

/// Reads CSV records from UTF-8 bytes (comma-separated, `"` quoting with `""` for a quote, LF or CRLF endings).
struct CSVReader {
    var cursor: TextCursor

    init(_ bytes: [UInt8], file: String) { cursor = TextCursor(bytes, file: file) }

    /// The next record and its first line, or nil at the end; blank lines are skipped (pandas' skip_blank_lines).
    mutating func record() throws -> (fields: [CSVField], line: Int)? {
        while let b = cursor.peek, b == 0x0A || b == 0x0D { cursor.advance() }
        guard !cursor.atEnd else { return nil }
        let line = cursor.line
        var fields: [CSVField] = []
        while true {
            fields.append(try field())
            guard let b = cursor.peek else { return (fields, line) }
            if b == UInt8(ascii: ",") { cursor.advance(); continue }
            // A record ends at LF, CRLF or a lone CR.
            cursor.advance()
            if b == 0x0D, cursor.peek == 0x0A { cursor.advance() }
            return (fields, line)
        }
    }

    mutating func field() throws -> CSVField {
        var out: [UInt8] = []
        if cursor.peek == UInt8(ascii: "\"") {
            let openLine = cursor.line, openColumn = cursor.column
            cursor.advance()
            while true {
                guard let b = cursor.peek else {
                    throw DatasetError(file: cursor.file, line: openLine, column: openColumn,
                                       "unterminated quoted field (the quote opens here and is never closed; write a quote inside a field as \"\")")
                }
                cursor.advance()
                if b == UInt8(ascii: "\"") {
                    if cursor.peek == UInt8(ascii: "\"") { out.append(b); cursor.advance(); continue }
                    break
                }
                out.append(b)
            }
            if let b = cursor.peek, b != UInt8(ascii: ","), b != 0x0A, b != 0x0D {
                throw cursor.error("unexpected \(cursor.found) after a closing quote (a quoted field ends at a comma or the end of the line; write a quote inside it as \"\")")
            }
            return CSVField(text: String(decoding: out, as: UTF8.self), quoted: true)
        }
        while let b = cursor.peek, b != UInt8(ascii: ","), b != 0x0A, b != 0x0D {
            out.append(b)
            cursor.advance()
        }
        return CSVField(text: String(decoding: out, as: UTF8.self), quoted: false)
    }
}

/// Collects the CSV files of one split and types their columns.
struct CSVTableBuilder {
    var header: [String]?
    var headerFile = ""
    var rows: [[String?]] = []
    var sources: [RowSource?] = []

    /// pandas' default NA strings (read_csv's na_values).
    static let naValues: Set<String> = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                                        "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                                        "nan", "null"]

    mutating func append(_ bytes: [UInt8], file: String) throws {
        var reader = CSVReader(bytes, file: file)
        guard let (head, headLine) = try reader.record() else {
            throw DatasetError(file: file, "the file is empty; a CSV file needs a header row")
        }
        var names: [String] = []
        for (k, field) in head.enumerated() {
            // pandas names an empty header cell "Unnamed: k".
            let name = field.text.isEmpty ? "Unnamed: \(k)" : field.text
            if names.contains(name) {
                throw DatasetError(file: file, line: headLine, "the header names column '\(name)' twice; give every column its own name")
            }
            names.append(name)
        }
        if let header, header != names {
            throw DatasetError(file: file, line: headLine, "the header \(names) differs from \(headerFile)'s \(header); the files of one split need the same columns")
        }
        header = names
        headerFile = file
        while let (fields, line) = try reader.record() {
            guard fields.count <= names.count else {
                throw DatasetError(file: file, line: line, "expected \(names.count) fields (the header's \(names)), saw \(fields.count); quote a field that holds a comma")
            }
            // A short row is filled with nulls, as pandas does.
            var row: [String?] = fields.map { Self.naValues.contains($0.text) ? nil : $0.text }
            row += Array(repeating: nil, count: names.count - fields.count)
            rows.append(row)
            sources.append(RowSource(file: file, line: line))
        }
    }

    /// The table: each column int, double, bool or string as pandas would read it (null where NA).
    func finish() -> DatasetTable {
        let names = header ?? []
        var types: [DataType] = []
        var columns: [[DataValue]] = []
        for c in 0..<names.count {
            let cells = rows.map { $0[c] }
            let present = cells.compactMap { $0 }
            let type: DataType
            if present.isEmpty { type = .null }
            else if present.allSatisfy({ Self.int($0) != nil }) { type = .int }
            else if present.allSatisfy({ Self.double($0) != nil }) { type = .double }
            else if present.allSatisfy({ Self.bool($0) != nil }) { type = .bool }
            else { type = .string }
            types.append(type)
            columns.append(cells.map { cell in
                guard let cell else { return .null }
                switch type {
                case .int: return .int(Self.int(cell)!)
                case .double: return .double(Self.double(cell)!)
                case .bool: return .bool(Self.bool(cell)!)
                default: return .string(cell)
                }
            })
        }
        return DatasetTable(columnNames: names, columnTypes: types, columns: columns, sources: sources, classLabels: [:])
    }

    static func trimmed(_ s: String) -> Substring {
        var sub = Substring(s)
        while sub.first == " " || sub.first == "\t" { sub.removeFirst() }
        while sub.last == " " || sub.last == "\t" { sub.removeLast() }
        return sub
    }

    /// An optionally signed decimal integer that fits 64 bits (surrounding blanks allowed, as pandas allows).
    static func int(_ s: String) -> Int? {
        let t = trimmed(s)
        let digits = t.first == "+" || t.first == "-" ? t.dropFirst() : t
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(t.first == "+" ? t.dropFirst() : t)
    }

    /// A decimal number (`1.5`, `.5`, `1e-3`, `-2.`) or pandas' infinities (`inf`, `-Infinity`).
    static func double(_ s: String) -> Double? {
        let t = trimmed(s)
        let body = t.first == "+" || t.first == "-" ? t.dropFirst() : t
        if ["inf", "infinity"].contains(body.lowercased()) { return t.first == "-" ? -.infinity : .infinity }
        var mantissaDigits = 0, i = body.startIndex
        while i < body.endIndex, body[i].isASCII, body[i].isNumber { mantissaDigits += 1; i = body.index(after: i) }
        if i < body.endIndex, body[i] == "." {
            i = body.index(after: i)
            while i < body.endIndex, body[i].isASCII, body[i].isNumber { mantissaDigits += 1; i = body.index(after: i) }
        }
        guard mantissaDigits > 0 else { return nil }
        if i < body.endIndex, body[i] == "e" || body[i] == "E" {
            i = body.index(after: i)
            if i < body.endIndex, body[i] == "+" || body[i] == "-" { i = body.index(after: i) }
            var expDigits = 0
            while i < body.endIndex, body[i].isASCII, body[i].isNumber { expDigits += 1; i = body.index(after: i) }
            guard expDigits > 0 else { return nil }
        }
        guard i == body.endIndex else { return nil }
        return Double(String(t))
    }

    /// pandas' true and false strings.
    static func bool(_ s: String) -> Bool? {
        switch s {
        case "True", "TRUE", "true": true
        case "False", "FALSE", "false": false
        default: nil
        }
    }
}
