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
///   - processGroup: the data-parallel group (default: one process); see `ProcessGroups.fromEnvironment()`.
///   - parameterGroups: per-parameter weight decay (torch's param groups; HF's Trainer passes decay for weights and
///     0 for biases and LayerNorm weights); parameters in no group use the optimizer's own decay. Works at every
///     ZeRO stage and with offload; the optimizer must be ``WeightDecaying``.
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
                       logger: Logger = Logger(label: "swiftspeed"))
    throws -> (engine: Engine, optimizer: any Optimizer, dataloader: DataLoader?, scheduler: (any LRScheduler)?)
{
    let group = processGroup ?? SingleProcessGroup()
    guard config.worldSize == group.size else {
        throw InitializeError("the config's batch sizes were resolved for world size \(config.worldSize) but the process group has \(group.size) ranks; load it with DeepSpeedConfig.load(path:worldSize: \(group.size))")
    }
    if group.rank == 0 { for warning in config.warnings { logger.warning("\(warning)") } }
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
    if let modelParameters {
        let chosen = Set(modelParameters.map(ObjectIdentifier.init))
        for p in model.parameters() where !chosen.contains(ObjectIdentifier(p)) { p.requiresGrad = false }
    }
    let monitors = group.rank == 0 ? try makeMonitors(config) : []
    let engine = try Engine(module: model, config: config, optimizer: opt, scheduler: sched, monitors: monitors,
                            logger: logger, group: group, parameterGroups: parameterGroups)
    let loader = trainingData.map {
        DataLoader($0, batchSize: config.trainMicroBatchSizePerGPU, shuffle: true, seed: 0,
                   rank: group.rank, worldSize: group.size, device: engine.device)
    }
    return (engine, opt, loader, sched)
}
