// The training engine: DeepSpeed's forward/backward/step loop over flat parameter buffers.
// Invariant: `step()` runs after every micro-batch but updates only at the accumulation boundary
// ((microSteps + 1) % GAS == 0); every other call just counts the micro-step.

import Logging
import SpeedComm
import SpeedCore
import SpeedNN
import SpeedOptim

/// DeepSpeed's engine: wraps a module, owns its flat buffers, optimizer state and schedules.
///
/// ```swift
/// let (engine, _, _, _) = try SwiftSpeed.initialize(model: model, config: config)
/// for batch in loader {
///     let loss = engine(batch[0]).mseLoss(batch[1])
///     try engine.backward(loss)
///     try engine.step()
/// }
/// ```
public final class Engine {
    public let module: Module
    public let config: DeepSpeedConfig
    public let optimizer: any Optimizer
    public let scheduler: (any LRScheduler)?
    package let flat: FlatParameters
    /// The ZeRO stage in effect: 0 replicates everything; 1 partitions optimizer state, 2 also gradients,
    /// 3 also parameters (DeepSpeed's ZeRO stages; ``plan`` says what that means for each buffer).
    public var stage: Int { plan.stage }
    /// What this stage partitions and offloads.
    package let plan: ShardPlan
    /// How the flat buffer splits over the ranks (one partition at stage 0).
    package let layout: PartitionLayout
    /// The flat-buffer elements this rank updates: all of them at stage 0 or with one rank; slice
    /// `rank` of `size` equal slices with ZeRO stage >= 1.
    package let partition: Range<Int>
    /// This rank's `partition` of the weights in the model dtype (`[partition.count]`): a view of
    /// `flat.values` at stages 0–2, the only copy at stage 3 (on the CPU with `offload_param`).
    package let weightShard: Tensor
    /// This rank's `partition` of the gradients (`[partition.count]`): a view of `flat.grads` at
    /// stages 0–1; at stages 2–3 the buffer gradient buckets are reduced into during backward.
    package let gradShard: Tensor
    /// fp32 master weights of `partition` (`[partition.count]`) when the model is 16-bit or the
    /// optimizer is offloaded to another device; nil when `weightShard` is itself the master.
    package let master: Tensor?
    /// One fp32 buffer per `optimizer.stateNames` entry (`[partition.count]`), from `makeState`.
    package let optimizerState: [Tensor]
    /// Where the optimizer runs: the CPU with `offload_optimizer`, else the model's device.
    package let optimizerDevice: Device
    /// Parameter groups' weight decay as runs of this rank's partition (`0 ..< partition.count`, back to back, each
    /// run one decay), and each flat parameter's decay (the per-tensor path); nil without groups.
    package let decayRuns: [DecayRun]?
    package let parameterDecays: [Double]?
    public internal(set) var lossScaler: LossScaler?
    public let logger: Logger
    /// The data-parallel group (one process unless launched with mpirun; with tensor parallelism the ranks that
    /// hold the same shard, ``parallelGroups``'s `data`).
    public let group: any ProcessGroup
    /// With tensor parallelism (`tensor_parallel.autotp_size` > 1): this rank's tensor, data and pipe groups and its
    /// coordinates; the module holds this rank's shards. nil otherwise.
    public let parallelGroups: ParallelGroups?
    /// The whole model's trainable parameter count: a tensor-parallel shard counted at its unsharded size.
    public let modelParameterCount: Int
    let monitors: [any Monitor]
    /// Stages 2–3: gradient buckets reduced as backward produces them.
    let reducer: GradientReducer?
    /// Stage 3: gathers and releases parameters around each module's forward and backward.
    let partitioner: ParameterPartitioner?
    /// A communication failure inside an autograd hook, rethrown by `backward`.
    var hookError: Error?
    /// Flat ranges whose gradients another rank counts in the global norm, so this rank leaves them out: replicated
    /// parameters on tensor-parallel ranks other than 0 (DeepSpeed counts a parameter when it is model-parallel or
    /// tp_rank == 0), tied copies on pipeline stages other than the tie's first (SpeedPipeline adds those).
    package var normExcludedRanges: [Range<Int>] = []
    /// The groups over which the squared gradient norm (already summed over the data-parallel group) is summed
    /// into the whole model's: the tensor-parallel group, then the pipe group. Clipping and the overflow check
    /// then see the true global norm on every rank.
    package var modelParallelNormGroups: [any ProcessGroup] = []

    public internal(set) var microSteps = 0
    public internal(set) var globalSteps = 0
    public internal(set) var globalSamples = 0
    public internal(set) var skippedSteps = 0
    /// Where the model came from — a Hugging Face folder and its config.json text — saved with every checkpoint so
    /// `swiftspeed zero-to-fp32` writes a folder that loads with `from_pretrained`. nil for models built in code.
    public var modelOrigin: (source: String, config: String)?
    /// Boundary steps skipped in a row (reset by an applied update); warned about at 10, 100, 1000, …
    public internal(set) var consecutiveSkippedSteps = 0
    /// Updates actually applied (Adam's bias-correction step).
    public internal(set) var optimizerSteps = 0
    /// The unscaled global gradient L2 norm of the last boundary step (before clipping).
    public internal(set) var globalGradNorm: Double?
    /// Mean loss over the micro-batches of the last completed optimizer step.
    public internal(set) var lastLoss: Double?
    /// This boundary's micro-batch losses, detached and still on the device: read at `step()`, after the update
    /// is issued, so `backward` never waits for the GPU.
    var pendingLosses: [Tensor] = []
    var timers = StepTimers()

    /// The dtype parameters and activations use (fp32, bf16 or fp16).
    public var modelDType: DType { flat.dtype }
    /// The device parameters and activations live on.
    public var device: Device { gradShard.device }
    public var gradientAccumulationSteps: Int { config.gradientAccumulationSteps }
    public var trainBatchSize: Int { config.trainBatchSize }
    public var trainMicroBatchSize: Int { config.trainMicroBatchSizePerGPU }

    init(module: Module, config: DeepSpeedConfig, optimizer: any Optimizer, scheduler: (any LRScheduler)?,
         monitors: [any Monitor], logger: Logger, group: any ProcessGroup,
         parameterGroups: [ParameterGroup]? = nil, parallelGroups: ParallelGroups? = nil) throws {
        self.group = group
        self.parallelGroups = parallelGroups
        self.module = module
        self.config = config
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.logger = logger
        self.monitors = monitors
        let z = config.zeroOptimization
        guard (0...3).contains(z.stage) else {
            throw InitializeError("zero_optimization.stage must be 0, 1, 2 or 3, got \(z.stage)")
        }
        let plan = ShardPlan(zero: z, worldSize: group.size)
        self.plan = plan
        let dtype: DType = config.fp16.enabled ? .float16 : (config.bf16.enabled ? .bfloat16 : .float32)
        let gradDType: DType = dtype == .bfloat16 && config.dataTypes.gradAccumDType == "fp32" ? .float32 : dtype
        let named = module.namedParameters().filter { $0.1.requiresGrad }
        if plan.partitionsOptimizer && group.size > 1 && optimizer.updatesPerTensor {
            throw InitializeError("\(optimizer.typeName) computes a per-tensor trust ratio and cannot run on partitioned optimizer state (ZeRO stage >= 1 on \(group.size) ranks); use stage 0")
        }
        let ranks = plan.ranks
        let flat = FlatParameters(named, dtype: dtype, gradDType: gradDType, partitions: ranks, holdGrads: !plan.partitionsGradients)
        self.flat = flat
        let layouts = module.tensorParallelLayouts()
        modelParameterCount = named.reduce(0) { total, item in
            guard let l = layouts[item.0] else { return total + item.1.count }
            return total + item.1.count / Swift.max(1, item.1.shape[l.axis]) * l.blocks.reduce(0, +)
        }
        // A model sharded by initialize, or by its caller before it (then `group` is already the data-parallel group):
        // either way the norm needs the tensor-parallel group and this rank's place in it.
        if let comm = parallelGroups?.tensorParallel ?? module.tensorParallelCommunicator(), comm.size > 1 {
            guard let tp = comm as? TensorParallelGroup else {
                throw InitializeError("the module is sharded over a \(type(of: comm)); the engine sums the gradient norm over the tensor-parallel ranks through a TensorParallelGroup, so shard it over one")
            }
            if tp.rank != 0 {
                normExcludedRanges = flat.names.indices.filter { layouts[flat.names[$0]] == nil }.map(flat.range(of:))
            }
            modelParallelNormGroups = [tp.group]
        }
        layout = PartitionLayout(paddedCount: flat.paddedCount, ranks: ranks)
        partition = layout.partition(ranks == 1 ? 0 : group.rank)
        if let parameterGroups {
            guard let decaying = optimizer as? any WeightDecaying else {
                throw InitializeError("parameter groups set a weight decay per parameter, but the optimizer \(optimizer.typeName) has no weightDecay to set (it does not conform to WeightDecaying); pass no parameterGroups or an optimizer with weight decay (Adam, AdamW, Lamb, SGD, Adagrad, Lion)")
            }
            let decays = try Self.parameterDecays(parameterGroups, flat: flat, default: decaying.weightDecay)
            parameterDecays = decays
            decayRuns = DecayRun.runs(decays: decays, flat: flat, partition: partition)
        } else {
            parameterDecays = nil
            decayRuns = nil
        }
        let values = flat.values!
        // Every rank starts from rank 0's weights (DeepSpeed broadcasts them at initialize).
        if group.size > 1 {
            let source = flat.master ?? values
            try group.broadcast(source, root: 0)
            if let master = flat.master { values.copyData(from: master) }
        }
        // Offloaded state goes to the model device's host memory (page-locked for a GPU).
        let host = values.device.backend.hostDevice
        let optimizerDevice: Device = plan.offloadOptimizer ? host : values.device
        self.optimizerDevice = optimizerDevice
        let mine = partition
        let weightShard = plan.partitionsParameters
            ? noGrad { values.slice(axis: 0, mine).to(plan.offloadParameters ? host : values.device).copy() }
            : values.slice(axis: 0, mine)
        self.weightShard = weightShard
        if let full = flat.master {
            master = mine.count == full.count && optimizerDevice == full.device
                ? full : noGrad { full.slice(axis: 0, mine).to(optimizerDevice).copy() }
            flat.releaseMaster()
        } else {
            master = optimizerDevice == weightShard.device ? nil : noGrad { weightShard.to(optimizerDevice).copy() }
        }
        gradShard = flat.grads?.slice(axis: 0, partition)
            ?? Tensor.zeros([partition.count], dtype: gradDType, device: values.device)
        // Frozen parameters are not trained but must match the activations' dtype.
        // So must floating-point buffers (DeepSpeed's module.half() casts them too).
        for p in module.namedParameters().map(\.1) + module.buffers()
        where !p.requiresGrad && p.dtype.isFloatingPoint && p.dtype != dtype {
            let converted = noGrad { p.cast(to: dtype) }
            p.rebind(storage: converted.storage, offset: converted.offset, dtype: dtype)
        }
        optimizerState = optimizer.makeState(count: partition.count, device: optimizerDevice)
        reducer = plan.partitionsGradients ? GradientReducer(flat: flat, layout: layout, bucketSize: z.reduceBucketSize) : nil
        partitioner = plan.partitionsParameters
            ? try ParameterPartitioner(flat: flat, layout: layout, shard: weightShard, group: group,
                                       persistenceThreshold: z.stage3ParamPersistenceThreshold, module: module)
            : nil
        if config.fp16.enabled {
            lossScaler = config.fp16.lossScale > 0
                ? LossScaler(staticScale: config.fp16.lossScale)
                : LossScaler(dynamic: true, initialScalePower: config.fp16.initialScalePower,
                             window: config.fp16.lossScaleWindow, hysteresis: config.fp16.hysteresis,
                             consecutiveHysteresis: config.fp16.consecutiveHysteresis,
                             minScale: config.fp16.minLossScale)
        }
        scheduler?.apply(to: optimizer)
        if plan.partitionsParameters { flat.releaseValues() }
        try installHooks()
        let notes = Self.unsupportedSettings(config) + applyActivationCheckpointing(config.activationCheckpointing, to: module)
        if group.rank == 0 { for note in notes { logger.warning("[SwiftSpeed] \(note)") } }
    }

    deinit { for m in monitors { m.flush() } }

    /// Settings this engine accepts but does not act on, each with what happens instead.
    static func unsupportedSettings(_ c: DeepSpeedConfig) -> [String] {
        var notes: [String] = []
        let z = c.zeroOptimization
        if let o = z.offloadOptimizer, o.device == .nvme {
            notes.append("zero_optimization.offload_optimizer.device 'nvme' is not supported; the optimizer state is kept in CPU memory instead")
        }
        if let p = z.offloadParam, p.device != .none, z.stage != 3 {
            notes.append("zero_optimization.offload_param applies to stage 3 only (DeepSpeed ignores it at stage \(z.stage) too)")
        } else if let p = z.offloadParam, p.device == .nvme {
            notes.append("zero_optimization.offload_param.device 'nvme' is not supported; parameter partitions are kept in CPU memory instead")
        }
        return notes
    }

    // MARK: The training loop

    /// Runs the module's forward pass; floating-point inputs are cast to the model dtype.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let start = now()
        defer { timers.forward += now() - start }
        let x = castInput(input)
        partitioner?.begin(.forward)
        return module(x)
    }

    /// Runs the module's forward pass on named inputs (a Hugging Face model's `input_ids`,
    /// `attention_mask`, `labels`, …): floating-point inputs are cast to the model dtype, integer
    /// ones (ids, masks, class labels) pass unchanged.
    ///
    /// ```swift
    /// let out = engine(["input_ids": ids, "attention_mask": mask, "labels": labels])
    /// try engine.backward(out.loss!)
    /// try engine.step()
    /// ```
    public func callAsFunction(_ inputs: ModuleInputs) -> ModuleOutputs {
        let start = now()
        defer { timers.forward += now() - start }
        let cast = inputs.mapTensors(castInput)
        partitioner?.begin(.forward)
        return module(cast)
    }

    /// `input` in the model dtype when it is floating point, else unchanged.
    private func castInput(_ input: Tensor) -> Tensor {
        input.dtype.isFloatingPoint && input.dtype != modelDType ? input.cast(to: modelDType) : input
    }

    /// Back-propagates `loss / GAS` (times the fp16 loss scale) into the flat gradient buffer.
    public func backward(_ loss: Tensor) throws {
        let start = now()
        defer { timers.backward += now() - start }
        precondition(loss.count == 1, "Engine.backward: loss must be a scalar, got shape \(loss.shape)")
        pendingLosses.append(loss.detach())
        flat.reattachGrads()
        let scale = (lossScaler?.scale ?? 1) / Double(gradientAccumulationSteps)
        partitioner?.begin(.backward)
        (scale == 1 ? loss : loss * scale).backward()
        try finishBackward()
    }

    /// True when the next `step()` applies an update: every `gradient_accumulation_steps` micro-batches, unless
    /// ``forcedAccumulationBoundary`` says otherwise.
    public var isGradientAccumulationBoundary: Bool {
        forcedAccumulationBoundary ?? ((microSteps + 1 - accumulationPhase) % gradientAccumulationSteps == 0)
    }

    /// DeepSpeed's `set_gradient_accumulation_boundary`: true makes the next `step()` update even after fewer
    /// micro-batches (the Trainer's short last accumulation of an epoch), false holds it back; nil (the default)
    /// follows the count. Applies to the next `step()` only; after a forced one the count restarts there, so the next
    /// accumulation is a whole one.
    public var forcedAccumulationBoundary: Bool?
    /// Where accumulations start, modulo `gradient_accumulation_steps` (moved by a forced boundary; checkpointed).
    public internal(set) var accumulationPhase = 0

    /// Call after every micro-batch; updates parameters at the accumulation boundary.
    public func step() throws {
        let start = now()
        defer { timers.step += now() - start; microSteps += 1 }
        let boundary = isGradientAccumulationBoundary, forced = forcedAccumulationBoundary
        forcedAccumulationBoundary = nil
        guard boundary else { return }
        if forced == true { accumulationPhase = (microSteps + 1) % gradientAccumulationSteps }
        try applyBoundaryStep()
        lastLoss = pendingLosses.isEmpty ? nil : pendingLosses.reduce(0) { $0 + $1.item() } / Double(pendingLosses.count)
        if group.size > 1, let mine = lastLoss {
            // The reported loss is the mean over the whole global batch.
            let t = Tensor([mine], shape: [1], dtype: .float64)
            try group.allReduce(t, op: .avg)
            lastLoss = t.item()
        }
        pendingLosses.removeAll()
        globalSteps += 1
        globalSamples += trainBatchSize
        report()
    }

    /// Clears accumulated gradients.
    public func zeroGrad() {
        if flat.grads != nil { flat.zeroGrads() } else { gradShard.fill(0) }
    }

    public func train() { module.train() }
    public func eval() { module.eval() }

    /// The learning rate of each parameter group (one group).
    public func getLR() -> [Double] { [optimizer.lr] }

    /// Bytes this rank holds for model states (the ZeRO paper's accounting, https://www.deepspeed.ai/tutorials/zero/) on the model's device: parameters in
    /// the model dtype, gradients, and optimizer state (fp32 master weights when the model is
    /// 16-bit, plus the optimizer's buffers); `offloaded` counts what `offload_optimizer` /
    /// `offload_param` moved to CPU memory instead. For mixed-precision Adam that is 16Ψ at stage 0,
    /// 4Ψ + 12Ψ/W at stage 1, 2Ψ + 14Ψ/W at stage 2 and 16Ψ/W at stage 3 (plus padding and, at
    /// stage 3, the whole copies of parameters under `stage3_param_persistence_threshold`). With tensor parallelism Ψ is this rank's shard (sharded layers ÷ TP,
    /// replicated parameters whole).
    public var memoryBytes: (params: Int, grads: Int, optimizer: Int, offloaded: Int) {
        var params = flat.values?.byteCount ?? (partitioner?.persistentBytes ?? 0)
        var offloaded = 0
        if flat.values == nil {
            if plan.offloadParameters { offloaded += weightShard.byteCount } else { params += weightShard.byteCount }
        }
        let grads = flat.grads?.byteCount ?? gradShard.byteCount
        var optimizer = (master?.byteCount ?? 0) + optimizerState.reduce(0) { $0 + $1.byteCount }
        if plan.offloadOptimizer {
            offloaded += optimizer
            optimizer = 0
        }
        return (params, grads, optimizer, offloaded)
    }

    /// Runs `body` with every parameter's full data resident, as DeepSpeed's
    /// `zero.GatheredParameters` does; at stage 3 this is collective (every rank must call it),
    /// at other stages it just runs `body`.
    ///
    /// ```swift
    /// let weights = try engine.withGatheredParameters { model.stateDict() }
    /// ```
    public func withGatheredParameters<R>(_ body: () throws -> R) throws -> R {
        guard let partitioner else { return try body() }
        return try partitioner.withAllGathered(body)
    }

    /// Stage 3 only: flat elements all-gathered so far and how many module gathers a prefetch on
    /// the communication thread had already served.
    public var stage3Gathers: (elements: Int, prefetched: Int)? {
        partitioner.map { ($0.gatheredElements, $0.prefetcher?.hits ?? 0) }
    }

    /// The current fp16 loss scale (1 without fp16).
    public var lossScale: Double { lossScaler?.scale ?? 1 }
}
