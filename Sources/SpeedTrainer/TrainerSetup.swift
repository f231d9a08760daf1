// What the Trainer hands to `initialize`: the filled DeepSpeed config, the step counts, its optimizer, groups, schedule.
// Invariant: the Trainer builds an optimizer (AdamW, two decay groups) only when the config has no `optimizer` block, and
// a schedule (lr_scheduler_type with warmup(T)) only when it has no `scheduler` block — transformers' deepspeed_optim_sched.

import SpeedNN
import SpeedOptim
import SpeedRuntime

/// The DeepSpeed side of a Trainer run, resolved for `train()`.
///
/// ```swift
/// let setup = try TrainerSetup(arguments: args, modelConfig: modelConfig, trainRows: dataset.count, worldSize: group.size)
/// if printConfig { print(setup.json.rendered(pretty: true)) }
/// let opt = try setup.optimization(model: model)
/// let (engine, _, _, _) = try initialize(model: model, config: setup.config, optimizer: opt.optimizer,
///                                        lrScheduler: opt.scheduler, processGroup: group,
///                                        parameterGroups: opt.parameterGroups)
/// ```
public struct TrainerSetup {
    public let arguments: TrainingArguments
    /// The DeepSpeed config with every "auto" filled (both passes), as JSON (`--print-deepspeed-config`).
    public let json: JSONValue
    /// The same config parsed and validated for `initialize`.
    public let config: DeepSpeedConfig
    public let steps: TrainingSteps
    /// warmup(T) from the arguments.
    public let warmupSteps: Int
    /// `tensor_parallel.autotp_size` (1 without tensor parallelism) and the data-parallel ranks it leaves.
    public let tensorParallelSize: Int
    public let dataParallelSize: Int

    /// Runs both of transformers' passes on `arguments.deepspeed` (or the implicit all-"auto" stage-0 config).
    ///
    /// With `tensor_parallel.autotp_size` N the ranks form data-parallel groups of N tensor-parallel ranks, as in
    /// transformers' Trainer: the "auto" train_batch_size is still world × micro-batch × GAS (transformers fills it so,
    /// and DeepSpeed checks it against the whole world when no mpu is passed), while the steps per epoch and the engine
    /// count world ÷ N data-parallel ranks.
    ///
    /// - Throws: ``DeepSpeedMismatchError`` (every mismatch of both passes), ``TrainingArgumentsError``, ``ConfigError``.
    public init(arguments: TrainingArguments, modelConfig: JSONValue?, trainRows: Int, worldSize: Int) throws {
        var ds = try TrainerDeepSpeedConfig(arguments: arguments, worldSize: worldSize)
        let tp = Swift.max(1, ds.json["tensor_parallel"]?["autotp_size"]?.intValue ?? 1)
        guard worldSize % tp == 0 else {
            throw TrainingArgumentsError(key: "deepspeed", "tensor_parallel.autotp_size \(tp) does not divide the \(worldSize) ranks of the job; launch a multiple of \(tp) processes")
        }
        let dp = worldSize / tp
        let steps = TrainingSteps(arguments: arguments, trainRows: trainRows, worldSize: dp)
        try ds.finalize(arguments: arguments, modelConfig: modelConfig, numTrainingSteps: steps.totalSteps)
        self.arguments = arguments
        json = ds.json
        config = try ds.deepSpeedConfig(worldSize: dp, trainBatchSize: tp > 1
            ? arguments.perDeviceTrainBatchSize * arguments.gradientAccumulationSteps * dp : nil)
        self.steps = steps
        warmupSteps = arguments.warmupSteps(forTrainingSteps: steps.totalSteps)
        tensorParallelSize = tp
        dataParallelSize = dp
    }

    /// The optimizer, parameter groups and schedule for `initialize`.
    ///
    /// - Without an `optimizer` block: torch's AdamW (learning_rate, betas, eps) with transformers' two groups
    ///   (weight_decay on ``decayParameterNames(_:)``, 0 elsewhere). With one: the block's optimizer, no groups
    ///   (DeepSpeed gets all parameters as one group, as in transformers).
    /// - Without a `scheduler` block: ``HFSchedule`` of `lr_scheduler_type` (kwargs honoured) from the optimizer's LR,
    ///   warmup(T) and T. With one: the block's schedule.
    public func optimization(model: Module) throws -> TrainerOptimization {
        let optimizer: any Optimizer
        var groups: [ParameterGroup]?
        if let block = config.optimizer {
            optimizer = try makeOptimizer(block)
        } else {
            optimizer = AdamW(lr: arguments.learningRate, betas: (arguments.adamBeta1, arguments.adamBeta2),
                              eps: arguments.adamEpsilon, weightDecay: arguments.weightDecay)
            groups = trainerParameterGroups(model, weightDecay: arguments.weightDecay)
        }
        let scheduler: any LRScheduler
        if let block = config.scheduler {
            scheduler = try makeScheduler(block, baseLR: optimizer.lr)
        } else {
            do {
                scheduler = try HFSchedule(arguments.lrSchedulerType, baseLR: optimizer.lr, numWarmupSteps: warmupSteps,
                                           numTrainingSteps: steps.totalSteps, kwargs: arguments.lrSchedulerKwargs)
            } catch let e as LRScheduleError {
                throw TrainingArgumentsError(key: e.key.hasPrefix("lr_scheduler_kwargs") ? e.key : "lr_scheduler_type", "\(e.value): \(e.allowed)")
            }
        }
        return TrainerOptimization(optimizer: optimizer, parameterGroups: groups, scheduler: scheduler)
    }
}

/// The optimizer side of a Trainer run (see ``TrainerSetup/optimization(model:)``).
public struct TrainerOptimization {
    public let optimizer: any Optimizer
    /// transformers' two decay groups when the Trainer built the optimizer; nil with a DeepSpeed `optimizer` block.
    public let parameterGroups: [ParameterGroup]?
    public let scheduler: any LRScheduler
}
