// JSON values as Python shows and compares them: transformers' messages print `str(value)` and test `!=` on Python objects.
// Invariant: rendering follows Python's str()/repr() (True, None, 5e-05, [0.9, 0.999], {'a': 1}) and equality follows
// Python's == (1 == 1.0 == True), so SwiftSpeed's DeepSpeed mismatch text is transformers' byte for byte.

import SpeedRuntime

enum PythonValue {
    /// `str(value)` of the value `json.load` would give (strings bare at the top level, quoted inside containers).
    static func str(_ value: JSONValue) -> String {
        if case .string(let s) = value { return s }
        return repr(value)
    }

    /// `repr(value)`: Python's spelling of floats (shortest round trip, `1e-05`, `500000000.0`), `True`/`False`/`None`,
    /// lists with ", " and dicts in their insertion order (here: sorted keys, as JSONValue keeps no order).
    static func repr(_ value: JSONValue) -> String {
        switch value {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return float(d)
        case .string(let s): return quoted(s)
        case .array(let items): return "[" + items.map(repr).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.keys.sorted().map { "\(quoted($0)): \(repr(members[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    /// Python's float repr. Swift's `description` is the same shortest round-trip digits with the same switch to
    /// exponent form (< 1e-4 or ≥ 1e16) and the same two-digit exponent, `inf` and `nan`.
    static func float(_ d: Double) -> String { d.description }

    /// Python's repr of a str: single quotes unless the text holds a single quote and no double quote.
    static func quoted(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case quote: out += "\\\(quote)"
            default: out.append(c)
            }
        }
        return out + String(quote)
    }

    /// Python's `a == b` for values from `json.load`: numbers (and booleans, as 0/1) compare by value, lists
    /// elementwise, dicts by keys and values, strings exactly.
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, v in y[key].map { equal(v, $0) } ?? false }
        default:
            guard let x = number(a), let y = number(b) else { return false }
            return x == y
        }
    }

    private static func number(_ v: JSONValue) -> Double? {
        switch v {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
}
