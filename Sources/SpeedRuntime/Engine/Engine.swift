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
    public let flat: FlatParameters
    /// The flat-buffer elements this rank updates: all of them at stage 0 or with one rank; slice
    /// `rank` of `size` equal slices with ZeRO stage >= 1 (optimizer state partitioning).
    public let partition: Range<Int>
    /// fp32 master weights of `partition` when the model is 16-bit (`[partition.count]`), else nil.
    public let master: Tensor?
    /// One fp32 buffer per `optimizer.stateNames` entry (`[partition.count]`), from `makeState`.
    public let optimizerState: [Tensor]
    public internal(set) var lossScaler: LossScaler?
    public let logger: Logger
    /// The data-parallel group (one process unless launched with mpirun).
    public let group: any ProcessGroup
    let monitors: [any Monitor]

    public internal(set) var microSteps = 0
    public internal(set) var globalSteps = 0
    public internal(set) var globalSamples = 0
    public internal(set) var skippedSteps = 0
    /// Updates actually applied (Adam's bias-correction step).
    public internal(set) var optimizerSteps = 0
    /// The unscaled global gradient L2 norm of the last boundary step (before clipping).
    public internal(set) var globalGradNorm: Double?
    /// Mean loss over the micro-batches of the last completed optimizer step.
    public internal(set) var lastLoss: Double?
    var lossSum = 0.0
    var lossCount = 0
    var timers = StepTimers()

    /// The dtype parameters and activations use (fp32, bf16 or fp16).
    public var modelDType: DType { flat.values.dtype }
    public var gradientAccumulationSteps: Int { config.gradientAccumulationSteps }
    public var trainBatchSize: Int { config.trainBatchSize }
    public var trainMicroBatchSize: Int { config.trainMicroBatchSizePerGPU }

    init(module: Module, config: DeepSpeedConfig, optimizer: any Optimizer, scheduler: (any LRScheduler)?,
         monitors: [any Monitor], logger: Logger, group: any ProcessGroup) throws {
        self.group = group
        self.module = module
        self.config = config
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.logger = logger
        self.monitors = monitors
        let dtype: DType = config.fp16.enabled ? .float16 : (config.bf16.enabled ? .bfloat16 : .float32)
        let gradDType: DType = dtype == .bfloat16 && config.dataTypes.gradAccumDType == "fp32" ? .float32 : dtype
        let named = module.namedParameters().filter { $0.1.requiresGrad }
        let partitioned = config.zeroOptimization.stage >= 1 && group.size > 1
        if partitioned && optimizer.updatesPerTensor {
            throw InitializeError("\(optimizer.typeName) computes a per-tensor trust ratio and cannot run on partitioned optimizer state (ZeRO stage >= 1 on \(group.size) ranks); use stage 0")
        }
        let flat = FlatParameters(named, dtype: dtype, gradDType: gradDType, partitions: partitioned ? group.size : 1)
        self.flat = flat
        let share = flat.paddedCount / (partitioned ? group.size : 1)
        let partition = partitioned ? (group.rank * share)..<((group.rank + 1) * share) : 0..<flat.paddedCount
        self.partition = partition
        // Every rank starts from rank 0's weights (DeepSpeed broadcasts them at initialize).
        if group.size > 1 {
            let source = flat.master ?? flat.values
            try group.broadcast(source, root: 0)
            if let master = flat.master { flat.values.copyData(from: master) }
        }
        if partitioned, let full = flat.master {
            master = noGrad { full.slice(axis: 0, partition).copy() }
            flat.releaseMaster()
        } else {
            master = flat.master
        }
        // Frozen parameters are not trained but must match the activations' dtype.
        for (_, p) in module.namedParameters() where !p.requiresGrad && p.dtype.isFloatingPoint && p.dtype != dtype {
            let converted = noGrad { p.cast(to: dtype) }
            p.rebind(storage: converted.storage, offset: converted.offset, dtype: dtype)
        }
        optimizerState = optimizer.makeState(count: partition.count, device: flat.values.device)
        if config.fp16.enabled {
            lossScaler = config.fp16.lossScale > 0
                ? LossScaler(staticScale: config.fp16.lossScale)
                : LossScaler(dynamic: true, initialScalePower: config.fp16.initialScalePower,
                             window: config.fp16.lossScaleWindow, hysteresis: config.fp16.hysteresis,
                             consecutiveHysteresis: config.fp16.consecutiveHysteresis,
                             minScale: config.fp16.minLossScale)
        }
        scheduler?.apply(to: optimizer)
        if group.rank == 0 { for note in Self.unsupportedSettings(config) { logger.warning("[SwiftSpeed] \(note)") } }
    }

    deinit { for m in monitors { m.flush() } }

    /// Settings this single-process engine accepts but does not act on yet, each with what happens.
    static func unsupportedSettings(_ c: DeepSpeedConfig) -> [String] {
        var notes: [String] = []
        let z = c.zeroOptimization
        if z.stage > 1 {
            notes.append("zero_optimization.stage \(z.stage): gradient/parameter partitioning is not built yet; the engine runs stage 1 (optimizer state partitioned over the ranks), which gives the same updates")
        }
        if let o = z.offloadOptimizer, o.device != .none {
            notes.append("zero_optimization.offload_optimizer.device '\(o.device.rawValue)': on the CPU backend the optimizer already runs in CPU memory; nothing is moved")
        }
        if let p = z.offloadParam, p.device != .none {
            notes.append("zero_optimization.offload_param is not implemented yet and is ignored")
        }
        if c.activationCheckpointing != ActivationCheckpointingConfig() {
            notes.append("activation_checkpointing is not implemented yet and is ignored")
        }
        if c.prescaleGradients || c.gradientPredivideFactor != 1 || c.communicationDataType != nil {
            notes.append("prescale_gradients / gradient_predivide_factor / communication_data_type are not implemented yet; gradients are averaged in their own dtype")
        }
        return notes
    }

    // MARK: The training loop

    /// Runs the module's forward pass; floating-point inputs are cast to the model dtype.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let start = now()
        defer { timers.forward += now() - start }
        let x = input.dtype.isFloatingPoint && input.dtype != modelDType ? input.cast(to: modelDType) : input
        return module(x)
    }

    /// Back-propagates `loss / GAS` (times the fp16 loss scale) into the flat gradient buffer.
    public func backward(_ loss: Tensor) throws {
        let start = now()
        defer { timers.backward += now() - start }
        precondition(loss.count == 1, "Engine.backward: loss must be a scalar, got shape \(loss.shape)")
        lossSum += loss.item()
        lossCount += 1
        flat.reattachGrads()
        let scale = (lossScaler?.scale ?? 1) / Double(gradientAccumulationSteps)
        (scale == 1 ? loss : loss * scale).backward()
    }

    /// True when the next `step()` applies an update.
    public var isGradientAccumulationBoundary: Bool { (microSteps + 1) % gradientAccumulationSteps == 0 }

    /// Call after every micro-batch; updates parameters at the accumulation boundary.
    public func step() throws {
        let start = now()
        defer { timers.step += now() - start; microSteps += 1 }
        guard isGradientAccumulationBoundary else { return }
        try applyBoundaryStep()
        lastLoss = lossCount > 0 ? lossSum / Double(lossCount) : nil
        if group.size > 1, let mine = lastLoss {
            // The reported loss is the mean over the whole global batch.
            let t = Tensor([mine], shape: [1], dtype: .float64)
            try group.allReduce(t, op: .avg)
            lastLoss = t.item()
        }
        lossSum = 0
        lossCount = 0
        globalSteps += 1
        globalSamples += trainBatchSize
        report()
    }

    /// Clears accumulated gradients.
    public func zeroGrad() { flat.zeroGrads() }

    public func train() { module.train() }
    public func eval() { module.eval() }

    /// The learning rate of each parameter group (one group).
    public func getLR() -> [Double] { [optimizer.lr] }

    /// Bytes this rank holds for model states (SPEC §6 / B4): parameters in the model dtype,
    /// gradients, and optimizer state (fp32 master weights when the model is 16-bit, plus the
    /// optimizer's buffers). Stage 0 holds everything: 16Ψ for mixed-precision Adam.
    public var memoryBytes: (params: Int, grads: Int, optimizer: Int) {
        let optimizer = (master?.byteCount ?? 0) + optimizerState.reduce(0) { $0 + $1.byteCount }
        return (flat.values.byteCount, flat.grads.byteCount, optimizer)
    }

    /// The current fp16 loss scale (1 without fp16).
    public var lossScale: Double { lossScaler?.scale ?? 1 }
}
