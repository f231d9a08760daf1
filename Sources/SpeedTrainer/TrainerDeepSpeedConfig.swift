// transformers' HfTrainerDeepSpeedConfig: the DeepSpeed config's "auto" values filled from TrainingArguments in two
// passes, every non-auto value that disagrees collected, one error listing them all (transformers' text exactly).
// Invariant: a key the config leaves out is neither added nor checked; only "auto" is replaced; mismatches compare as
// Python's == (1 == 1.0), and the lines keep transformers' order (process pass, then finalize pass).

import Foundation
import SpeedRuntime

/// The DeepSpeed config of a Trainer run, as transformers fills it: ``init(_:arguments:worldSize:)`` is
/// `trainer_config_process` (when the arguments are built), ``finalize(arguments:modelConfig:numTrainingSteps:)`` is
/// `trainer_config_finalize` (at `train()`, once the model and the total steps T are known).
///
/// Filled and checked: `train_micro_batch_size_per_gpu`, `gradient_accumulation_steps`, `train_batch_size`
/// (W · MB · GAS), `gradient_clipping`, `optimizer.params.{lr, betas, eps, weight_decay}`,
/// `scheduler.params.warmup_max_lr`, `fp16.enabled`, `bf16.enabled`, `scheduler.params.total_num_steps` (T),
/// `scheduler.params.warmup_num_steps` (max(1, warmup(T))). Filled only: `scheduler.params.warmup_min_lr` (0),
/// `zero_optimization.reduce_bucket_size` (h²) and, at stage 3, `stage3_prefetch_bucket_size` (⌊0.9·h²⌋) and
/// `stage3_param_persistence_threshold` (10·h).
///
/// ```swift
/// var ds = try TrainerDeepSpeedConfig(args.deepspeed!, arguments: args, worldSize: 2)
/// try ds.finalize(arguments: args, modelConfig: modelConfigJSON, numTrainingSteps: 120)
/// print(ds.json.rendered(pretty: true))                 // --print-deepspeed-config
/// let config = try ds.deepSpeedConfig(worldSize: 2)    // for initialize(model:config:)
/// ```
public struct TrainerDeepSpeedConfig: Sendable, Equatable {
    /// The config as filled so far (what `--print-deepspeed-config` prints).
    public private(set) var json: JSONValue
    /// `- ds KEY=VALUE vs hf NAME=VALUE` lines, in transformers' order.
    public private(set) var mismatches: [String] = []
    /// Whether ``finalize(arguments:modelConfig:numTrainingSteps:)`` ran.
    public private(set) var isFinalized = false

    /// Reads the config (a file or inline JSON) and runs transformers' first pass (`trainer_config_process`).
    ///
    /// - Throws: ``TrainingArgumentsError`` for an unreadable file or text that is not a JSON object.
    public init(_ source: DeepSpeedArgument, arguments: TrainingArguments, worldSize: Int) throws {
        let tree: JSONValue
        switch source {
        case .inline(let value): tree = value
        case .path(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TrainingArgumentsError(key: "deepspeed", "cannot read the DeepSpeed config \(path); check the path")
            }
            do { tree = try JSONValue.parse(String(decoding: data, as: UTF8.self)) } catch {
                throw TrainingArgumentsError(key: "deepspeed", "\(path): \(error)")
            }
        }
        guard case .object = tree else {
            throw TrainingArgumentsError(key: "deepspeed", "the DeepSpeed config must be a JSON object, got \(tree.typeDescription)")
        }
        json = tree
        process(arguments, worldSize: worldSize)
    }

    /// The config a Trainer without `deepspeed` runs with: ZeRO stage 0 and every key transformers fills set to
    /// "auto", so the engine follows the arguments (batch sizes, clipping, precision).
    ///
    /// ```swift
    /// var ds = try TrainerDeepSpeedConfig(arguments: args, worldSize: 1)   // args.deepspeed == nil
    /// ```
    public init(arguments: TrainingArguments, worldSize: Int) throws {
        let implicit: JSONValue = [
            "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "train_batch_size": "auto",
            "gradient_clipping": "auto", "fp16": ["enabled": "auto"], "bf16": ["enabled": "auto"],
            "zero_optimization": ["stage": 0],
        ]
        try self.init(arguments.deepspeed ?? .inline(implicit), arguments: arguments, worldSize: worldSize)
    }

    /// transformers' `trainer_config_process`.
    mutating func process(_ args: TrainingArguments, worldSize: Int) {
        let trainBatchSize = worldSize * args.perDeviceTrainBatchSize * args.gradientAccumulationSteps
        fillMatch("train_micro_batch_size_per_gpu", .int(args.perDeviceTrainBatchSize), "per_device_train_batch_size")
        fillMatch("gradient_accumulation_steps", .int(args.gradientAccumulationSteps), "gradient_accumulation_steps")
        fillMatch("train_batch_size", .int(trainBatchSize), "train_batch_size (calculated)")
        fillMatch("gradient_clipping", .double(args.maxGradNorm), "max_grad_norm")
        fillMatch("optimizer.params.lr", .double(args.learningRate), "learning_rate")
        fillMatch("optimizer.params.betas", [.double(args.adamBeta1), .double(args.adamBeta2)], "adam_beta1+adam_beta2")
        fillMatch("optimizer.params.eps", .double(args.adamEpsilon), "adam_epsilon")
        fillMatch("optimizer.params.weight_decay", .double(args.weightDecay), "weight_decay")
        fillMatch("scheduler.params.warmup_min_lr", .int(0), nil)
        fillMatch("scheduler.params.warmup_max_lr", .double(args.learningRate), "learning_rate")
        if args.saveOnEachNode {
            var checkpoint = json["checkpoint"] ?? [:]
            if case .object = checkpoint {} else { checkpoint = [:] }
            checkpoint["use_node_local_storage"] = true
            json["checkpoint"] = checkpoint
        }
        fillMatch("fp16.enabled", .bool(args.fp16 || args.fp16FullEval), "fp16|fp16_full_eval")
        fillMatch("bf16.enabled", .bool(args.bf16 || args.bf16FullEval), "bf16|bf16_full_eval")
    }

    /// transformers' `trainer_config_finalize`: the hidden-size keys, `total_num_steps` and `warmup_num_steps`; then
    /// throws if either pass found a mismatch. With no `optimizer` block it also sets `zero_allow_untested_optimizer`
    /// (the Trainer then builds its own AdamW, as transformers' `deepspeed_optim_sched`).
    ///
    /// - Parameters:
    ///   - modelConfig: the model's config.json (`hidden_size`, its aliases, `hidden_sizes`, `text_config`); needed
    ///     only when a hidden-size key is "auto".
    ///   - numTrainingSteps: T, the total optimizer steps (see ``TrainingSteps``).
    /// - Throws: ``DeepSpeedMismatchError`` (transformers' text), or ``TrainingArgumentsError`` when a hidden-size
    ///   key is "auto" and the model config has no hidden size.
    public mutating func finalize(arguments args: TrainingArguments, modelConfig: JSONValue?, numTrainingSteps: Int) throws {
        let hiddenKeys = ["zero_optimization.reduce_bucket_size", "zero_optimization.stage3_prefetch_bucket_size",
                          "zero_optimization.stage3_param_persistence_threshold"]
        let autoKeys = hiddenKeys.filter { value(at: $0) == "auto" }
        if !autoKeys.isEmpty {
            guard let h = modelConfig.flatMap(Self.hiddenSize(fromModelConfig:)) else {
                throw TrainingArgumentsError(key: "deepspeed", "The model's config file has neither `hidden_size` nor `hidden_sizes` entry, therefore it's not possible to automatically fill out the following `auto` entries in the DeepSpeed config file: \(PythonValue.repr(.array(autoKeys.map(JSONValue.string)))). You can fix that by replacing `auto` values for these keys with an integer value of your choice.")
            }
            fillMatch("zero_optimization.reduce_bucket_size", .int(h * h), nil)
            if zeroStage == 3 {
                // Python evaluates int(0.9 * h * h) as (0.9 * h) * h.
                fillMatch("zero_optimization.stage3_prefetch_bucket_size", .int(Int(0.9 * Double(h) * Double(h))), nil)
                fillMatch("zero_optimization.stage3_param_persistence_threshold", .int(10 * h), nil)
            }
        }
        fillMatch("scheduler.params.total_num_steps", .int(numTrainingSteps), "num_training_steps (calculated)")
        fillMatch("scheduler.params.warmup_num_steps", .int(max(1, args.warmupSteps(forTrainingSteps: numTrainingSteps))),
                  "warmup_steps")
        if !mismatches.isEmpty { throw DeepSpeedMismatchError(mismatches: mismatches) }
        if !hasOptimizer { json["zero_allow_untested_optimizer"] = true }
        isFinalized = true
    }

    /// Whether the config has an `optimizer` block (else the Trainer builds AdamW with decay groups).
    public var hasOptimizer: Bool { json["optimizer"] != nil }
    /// Whether the config has a `scheduler` block (else the Trainer builds its `lr_scheduler_type` schedule).
    public var hasScheduler: Bool { json["scheduler"] != nil }
    /// `zero_optimization.stage` (-1 when absent, as accelerate's `HfDeepSpeedConfig`).
    public var zeroStage: Int { value(at: "zero_optimization.stage")?.intValue ?? -1 }

    /// The filled config parsed and validated by SwiftSpeed, for `initialize`. "auto" left inside
    /// `zero_optimization` (the stage-3 keys at stages 0–2) takes DeepSpeed's default, as DeepSpeed's config model
    /// drops "auto" there; any other leftover "auto" is ``ConfigError``'s usual error naming its key.
    ///
    /// - Precondition: ``finalize(arguments:modelConfig:numTrainingSteps:)`` ran (total_num_steps and the
    ///   hidden-size keys are filled only there).
    /// - Parameter trainBatchSize: replaces train_batch_size (the Trainer's data-parallel batch under tensor
    ///   parallelism, where the filled value counts every rank).
    public func deepSpeedConfig(worldSize: Int, trainBatchSize: Int? = nil) throws -> DeepSpeedConfig {
        precondition(isFinalized, "TrainerDeepSpeedConfig.deepSpeedConfig: call finalize(arguments:modelConfig:numTrainingSteps:) first")
        var tree = json
        if let zero = tree["zero_optimization"] { tree["zero_optimization"] = Self.droppingAuto(zero) }
        if let trainBatchSize { tree["train_batch_size"] = .int(trainBatchSize) }
        return try DeepSpeedConfig(json: tree, worldSize: worldSize)
    }

    /// transformers' hidden size of a model config: `hidden_size` (or the alias a config class maps to it:
    /// GPT-2's `n_embd`, T5/BART's `d_model`, DistilBERT's `dim`), else max(`hidden_sizes`), else the same inside
    /// `text_config`.
    ///
    /// ```swift
    /// TrainerDeepSpeedConfig.hiddenSize(fromModelConfig: ["model_type": "gpt2", "n_embd": 768])   // 768
    /// ```
    public static func hiddenSize(fromModelConfig config: JSONValue) -> Int? {
        func direct(_ c: JSONValue) -> Int? {
            for key in ["hidden_size", "n_embd", "d_model", "dim"] { if let h = c[key]?.intValue { return h } }
            if case .array(let sizes)? = c["hidden_sizes"] { return sizes.compactMap(\.intValue).max() }
            return nil
        }
        return direct(config) ?? config["text_config"].flatMap(direct)
    }

    // MARK: transformers' helpers

    /// `fill_match` (`hfName` nil: `fill_only`).
    private mutating func fillMatch(_ keyPath: String, _ hfValue: JSONValue, _ hfName: String?) {
        let parts = keyPath.split(separator: ".").map(String.init)
        guard let current = Self.lookup(json, parts.dropLast()), case .object(let node) = current else { return }
        let key = parts.last!
        if node[key] == "auto" {
            json = Self.replacing(json, at: parts[...], with: hfValue)
            return
        }
        guard let hfName, let dsValue = node[key], dsValue != .null, !PythonValue.equal(dsValue, hfValue) else { return }
        mismatches.append("- ds \(keyPath)=\(PythonValue.str(dsValue)) vs hf \(hfName)=\(PythonValue.str(hfValue))")
    }

    private func value(at keyPath: String) -> JSONValue? {
        Self.lookup(json, keyPath.split(separator: ".").map(String.init)[...])
    }

    private static func lookup(_ tree: JSONValue, _ parts: ArraySlice<String>) -> JSONValue? {
        var node = tree
        for p in parts {
            guard case .object(let members) = node, let next = members[p] else { return nil }
            node = next
        }
        return node
    }

    private static func replacing(_ tree: JSONValue, at parts: ArraySlice<String>, with value: JSONValue) -> JSONValue {
        guard let first = parts.first else { return value }
        guard case .object(var members) = tree else { return tree }
        members[first] = replacing(members[first] ?? .null, at: parts.dropFirst(), with: value)
        return .object(members)
    }

    private static func droppingAuto(_ tree: JSONValue) -> JSONValue {
        guard case .object(let members) = tree else { return tree }
        return .object(members.filter { $0.value != "auto" }.mapValues(droppingAuto))
    }
}

/// transformers' error for DeepSpeed values that disagree with the training arguments.
///
/// ```
/// Please correct the following DeepSpeed config values that mismatch TrainingArguments values:
/// - ds train_micro_batch_size_per_gpu=4 vs hf per_device_train_batch_size=8
/// The easiest method is to set these DeepSpeed config values to 'auto'.
/// ```
public struct DeepSpeedMismatchError: Error, CustomStringConvertible, Equatable, Sendable {
    public let mismatches: [String]

    public var description: String {
        "Please correct the following DeepSpeed config values that mismatch TrainingArguments values:\n"
            + mismatches.joined(separator: "\n")
            + "\nThe easiest method is to set these DeepSpeed config values to 'auto'."
    }
}

extension JSONValue {
    /// The member `key` of an object (nil for other values or a missing key); setting on a non-object does nothing.
    subscript(key: String) -> JSONValue? {
        get {
            guard case .object(let members) = self else { return nil }
            return members[key]
        }
        set {
            guard case .object(var members) = self else { return }
            members[key] = newValue
            self = .object(members)
        }
    }
}
