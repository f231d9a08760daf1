// The "auto" hook: values the Hugging Face Trainer fills in, looked up by dotted key path before parsing.
// Invariant: "auto" that no resolver fills is an error naming every unresolved path (except DeepSpeed's own "auto" keys).

/// Fills `"auto"` values by key path (what HF's Trainer derives from its arguments).
///
/// Paths are dotted keys, with `[i]` for array elements: `"train_micro_batch_size_per_gpu"`,
/// `"optimizer.params.lr"`, `"optimizer.params.betas"`, `"zero_optimization.reduce_bucket_size"`.
///
/// ```swift
/// let config = try DeepSpeedConfig.load(path: "ds_config.json", worldSize: 4,
///                                       auto: ["train_micro_batch_size_per_gpu": 8, "optimizer.params.lr": 3e-4])
/// let trainer = AutoValues { path in path == "gradient_clipping" ? .double(args.maxGradNorm) : nil }
/// ```
public struct AutoValues: Sendable, ExpressibleByDictionaryLiteral {
    /// Returns the value for a key path whose config value is `"auto"`, or nil to leave it unresolved.
    public let resolve: @Sendable (String) -> JSONValue?

    public init(_ resolve: @escaping @Sendable (String) -> JSONValue?) { self.resolve = resolve }

    public init(_ values: [String: JSONValue]) { self.resolve = { values[$0] } }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    /// Resolves nothing: any `"auto"` is an error (the default outside the Trainer).
    public static let none = AutoValues { _ in nil }

    /// Keys where `"auto"` is one of DeepSpeed's own values, not a Trainer placeholder.
    static let deepSpeedAutoKeys: Set<String> = ["pipeline.stages", "data_types.keep_in_fp32_modules"]

    /// Replaces every `"auto"` in `value` by its resolved value; throws naming every unresolved path.
    func resolving(_ value: JSONValue) throws -> JSONValue {
        var unresolved: [String] = []
        let result = substitute(value, path: "", unresolved: &unresolved)
        if let first = unresolved.first {
            let others = unresolved.dropFirst()
            throw ConfigError(
                keyPath: first, value: "\"auto\"",
                allowed: "a concrete value; \"auto\" is filled in by the Hugging Face Trainer — outside it, "
                    + "write the value, or pass auto: [\"\(first)\": …] when loading the config",
                reason: "\"auto\" is not resolved"
                    + (others.isEmpty ? "" : " (also unresolved: \(others.joined(separator: ", ")))"))
        }
        return result
    }

    private func substitute(_ value: JSONValue, path: String, unresolved: inout [String]) -> JSONValue {
        switch value {
        case .string("auto") where !AutoValues.deepSpeedAutoKeys.contains(path):
            if let v = resolve(path), v != .string("auto") { return v }
            unresolved.append(path.isEmpty ? "(root)" : path)
            return value
        case .array(let items):
            return .array(items.enumerated().map { substitute($1, path: "\(path)[\($0)]", unresolved: &unresolved) })
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for key in members.keys.sorted() {
                out[key] = substitute(members[key]!, path: path.isEmpty ? key : "\(path).\(key)",
                                      unresolved: &unresolved)
            }
            return .object(out)
        default:
            return value
        }
    }
}
