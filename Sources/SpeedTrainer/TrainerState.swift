// The Trainer's progress as transformers writes it to `checkpoint-N/trainer_state.json`, and the callback contract.
// Invariant: `logHistory` holds every log and evaluation line in order, with transformers' keys, so a resumed run
// continues the same history and `trainer_state.json` reads like transformers' own.

import SpeedRuntime

/// transformers' `TrainerState` (the fields of `trainer_state.json`).
public struct TrainerState: Codable, Sendable, Equatable {
    public var epoch: Double = 0
    public var globalStep = 0
    public var maxSteps = 0
    public var loggingSteps = 500.0
    public var evalSteps: Double?
    public var saveSteps = 500.0
    public var trainBatchSize = 8
    public var numTrainEpochs = 0
    public var numInputTokensSeen = 0
    public var totalFlos = 0.0
    /// Every `log` and evaluation, in order: `{"loss": …, "learning_rate": …, "grad_norm": …, "epoch": …, "step": …}`.
    public var logHistory: [[String: JSONValue]] = []
    public var bestMetric: Double?
    public var bestGlobalStep: Int?
    public var bestModelCheckpoint: String?
    public var isLocalProcessZero = true
    public var isWorldProcessZero = true
    public var isHyperParamSearch = false
    public var trialName: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case epoch, globalStep = "global_step", maxSteps = "max_steps", loggingSteps = "logging_steps"
        case evalSteps = "eval_steps", saveSteps = "save_steps", trainBatchSize = "train_batch_size"
        case numTrainEpochs = "num_train_epochs", numInputTokensSeen = "num_input_tokens_seen", totalFlos = "total_flos"
        case logHistory = "log_history", bestMetric = "best_metric", bestGlobalStep = "best_global_step"
        case bestModelCheckpoint = "best_model_checkpoint", isLocalProcessZero = "is_local_process_zero"
        case isWorldProcessZero = "is_world_process_zero", isHyperParamSearch = "is_hyper_param_search"
        case trialName = "trial_name"
    }
}

/// What callbacks may ask of the loop (transformers' `TrainerControl`); reset after the loop acts on it.
public struct TrainerControl: Sendable, Equatable {
    public var shouldTrainingStop = false
    public var shouldEpochStop = false
    public var shouldSave = false
    public var shouldEvaluate = false
    public var shouldLog = false

    public init() {}
}

/// Hooks into the Trainer's loop (transformers' `TrainerCallback`); every method does nothing by default.
///
/// ```swift
/// final class PrintLoss: TrainerCallback {
///     func onLog(_ logs: [String: Double], arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl) {
///         print(logs["loss"] ?? .nan)
///     }
/// }
/// let trainer = try Trainer(model: model, arguments: args, trainDataset: train, callbacks: [PrintLoss()])
/// ```
public protocol TrainerCallback: AnyObject {
    func onTrainBegin(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl)
    func onStepEnd(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl)
    func onEpochEnd(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl)
    func onLog(_ logs: [String: Double], arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl)
    func onEvaluate(_ metrics: [String: Double], arguments: TrainingArguments, state: TrainerState,
                    control: inout TrainerControl)
    func onSave(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl)
    func onTrainEnd(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl)
}

extension TrainerCallback {
    public func onTrainBegin(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl) {}
    public func onStepEnd(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl) {}
    public func onEpochEnd(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl) {}
    public func onLog(_ logs: [String: Double], arguments: TrainingArguments, state: TrainerState,
                      control: inout TrainerControl) {}
    public func onEvaluate(_ metrics: [String: Double], arguments: TrainingArguments, state: TrainerState,
                           control: inout TrainerControl) {}
    public func onSave(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl) {}
    public func onTrainEnd(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl) {}
}

/// transformers' `EarlyStoppingCallback`: stops training after `patience` evaluations without an improvement of
/// `metric_for_best_model` by more than `threshold` (needs `load_best_model_at_end` and an eval strategy).
///
/// ```swift
/// let stop = EarlyStoppingCallback(patience: 3)
/// ```
public final class EarlyStoppingCallback: TrainerCallback {
    public let patience: Int
    public let threshold: Double
    public private(set) var evaluationsWithoutImprovement = 0

    public init(patience: Int = 1, threshold: Double = 0) {
        precondition(patience >= 1, "EarlyStoppingCallback: patience must be >= 1, got \(patience)")
        self.patience = patience
        self.threshold = threshold
    }

    public func onEvaluate(_ metrics: [String: Double], arguments: TrainingArguments, state: TrainerState,
                           control: inout TrainerControl) {
        let name = Trainer.metricKey(arguments.metricForBestModel ?? "loss")
        guard let value = metrics[name] else { return }
        let greater = arguments.greaterIsBetter ?? !name.hasSuffix("loss")
        if let best = state.bestMetric {
            let improved = greater ? value - best > threshold : best - value > threshold
            evaluationsWithoutImprovement = improved ? 0 : evaluationsWithoutImprovement + 1
        }
        if evaluationsWithoutImprovement >= patience { control.shouldTrainingStop = true }
    }
}
