// A Hugging Face datasets-style table: named, typed columns of `DataValue`s, each row remembering its file and line.
// Invariant: every column has `count` cells, each `.null` or of the column's `DataType`; names are unique and ordered.

/// Where a row came from, so an error about it can name the file and line.
public struct RowSource: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based line of the row's first character.
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    public var description: String { "\(file):\(line)" }
}

/// A problem with a data file or a row: it names the file, line and (character) column, or the column name.
public struct DatasetError: Error, CustomStringConvertible, Sendable {
    public var file: String?
    public var line: Int?
    /// 1-based character column in the line, when the problem is at one place.
    public var column: Int?
    public var message: String

    public init(file: String? = nil, line: Int? = nil, column: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    init(_ source: RowSource?, column: Int? = nil, _ message: String) {
        self.init(file: source?.file, line: source?.line, column: column, message)
    }

    /// `file:line:column: message` (the parts that are known).
    public var description: String {
        var place = [file, line.map(String.init), column.map(String.init)].compactMap { $0 }.joined(separator: ":")
        if !place.isEmpty { place += ": " }
        return place + message
    }
}

/// One row: named cells in column order, like a datasets example dict.
///
/// ```swift
/// var row: DataRow = ["text": "great", "label": 1]
/// row["input_ids"] = .ints([101, 2307, 102])   // appended
/// row["text"] = nil                             // removed
/// row.names                                     // ["label", "input_ids"]
/// ```
public struct DataRow: Sendable, Hashable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public private(set) var names: [String]
    public private(set) var values: [DataValue]
    /// The file and line the row was read from (nil for rows made in code).
    public var source: RowSource?

    public init() {
        names = []
        values = []
    }

    /// Cells in order; a name given twice is a caller bug.
    public init<S: Sequence>(_ cells: S, source: RowSource? = nil) where S.Element == (String, DataValue) {
        names = []
        values = []
        self.source = source
        for (name, value) in cells {
            precondition(!names.contains(name), "DataRow: column '\(name)' given twice (columns: \(names))")
            names.append(name)
            values.append(value)
        }
    }

    public init(dictionaryLiteral elements: (String, DataValue)...) { self.init(elements) }

    /// The cell named `name` (`.null` when present but empty), or nil when the row has no such column.
    /// Assigning nil removes the column; assigning to a new name appends it.
    public subscript(name: String) -> DataValue? {
        get { names.firstIndex(of: name).map { values[$0] } }
        set {
            switch (names.firstIndex(of: name), newValue) {
            case let (i?, value?): values[i] = value
            case let (i?, nil): names.remove(at: i); values.remove(at: i)
            case let (nil, value?): names.append(name); values.append(value)
            case (nil, nil): break
            }
        }
    }

    public var count: Int { names.count }

    /// The cells as (name, value) pairs, in order.
    public var cells: [(String, DataValue)] { Array(zip(names, values)) }

    public var description: String {
        "{" + zip(names, values).map { "\"\($0)\": \($1)" }.joined(separator: ", ") + "}"
    }

    /// The non-null cell `name`, or an error naming the row's file and line.
    func required(_ name: String, for use: String) throws -> DataValue {
        guard let value = self[name] else {
            throw DatasetError(source, "row has no column '\(name)' (it has \(names)); \(use) needs it")
        }
        guard value != .null else {
            throw DatasetError(source, "column '\(name)' is null in this row (missing in the file); \(use) needs a value in every row — drop such rows with filter { !($0[\"\(name)\"]?.isNull ?? true) }")
        }
        return value
    }
}

/// A batch of rows as columns, what a batched `map` closure receives and returns (datasets' `batched=True` dict).
///
/// ```swift
/// let tokenized = try table.map(batchSize: 64) { batch in
///     var out = batch
///     out["input_ids"] = batch["text"]!.map { .ints(tokenizer.encode($0.stringValue!).ids) }
///     return out
/// }
/// ```
public struct DataBatch: Sendable, Hashable {
    public private(set) var names: [String]
    public private(set) var columns: [[DataValue]]

    public init() {
        names = []
        columns = []
    }

    /// Columns in order; every column must have the same length and a name given twice is a caller bug.
    public init<S: Sequence>(_ columns: S) where S.Element == (String, [DataValue]) {
        self.init()
        for (name, values) in columns { self[name] = values }
    }

    /// The rows of the batch (0 when it has no columns).
    public var count: Int { columns.first?.count ?? 0 }

    /// The column `name`, or nil; assigning nil removes it, assigning to a new name appends it. A column whose
    /// length differs from the others is a caller bug.
    public subscript(name: String) -> [DataValue]? {
        get { names.firstIndex(of: name).map { columns[$0] } }
        set {
            if let values = newValue, let other = columns.first, names != [name] {
                precondition(values.count == other.count,
                             "DataBatch: column '\(name)' has \(values.count) values but the batch has \(other.count) rows")
            }
            switch (names.firstIndex(of: name), newValue) {
            case let (i?, values?): columns[i] = values
            case let (i?, nil): names.remove(at: i); columns.remove(at: i)
            case let (nil, values?): names.append(name); columns.append(values)
            case (nil, nil): break
            }
        }
    }
}

/// Rows with named, typed columns: Hugging Face datasets' `Dataset`, loaded with ``loadDataset(_:dataFiles:)``.
///
/// Transformations return new tables (the value is immutable in spirit, like datasets' Arrow tables).
///
/// ```swift
/// let table = try DatasetTable(["text": ["good", "bad"], "label": [1, 0]])
/// table.count                       // 2
/// table.columnNames                 // ["text", "label"]
/// table[1]["text"]                  // "bad"
/// table["label"]                    // [1, 0]
/// try table.ints("label")           // [1, 0]
/// ```
public struct DatasetTable: Sendable, CustomStringConvertible {
    public internal(set) var columnNames: [String]
    /// Each column's type (`.null` for a column with no values).
    public internal(set) var columnTypes: [DataType]
    var columns: [[DataValue]]
    var sources: [RowSource?]
    /// The class names of class-encoded columns (`classEncodeColumn`): id k is `classLabels[column]![k]`.
    public internal(set) var classLabels: [String: [String]] = [:]

    /// The number of rows.
    public var count: Int { sources.count }

    /// A table with no rows and no columns.
    public init() {
        columnNames = []
        columnTypes = []
        columns = []
        sources = []
    }

    /// Columns given in order (datasets' `Dataset.from_dict`): each column's values must share one type (nulls
    /// aside) and all columns the same length.
    public init(_ columns: KeyValuePairs<String, [DataValue]>) throws {
        try self.init(columns: columns.map { ($0.key, $0.value) })
    }

    /// Columns given as (name, values) pairs in order.
    public init(columns: [(String, [DataValue])]) throws {
        let n = columns.first?.1.count ?? 0
        var builder = TableBuilder()
        for (name, values) in columns where values.count != n {
            throw DatasetError("column '\(name)' has \(values.count) values, but '\(columns[0].0)' has \(n); every column needs one value per row")
        }
        for r in 0..<n {
            try builder.append(columns.map { ($0.0, $0.1[r]) }, source: nil, what: "row \(r)")
        }
        self = builder.finish(columnOrder: columns.map(\.0))
    }

    /// Rows (datasets' `Dataset.from_list`): a column missing from a row is null there, as datasets fills it.
    public init(rows: [DataRow]) throws {
        var builder = TableBuilder()
        for (r, row) in rows.enumerated() {
            try builder.append(row.cells, source: row.source, what: "row \(r)")
        }
        self = builder.finish()
    }

    init(columnNames: [String], columnTypes: [DataType], columns: [[DataValue]], sources: [RowSource?],
         classLabels: [String: [String]]) {
        self.columnNames = columnNames
        self.columnTypes = columnTypes
        self.columns = columns
        self.sources = sources
        self.classLabels = classLabels
    }

    /// The index of column `name`, or an error listing the columns there are.
    func columnIndex(_ name: String) throws -> Int {
        guard let i = columnNames.firstIndex(of: name) else {
            throw DatasetError("no column '\(name)' (the table has \(columnNames))")
        }
        return i
    }

    /// The type of column `name`, or nil when there is no such column.
    public func type(of name: String) -> DataType? { columnNames.firstIndex(of: name).map { columnTypes[$0] } }

    /// Row `index` (a caller bug when out of range).
    public subscript(index: Int) -> DataRow {
        precondition(index >= 0 && index < count, "DatasetTable: row \(index) is out of range (\(count) rows)")
        return DataRow(zip(columnNames, columns.map { $0[index] }), source: sources[index])
    }

    /// Column `name`'s cells, or nil when there is no such column.
    public subscript(name: String) -> [DataValue]? {
        columnNames.firstIndex(of: name).map { columns[$0] }
    }

    /// Every row, in order.
    public var rows: [DataRow] { (0..<count).map { self[$0] } }

    /// The file and line row `index` came from (nil for rows made in code).
    public func source(of index: Int) -> RowSource? { sources[index] }

    public var description: String {
        "DatasetTable(rows: \(count), columns: [" + zip(columnNames, columnTypes).map { "\($0): \($1)" }.joined(separator: ", ") + "])"
    }

    // MARK: Typed columns, checked at use

    /// Column `name` as ints; a null, missing or non-int cell is an error naming its row's file and line.
    ///
    /// ```swift
    /// let labels = try table.ints("label")     // [1, 0, …]
    /// ```
    public func ints(_ name: String) throws -> [Int] {
        try typed(name, "an int") { $0.intValue }
    }

    /// Column `name` as doubles (ints widen).
    public func doubles(_ name: String) throws -> [Double] {
        try typed(name, "a number") { $0.doubleValue }
    }

    /// Column `name` as strings.
    public func strings(_ name: String) throws -> [String] {
        try typed(name, "a string") { $0.stringValue }
    }

    /// Column `name` as int lists (token ids).
    public func intLists(_ name: String) throws -> [[Int]] {
        try typed(name, "a list of ints") { $0.intsValue }
    }

    func typed<T>(_ name: String, _ what: String, _ read: (DataValue) -> T?) throws -> [T] {
        let i = try columnIndex(name)
        return try columns[i].enumerated().map { r, value in
            if let v = read(value) { return v }
            if value == .null {
                throw DatasetError(sources[r], "column '\(name)' is null in row \(r) (missing in the file); every row needs \(what) — drop such rows with filter { !($0[\"\(name)\"]?.isNull ?? true) }")
            }
            throw DatasetError(sources[r], "column '\(name)' holds \(value) in row \(r), not \(what) (the column's type is \(columnTypes[i]))")
        }
    }
}

/// Builds a table row by row, inferring each column's type as pyarrow does for JSON and failing on a conflict.
struct TableBuilder {
    var names: [String] = []
    var index: [String: Int] = [:]
    var columns: [[DataValue]] = []
    /// The unified type so far (`.null` while only nulls and empty lists were seen).
    var types: [DataType] = []
    /// Where each column's type was first set, for the conflict message.
    var typeOrigin: [String] = []
    /// Whether the column held an empty list (which fits any list type but no scalar type).
    var sawEmptyList: [Bool] = []
    var sources: [RowSource?] = []

    /// Appends one row; `position(name)` gives the character column of a cell for error messages.
    mutating func append(_ cells: [(String, DataValue)], source: RowSource?, what: String,
                         position: (String) -> Int? = { _ in nil }) throws {
        let r = sources.count
        var seen = Set<Int>()
        for (name, value) in cells {
            let c: Int
            if let existing = index[name] {
                c = existing
            } else {
                c = names.count
                index[name] = c
                names.append(name)
                columns.append(Array(repeating: .null, count: r))
                types.append(.null)
                typeOrigin.append("")
                sawEmptyList.append(false)
            }
            guard seen.insert(c).inserted else {
                throw DatasetError(source, column: position(name), "column '\(name)' appears twice in one row")
            }
            let isEmptyList = value != .null && value.inferenceType == nil
            if isEmptyList {
                if types[c] != .null && !types[c].isList {
                    throw DatasetError(source, column: position(name), "column '\(name)' holds a list ([]) here, but \(typeOrigin[c]) made it \(types[c]); a column has one type")
                }
                if !sawEmptyList[c] && types[c] == .null { typeOrigin[c] = source.map { "line \($0.line)" } ?? what }
                sawEmptyList[c] = true
            }
            if let t = value.inferenceType {
                let conflict = sawEmptyList[c] && !t.isList
                guard !conflict, let u = types[c].unified(with: t) else {
                    throw DatasetError(source, column: position(name), "column '\(name)' holds a \(t) (\(value)) here, but \(typeOrigin[c]) made it \(types[c] == .null ? "a list" : types[c].description); a column has one type — fix this value (or quote the other values to make the column strings)")
                }
                if types[c] == .null && !sawEmptyList[c] { typeOrigin[c] = source.map { "line \($0.line)" } ?? what }
                types[c] = u
            }
            columns[c].append(value)
        }
        for c in 0..<names.count where columns[c].count == r { columns[c].append(.null) }
        sources.append(source)
    }

    /// The table, with values converted to their column's final type (ints widened to doubles, empty lists typed).
    func finish(columnOrder: [String]? = nil) -> DatasetTable {
        var outTypes: [DataType] = []
        var outColumns: [[DataValue]] = []
        let order = columnOrder.map { $0.compactMap { index[$0] } } ?? Array(0..<names.count)
        for c in order {
            var t = types[c]
            // Only empty lists (and nulls): a list of unknown elements; call it ints.
            if t == .null, columns[c].contains(where: { $0 != .null }) { t = .ints }
            outTypes.append(t)
            outColumns.append(columns[c].map { $0.converted(to: t)! })
        }
        return DatasetTable(columnNames: order.map { names[$0] }, columnTypes: outTypes, columns: outColumns,
                            sources: sources, classLabels: [:])
    }
}
