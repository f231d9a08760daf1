// TrainingArguments: Hugging Face's `transformers.TrainingArguments` (5.x names and defaults) as one Codable value.
// Invariant: a TrainingArguments built by `init(json:)`, `load(path:)` or `parse(arguments:)` is normalized and validated
// exactly as transformers' `__post_init__` does (eval_steps from logging_steps, report_to "none" → [], …).

import SpeedOptim
import SpeedRuntime

/// When to log, evaluate or save (transformers' `IntervalStrategy`; `save_strategy` also takes `best`).
public enum IntervalStrategy: String, Codable, Sendable, CaseIterable {
    case no, steps, epoch
    /// `save_strategy` only: save whenever a new best metric is reached.
    case best
}

/// `deepspeed`: a path to a `ds_config.json` or the config itself (transformers takes a path or a dict; on the
/// command line a value starting with `{` is JSON).
///
/// ```swift
/// args.deepspeed = .path("ds_config.json")
/// args.deepspeed = .inline(["zero_optimization": ["stage": 2], "train_micro_batch_size_per_gpu": "auto"])
/// ```
public enum DeepSpeedArgument: Sendable, Equatable {
    case path(String)
    case inline(JSONValue)

    /// The JSON form: the path string, or the object.
    public var json: JSONValue {
        switch self {
        case .path(let p): return .string(p)
        case .inline(let v): return v
        }
    }
}

/// Hugging Face's `TrainingArguments`: the same snake_case keys (JSON, command line) and defaults as transformers
/// 5.x, plus 4.x's `warmup_ratio` and `overwrite_output_dir`. Keys of transformers' arguments that SwiftSpeed does not
/// use are accepted and ignored (with a warning when not at transformers' default); any other key is an error that
/// suggests the nearest known one.
///
/// ```swift
/// var args = try TrainingArguments.parse(arguments: ["--output_dir", "out", "--per_device_train_batch_size", "16",
///                                                    "--bf16", "--deepspeed", "ds_config.json"])
/// args.learningRate          // 5e-5
/// let same = try TrainingArguments.load(path: "args.json")
/// print(TrainingArguments.helpText)
/// ```
public struct TrainingArguments: Sendable, Equatable {
    // Output
    public var outputDir = "trainer_output"
    /// transformers 4.x; accepted, the Trainer never refuses an existing output_dir.
    public var overwriteOutputDir = false
    public var doTrain = false
    public var doEval = false
    public var doPredict = false
    public var resumeFromCheckpoint: String?

    // Duration and batch size
    public var perDeviceTrainBatchSize = 8
    public var perDeviceEvalBatchSize = 8
    public var gradientAccumulationSteps = 1
    public var evalAccumulationSteps: Int?
    public var numTrainEpochs = 3.0
    /// > 0: the number of optimizer steps, overriding `numTrainEpochs`.
    public var maxSteps = -1

    // Optimizer and schedule
    public var learningRate = 5e-5
    public var weightDecay = 0.0
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    /// 0 disables clipping.
    public var maxGradNorm = 1.0
    /// "adamw_torch_fused" (transformers' default with torch >= 2.8) or "adamw_torch": the same AdamW here.
    public var optim = "adamw_torch_fused"
    public var lrSchedulerType = HFScheduleType.linear
    /// Extra schedule arguments (`num_cycles`, `lr_end`, `power`, `timescale`, `min_lr`, `min_lr_rate`).
    public var lrSchedulerKwargs: [String: Double] = [:]
    /// An integer number of warmup steps, or a ratio of the total steps when < 1 (transformers 5.x).
    public var warmupSteps = 0.0
    /// transformers 4.x: warmup as ⌈ratio · total steps⌉, used when `warmupSteps` is 0.
    public var warmupRatio: Double?
    public var labelSmoothingFactor = 0.0

    // Precision and memory
    public var fp16 = false
    public var bf16 = false
    public var fp16FullEval = false
    public var bf16FullEval = false
    /// transformers 5.x's name; `gradientCheckpointing` is its deprecated alias and mirrors it after validation.
    public var activationCheckpointing: Bool?
    public var gradientCheckpointing: Bool?
    public var useCpu = false

    // Logging
    public var loggingStrategy = IntervalStrategy.steps
    /// Every N optimizer steps (a ratio of the total when < 1).
    public var loggingSteps = 500.0
    public var loggingFirstStep = false
    public var loggingNanInfFilter = true
    /// After validation: the list of integrations ("tensorboard", "csv"); "none" → [].
    public var reportTo: [String] = []
    public var runName: String?
    /// nil → false after validation (transformers: true only when the log level is above WARNING).
    public var disableTqdm: Bool?

    // Evaluation
    public var evalStrategy = IntervalStrategy.no
    /// nil with `evalStrategy` steps → `loggingSteps` after validation.
    public var evalSteps: Double?
    public var evalDelay = 0.0
    public var predictionLossOnly = false

    // Saving and best model
    public var saveStrategy = IntervalStrategy.steps
    public var saveSteps = 500.0
    public var saveTotalLimit: Int?
    public var saveOnlyModel = false
    public var saveOnEachNode = false
    public var loadBestModelAtEnd = false
    /// "loss" after validation when `loadBestModelAtEnd` and unset.
    public var metricForBestModel: String?
    /// After validation: !metricForBestModel.hasSuffix("loss") when unset.
    public var greaterIsBetter: Bool?

    // Reproducibility and data
    public var seed = 42
    public var dataSeed: Int?
    public var dataloaderDropLast = false
    public var removeUnusedColumns = true
    public var labelNames: [String]?

    // DeepSpeed
    public var deepspeed: DeepSpeedArgument?

    /// Ignored and deprecated keys met while parsing (not part of the JSON).
    public var warnings: [String] = []

    /// transformers' defaults (before validation; ``validated()`` normalizes them).
    public init() {}

    /// Defaults with `outputDir`, normalized and validated.
    ///
    /// ```swift
    /// let args = try TrainingArguments(outputDir: "out")
    /// ```
    public init(outputDir: String) throws {
        self.outputDir = outputDir
        self = try validated()
    }

    /// The transformers 4.x/5.x rule for warmup over `numTrainingSteps` total steps: `warmup_steps` when ≥ 1
    /// (truncated to an integer), ⌈T · warmup_steps⌉ when in [0, 1); when `warmup_steps` is 0 and 4.x's
    /// `warmup_ratio` is set, ⌈T · warmup_ratio⌉.
    ///
    /// ```swift
    /// args.warmupSteps = 0.1
    /// args.warmupSteps(forTrainingSteps: 25)   // 3
    /// ```
    public func warmupSteps(forTrainingSteps total: Int) -> Int {
        if warmupSteps == 0, let ratio = warmupRatio { return Int((Double(total) * ratio).rounded(.up)) }
        return warmupSteps >= 1 ? Int(warmupSteps) : Int((Double(total) * warmupSteps).rounded(.up))
    }

    /// The mixed precision in effect: "fp16", "bf16" or "no" (transformers' `mixed_precision`).
    public var mixedPrecision: String { fp16 ? "fp16" : (bf16 ? "bf16" : "no") }
}

/// A bad training argument: the key (as spelt on the command line or in JSON), the value and what is allowed.
///
/// ```swift
/// do { _ = try TrainingArguments.parse(arguments: ["--learning_rat", "1e-4"]) } catch { print(error) }
/// // --learning_rat: unknown argument (did you mean --learning_rate?)
/// ```
public struct TrainingArgumentsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The argument's name, e.g. "per_device_train_batch_size" (nil for errors about the whole input).
    public var key: String?
    public var message: String

    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { key.map { "\($0): \(message)" } ?? message }
}
