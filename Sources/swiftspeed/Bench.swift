// `swiftspeed bench …`: the BENCHMARKS.md cases, one JSON line per case with --json.
import ArgumentParser
import SwiftSpeed
#if canImport(Glibc)
import Glibc
#endif

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark case from BENCHMARKS.md.",
        subcommands: [CPUStep.self, GEMM.self, AdamStep.self, Collectives.self, GPUStep.self, TokenizeThroughput.self,
                       PipelineBubble.self, TensorParallelTraffic.self, HFTrainerStep.self])
}

/// `batch` rows of random tokens (seed 7) for a GPT: inputs and next-token targets, `[batch, T]` each.
func syntheticTokens(batch: Int, config: GPTConfig, device: Device) -> (Tensor, Tensor) {
    let t = config.contextLength, vocab = UInt64(config.vocabSize)
    var ids: [Int32] = [], targets: [Int32] = []
    for b in 0..<batch {
        let row = (0...t).map { Int32(RandomStream.bits(seed: 7, counter: UInt64(b * (t + 1) + $0)) % vocab) }
        ids += row.dropLast()
        targets += row.dropFirst()
    }
    return (Tensor(ids, shape: [batch, t], device: device), Tensor(targets, shape: [batch, t], device: device))
}

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

extension Bench {
    /// B1: gpt-mini fp32 training step on the CPU, through the engine (forward, backward, AdamW).
    struct CPUStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cpu-step",
            abstract: "B1: gpt-mini (L4 H4 C256 T128 V8192), micro-batch 8, fp32, AdamW(lr 3e-4, wd 0.1) on the CPU.")

        @Option(help: "Worker threads (default: all cores).") var threads: Int?
        @Option(help: "Timed steps after warm-up.") var steps: Int = 10
        @Option(help: "Warm-up steps.") var warmup: Int = 2
        @Option(help: "Micro-batch size.") var batch: Int = 8
        @Flag(help: "Time forward + backward only (no optimizer step).") var noOptimizer = false
        @Flag(help: "Print one JSON line.") var json = false

        func run() throws {
            let device = threads.map { Device.cpu(threads: $0) } ?? .cpu
            let config = GPTConfig.gptMini
            var rng = RandomStream(seed: 1337)
            let model = GPT(config, device: device, rng: &rng)
            // As the PyTorch anchor: AdamW, no clipping, one process.
            let ds = try DeepSpeedConfig.parse("""
                {"train_batch_size": \(batch), "gradient_clipping": 0,
                 "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "weight_decay": 0.1}}}
                """)
            let (engine, _, _, _) = try SwiftSpeed.initialize(model: model, config: ds)
            let t = config.contextLength
            let (input, target) = syntheticTokens(batch: batch, config: config, device: device)
            var total: [Double] = [], fwd: [Double] = [], bwd: [Double] = [], opt: [Double] = []
            for step in 0..<(warmup + steps) {
                let t0 = now()
                let loss = engine(input).crossEntropy(targets: target)
                let t1 = now()
                try engine.backward(loss)
                let t2 = now()
                if noOptimizer { engine.zeroGrad() } else { try engine.step() }
                let t3 = now()
                if step >= warmup {
                    total.append(t3 - t0); fwd.append(t1 - t0); bwd.append(t2 - t1); opt.append(t3 - t2)
                }
            }
            let ms = median(total) * 1000
            let tokensPerS = Double(batch * t) / (ms / 1000)
            let threadsUsed = (device.backend as? CPUBackend)?.threads ?? 0
            if json {
                print("{\"case\":\"B1-cpu-step\",\"optimizer\":\"\(noOptimizer ? "none" : "adamw")\",\"threads\":\(threadsUsed),"
                    + "\"ms_per_step\":\(fmt(ms)),\"tokens_per_s\":\(fmt(tokensPerS)),\"forward_ms\":\(fmt(median(fwd) * 1000)),"
                    + "\"backward_ms\":\(fmt(median(bwd) * 1000)),\"optimizer_ms\":\(fmt(median(opt) * 1000))}")
            } else {
                print("B1 cpu-step (\(threadsUsed) threads): \(fmt(ms)) ms/step, \(fmt(tokensPerS)) tokens/s "
                    + "(forward \(fmt(median(fwd) * 1000)) ms, backward \(fmt(median(bwd) * 1000)) ms, step \(fmt(median(opt) * 1000)) ms)")
            }
        }
    }
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

extension Bench {
    /// Raw matmul throughput of the backend (GFLOP/s), for reading the other figures against.
    struct GEMM: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "C = op(A)·op(B) throughput in GFLOP/s.")
        @Option var m = 1024
        @Option var n = 8192
        @Option var k = 256
        @Flag var transA = false
        @Flag var transB = false
        @Option var threads: Int?
        @Option var repeats = 10

        func run() {
            let device = threads.map { Device.cpu(threads: $0) } ?? .cpu
            var rng = RandomStream(seed: 0)
            let a = Tensor.randn(transA ? [k, m] : [m, k], device: device, rng: &rng)
            let b = Tensor.randn(transB ? [n, k] : [k, n], device: device, rng: &rng)
            _ = Tensor.matmul(a, b, transposeA: transA, transposeB: transB)
            var best = Double.infinity
            for _ in 0..<repeats {
                let t0 = now()
                _ = Tensor.matmul(a, b, transposeA: transA, transposeB: transB)
                best = min(best, now() - t0)
            }
            print("{\"case\":\"gemm\",\"m\":\(m),\"n\":\(n),\"k\":\(k),\"ms\":\(fmt(best * 1000)),\"gflops\":\(fmt(2.0 * Double(m * n * k) / best / 1e9))}")
        }
    }
}

func fmt(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return "\(r)"
}
