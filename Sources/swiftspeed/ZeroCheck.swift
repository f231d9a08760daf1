// `swiftspeed zero-check`: under mpirun, trains a small GPT with every ZeRO stage / offload / dtype /
// GAS combination on W ranks and checks it against one process with the same global batch.
// Invariant: micro-batch i of a step is the same data whatever W is (rank r of W takes i = m·W + r),
// so the W-rank run and the single-process reference see the same global batch in every step.

import ArgumentParser
import Foundation
import Logging
import SwiftSpeed

struct ZeroCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zero-check",
        abstract: "Check ZeRO stages 0-3 on this job's ranks against a single-process run (run with mpirun -np N).")

    @Option(help: "ZeRO stages to check, comma-separated.") var stages = "0,1,2,3"
    @Option(help: "Precisions to check: fp32, fp16, bf16.") var dtypes = "fp32,fp16,bf16"
    @Option(help: "Gradient accumulation steps to check.") var gas = "1,3"
    @Option(help: "Offload settings to check: none, cpu.") var offload = "none,cpu"
    @Option(help: "Optimizer steps per case.") var steps = 4
    @Option(help: "Seconds a collective may wait for the other ranks.") var timeout: Double = 120
    @Flag(help: "Checkpoint every GPT block's activations (recomputed in backward).") var checkpointActivations = false
    @Flag(help: "Set prescale_gradients.") var prescale = false
    @Option(help: "gradient_predivide_factor.") var predivide: Double = 1
    @Option(help: "communication_data_type: fp32, fp16 or bf16.") var commDtype: String?

    func run() throws {
        let group = try ProcessGroups.fromEnvironment(timeout: timeout)
        var failures = 0, cases = 0
        for stage in ints(stages) {
            for dtype in dtypes.split(separator: ",").map(String.init) {
                for g in ints(gas) {
                    for off in offload.split(separator: ",").map(String.init) {
                        let c = ZeroCase(stage: stage, dtype: dtype, gas: g, offload: off == "cpu", steps: steps,
                                         checkpointActivations: checkpointActivations,
                                         prescale: prescale, predivide: predivide, commDtype: commDtype)
                        cases += 1
                        do {
                            let note = try c.check(group)
                            if group.rank == 0 { print("ok   \(c.name) \(note)") }
                        } catch let error as CheckFailure {
                            failures += 1
                            if group.rank == 0 { print("FAIL \(c.name): \(error.message)") }
                        }
                    }
                }
            }
        }
        if group.rank == 0 { print("zero-check: \(cases - failures)/\(cases) cases match on \(group.size) rank\(group.size == 1 ? "" : "s")") }
        group.finalize()
        if failures > 0 { throw ExitCode(1) }
    }

    private func ints(_ s: String) -> [Int] { s.split(separator: ",").compactMap { Int($0) } }
}

struct CheckFailure: Error { let message: String }

/// One configuration: trains on the job's ranks and (rank 0) on one process, then compares.
struct ZeroCase: Sendable {
    let stage: Int, dtype: String, gas: Int, offload: Bool, steps: Int, checkpointActivations: Bool
    /// Gradient averaging options: prescale_gradients, gradient_predivide_factor, communication_data_type.
    var prescale = false, predivide: Double = 1, commDtype: String?
    static let model = GPTConfig(vocabSize: 64, contextLength: 16, layers: 2, heads: 2, embedDim: 32)
    static let microBatch = 2

    var name: String {
        "stage=\(stage) dtype=\(dtype) gas=\(gas) offload=\(offload ? "cpu" : "none")" + (checkpointActivations ? " checkpoint-activations" : "")
    }

    func config(worldSize: Int, gas: Int, stage: Int) throws -> DeepSpeedConfig {
        var zero: [String: Any] = ["stage": stage, "reduce_bucket_size": 3000, "stage3_param_persistence_threshold": 100]
        if offload {
            zero["offload_optimizer"] = ["device": "cpu"]
            if stage == 3 { zero["offload_param"] = ["device": "cpu"] }
        }
        var dict: [String: Any] = [
            "train_micro_batch_size_per_gpu": Self.microBatch, "gradient_accumulation_steps": gas,
            "gradient_clipping": 0.5, "zero_optimization": zero,
            "optimizer": ["type": "AdamW", "params": ["lr": 3e-3, "weight_decay": 0.1]],
        ]
        dict["prescale_gradients"] = prescale
        dict["gradient_predivide_factor"] = predivide
        if let commDtype { dict["communication_data_type"] = commDtype }
        if dtype == "fp16" { dict["fp16"] = ["enabled": true, "initial_scale_power": 15, "hysteresis": 1] }
        if dtype == "bf16" { dict["bf16"] = ["enabled": true] }
        return try DeepSpeedConfig.parse(dictionary: dict, worldSize: worldSize)
    }

    /// Token ids and targets of global micro-batch `index`.
    static func batch(_ index: Int) -> (Tensor, Tensor) {
        let t = model.contextLength, n = microBatch * (t + 1)
        let row = (0..<n).map { Int32(RandomStream.bits(seed: 0x2E80, counter: UInt64(index * n + $0)) % UInt64(model.vocabSize)) }
        var ids: [Int32] = [], targets: [Int32] = []
        for b in 0..<microBatch {
            ids += row[(b * (t + 1))..<((b + 1) * (t + 1) - 1)]
            targets += row[(b * (t + 1) + 1)..<((b + 1) * (t + 1))]
        }
        return (Tensor(ids, shape: [microBatch, t]), Tensor(targets, shape: [microBatch, t]))
    }

    func makeEngine(_ group: any ProcessGroup, gas: Int, stage: Int) throws -> Engine {
        var rng = RandomStream(seed: 7)
        var model = Self.model
        model.checkpointActivations = checkpointActivations
        let gpt = GPT(model, rng: &rng)
        var logger = Logger(label: "zero-check")
        logger.logLevel = .error
        return try initialize(model: gpt, config: try config(worldSize: group.size, gas: gas, stage: stage),
                              processGroup: group, logger: logger).engine
    }

    /// Runs `steps` optimizer steps starting at global step `from`; returns the losses.
    func train(_ engine: Engine, rank: Int, world: Int, from: Int = 0, steps: Int) throws -> [Double] {
        var losses: [Double] = []
        for step in from..<(from + steps) {
            for micro in 0..<engine.gradientAccumulationSteps {
                let (x, y) = Self.batch((step * engine.gradientAccumulationSteps + micro) * world + rank)
                try engine.backward(engine(x).crossEntropy(targets: y))
                try engine.step()
            }
            losses.append(engine.lastLoss ?? .nan)
        }
        return losses
    }

    /// Full fp32 weights (the masters), gathered from every rank's partition.
    static func masters(_ engine: Engine) throws -> [Float] {
        let mine = noGrad { (engine.master ?? engine.weightShard).cast(to: .float32) }
        let full = Tensor.zeros([engine.flat.paddedCount])
        if engine.layout.ranks == 1 { full.copyData(from: mine) } else { try engine.group.allGather(mine, into: full) }
        return Array(full.scalars.prefix(engine.flat.count))
    }

    /// Loss tolerance: fp32 agrees to rounding; 16-bit runs round activations differently per layout.
    var tolerance: Double {
        let wire = commDtype ?? dtype
        return dtype == "fp32" && wire == "fp32" ? 1e-5 : (dtype == "bf16" || wire == "bf16" ? 2e-2 : 2e-3)
    }

    /// What one rank saw in a W-rank run of this case (``run(on:)``).
    struct Outcome {
        var losses: [Double]
        /// The full fp32 weights after `steps` steps (gathered from every rank's partition).
        var weights: [Float]
        var skipped: Int
        /// Stage 3: gathers served by the prefetcher (nil below stage 3).
        var prefetched: Int?
        /// Problems with the per-rank model-state bytes (`checkMemory`), nil when they match the formula.
        var memoryProblem: String?
        /// The next step's loss, continuing, and after saving at this stage and loading at `(stage + 2) % 4`.
        var nextLoss: Double, resumedLoss: Double
        /// Whether a NaN gradient on the last rank made this rank skip the step and keep its weights.
        var nanSkipped: Bool
        /// The W-rank checkpoint (tag "case"), for loading on one process.
        var checkpoint: String
    }

    /// Trains this case on `group`'s ranks, saves, resumes at another stage and injects a NaN (collective).
    func run(on group: any ProcessGroup, checkpoint dir: String) throws -> Outcome {
        let (rank, world) = (group.rank, group.size)
        let engine = try makeEngine(group, gas: gas, stage: stage)
        let losses = try train(engine, rank: rank, world: world, steps: steps)
        let weights = try Self.masters(engine)
        let skipped = engine.skippedSteps
        var memoryProblem: String?
        do { try checkMemory(engine) } catch let failure as CheckFailure { memoryProblem = failure.message }
        try engine.saveCheckpoint(dir, tag: "case")
        let resumed = try makeEngine(group, gas: gas, stage: (stage + 2) % 4)
        try resumed.loadCheckpoint(dir, tag: "case")
        let next = try train(engine, rank: rank, world: world, from: steps, steps: 1)
        let nextResumed = try train(resumed, rank: rank, world: world, from: steps, steps: 1)
        // One rank's gradients become NaN: the overflow flag is reduced, so every rank skips.
        let before = try Self.masters(engine), skippedBefore = engine.skippedSteps
        for micro in 0..<engine.gradientAccumulationSteps {
            let (x, y) = Self.batch(micro * world + rank)
            let loss = engine(x).crossEntropy(targets: y)
            try engine.backward(rank == world - 1 && micro == 0 ? loss * Double.nan : loss)
            try engine.step()
        }
        let after = try Self.masters(engine)
        return Outcome(losses: losses, weights: weights, skipped: skipped, prefetched: engine.stage3Gathers?.prefetched,
                       memoryProblem: memoryProblem, nextLoss: next[0], resumedLoss: nextResumed[0],
                       nanSkipped: engine.skippedSteps == skippedBefore + 1 && after == before, checkpoint: dir)
    }

    /// One process with the same global batch (GAS × W): losses, weights and skipped steps to compare with.
    func reference(world: Int) throws -> (losses: [Double], weights: [Float], skipped: Int) {
        let engine = try makeEngine(SingleProcessGroup(), gas: gas * world, stage: stage)
        let losses = try train(engine, rank: 0, world: 1, steps: steps)
        return (losses, try Self.masters(engine), engine.skippedSteps)
    }

    /// The fp32 weights of the W-rank checkpoint loaded on one process.
    func reload(_ dir: String, world: Int) throws -> [Float] {
        let alone = try makeEngine(SingleProcessGroup(), gas: gas * world, stage: stage)
        try alone.loadCheckpoint(dir, tag: "case")
        return try Self.masters(alone)
    }

    /// Whether two losses agree within this case's tolerance.
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= tolerance * max(1, abs(b)) }

    func check(_ group: any ProcessGroup) throws -> String {
        let (rank, world) = (group.rank, group.size)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zero-check-\(getppid())").path
        let o = try run(on: group, checkpoint: dir)
        var problems: [String] = []
        if let p = o.prefetched, p == 0 { problems.append("stage 3 never used a prefetched gather") }
        if let m = o.memoryProblem { problems.append(m) }
        if !o.nanSkipped { problems.append("a NaN gradient on rank \(world - 1) did not make rank \(rank) skip the step") }
        if !close(o.resumedLoss, o.nextLoss) {
            problems.append("after save at stage \(stage) and load at stage \((stage + 2) % 4): loss \(o.resumedLoss) vs \(o.nextLoss)")
        }
        // Rank 0 alone: the single-process reference, and loading the W-rank checkpoint on one rank.
        var note = ""
        if rank == 0 {
            let want = try reference(world: world)
            for (i, (a, b)) in zip(o.losses, want.losses).enumerated() where !close(a, b) {
                problems.append("step \(i + 1) loss \(a) on \(world) ranks vs \(b) on 1")
            }
            if o.skipped != want.skipped { problems.append("skipped \(o.skipped) steps on \(world) ranks vs \(want.skipped) on 1") }
            let drift = zip(o.weights, want.weights).map { abs(Double($0) - Double($1)) }.max() ?? 0
            if drift > weightTolerance { problems.append("weights differ by up to \(drift)") }
            // `weights` were taken before the extra steps; compare what the checkpoint held.
            if try reload(dir, world: world) != o.weights {
                problems.append("the \(world)-rank checkpoint loaded on 1 rank has different fp32 weights")
            }
            if let p = o.prefetched { note = "prefetched \(p) gathers, " }
            note += "losses \(o.losses.map { String(format: "%.4f", $0) }.joined(separator: " ")), skipped \(o.skipped)"
            try? FileManager.default.removeItem(atPath: dir)
        }
        // Everyone learns whether rank 0 found a problem.
        let flag = Tensor([Float(problems.isEmpty ? 0 : 1)])
        try group.allReduce(flag, op: .max)
        if flag.item() > 0 { throw CheckFailure(message: problems.isEmpty ? "another rank found a mismatch" : problems.joined(separator: "; ")) }
        return note
    }

    /// Largest fp32 weight difference allowed against one process.
    var weightTolerance: Double { tolerance <= 1e-5 ? 1e-5 : 1e-2 }

    /// Bytes per rank for model states against the ZeRO paper's per-rank formula (DeepSpeed docs, "ZeRO": 2Ψ+2Ψ+KΨ split by stage; BENCHMARKS B4), exact up to padding.
    func checkMemory(_ engine: Engine) throws {
        let w = engine.layout.ranks, n = engine.flat.paddedCount
        let p = engine.modelDType.byteSize, g = engine.gradShard.dtype.byteSize
        let k = (engine.master == nil ? 0 : 4) + 4 * engine.optimizerState.count
        let persistent = stage == 3 ? engine.flat.params.filter { $0.count <= 100 }.reduce(0) { $0 + $1.count } * p : 0
        let params = stage == 3 ? (offload ? 0 : n / w * p) + persistent : n * p
        let grads = stage >= 2 ? n / w * g : n * g
        let optim = stage >= 1 ? n / w * k : n * k
        let m = engine.memoryBytes
        let want = (params, grads, offload ? 0 : optim, (offload ? optim : 0) + (offload && stage == 3 ? n / w * p : 0))
        guard m == want else {
            throw CheckFailure(message: "memory (params, grads, optim, offloaded) \(m) != formula \(want)")
        }
    }
}
