// Shared pieces of the pipeline tests: a small GPT, deterministic micro-batches, configs, and the one-process reference.
import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
@testable import SpeedPipeline
@testable import SpeedRuntime

/// gpt-mini's shape, shrunk so a 4-stage in-process pipeline trains in well under a second per step on 2 cores.
let smallGPT = GPTConfig(vocabSize: 64, contextLength: 16, layers: 4, heads: 2, embedDim: 32)
let gptSeed: UInt64 = 1337

/// Global micro-batch `k`: ids `[2, 16]` in 0..<64 and the next-token targets, from the counter-based hash.
func microBatch(_ k: Int, rows: Int = 2, config: GPTConfig = smallGPT) -> MicroBatch {
    let t = config.contextLength
    let tokens = (0..<(rows * (t + 1))).map { i in
        Int(RandomStream.bits(seed: 4242 &+ UInt64(k), counter: UInt64(i)) % UInt64(config.vocabSize))
    }
    var ids: [Int] = [], targets: [Int] = []
    for r in 0..<rows {
        let row = tokens[(r * (t + 1))..<((r + 1) * (t + 1))]
        ids += row.dropLast()
        targets += row.dropFirst()
    }
    return MicroBatch(input: Tensor(ids, shape: [rows, t]), target: Tensor(targets, shape: [rows, t]))
}

/// A config for `dataParallel` ranks with `gas` micro-batches of 2 rows each.
func pipeConfig(gas: Int, dataParallel: Int, zeroStage: Int = 0, clip: Double = 0.05, extra: String = "") throws -> DeepSpeedConfig {
    try DeepSpeedConfig.parse("""
        {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": \(gas), "gradient_clipping": \(clip),
         "optimizer": {"type": "AdamW", "params": {"lr": 0.003, "weight_decay": 0.01}},
         "zero_optimization": {"stage": \(zeroStage)}\(extra)}
        """, worldSize: dataParallel)
}

/// What one process (or one rank) saw: per-step losses and global gradient norms, and the final fp32 weights by GPT name.
struct RunResult: Sendable {
    var losses: [Double] = []
    var norms: [Double?] = []
    var weights: [String: [Float]] = [:]
}

/// Plain SpeedNN GPT on one process with the same global batch: `gas · dataParallel` micro-batches per step, in
/// global order (what data rank r of W sees at micro-step m is global micro-batch m·W + r).
func referenceRun(steps: Int, gas: Int, dataParallel: Int, clip: Double = 0.05, extra: String = "") throws -> RunResult {
    var rng = RandomStream(seed: gptSeed)
    let gpt = GPT(smallGPT, rng: &rng)
    let config = try pipeConfig(gas: gas * dataParallel, dataParallel: 1, clip: clip, extra: extra)
    let engine = try initialize(model: gpt, config: config).engine
    var out = RunResult()
    let perStep = gas * dataParallel
    for s in 0..<steps {
        for m in 0..<perStep {
            let b = microBatch(s * perStep + m)
            try engine.backward(engine(b.input).crossEntropy(targets: b.target))
            try engine.step()
        }
        out.losses.append(engine.lastLoss!)
        out.norms.append(engine.globalGradNorm)
    }
    for (name, p) in gpt.namedParameters() { out.weights[name] = p.cast(to: .float32).scalars }
    return out
}

/// The micro-batch source of data rank `dp` of `dataParallel`: at step s, micro-step m, global batch (s·GAS + m)·W + dp.
final class RankData {
    let dp: Int, dataParallel: Int, gas: Int
    var step = 0, micro = 0
    init(dp: Int, dataParallel: Int, gas: Int) { self.dp = dp; self.dataParallel = dataParallel; self.gas = gas }
    func next() -> MicroBatch {
        defer { micro += 1 }
        return microBatch((step * gas + micro) * dataParallel + dp)
    }
    func endStep() { step += 1; micro = 0 }
}

/// This stage's weights by GPT name (the LM head is skipped: it is `wte.weight`, held by layer 0 too).
func gptWeights(of stage: PipelineStage) -> [String: [Float]] {
    var out: [String: [Float]] = [:]
    for i in stage.layerRange {
        guard let m = stage.module(forLayer: i) else { continue }
        for (name, p) in m.namedParameters() {
            if let gptName = GPTPipe.gptName(layer: i, parameter: name, config: smallGPT) { out[gptName] = p.cast(to: .float32).scalars }
        }
    }
    return out
}

/// The largest |a − b| / max(1, |b|) over two equal-length arrays.
func maxRelativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "lengths \(a.count) and \(b.count) differ")
    return zip(a, b).reduce(0) { Swift.max($0, Double(abs($1.0 - $1.1)) / Swift.max(1, Double(abs($1.1)))) }
}

/// A thread-safe slot for values a rank hands out of `LocalProcessGroup.run` when the job itself fails.
final class Captured<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int: T] = [:]
    func set(_ rank: Int, _ value: T) { lock.lock(); items[rank] = value; lock.unlock() }
    subscript(rank: Int) -> T? { lock.lock(); defer { lock.unlock() }; return items[rank] }
}
