// TrainingArguments from JSON (a file, a dict, Codable) and from command-line flags with HfArgumentParser's spellings.
// Invariant: both paths end in `init(json:)`, so a flag and the same key in a JSON file are checked by the same code.

import Foundation
import SpeedOptim
import SpeedRuntime

extension TrainingArguments {
    /// Arguments from a JSON object of transformers' keys (what `args.to_json_string()` writes), normalized and
    /// validated as transformers' `__post_init__` does.
    ///
    /// - Throws: ``TrainingArgumentsError`` naming the key: unknown (with the nearest known name), wrong type (with
    ///   the expected one), or a combination transformers rejects.
    ///
    /// ```swift
    /// let args = try TrainingArguments(json: ["output_dir": "out", "learning_rate": 3e-4, "bf16": true])
    /// ```
    public init(json: JSONValue) throws {
        guard case .object(let members) = json else {
            throw TrainingArgumentsError(key: nil, "training arguments must be a JSON object of transformers' keys, got \(json.typeDescription)")
        }
        var args = TrainingArguments()
        for key in members.keys.sorted() {
            let value = members[key]!
            if let field = Self.field(named: key) {
                try args.set(field, value)
            } else if Self.ignoredDefaults[key] != nil {
                if !Self.isIgnoredDefault(key, value) {
                    args.warnings.append("\(key) = \(value.rendered()): a transformers argument SwiftSpeed's Trainer does not use; ignored")
                }
            } else if let renamed = Self.renamedKeys[key] {
                throw TrainingArgumentsError(key: key, "not an argument of transformers 5.x; use \(renamed)")
            } else {
                throw TrainingArgumentsError(key: key, "unknown training argument" + Self.suggestion(for: key, prefix: ""))
            }
        }
        self = try args.validated()
    }

    /// Arguments from a JSON file (HfArgumentParser's `parse_json_file`).
    ///
    /// ```swift
    /// let args = try TrainingArguments.load(path: "training_args.json")
    /// ```
    public static func load(path: String) throws -> TrainingArguments {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingArgumentsError(key: nil, "cannot read the training arguments file \(path); check the path")
        }
        let json: JSONValue
        do { json = try JSONValue.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw TrainingArgumentsError(key: nil, "\(path) is not valid JSON: \(error)")
        }
        do { return try TrainingArguments(json: json) } catch var e as TrainingArgumentsError {
            e.message += " (in \(path))"
            throw e
        }
    }

    /// Arguments from command-line flags as HfArgumentParser reads them: `--name value`, `--name=value`, a boolean
    /// alone (`--fp16`) or with a value (`--fp16 false`; yes/no, true/false, t/f, y/n, 1/0), `--no_<name>` for a
    /// boolean that defaults to true, lists as several values (`--report_to tensorboard csv`), dict arguments as
    /// JSON (`--lr_scheduler_kwargs '{"num_cycles": 2}'`, `--deepspeed '{"zero_optimization": …}'`). A single
    /// argument ending in `.json` is a file of arguments.
    ///
    /// - Throws: ``TrainingArgumentsError``: an unknown flag (with the nearest known one), a missing or wrong value.
    ///
    /// ```swift
    /// let args = try TrainingArguments.parse(arguments: ["--output_dir=out", "--bf16", "--deepspeed", "ds.json"])
    /// ```
    public static func parse(arguments: [String]) throws -> TrainingArguments {
        let (args, rest) = try parseKnown(arguments: arguments, allowUnknown: false)
        precondition(rest.isEmpty)
        return args
    }

    /// Like ``parse(arguments:)``, but flags it does not know (and their values) come back in `remaining`, in order,
    /// for the caller's own parser (HfArgumentParser's `return_remaining_strings`).
    ///
    /// ```swift
    /// let (args, rest) = try TrainingArguments.parseKnown(arguments: ["--model", "gpt2", "--max_steps", "10"])
    /// // rest == ["--model", "gpt2"]
    /// ```
    ///
    /// - Parameter baseFile: a JSON file of arguments the flags then override (`swiftspeed finetune --args FILE`).
    public static func parseKnown(arguments: [String], baseFile: String? = nil) throws
        -> (arguments: TrainingArguments, remaining: [String])
    {
        var base: [String: JSONValue] = [:]
        if let baseFile {
            guard case .object(let object) = try JSONValue.parse(String(decoding: try TrainingArguments.load(path: baseFile).jsonData(), as: UTF8.self)) else {
                throw TrainingArgumentsError(key: nil, "\(baseFile) does not hold a JSON object of training arguments")
            }
            base = object
        }
        return try parseKnown(arguments: arguments, allowUnknown: true, base: base)
    }

    /// The arguments as transformers' `to_json_string()` writes them.
    func jsonData() throws -> Data { try JSONEncoder().encode(self) }

    static func parseKnown(arguments: [String], allowUnknown: Bool, base: [String: JSONValue] = [:]) throws
        -> (arguments: TrainingArguments, remaining: [String])
    {
        if arguments.count == 1, arguments[0].hasSuffix(".json"), !arguments[0].hasPrefix("--"), base.isEmpty {
            return (try load(path: arguments[0]), [])
        }
        var json: [String: JSONValue] = base
        var remaining: [String] = []
        var i = 0
        while i < arguments.count {
            let token = arguments[i]
            i += 1
            // Values that follow a flag: every token up to the next `--flag`.
            func followers() -> [String] {
                var values: [String] = []
                while i < arguments.count, !arguments[i].hasPrefix("--") { values.append(arguments[i]); i += 1 }
                return values
            }
            guard token.hasPrefix("--"), token.count > 2 else {
                if allowUnknown { remaining.append(token); continue }
                throw TrainingArgumentsError(key: nil, "unrecognized argument \(token) (every training argument is a --flag)")
            }
            let body = token.dropFirst(2)
            let name = String(body.split(separator: "=", maxSplits: 1).first ?? "")
            let inline = body.contains("=") ? String(body[body.index(after: body.firstIndex(of: "=")!)...]) : nil
            let flag = "--\(name)"
            var negated = false
            var field = Self.field(named: name)
            if field == nil, name.hasPrefix("no_"), let f = Self.field(named: String(name.dropFirst(3))),
               case .bool(let path) = f.kind, TrainingArguments()[keyPath: path] {
                field = f
                negated = true
            }
            guard let field else {
                if allowUnknown {
                    remaining.append(token)
                    if inline == nil { remaining += followers() }
                    continue
                }
                if Self.ignoredDefaults[name] != nil {
                    throw TrainingArgumentsError(key: flag, "a transformers argument SwiftSpeed's Trainer does not use")
                }
                if let renamed = Self.renamedKeys[name] {
                    throw TrainingArgumentsError(key: flag, "not an argument of transformers 5.x; use --\(renamed)")
                }
                throw TrainingArgumentsError(key: flag, "unknown argument" + Self.suggestion(for: name, prefix: "--"))
            }
            var values = inline.map { [$0] } ?? []
            if inline == nil {
                if field.kind.isList {
                    values = followers()
                } else if i < arguments.count, !arguments[i].hasPrefix("--"),
                          !field.kind.isBool || Self.bool(arguments[i]) != nil {
                    // A boolean takes the next token only when it reads as one (argparse's nargs="?").
                    values = [arguments[i]]
                    i += 1
                }
            }
            if negated {
                guard values.isEmpty else {
                    throw TrainingArgumentsError(key: flag, "takes no value (it sets \(field.name) to false)")
                }
                json[field.name] = false
                continue
            }
            json[field.name] = try Self.cliValue(values, field: field, flag: flag)
        }
        do {
            return (try TrainingArguments(json: .object(json)), remaining)
        } catch var e as TrainingArgumentsError {
            if let key = e.key, json[key] != nil { e.key = "--\(key)" }
            throw e
        }
    }

    /// A flag's text values as the JSON value its key takes.
    static func cliValue(_ values: [String], field: ArgumentField, flag: String) throws -> JSONValue {
        func fail(_ what: String) -> TrainingArgumentsError { TrainingArgumentsError(key: flag, what) }
        if field.kind.isList {
            guard !values.isEmpty else { throw fail("expected at least one value (\(field.kind.expected))") }
            return .array(values.map(JSONValue.string))
        }
        if values.isEmpty {
            if field.kind.isBool { return true }
            throw fail("expected one argument (\(field.kind.expected))")
        }
        let text = values[0]
        switch field.kind {
        case .int, .optionalInt:
            guard let v = Int(text) else { throw fail("invalid int value: '\(text)'; expected an integer") }
            return .int(v)
        case .double, .optionalDouble:
            guard let v = Double(text) else { throw fail("invalid float value: '\(text)'; expected a number") }
            return .double(v)
        case .bool, .optionalBool:
            guard let b = bool(text) else {
                throw fail("Truthy value expected: got \(text) but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive).")
            }
            return .bool(b)
        case .scheduleKwargs, .deepspeed:
            guard text.hasPrefix("{") else { return .string(text) }
            do { return try JSONValue.parse(text) } catch {
                throw fail("'\(text)' is not a JSON object: \(error)")
            }
        default:
            return .string(text)
        }
    }

    /// HfArgumentParser's `string_to_bool`.
    static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "yes", "true", "t", "y", "1": return true
        case "no", "false", "f", "n", "0": return false
        default: return nil
        }
    }

    static func suggestion(for key: String, prefix: String) -> String {
        closestKey(to: key, in: knownNames).map { " (did you mean \(prefix)\($0)?)" } ?? ""
    }

    // MARK: Reading and writing one key

    mutating func set(_ field: ArgumentField, _ value: JSONValue) throws {
        func fail() -> TrainingArgumentsError {
            TrainingArgumentsError(key: field.name, "expected \(field.kind.expected), got \(value.rendered()) (\(value.typeDescription))")
        }
        switch field.kind {
        case .int(let path):
            guard let v = value.intValue else { throw fail() }
            self[keyPath: path] = v
        case .optionalInt(let path):
            if value == .null { self[keyPath: path] = nil; return }
            guard let v = value.intValue else { throw fail() }
            self[keyPath: path] = v
        case .double(let path):
            guard let v = value.doubleValue, v.isFinite else { throw fail() }
            self[keyPath: path] = v
        case .optionalDouble(let path):
            if value == .null { self[keyPath: path] = nil; return }
            guard let v = value.doubleValue, v.isFinite else { throw fail() }
            self[keyPath: path] = v
        case .bool(let path):
            guard case .bool(let b) = value else { throw fail() }
            self[keyPath: path] = b
        case .optionalBool(let path):
            if value == .null { self[keyPath: path] = nil; return }
            guard case .bool(let b) = value else { throw fail() }
            self[keyPath: path] = b
        case .string(let path):
            if value == .null { return }   // transformers: output_dir None → its default
            guard case .string(let s) = value else { throw fail() }
            self[keyPath: path] = s
        case .optionalString(let path):
            if value == .null { self[keyPath: path] = nil; return }
            guard case .string(let s) = value else { throw fail() }
            self[keyPath: path] = s
        case .strategy(let path, let save):
            let allowed: [IntervalStrategy] = save ? [.no, .steps, .epoch, .best] : [.no, .steps, .epoch]
            guard case .string(let s) = value, let v = IntervalStrategy(rawValue: s), allowed.contains(v) else {
                let names = allowed.map { "'\($0.rawValue)'" }.joined(separator: ", ")
                throw TrainingArgumentsError(key: field.name, "\(PythonValue.repr(value)) is not a valid \(save ? "SaveStrategy" : "IntervalStrategy"), please select one of [\(names)]")
            }
            self[keyPath: path] = v
        case .schedule:
            guard case .string(let s) = value else { throw fail() }
            guard let v = HFScheduleType(rawValue: s) else {
                let names = HFScheduleType.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
                if HFScheduleType.unsupportedNames.contains(s) {
                    throw TrainingArgumentsError(key: field.name, "transformers' '\(s)' schedule is not implemented in SwiftSpeed; use one of [\(names)], or a DeepSpeed \"scheduler\" block")
                }
                let near = closestKey(to: s, in: Set(HFScheduleType.allCases.map(\.rawValue))).map { " (did you mean '\($0)'?)" } ?? ""
                throw TrainingArgumentsError(key: field.name, "'\(s)' is not a valid SchedulerType, please select one of [\(names)]\(near)")
            }
            lrSchedulerType = v
        case .scheduleKwargs:
            var v = value
            if case .string(let s) = value, s.hasPrefix("{") {
                do { v = try JSONValue.parse(s) } catch { throw TrainingArgumentsError(key: field.name, "'\(s)' is not a JSON object: \(error)") }
            }
            if v == .null { lrSchedulerKwargs = [:]; return }
            guard case .object(let members) = v else { throw fail() }
            var kwargs: [String: Double] = [:]
            for (k, x) in members {
                guard let d = x.doubleValue else {
                    throw TrainingArgumentsError(key: "\(field.name).\(k)", "expected a number, got \(x.rendered())")
                }
                kwargs[k] = d
            }
            lrSchedulerKwargs = kwargs
        case .optionalStringList(let path):
            if value == .null { self[keyPath: path] = nil; return }
            guard case .array(let items) = value else { throw fail() }
            self[keyPath: path] = try items.map { item in
                guard case .string(let s) = item else { throw fail() }
                return s
            }
        case .reportTo:
            let names: [String]
            switch value {
            case .null: names = ["none"]
            case .string(let s): names = [s]
            case .array(let items):
                names = try items.map { item in
                    guard case .string(let s) = item else { throw fail() }
                    return s
                }
            default: throw fail()
            }
            if names == ["none"] { reportTo = []; return }
            if names == ["all"] { reportTo = ["tensorboard", "csv"]; return }
            for n in names where !["tensorboard", "csv"].contains(n) {
                throw TrainingArgumentsError(key: field.name, "'\(n)' is not an integration SwiftSpeed reports to; use tensorboard, csv, all or none")
            }
            reportTo = names
        case .deepspeed:
            switch value {
            case .null: deepspeed = nil
            case .string(let s) where s.hasPrefix("{"):
                do { deepspeed = .inline(try JSONValue.parse(s)) } catch {
                    throw TrainingArgumentsError(key: field.name, "'\(s)' is not a JSON object: \(error)")
                }
            case .string(let s): deepspeed = .path(s)
            case .object: deepspeed = .inline(value)
            default: throw fail()
            }
        }
    }

    func get(_ field: ArgumentField) -> JSONValue {
        switch field.kind {
        case .int(let path): return .int(self[keyPath: path])
        case .optionalInt(let path): return self[keyPath: path].map(JSONValue.int) ?? .null
        case .double(let path): return .double(self[keyPath: path])
        case .optionalDouble(let path): return self[keyPath: path].map(JSONValue.double) ?? .null
        case .bool(let path): return .bool(self[keyPath: path])
        case .optionalBool(let path): return self[keyPath: path].map(JSONValue.bool) ?? .null
        case .string(let path): return .string(self[keyPath: path])
        case .optionalString(let path): return self[keyPath: path].map(JSONValue.string) ?? .null
        case .strategy(let path, _): return .string(self[keyPath: path].rawValue)
        case .schedule: return .string(lrSchedulerType.rawValue)
        case .scheduleKwargs: return .object(lrSchedulerKwargs.mapValues(JSONValue.double))
        case .optionalStringList(let path): return self[keyPath: path].map { .array($0.map(JSONValue.string)) } ?? .null
        case .reportTo: return .array(reportTo.map(JSONValue.string))
        case .deepspeed: return deepspeed?.json ?? .null
        }
    }

    /// Every argument as transformers' JSON keys (`to_dict()`); 4.x-only keys appear only when set.
    ///
    /// ```swift
    /// try args.json.rendered(pretty: true).write(toFile: "out/training_args.json", atomically: true, encoding: .utf8)
    /// ```
    public var json: JSONValue {
        let defaults = TrainingArguments()
        var out: [String: JSONValue] = [:]
        for field in Self.fields {
            let value = get(field)
            if field.legacy && value == defaults.get(field) { continue }
            out[field.name] = value
        }
        return .object(out)
    }
}

extension TrainingArguments: Codable {
    /// Decodes transformers' JSON keys with the checks of ``init(json:)``.
    public init(from decoder: Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: Encoder) throws {
        try json.encode(to: encoder)
    }
}
