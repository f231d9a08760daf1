// `initialize`: DeepSpeed's entry point — config + model in, (engine, optimizer, dataloader, scheduler) out.
// Invariant: a client optimizer/scheduler passed in wins over the config's block, exactly as in DeepSpeed.

import Logging
import SpeedComm
import SpeedCore
import SpeedData
import SpeedNN
import SpeedOptim

/// Errors setting up a training run (bad combinations the config parser cannot see alone).
public struct InitializeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Wraps `model` in an ``Engine`` configured by `config`, like `deepspeed.initialize`.
///
/// - Parameters:
///   - model: the module to train (its parameters move into flat buffers, keeping identity).
///   - config: a parsed `ds_config.json`.
///   - optimizer: a client optimizer; when nil the config's `optimizer` block builds one.
///   - modelParameters: the parameters to train (default: every parameter that requires grad).
///   - trainingData: when given, a ``DataLoader`` with the micro-batch size is returned.
///   - lrScheduler: a client schedule; when nil the config's `scheduler` block (if any) builds one.
///   - processGroup: every rank of the job (default: one process); see `ProcessGroups.fromEnvironment()`. Without
///     tensor parallelism it is the data-parallel group. With `tensor_parallel.autotp_size` N > 1 the model is
///     sharded in place over groups of N adjacent ranks (by its ``TensorParallelShardable`` rules or `tensorParallelPlan`; every rank of a
///     group starts from its rank 0's weights) and the engine runs over the data-parallel ranks; the config's
///     batch sizes are for that data-parallel size (``DeepSpeedConfig/load(path:processes:pipelineStages:auto:)``).
///   - parameterGroups: per-parameter weight decay (torch's param groups; HF's Trainer passes decay for weights and
///     0 for biases and LayerNorm weights); parameters in no group use the optimizer's own decay. Works at every
///     ZeRO stage and with offload; the optimizer must be ``WeightDecaying``.
///   - tensorParallelPlan: name rules for a model without its own rules (``TensorParallelPlan``), used with
///     `tensor_parallel.autotp_size`; nil uses the model's ``TensorParallelShardable`` rules.
/// - Returns: `(engine, optimizer, dataloader, scheduler)`.
///
/// ```swift
/// let config = try DeepSpeedConfig.load(path: "ds_config.json")
/// let (engine, optimizer, loader, _) = try SwiftSpeed.initialize(model: model, config: config,
///                                                               trainingData: dataset)
/// ```
public func initialize(model: Module, config: DeepSpeedConfig, optimizer: (any Optimizer)? = nil,
                       modelParameters: [Tensor]? = nil, trainingData: (any Dataset)? = nil,
                       lrScheduler: (any LRScheduler)? = nil,
                       processGroup: (any ProcessGroup)? = nil,
                       parameterGroups: [ParameterGroup]? = nil,
                       tensorParallelPlan: TensorParallelPlan? = nil,
                       logger: Logger = Logger(label: "swiftspeed"))
    throws -> (engine: Engine, optimizer: any Optimizer, dataloader: DataLoader?, scheduler: (any LRScheduler)?)
{
    let world = processGroup ?? SingleProcessGroup()
    guard config.tensorParallel.isEnabled || config.worldSize == world.size else {
        throw InitializeError("the config's batch sizes were resolved for world size \(config.worldSize) but the process group has \(world.size) ranks; load it with DeepSpeedConfig.load(path:worldSize: \(world.size))")
    }
    if world.rank == 0 { for warning in config.warnings { logger.warning("\(warning)") } }
    let (opt, sched) = try resolveOptimizer(config, optimizer, lrScheduler)
    if let modelParameters {
        let chosen = Set(modelParameters.map(ObjectIdentifier.init))
        for p in model.parameters() where !chosen.contains(ObjectIdentifier(p)) { p.requiresGrad = false }
    }
    // Sharded in place before the engine moves the parameters into its flat buffers.
    let parallel = try prepareTensorParallel(model: model, config: config, world: world, plan: tensorParallelPlan)
    let group = parallel?.data ?? world
    let monitors = world.rank == 0 ? try makeMonitors(config) : []
    let engine = try Engine(module: model, config: config, optimizer: opt, scheduler: sched, monitors: monitors,
                            logger: logger, group: group, parameterGroups: parameterGroups, parallelGroups: parallel)
    let loader = trainingData.map {
        // Every rank of a tensor-parallel group reads the same batch: the data-parallel rank picks the shard.
        DataLoader($0, batchSize: config.trainMicroBatchSizePerGPU, shuffle: true, seed: 0,
                   rank: group.rank, worldSize: group.size, device: engine.device)
    }
    return (engine, opt, loader, sched)
}

/// SpeedPipeline's entry for a tensor-parallel stage: `model` (the stage) is already sharded over
/// `parallel.tensorParallel`; the engine runs on `parallel.data` and sums the norm over `parallel.tensor`.
package func initialize(shardedModel model: Module, config: DeepSpeedConfig, optimizer: (any Optimizer)?,
                        lrScheduler: (any LRScheduler)?, parallel: ParallelGroups, logger: Logger) throws -> Engine {
    guard config.worldSize == parallel.dataParallelSize else {
        throw InitializeError("the config's batch sizes were resolved for data-parallel size \(config.worldSize), but the job has \(parallel.dataParallelSize) data-parallel ranks")
    }
    guard config.zeroOptimization.stage <= 2 else { throw InitializeError(zero3Refusal(config.tensorParallel.autotpSize)) }
    if parallel.world.rank == 0 { for warning in config.warnings { logger.warning("\(warning)") } }
    let (opt, sched) = try resolveOptimizer(config, optimizer, lrScheduler)
    let monitors = parallel.world.rank == 0 ? try makeMonitors(config) : []
    return try Engine(module: model, config: config, optimizer: opt, scheduler: sched, monitors: monitors, logger: logger,
                      group: parallel.data, parallelGroups: parallel)
}

/// The client optimizer and schedule, else the config's blocks (a client one wins, as in DeepSpeed).
func resolveOptimizer(_ config: DeepSpeedConfig, _ optimizer: (any Optimizer)?,
                      _ lrScheduler: (any LRScheduler)?) throws -> (any Optimizer, (any LRScheduler)?) {
    let opt: any Optimizer
    if let optimizer {
        opt = optimizer
    } else if let block = config.optimizer {
        opt = try makeOptimizer(block)
    } else {
        throw InitializeError("no optimizer: pass one to initialize(optimizer:) or add an \"optimizer\" block to the config")
    }
    let sched: (any LRScheduler)?
    if let lrScheduler { sched = lrScheduler } else if let block = config.scheduler {
        sched = try makeScheduler(block, baseLR: opt.lr)
    } else { sched = nil }
    if config.tensorParallel.isEnabled && opt.updatesPerTensor {
        throw InitializeError("\(opt.typeName) computes a per-tensor trust ratio, which on a tensor-parallel shard would be the shard's and not the whole tensor's; use an elementwise optimizer (Adam, AdamW, SGD, Lion, Adagrad) with tensor_parallel.autotp_size \(config.tensorParallel.autotpSize)")
    }
    return (opt, sched)
}

func zero3Refusal(_ size: Int) -> String {
    "zero_optimization.stage 3 cannot be combined with tensor_parallel.autotp_size \(size): DeepSpeed refuses it too (\"Currently, the compatibility between 'autotp' and 'zero_stage = 3' has not been validated\"); use ZeRO stage 0, 1 or 2"
}

/// With `tensor_parallel.autotp_size` > 1: the job's groups, with `model` broadcast over each tensor-parallel group
/// and sharded in place; nil without tensor parallelism.
func prepareTensorParallel(model: Module, config: DeepSpeedConfig, world: any ProcessGroup,
                           plan: TensorParallelPlan? = nil) throws -> ParallelGroups? {
    let tp = config.tensorParallel
    guard tp.isEnabled else { return nil }
    guard config.zeroOptimization.stage <= 2 else { throw InitializeError(zero3Refusal(tp.autotpSize)) }
    guard plan != nil || model is any TensorParallelShardable else {
        throw InitializeError("tensor_parallel.autotp_size \(tp.autotpSize): the model \(type(of: model)) has no tensor-parallel rules; conform it to TensorParallelShardable (shard its Linear layers with Linear.shard(.column / .row, …) and its embedding with Embedding.shardVocabulary), pass initialize(tensorParallelPlan:) name rules for its Linear layers, or set autotp_size to 0")
    }
    guard model.tensorParallelLayouts().isEmpty else {
        throw InitializeError("tensor_parallel.autotp_size \(tp.autotpSize): the model \(type(of: model)) is already sharded; pass the whole model and initialize shards it")
    }
    guard world.size % tp.autotpSize == 0 else {
        throw InitializeError("tensor_parallel.autotp_size \(tp.autotpSize) does not divide the \(world.size) ranks of the job; launch a multiple of \(tp.autotpSize) processes")
    }
    let dp = world.size / tp.autotpSize
    guard config.worldSize == dp else {
        throw InitializeError("the config's batch sizes were resolved for data-parallel size \(config.worldSize), but \(world.size) ranks in tensor-parallel groups of \(tp.autotpSize) make \(dp) data-parallel ranks; load it with DeepSpeedConfig.load(path:processes: \(world.size)) (or worldSize: \(dp))")
    }
    let groups = try ParallelGroups(world: world, tensorParallel: tp.autotpSize)
    // Every rank of a tensor-parallel group cuts its shard from the same whole weights (the engine then broadcasts
    // each shard from data-parallel rank 0).
    try groups.broadcastOverTensorGroup(model)
    do { try model.applyTensorParallel(groups.tensorParallel, plan: plan) } catch let error as TensorParallelError {
        throw InitializeError("tensor_parallel.autotp_size \(tp.autotpSize): \(error)")
    }
    return groups
}
