// ConfigReader: typed, path-aware reads of one JSON object of the config, with defaults and range checks.
// Invariant: every key a reader is asked about counts as known, so finish() can warn about the rest with suggestions.

/// Warnings collected while one config is parsed, plus the keys each block knows (for suggestions).
final class ConfigLog {
    var warnings: [ConfigWarning] = []
    /// Block path → keys read there ("" = top level).
    var knownKeys: [String: Set<String>] = [:]

    func warn(_ keyPath: String, _ message: String, suggestion: String? = nil) {
        warnings.append(ConfigWarning(keyPath: keyPath, message: message, suggestion: suggestion))
    }
}

/// Reads one JSON object of the config (the top level or a block such as `zero_optimization`).
///
/// A JSON `null` reads as "not given" (DeepSpeed's `get_scalar_param` does the same), so the default applies.
final class ConfigReader {
    let path: String
    let members: [String: JSONValue]
    let log: ConfigLog
    private(set) var queried: Set<String> = []

    init(path: String, value: JSONValue, log: ConfigLog) throws {
        guard case .object(let members) = value else {
            throw ConfigError(path.isEmpty ? "(root)" : path, value, allowed: "an object")
        }
        self.path = path
        self.members = members
        self.log = log
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The raw value (nil when absent or null); marks `key` as known.
    func raw(_ key: String) -> JSONValue? {
        queried.insert(key)
        guard let v = members[key], v != .null else { return nil }
        return v
    }

    func contains(_ key: String) -> Bool { raw(key) != nil }

    func bool(_ key: String, _ defaultValue: Bool) throws -> Bool {
        try optionalBool(key) ?? defaultValue
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let v = raw(key) else { return nil }
        guard case .bool(let b) = v else { throw ConfigError(keyPath(key), v, allowed: "true or false") }
        return b
    }

    func int(_ key: String, _ defaultValue: Int, min: Int? = nil, max: Int? = nil) throws -> Int {
        try optionalInt(key, min: min, max: max) ?? defaultValue
    }

    func optionalInt(_ key: String, min: Int? = nil, max: Int? = nil) throws -> Int? {
        guard let v = raw(key) else { return nil }
        let allowed = ConfigReader.rangeText("an integer", min: min.map(Double.init), max: max.map(Double.init),
                                             minExclusive: false, integer: true)
        guard let i = v.intValue else { throw ConfigError(keyPath(key), v, allowed: allowed) }
        if let min, i < min { throw ConfigError(keyPath(key), v, allowed: allowed) }
        if let max, i > max { throw ConfigError(keyPath(key), v, allowed: allowed) }
        return i
    }

    func double(_ key: String, _ defaultValue: Double, min: Double? = nil, max: Double? = nil,
                minExclusive: Bool = false) throws -> Double {
        try optionalDouble(key, min: min, max: max, minExclusive: minExclusive) ?? defaultValue
    }

    func optionalDouble(_ key: String, min: Double? = nil, max: Double? = nil,
                        minExclusive: Bool = false) throws -> Double? {
        guard let v = raw(key) else { return nil }
        let allowed = ConfigReader.rangeText("a number", min: min, max: max, minExclusive: minExclusive, integer: false)
        guard let d = v.doubleValue, d.isFinite else { throw ConfigError(keyPath(key), v, allowed: allowed) }
        if let min, minExclusive ? d <= min : d < min { throw ConfigError(keyPath(key), v, allowed: allowed) }
        if let max, d > max { throw ConfigError(keyPath(key), v, allowed: allowed) }
        return d
    }

    func optionalString(_ key: String) throws -> String? {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v else { throw ConfigError(keyPath(key), v, allowed: "a string") }
        return s
    }

    func string(_ key: String, _ defaultValue: String) throws -> String {
        try optionalString(key) ?? defaultValue
    }

    /// A string from a fixed set (compared case-insensitively); returns the canonical spelling.
    func choice(_ key: String, _ defaultValue: String?, from allowedValues: [String]) throws -> String? {
        guard let v = raw(key) else { return defaultValue }
        let allowed = "one of " + allowedValues.map { "\"\($0)\"" }.joined(separator: ", ")
        guard case .string(let s) = v else { throw ConfigError(keyPath(key), v, allowed: allowed) }
        guard let match = allowedValues.first(where: { $0.lowercased() == s.lowercased() }) else {
            throw ConfigError(keyPath(key), v, allowed: allowed)
        }
        return match
    }

    /// A nested block, or nil when absent.
    func block(_ key: String) throws -> ConfigReader? {
        guard let v = raw(key) else { return nil }
        return try ConfigReader(path: keyPath(key), value: v, log: log)
    }

    /// Warns about every key that nothing asked about: `ignored` keys (DeepSpeed knows them,
    /// SwiftSpeed does not use them) with their note, the rest as unknown with a suggestion.
    func finish(ignored: [String: String] = [:]) {
        log.knownKeys[path] = queried.union(ignored.keys)
        for key in members.keys.sorted() where !queried.contains(key) {
            if let note = ignored[key] {
                log.warn(keyPath(key), note)
            } else {
                let suggestion = closestKey(to: key, in: queried.union(ignored.keys)).map(keyPath)
                    ?? keyElsewhere(key)
                log.warn(keyPath(key), "unknown key, ignored", suggestion: suggestion)
            }
        }
    }

    /// The same key in another block already read (e.g. top-level "stage" → "zero_optimization.stage").
    private func keyElsewhere(_ key: String) -> String? {
        let blocks = log.knownKeys.sorted(by: { $0.key < $1.key }).filter { $0.key != path && !$0.key.isEmpty }
        for distance in 0...1 {
            for (block, keys) in blocks {
                if let match = closestKey(to: key, in: keys, maxDistance: distance) { return "\(block).\(match)" }
            }
        }
        return nil
    }

    static func rangeText(_ kind: String, min: Double?, max: Double?, minExclusive: Bool, integer: Bool) -> String {
        func f(_ x: Double) -> String { integer ? String(Int(x)) : "\(x)" }
        switch (min, max) {
        case let (lo?, hi?) where integer && !minExclusive: return "\(kind) \(f(lo))...\(f(hi))"
        case let (lo?, hi?): return "\(kind) \(minExclusive ? ">" : ">=") \(f(lo)) and <= \(f(hi))"
        case let (lo?, nil): return "\(kind) \(minExclusive ? ">" : ">=") \(f(lo))"
        case let (nil, hi?): return "\(kind) <= \(f(hi))"
        case (nil, nil): return kind
        }
    }
}
