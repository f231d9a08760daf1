// DeepSpeed's PipelineEngine: one stage of a pipe × data grid, training a PipelineModule with the 1F1B schedule.
// Invariant: every rank of the job constructs it with the same module and config and calls trainBatch/evalBatch
// the same number of times; each stage's weights and optimizer state live in an ordinary Engine over the stage's
// data-parallel group (ZeRO 0/1), whose norm is made global over the stages (`modelParallelNormGroups`).

import Logging
import SpeedComm
import SpeedCore
import SpeedNN
import SpeedOptim
import SpeedRuntime

/// One micro-batch: the first stage reads `input`, the last stage `target` (a one-stage pipeline both).
public struct MicroBatch {
    public var input: Tensor
    public var target: Tensor
    public init(input: Tensor, target: Tensor) {
        self.input = input
        self.target = target
    }
}

/// Trains a ``PipelineModule`` over `stages × dataParallel` ranks (`deepspeed.PipelineEngine`).
///
/// Each step runs the config's `gradient_accumulation_steps` micro-batches through DeepSpeed's 1F1B
/// ``TrainSchedule``; the batch rule's world size is the data-parallel size (ranks / stages).
///
/// ```swift
/// let module = try GPTPipe.module(.gptMini, seed: 1337, numStages: 2)
/// let config = try DeepSpeedConfig.load(path: "ds_config.json", worldSize: world.size / 2)
/// let engine = try PipelineEngine(module: module, config: config, world: world)
/// for _ in 0..<steps {
///     let loss = try engine.trainBatch { loader.next() }     // called on the first and last stages only
/// }
/// ```
public final class PipelineEngine {
    public let module: PipelineModule
    public let grid: PipelineGrid
    /// This rank's layers.
    public let stage: PipelineStage
    /// The engine that owns this stage's parameters, optimizer state, loss scaler and schedule.
    public let engine: Engine
    /// Per tie key held on this stage (sorted keys): its group (nil when the tie lies within this stage)
    /// and the tied weights.
    let ties: [(key: String, group: (any ProcessGroup)?, weights: [Tensor])]
    let logger: Logger

    /// The mean loss of the last `trainBatch` (the whole global batch's, on every rank).
    public internal(set) var lastLoss: Double?
    /// Most micro-batches this stage held forwarded but not yet back-propagated during the last batch.
    public internal(set) var maxInFlight = 0
    /// Wall seconds of the last batch by phase: "forward", "backward", "communication", "step".
    public internal(set) var lastTimings: [String: Double] = [:]

    public var config: DeepSpeedConfig { engine.config }
    public var stageID: Int { grid.stageID }
    public var numStages: Int { module.numStages }
    public var isFirstStage: Bool { grid.isFirstStage }
    public var isLastStage: Bool { grid.isLastStage }
    /// Micro-batches per step: the config's gradient accumulation steps.
    public var microBatches: Int { engine.gradientAccumulationSteps }
    public var globalSteps: Int { engine.globalSteps }
    /// The unscaled global gradient norm of the last step, over every stage (nil after a skipped step).
    public var globalGradNorm: Double? { engine.globalGradNorm }
    /// This stage's model-state bytes (its share of the model; see ``Engine/memoryBytes``).
    public var memoryBytes: (params: Int, grads: Int, optimizer: Int, offloaded: Int) { engine.memoryBytes }

    /// Builds this rank's stage, its process groups and its engine. Collective over `world`.
    ///
    /// - Parameters:
    ///   - config: resolved for the data-parallel world size `world.size / module.numStages`.
    ///   - world: every rank of the job; rank r is stage `r / dp`, data rank `r mod dp` (DeepSpeed's
    ///     `PipeDataParallelTopology`).
    /// - Throws: ``PipelineError/configuration(_:)`` for ZeRO stage 2 or 3, a world size that is not a
    ///   multiple of the stage count, or a config resolved for another data-parallel size.
    public init(module: PipelineModule, config: DeepSpeedConfig, world: any ProcessGroup,
                optimizer: (any Optimizer)? = nil, lrScheduler: (any LRScheduler)? = nil,
                logger: Logger = Logger(label: "swiftspeed")) throws {
        let stages = module.numStages
        guard config.zeroOptimization.stage < 2 else {
            throw PipelineError.configuration("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism (zero_optimization.stage is \(config.zeroOptimization.stage)); use stage 0 or 1, as DeepSpeed requires")
        }
        let tp = config.tensorParallel.size
        guard world.size % (stages * tp) == 0 else {
            let what = tp > 1 ? "\(stages) pipeline stages × \(tp) tensor-parallel ranks" : "\(stages) pipeline stages"
            throw PipelineError.configuration("\(world.size) ranks do not split into \(what); launch a multiple of \(stages * tp) ranks")
        }
        let dp = world.size / (stages * tp)
        guard config.worldSize == dp else {
            throw PipelineError.configuration("the config's batch sizes were resolved for data-parallel size \(config.worldSize), but \(world.size) ranks over \(stages) stages\(tp > 1 ? " × \(tp) tensor-parallel ranks" : "") make \(dp) data-parallel ranks; load it with worldSize \(dp)")
        }
        self.module = module
        self.logger = logger
        if tp > 1 {
            // DeepSpeed's PipeModelDataParallelTopology: tensor-parallel ranks innermost, then data, then pipe.
            let groups = try ParallelGroups(world: world, tensorParallel: tp, pipelineStages: stages)
            grid = PipelineGrid(groups)
            stage = module.build(stage: grid.stageID)
            try Self.shard(stage, groups, size: tp)
        } else {
            grid = try PipelineGrid(topology: .pipeDataParallel(stages: stages, dataParallel: dp), world: world)
            stage = module.build(stage: grid.stageID)
        }
        // Tie groups, in sorted key order on every rank; tied weights start from the tie's first stage.
        var ties: [(key: String, group: (any ProcessGroup)?, weights: [Tensor])] = []
        for key in module.tieKeys {
            let group = stages > 1 ? try grid.tieGroup(stages: module.tiedStages(key)) : nil
            guard let tied = stage.tiedModule(key) else { continue }
            var named: [String: Tensor] = [:]
            for (n, t) in tied.namedParameters() where named[n] == nil { named[n] = t }
            let firstSpec = module.layers.lazy.compactMap { layer -> TiedLayerSpec? in
                if case .tied(let s) = layer, s.key == key { s } else { nil }
            }.first
            let names = firstSpec?.tiedWeights ?? []
            let weights = try names.map { name -> Tensor in
                guard let w = named[name] else {
                    throw PipelineError.configuration("tie '\(key)': the tied module has no parameter '\(name)' (it has \(named.keys.sorted()))")
                }
                return w
            }
            if let group, group.size > 1 { for w in weights { try group.broadcast(w, root: 0) } }
            ties.append((key, group.flatMap { $0.size > 1 ? $0 : nil }, weights))
        }
        self.ties = ties
        // Only global rank 0 writes monitor files (every stage's data rank 0 would otherwise write the same ones).
        var stageConfig = config
        if world.rank != 0 {
            stageConfig.tensorboard.enabled = false
            stageConfig.csvMonitor.enabled = false
        }
        if let groups = grid.parallelGroups {
            engine = try initialize(shardedModel: stage, config: stageConfig, optimizer: optimizer, lrScheduler: lrScheduler,
                                    parallel: groups, logger: logger)
        } else {
            engine = try initialize(model: stage, config: stageConfig, optimizer: optimizer, lrScheduler: lrScheduler,
                                    processGroup: grid.dataParallelGroup, logger: logger).engine
        }
        if stages > 1 { installCrossStageNorm() }
        if world.rank == 0 { logger.info("[SwiftSpeed] pipeline partition (\(module.partitionMethod)):\n\(module.partitionReport)") }
    }

    /// Shards a stage over its tensor-parallel group, after broadcasting it there so every shard is cut from the same
    /// weights: layers that are ``TensorParallelShardable`` (GPT's `Block`) by their own rules, an `Embedding` layer
    /// (GPT's tied embedding and head) by vocabulary; the rest stays replicated.
    static func shard(_ stage: PipelineStage, _ groups: ParallelGroups, size: Int) throws {
        try groups.broadcastOverTensorGroup(stage)
        let comm = groups.tensorParallel
        let named = zip(stage.layers.indices, stage.layers).map { ("layers.\($0)", $1) }
            + zip(stage.tiedKeys, stage.tiedModules).map { ("tie '\($0)'", $1) }
        do {
            for (name, m) in named {
                if let block = m as? Block { try block.shardForTensorParallel(comm, name: name) }
                else if let s = m as? any TensorParallelShardable { try s.shardForTensorParallel(comm) }
                else if let e = m as? Embedding { try e.shardVocabulary(comm, name: name) }
            }
        } catch let error as TensorParallelError {
            throw PipelineError.configuration("tensor_parallel.autotp_size \(size): \(error)")
        }
    }

    /// The global norm sums every stage's squares once: a tied weight counts on its tie's first stage only
    /// (DeepSpeed marks the other copies `ds_pipe_replicated`).
    private func installCrossStageNorm() {
        let flat = engine.flat
        var duplicates: [Range<Int>] = []
        for tie in ties {
            let owner = module.tiedStages(tie.key).min()!
            guard owner != stageID else { continue }
            for w in tie.weights {
                if let i = flat.params.firstIndex(where: { $0 === w }) { duplicates.append(flat.range(of: i)) }
            }
        }
        engine.normExcludedRanges += duplicates
        engine.modelParallelNormGroups.append(grid.pipeGroup)
    }

    // MARK: Training and evaluation

    /// Runs one optimizer step: the config's gradient-accumulation micro-batches through the 1F1B schedule,
    /// then tied and data-parallel gradient reduction, clipping by the global norm and the update. Returns
    /// the mean loss over the global batch (the same value on every rank). Collective over the job.
    ///
    /// - Parameter dataIterator: called once per micro-batch on the first and the last stage (never on
    ///   the others); both must see the same sequence.
    /// - Throws: ``PipelineError/instruction(stage:rank:step:schedule:instruction:peerStage:peerRank:message:)``
    ///   when a neighbour dies or stops answering within the group's timeout.
    public func trainBatch(_ dataIterator: () throws -> MicroBatch) throws -> Double {
        engine.train()
        let schedule = TrainSchedule(microBatches: microBatches, stages: numStages, stageID: stageID)
        try execute(schedule, training: true, next: dataIterator)
        let loss = try shareLoss(isLastStage ? engine.lastLoss ?? .nan : 0)
        lastLoss = loss
        return loss
    }

    /// The mean loss of `microBatches` micro-batches (default: the accumulation steps) without gradients,
    /// through DeepSpeed's ``InferenceSchedule``; averaged over the data-parallel ranks. Collective.
    public func evalBatch(microBatches count: Int? = nil, _ dataIterator: () throws -> MicroBatch) throws -> Double {
        let wasTraining = stage.isTraining
        engine.eval()
        defer { if wasTraining { engine.train() } }
        let schedule = InferenceSchedule(microBatches: count ?? microBatches, stages: numStages, stageID: stageID)
        let losses = try noGrad { try execute(schedule, training: false, next: dataIterator) }
        var mean = isLastStage ? losses.reduce(0, +) / Double(Swift.max(1, losses.count)) : 0
        if isLastStage && grid.dataParallelGroup.size > 1 {
            let t = Tensor([mean], shape: [1], dtype: .float64)
            try grid.dataParallelGroup.allReduce(t, op: .avg)
            mean = t.item()
        }
        return try shareLoss(mean)
    }

    /// Broadcasts the last stage's `value` to every stage of this pipeline.
    func shareLoss(_ value: Double) throws -> Double {
        guard numStages > 1 else { return value }
        let t = Tensor([value], shape: [1], dtype: .float64)
        try grid.pipeGroup.broadcast(t, root: numStages - 1)
        return t.item()
    }
}
