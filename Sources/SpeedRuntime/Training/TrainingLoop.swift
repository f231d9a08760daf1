// The training loop `swiftspeed train` runs and the Trainer builds on: micro-batches, steps, saves, resume.
// Invariant: the micro-batch of optimizer step s, micro-step m on data-parallel rank r of W is `batch((s·GAS + m)·W + r)`
// (every tensor-parallel rank of a group asks for the same one),
// so the global batch is the same for every W and a run resumed at step k replays an uninterrupted run's batches.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import SpeedCore

/// One optimizer step's figures — what `swiftspeed train --json` prints, one line per step.
public struct StepRecord: Sendable, Equatable {
    public var step: Int, loss: Double, lr: Double, lossScale: Double, gradNorm: Double?
    public var samplesPerS: Double, tokensPerS: Double
    /// Model-state bytes on this rank: parameters, gradients, optimizer state on the device.
    public var memParams: Int, memGrads: Int, memOptim: Int
    /// Optimizer state (and stage-3 weights) that offload keeps in CPU memory.
    public var memOffload: Int
    /// The device's peak allocated bytes since training started (activations included).
    public var peakMem: Int
    public var paramsTotal: Int
    /// Steps skipped so far for non-finite gradients, and how many of the latest ones in a row.
    public var skippedSteps = 0, consecutiveSkippedSteps = 0

    /// A record from its figures (a pipeline's step, `swiftspeed train --pipeline-stages`, builds its own).
    public init(step: Int, loss: Double, lr: Double, lossScale: Double, gradNorm: Double?, samplesPerS: Double,
                tokensPerS: Double, memParams: Int, memGrads: Int, memOptim: Int, memOffload: Int, peakMem: Int,
                paramsTotal: Int, skippedSteps: Int = 0, consecutiveSkippedSteps: Int = 0) {
        self.step = step; self.loss = loss; self.lr = lr; self.lossScale = lossScale; self.gradNorm = gradNorm
        self.samplesPerS = samplesPerS; self.tokensPerS = tokensPerS
        self.memParams = memParams; self.memGrads = memGrads; self.memOptim = memOptim; self.memOffload = memOffload
        self.peakMem = peakMem; self.paramsTotal = paramsTotal
        self.skippedSteps = skippedSteps; self.consecutiveSkippedSteps = consecutiveSkippedSteps
    }

    /// The record as one JSON object (non-finite numbers become null).
    public var json: String {
        func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        return "{\"step\":\(step),\"loss\":\(number(loss)),\"lr\":\(number(lr)),\"loss_scale\":\(number(lossScale)),"
            + "\"grad_norm\":\(gradNorm.map(number) ?? "null"),\"samples_per_s\":\(number(samplesPerS)),"
            + "\"tokens_per_s\":\(number(tokensPerS)),\"mem_params_bytes\":\(memParams),\"mem_grads_bytes\":\(memGrads),"
            + "\"mem_optim_bytes\":\(memOptim),\"mem_offload_bytes\":\(memOffload),\"peak_mem_bytes\":\(peakMem),\"params_total\":\(paramsTotal),"
            + "\"skipped_steps\":\(skippedSteps),\"consecutive_skipped_steps\":\(consecutiveSkippedSteps)}"
    }
}

/// DeepSpeed's training loop over an ``Engine``: forward, `backward`, `step` for every micro-batch, with
/// checkpoints every `saveEvery` steps and at the end, and resumption from the latest one.
///
/// ```swift
/// let loop = TrainingLoop(steps: 100, saveDir: "ckpt", saveEvery: 50)
/// try loop.run(engine, batch: { i in data.batch(i) }, loss: { x, y in engine(x).crossEntropy(targets: y) })
/// ```
public struct TrainingLoop: Sendable {
    /// Optimizer steps in total; a resumed run continues up to this.
    public var steps: Int
    /// Where checkpoints go (none when nil).
    public var saveDir: String?
    /// Save every this many optimizer steps (and always at the end); nil saves only at the end.
    public var saveEvery: Int?
    /// Continue from the latest checkpoint in `saveDir` when there is one.
    public var resume: Bool
    /// Tokens per sample, for `tokensPerS` (0 when samples are not token sequences).
    public var tokensPerSample: Int
    /// Check the resumed checkpoint's CRC-32C checksums (``Engine/loadCheckpoint(_:tag:loadOptimizerStates:loadLRSchedulerStates:loadModuleOnly:verify:)``).
    public var verifyCheckpoint: Bool

    public init(steps: Int, saveDir: String? = nil, saveEvery: Int? = nil, resume: Bool = false, tokensPerSample: Int = 0,
                verifyCheckpoint: Bool = true) {
        precondition(steps >= 0, "TrainingLoop: steps \(steps) must be >= 0")
        precondition(saveEvery.map { $0 > 0 } ?? true, "TrainingLoop: saveEvery \(saveEvery!) must be > 0")
        precondition(saveDir != nil || (saveEvery == nil && !resume), "TrainingLoop: saveEvery and resume need a saveDir")
        self.steps = steps
        self.saveDir = saveDir
        self.saveEvery = saveEvery
        self.resume = resume
        self.tokensPerSample = tokensPerSample
        self.verifyCheckpoint = verifyCheckpoint
    }

    /// Trains until `engine.globalSteps == steps`. Collective: every rank calls it.
    /// - Parameters:
    ///   - batch: the `i`-th micro-batch of the whole run (this rank asks for its own indices, see the file's invariant).
    ///   - loss: the forward pass and loss of one micro-batch.
    ///   - onStep: called on every rank after each optimizer step with its figures.
    /// - Returns: the records of the steps run here.
    @discardableResult
    public func run<Batch>(_ engine: Engine, logger: Logger? = nil, batch: (Int) throws -> Batch,
                           loss: (Batch) throws -> Tensor, onStep: (StepRecord) throws -> Void = { _ in }) throws -> [StepRecord] {
        let (rank, world) = (engine.group.rank, engine.group.size)
        // peak_mem_bytes covers training only: model and engine buffers are counted, their setup is not.
        engine.device.backend.resetPeakMemory()
        if resume, let dir = saveDir {
            let (path, _) = try engine.loadCheckpoint(dir, verify: verifyCheckpoint)
            if let path { logger?.info("resumed from \(path) at step \(engine.globalSteps)") }
            else { logger?.info("no checkpoint in \(dir); starting from scratch") }
        }
        var records: [StepRecord] = []
        while engine.globalSteps < steps {
            let start = ContinuousClock.now
            let step = engine.globalSteps, gas = engine.gradientAccumulationSteps
            for micro in 0..<gas {
                let b = try batch((step * gas + micro) * world + rank)
                try engine.backward(try loss(b))
                try engine.step()
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let samplesPerS = Double(engine.trainBatchSize) / seconds
            let memory = engine.memoryBytes
            let record = StepRecord(step: engine.globalSteps, loss: engine.lastLoss ?? .nan, lr: engine.getLR()[0],
                                    lossScale: engine.lossScale, gradNorm: engine.globalGradNorm,
                                    samplesPerS: samplesPerS, tokensPerS: samplesPerS * Double(tokensPerSample),
                                    memParams: memory.params, memGrads: memory.grads, memOptim: memory.optimizer,
                                    memOffload: memory.offloaded, peakMem: engine.device.backend.memoryStats.peakAllocatedBytes,
                                    paramsTotal: engine.modelParameterCount, skippedSteps: engine.skippedSteps,
                                    consecutiveSkippedSteps: engine.consecutiveSkippedSteps)
            records.append(record)
            try onStep(record)
            if let dir = saveDir, let every = saveEvery, engine.globalSteps % every == 0 { try engine.saveCheckpoint(dir) }
        }
        if let dir = saveDir { try engine.saveCheckpoint(dir) }
        return records
    }
}
