// `loadDataset("json" | "csv" | "text", dataFiles:)`, like datasets.load_dataset: files to named splits of tables.
// Invariant: a file is checked as UTF-8 before any parsing, so a later error can always name its line and column.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `data_files` of `load_dataset`: one path, several (concatenated into one `train` split), or named splits.
///
/// ```swift
/// let one: DataFiles = "reviews.jsonl"
/// let many: DataFiles = ["part-0.jsonl", "part-1.jsonl"]
/// let splits: DataFiles = ["train": "train.csv", "test": ["test-0.csv", "test-1.csv"]]
/// ```
public enum DataFiles: Sendable, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    case files([String])
    case splits([(name: String, files: [String])])

    public init(stringLiteral value: String) { self = .files([value]) }
    public init(arrayLiteral elements: String...) { self = .files(elements) }
    public init(dictionaryLiteral elements: (String, DataFiles)...) {
        self = .splits(elements.map { name, files in
            guard case .files(let paths) = files else {
                preconditionFailure("DataFiles: split '\(name)' must name files, not splits")
            }
            return (name, paths)
        })
    }

    /// (split, files) pairs in order; bare files form the `train` split, as datasets names it.
    var namedSplits: [(name: String, files: [String])] {
        switch self {
        case .files(let paths): [("train", paths)]
        case .splits(let splits): splits
        }
    }
}

/// Named splits (datasets' `DatasetDict`), in the order they were given.
///
/// ```swift
/// let dd = try loadDataset("csv", dataFiles: ["train": "train.csv", "test": "test.csv"])
/// dd.splitNames         // ["train", "test"]
/// dd["train"]!.count
/// ```
public struct DatasetDict: Sendable, CustomStringConvertible {
    public private(set) var splits: [(name: String, table: DatasetTable)]

    public init(_ splits: [(name: String, table: DatasetTable)]) {
        var seen = Set<String>()
        for s in splits { precondition(seen.insert(s.name).inserted, "DatasetDict: split '\(s.name)' given twice") }
        self.splits = splits
    }

    public var splitNames: [String] { splits.map(\.name) }

    /// The split `name`, or nil; assigning replaces it (or appends a new split).
    public subscript(name: String) -> DatasetTable? {
        get { splits.first { $0.name == name }?.table }
        set {
            let i = splits.firstIndex { $0.name == name }
            switch (i, newValue) {
            case let (i?, t?): splits[i].table = t
            case let (i?, nil): splits.remove(at: i)
            case let (nil, t?): splits.append((name, t))
            case (nil, nil): break
            }
        }
    }

    /// The split `name`, or an error naming the splits there are.
    public func split(_ name: String) throws -> DatasetTable {
        guard let t = self[name] else { throw DatasetError("no split '\(name)' (the splits are \(splitNames))") }
        return t
    }

    /// Every split transformed by `transform` (e.g. the same tokenizing `map`).
    public func mapSplits(_ transform: (DatasetTable) throws -> DatasetTable) rethrows -> DatasetDict {
        DatasetDict(try splits.map { ($0.name, try transform($0.table)) })
    }

    public var description: String {
        "DatasetDict(" + splits.map { "\($0.name): \($0.table)" }.joined(separator: ", ") + ")"
    }
}

/// Loads `dataFiles` as datasets' packaged builders do:
///
/// - `"json"`: JSON Lines (one object per line) or one top-level array of objects. Keys become columns in order
///   of first appearance; a key missing from a row is null there. A column has one type: ints and doubles mix
///   (to doubles), but a string in a number column is an error naming the file, line and column.
/// - `"csv"`: a header row, then RFC 4180 records (quoted fields may hold commas, `""` and newlines). Cells are
///   typed per column as pandas infers them: all ints → int, all numbers → double, all `True`/`False` → bool,
///   otherwise the cells' text; empty cells and pandas' NA strings (`NA`, `null`, `NaN`, …) are null. Unlike
///   pandas, an int column with empty cells stays int (with nulls) rather than turning float.
/// - `"text"`: one row per line, in a `text` column (`\n`, `\r\n` or `\r` endings; blank lines kept).
///
/// ```swift
/// let dd = try loadDataset("json", dataFiles: ["train": "train.jsonl", "test": "eval.jsonl"])
/// let train = dd["train"]!                 // DatasetTable
/// train.columnNames                        // ["text", "label"]
/// ```
public func loadDataset(_ format: String, dataFiles: DataFiles) throws -> DatasetDict {
    guard ["json", "csv", "text"].contains(format) else {
        throw DatasetError("unknown dataset format '\(format)'; use \"json\" (JSON Lines or an array), \"csv\" or \"text\"")
    }
    return DatasetDict(try dataFiles.namedSplits.map { split in
        guard !split.files.isEmpty else { throw DatasetError("split '\(split.name)' names no files") }
        return (split.name, try DatasetTable.load(format, files: split.files))
    })
}

/// One split of ``loadDataset(_:dataFiles:)``: `split: "train"` for bare files.
public func loadDataset(_ format: String, dataFiles: DataFiles, split: String) throws -> DatasetTable {
    try loadDataset(format, dataFiles: dataFiles).split(split)
}

extension DatasetTable {
    static func load(_ format: String, files: [String]) throws -> DatasetTable {
        var builder = TableBuilder()
        var csv = CSVTableBuilder()
        for path in files {
            let bytes = try readUTF8File(path)
            switch format {
            case "json": try builder.appendJSON(bytes, file: path)
            case "csv": try csv.append(bytes, file: path)
            default: builder.appendText(bytes, file: path)
            }
        }
        return format == "csv" ? csv.finish() : builder.finish()
    }
}

/// The bytes of `path`, checked to be non-empty UTF-8 (a leading byte-order mark dropped).
func readUTF8File(_ path: String) throws -> [UInt8] {
    guard FileManager.default.fileExists(atPath: path) else {
        throw DatasetError(file: path, "no such file (check the path in dataFiles; relative paths are from \(FileManager.default.currentDirectoryPath))")
    }
    guard (try? FileManager.default.contentsOfDirectory(atPath: path)) == nil else {
        throw DatasetError(file: path, "is a directory; name the data files in it")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw DatasetError(file: path, "cannot be read (check its permissions)")
    }
    var bytes = [UInt8](data)
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
    if let bad = firstInvalidUTF8(bytes) {
        let line = bytes[..<bad].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        let lineStart = bytes[..<bad].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        let column = bytes[lineStart..<bad].reduce(1) { $0 + ($1 & 0xC0 != 0x80 ? 1 : 0) }
        throw DatasetError(file: path, line: line, column: column,
                           "invalid UTF-8 at byte offset \(bad) (byte 0x\(String(bytes[bad], radix: 16, uppercase: true))); save the file as UTF-8")
    }
    guard bytes.contains(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) else {
        throw DatasetError(file: path, "the file is empty" + (bytes.isEmpty ? "" : " (only whitespace)") + "; it needs at least one row")
    }
    return bytes
}

/// The offset of the first byte that does not belong to a valid UTF-8 sequence (overlong forms, surrogates and
/// values past U+10FFFF are invalid), or nil.
func firstInvalidUTF8(_ b: [UInt8]) -> Int? {
    var i = 0
    let n = b.count
    while i < n {
        let c = b[i]
        if c < 0x80 { i += 1; continue }
        let length: Int, low: UInt8, high: UInt8
        switch c {
        case 0xC2...0xDF: length = 2; low = 0x80; high = 0xBF
        case 0xE0: length = 3; low = 0xA0; high = 0xBF
        case 0xE1...0xEC, 0xEE, 0xEF: length = 3; low = 0x80; high = 0xBF
        case 0xED: length = 3; low = 0x80; high = 0x9F
        case 0xF0: length = 4; low = 0x90; high = 0xBF
        case 0xF1...0xF3: length = 4; low = 0x80; high = 0xBF
        case 0xF4: length = 4; low = 0x80; high = 0x8F
        default: return i
        }
        guard i + 1 < n, b[i + 1] >= low, b[i + 1] <= high else { return i }
        for k in 2..<length {
            guard i + k < n, b[i + k] & 0xC0 == 0x80 else { return i }
        }
        i += length
    }
    return nil
}

extension TableBuilder {
    /// One row per line in a `text` column, as datasets' text builder (line endings dropped, blank lines kept,
    /// no row after a final newline).
    mutating func appendText(_ bytes: [UInt8], file: String) {
        var start = 0, line = 1, i = 0
        func emit(_ end: Int) {
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            // The builder cannot fail on a single string column.
            try! append([("text", .string(text))], source: RowSource(file: file, line: line), what: "line \(line)")
            line += 1
        }
        while i < bytes.count {
            if bytes[i] == 0x0A || bytes[i] == 0x0D {
                emit(i)
                if bytes[i] == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A { i += 1 }
                i += 1
                start = i
            } else {
                i += 1
            }
        }
        if start < bytes.count { emit(bytes.count) }
    }
}
