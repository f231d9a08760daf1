// One cell of a `DatasetTable` (Hugging Face datasets' Arrow values) and the column types they make.
// Invariant: a table column holds values of its one `DataType` or `.null`; ints in a double column are stored as doubles.

/// A typed cell: what a JSON, CSV or text file, or a `map` closure, puts in a row.
///
/// Literals build values, so rows read naturally in code:
///
/// ```swift
/// let row: DataRow = ["text": "a gripping film", "label": 1, "input_ids": [101, 1037, 102]]
/// row["label"]?.intValue          // 1
/// ```
public enum DataValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case ints([Int])
    case doubles([Double])
    case strings([String])

    /// The value's type, or nil for `.null`.
    public var type: DataType? {
        switch self {
        case .null: nil
        case .bool: .bool
        case .int: .int
        case .double: .double
        case .string: .string
        case .ints: .ints
        case .doubles: .doubles
        case .strings: .strings
        }
    }

    public var isNull: Bool { self == .null }
    public var intValue: Int? { if case .int(let v) = self { v } else { nil } }
    /// A double, or an int widened to one.
    public var doubleValue: Double? {
        switch self {
        case .double(let v): v
        case .int(let v): Double(v)
        default: nil
        }
    }
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    public var intsValue: [Int]? { if case .ints(let v) = self { v } else { nil } }
    /// Doubles, or ints widened to them.
    public var doublesValue: [Double]? {
        switch self {
        case .doubles(let v): v
        case .ints(let v): v.map(Double.init)
        default: nil
        }
    }
    public var stringsValue: [String]? { if case .strings(let v) = self { v } else { nil } }

    /// The value as Python would print it in a row dict (`None`, `True`, `'text'`, `[1, 2]`), for error messages.
    public var description: String {
        func quoted(_ s: String) -> String {
            let short = s.count > 60 ? String(s.prefix(57)) + "..." : s
            return "\"" + short.replacingAll("\"", with: "\\\"") + "\""
        }
        switch self {
        case .null: return "null"
        case .bool(let v): return v ? "true" : "false"
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .string(let v): return quoted(v)
        case .ints(let v): return "[" + v.map(String.init).joined(separator: ", ") + "]"
        case .doubles(let v): return "[" + v.map { String($0) }.joined(separator: ", ") + "]"
        case .strings(let v): return "[" + v.map(quoted).joined(separator: ", ") + "]"
        }
    }
}

extension String {
    /// Every occurrence of `target` replaced (Foundation-free).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        out.reserveCapacity(count)
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}

extension DataValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
}

extension DataValue: ExpressibleByArrayLiteral {
    /// `[1, 2]` is `.ints`, `[1.5, 2]` is `.doubles`, `["a"]` is `.strings`; `[]` is `.ints([])`.
    public init(arrayLiteral elements: DataValue...) {
        if elements.allSatisfy({ $0.intValue != nil }) {
            self = .ints(elements.map { $0.intValue! })
        } else if elements.allSatisfy({ $0.doubleValue != nil }) {
            self = .doubles(elements.map { $0.doubleValue! })
        } else if elements.allSatisfy({ $0.stringValue != nil }) {
            self = .strings(elements.map { $0.stringValue! })
        } else {
            preconditionFailure("DataValue: an array literal holds ints, doubles or strings only, got \(elements)")
        }
    }
}

/// A column's type, like datasets' `Value("int64")`, `Value("float64")`, `Value("string")`, `Value("bool")`,
/// `List(Value(...))`; `.null` is a column with no non-null value.
public enum DataType: String, Sendable, Hashable, Codable, CustomStringConvertible {
    case null, bool, int, double, string, ints, doubles, strings

    public var description: String { rawValue }

    var isList: Bool { self == .ints || self == .doubles || self == .strings }

    /// The common type of two column types, as pyarrow unifies JSON columns (int with double is double, null
    /// with anything is that thing), or nil when they conflict (a string and an int).
    func unified(with other: DataType) -> DataType? {
        if self == other { return self }
        switch (self, other) {
        case (.null, let t), (let t, .null): return t
        case (.int, .double), (.double, .int): return .double
        case (.ints, .doubles), (.doubles, .ints): return .doubles
        default: return nil
        }
    }
}

extension DataValue {
    /// This value stored as a cell of a `type` column (an int in a double column becomes a double), or nil when
    /// it does not fit.
    func converted(to type: DataType) -> DataValue? {
        switch (self, type) {
        case (.null, _): return .null
        case (.int(let v), .double): return .double(Double(v))
        case (.ints(let v), .doubles): return .doubles(v.map(Double.init))
        // An empty list fits any list column.
        case (.ints(let v), .strings) where v.isEmpty: return .strings([])
        default: return self.type == type ? self : nil
        }
    }

    /// The type a column of this value can take: an empty list could still be any list (`nil` element type).
    var inferenceType: DataType? {
        if case .ints(let v) = self, v.isEmpty { return nil }
        return type
    }
}
