// What a bad ds_config.json produces: ConfigError (thrown) and ConfigWarning (collected), each naming a key path.
// Invariant: every message names the dotted key path, the value as written and what is allowed.

/// A config that cannot be used: wrong type, value out of range, inconsistent batch sizes,
/// unresolved `"auto"`, syntax error.
///
/// ```swift
/// do { _ = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "zero_optimization": {"stage": 4}}"#) }
/// catch let e as ConfigError { print(e) }
/// // zero_optimization.stage: 4 is not allowed (allowed: an integer 0...3)
/// ```
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Dotted path of the offending key, e.g. "zero_optimization.offload_optimizer.device".
    public var keyPath: String
    /// The value as written (JSON), or "missing".
    public var value: String
    /// What would have been accepted.
    public var allowed: String
    /// A sentence replacing the default "<value> is not allowed" (e.g. the batch-size arithmetic).
    public var reason: String?

    public init(keyPath: String, value: String, allowed: String, reason: String? = nil) {
        self.keyPath = keyPath
        self.value = value
        self.allowed = allowed
        self.reason = reason
    }

    init(_ keyPath: String, _ value: JSONValue, allowed: String) {
        self.init(keyPath: keyPath, value: value.rendered(), allowed: allowed)
    }

    public var description: String {
        "\(keyPath): \(reason ?? "\(value) is not allowed") (allowed: \(allowed))"
    }
}

/// Something in a config that DeepSpeed would accept or that SwiftSpeed ignores, but that is
/// probably a mistake: an unknown key (with a "did you mean" suggestion), a deprecated or an
/// unsupported key. The engine logs them.
///
/// ```swift
/// let config = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "gradient_acumulation_steps": 1}"#)
/// config.warnings[0].suggestion   // "gradient_accumulation_steps"
/// ```
public struct ConfigWarning: CustomStringConvertible, Equatable, Sendable, Codable {
    /// Dotted path of the key the warning is about.
    public var keyPath: String
    public var message: String
    /// The known key the author probably meant (full dotted path when it lives in another block).
    public var suggestion: String?

    public init(keyPath: String, message: String, suggestion: String? = nil) {
        self.keyPath = keyPath
        self.message = message
        self.suggestion = suggestion
    }

    public var description: String {
        "\(keyPath): \(message)" + (suggestion.map { "; did you mean \"\($0)\"?" } ?? "")
    }
}
