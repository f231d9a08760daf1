// JSONValue: a JSON tree as a Sendable value — what configs are parsed into, resolved ("auto") and printed from.
// Invariant: integers stay `.int` and other numbers `.double`, so a value renders back as it was written (8, not 8.0).

import Foundation
import SpeedIO

/// A JSON value. Build one with literals; render it with ``rendered(pretty:)``.
///
/// ```swift
/// let v: JSONValue = ["train_batch_size": 32, "fp16": ["enabled": true], "lr": 3e-4]
/// print(v.rendered())   // {"fp16":{"enabled":true},"lr":0.0003,"train_batch_size":32}
/// ```
public enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The number as a Double (ints converted), else nil.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The number as an Int when it is integral (8 or 8.0 or 5e8), else nil.
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d):
            guard d.isFinite, d.rounded() == d, abs(d) < 9.2e18 else { return nil }
            return Int(d)
        default: return nil
        }
    }

    /// The JSON type's name, for error messages ("an integer", "a string", …).
    public var typeDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Compact (default) or indented JSON text with sorted keys.
    public func rendered(pretty: Bool = false) -> String {
        var out = ""
        render(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func render(into out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): out += JSONValue.quoted(s)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            // Arrays of scalars stay on one line even when pretty.
            let flat = !pretty || items.allSatisfy { !$0.isContainer }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += flat && pretty ? ", " : "," }
                if !flat { out += "\n" + String(repeating: "  ", count: indent + 1) }
                item.render(into: &out, pretty: pretty, indent: indent + 1)
            }
            if !flat { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                out += JSONValue.quoted(key) + (pretty ? ": " : ":")
                members[key]!.render(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    private var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }

    static func quoted(_ s: String) -> String { JSONText.quoted(s) }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { rendered() }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

extension JSONValue {
    /// Converts a Foundation-style tree (`[String: Any]`, `[Any]`, NSNumber, NSNull, …).
    ///
    /// - Throws: ``ConfigError`` naming the key path of a value that is not JSON.
    ///
    /// ```swift
    /// let v = try JSONValue(any: ["train_batch_size": 8] as [String: Any])
    /// ```
    public init(any value: Any, keyPath: String = "") throws {
        let dynamicType = type(of: value)
        if dynamicType == Bool.self { self = .bool(value as! Bool); return }
        if let n = value as? NSNumber, dynamicType is NSNumber.Type {
            // Foundation numbers (JSONSerialization): the Objective-C type code tells bool from int from double.
            let code = String(cString: n.objCType)
            if code == "c" || code == "B" { self = .bool(n.boolValue) }
            else if code == "d" || code == "f" { self = .double(n.doubleValue) }
            else { self = .int(n.intValue) }
            return
        }
        switch value {
        case let v as JSONValue: self = v
        case is NSNull: self = .null
        case let i as Int: self = .int(i)
        case let i as Int64: self = .int(Int(i))
        case let i as Int32: self = .int(Int(i))
        case let d as Double: self = .double(d)
        case let f as Float: self = .double(Double(f))
        case let s as String: self = .string(s)
        case let a as [Any]:
            self = .array(try a.enumerated().map { try JSONValue(any: $1, keyPath: "\(keyPath)[\($0)]") })
        case let o as [String: Any]:
            var members: [String: JSONValue] = [:]
            for (k, v) in o { members[k] = try JSONValue(any: v, keyPath: keyPath.isEmpty ? k : "\(keyPath).\(k)") }
            self = .object(members)
        default:
            throw ConfigError(keyPath: keyPath.isEmpty ? "(root)" : keyPath, value: "\(value)",
                              allowed: "JSON values only (null, Bool, numbers, String, arrays, [String: Any])")
        }
    }
}
