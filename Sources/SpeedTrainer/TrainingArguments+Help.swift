// The `--help` text of the training arguments: every flag, its type, what it does and its default, from the field table.
// Invariant: defaults are printed from `TrainingArguments()` itself (Python's spelling: True, None, 5e-05), never retyped.

extension TrainingArguments {
    /// One line per argument: `--name TYPE  help (default: X)`; booleans that default to true also list `--no_<name>`.
    ///
    /// ```swift
    /// print(TrainingArguments.helpText)
    /// //   --learning_rate FLOAT    The initial learning rate (AdamW). (default: 5e-05)
    /// ```
    public static var helpText: String {
        let defaults = TrainingArguments()
        var rows: [(String, String)] = []
        for field in fields {
            let value = defaults.get(field)
            let shown: String
            switch field.kind {
            case .reportTo: shown = "none"
            case .scheduleKwargs: shown = "{}"
            default: shown = PythonValue.str(value)
            }
            rows.append(("--\(field.name) \(field.kind.helpType)", "\(field.help) (default: \(shown))"))
            if case .bool = field.kind, value == true {
                rows.append(("--no_\(field.name)", "Sets \(field.name) to False."))
            }
        }
        let width = min(44, rows.map(\.0.count).max() ?? 0)
        var out = "Training arguments (transformers' TrainingArguments; --flag value, --flag=value, a boolean flag alone means True):\n"
        for (flag, help) in rows {
            let pad = flag.count < width ? String(repeating: " ", count: width - flag.count) : "\n" + String(repeating: " ", count: width + 2)
            out += "  \(flag)\(pad)  \(help)\n"
        }
        return out
    }
}
