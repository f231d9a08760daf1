// `swiftspeed bench gpu-step`: B3 — GPT-2 124M training steps on one GPU through the engine, timed after warm-up.
// Invariant: the timed region ends with a device synchronisation, so the figure is the GPU's, not the launch queue's.

import ArgumentParser
import SwiftSpeed

extension Bench {
    struct GPUStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gpu-step",
            abstract: "B3: gpt2-small, micro-batch 16, T 1024, bf16, AdamW (lr 3e-4, wd 0.1), clipping 1.0, ZeRO-2, W = 1.")

        @Option(help: "cuda or cuda:N (cpu runs the same step slowly: peak-memory estimates).") var device: String = "cuda"
        @Option(help: "gpt2-small (B3) or gpt-mini (a quick check).") var model: String = "gpt2-small"
        @Option(help: "Micro-batch size.") var microBatch: Int = 16
        @Option(help: "ZeRO stage (0-3).") var stage: Int = 2
        @Flag(help: "offload_optimizer to the CPU.") var offload = false
        @Option(help: "Timed steps after warm-up.") var steps: Int = 10
        @Option(help: "Warm-up steps.") var warmup: Int = 3
        @Flag(help: "Print one JSON line.") var json = false
        @Flag(help: "After timing, profile a few more steps: GPU time per kernel family (CUDA events around every call).")
        var profile = false

        func validate() throws {
            guard GPTConfig.preset(model) != nil else { throw ValidationError("unknown model '\(model)': gpt2-small or gpt-mini") }
            guard (0...3).contains(stage) else { throw ValidationError("--stage must be 0, 1, 2 or 3") }
        }

        func run() throws {
            let gpu: Device
            do { gpu = try Device.named(device) } catch {
                printError("bench gpu-step: \(error)")
                throw ExitCode(2)
            }
            let config = GPTConfig.preset(model)!
            var rng = RandomStream(seed: 1337)
            let gpt = GPT(config, device: gpu, rng: &rng)
            let offloadBlock = offload ? #", "offload_optimizer": {"device": "cpu", "pin_memory": true}"# : ""
            let ds = try DeepSpeedConfig.parse("""
                {"train_micro_batch_size_per_gpu": \(microBatch), "gradient_accumulation_steps": 1, "gradient_clipping": 1.0,
                 "bf16": {"enabled": true}, "zero_optimization": {"stage": \(stage)\(offloadBlock)},
                 "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "weight_decay": 0.1}}}
                """)
            let (engine, _, _, _) = try SwiftSpeed.initialize(model: gpt, config: ds, processGroup: SingleProcessGroup())
            let t = config.contextLength
            let (input, target) = syntheticTokens(batch: microBatch, config: config, device: gpu)
            let sync = { (gpu.backend as? CUDABackend)?.synchronize() }
            var times: [Double] = []
            gpu.backend.resetPeakMemory()
            func trainStep() throws {
                let loss = engine(input).crossEntropy(targets: target)
                try engine.backward(loss)
                try engine.step()
            }
            for step in 0..<(warmup + steps) {
                sync()
                let t0 = now()
                try trainStep()
                sync()
                if step >= warmup { times.append(now() - t0) }
            }
            // Per-family GPU time over a few more steps (events around every call slow the step itself a little).
            var breakdown: [KernelTime] = []
            let profiledSteps = 3
            if profile, let cuda = gpu.backend as? CUDABackend {
                cuda.startProfiling()
                for _ in 0..<profiledSteps { try trainStep() }
                breakdown = cuda.stopProfiling()
            }
            let ms = median(times) * 1000
            let tokens = Double(microBatch * t)
            let tokensPerS = tokens / (ms / 1000)
            // Model FLOPs per token: 6N (weights) + 6·L·T·C (attention scores and values, forward + backward).
            let n = Double(engine.flat.count)
            let flopsPerToken = 6 * n + 6 * Double(config.layers * t * config.embedDim)
            let tflops = flopsPerToken * tokensPerS / 1e12
            let peakGiB = Double(gpu.backend.memoryStats.peakAllocatedBytes) / Double(1 << 30)
            let loss = engine.lastLoss ?? .nan
            let perStep = breakdown.map { ($0.family, Double($0.calls) / Double(profiledSteps), $0.milliseconds / Double(profiledSteps)) }
            if json {
                // "device": the GPU's own name (the CPU backend's name when run on the CPU), for BENCHMARKS.md.
                let deviceName = (gpu.backend as? CUDABackend)?.info.name ?? gpu.backend.name
                let families = perStep.map { "\"\($0.0)\":\(fmt($0.2))" }.joined(separator: ",")
                print("{\"case\":\"B3-gpu-step\",\"device\":\(JSONText.quoted(deviceName)),\"model\":\"\(model)\",\"micro_batch\":\(microBatch),\"stage\":\(stage),"
                    + "\"offload\":\(offload),\"ms_per_step\":\(fmt(ms)),\"tokens_per_s\":\(fmt(tokensPerS)),"
                    + "\"tflops\":\(fmt(tflops)),\"peak_mem_gib\":\(fmt(peakGiB)),\"loss\":\(fmt(loss))"
                    + (profile ? ",\"kernel_ms_per_step\":{\(families)}" : "") + "}")
            } else {
                print("B3 gpu-step \(model) mb \(microBatch) ZeRO-\(stage)\(offload ? " offload" : "") on \(gpu.backend.name): "
                    + "\(fmt(ms)) ms/step, \(fmt(tokensPerS)) tokens/s, \(fmt(tflops)) TFLOP/s, peak \(fmt(peakGiB)) GiB, loss \(fmt(loss))")
                if !perStep.isEmpty {
                    let busy = perStep.reduce(0) { $0 + $1.2 }
                    print("GPU time per step by kernel family (\(profiledSteps) profiled steps; \(fmt(busy)) ms busy of \(fmt(ms)) ms):")
                    for (family, calls, t) in perStep {
                        let share = busy > 0 ? 100 * t / busy : 0
                        print("  \(family.padding(toLength: 28, withPad: " ", startingAt: 0)) \(fmt(calls)) calls  \(fmt(t)) ms  \(fmt(share))%")
                    }
                }
            }
        }
    }
}
