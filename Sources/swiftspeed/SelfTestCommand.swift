// `swiftspeed selftest --device cuda`: every op forward and backward, then gpt-mini training steps, on the GPU
// against the CPU reference; exits 1 on any mismatch.
// Invariant: both devices start from bit-identical inputs and weights (drawn on the CPU and copied).

import ArgumentParser
import Foundation
import SwiftSpeed

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Compare a device's kernels (every op, forward and backward) and a gpt-mini training step with the CPU.")

    @Option(help: "The device to test: cuda or cuda:N.") var device: String = "cuda"
    @Option(help: "Only cases whose name contains this text.") var filter: String?
    @Option(help: "gpt-mini optimizer steps to compare (0 skips the training check).") var steps: Int = 3
    @Flag(help: "Print only failures and the summary.") var quiet = false
    @Flag(help: "One JSON object per comparison.") var json = false

    func run() throws {
        let gpu: Device
        do { gpu = try Device.named(device) } catch {
            printError("selftest: \(error)")
            throw ExitCode(2)
        }
        guard !gpu.isCPU else { throw ValidationError("selftest compares a GPU with the CPU; pass --device cuda") }
        print("selftest: \(gpu.backend.name) against \(Device.cpu.backend.name)")
        let start = Date()
        var failed = 0, total = 0
        let report: (SelfTestResult) -> Void = { r in
            total += 1
            if !r.passed { failed += 1 }
            if json {
                if let data = try? JSONEncoder().encode(r) { print(String(decoding: data, as: UTF8.self)) }
            } else if !quiet || !r.passed {
                print(r)
            }
        }
        _ = SelfTest(device: gpu, filter: filter).run(report)
        if steps > 0 && (filter == nil || "gpt-mini training".contains(filter!)) {
            for r in try trainingCheck(gpu) { report(r) }
        }
        let seconds = Date().timeIntervalSince(start)
        print("selftest: \(total - failed)/\(total) comparisons passed, \(failed) failed (\(String(format: "%.1f", seconds)) s)")
        if failed > 0 { throw ExitCode(1) }
    }

    /// gpt-mini (bf16, AdamW, ZeRO-2, W = 1) for `steps` steps on each device from the same weights and batches:
    /// per-step losses, and the fp32 master weights at the end.
    func trainingCheck(_ gpu: Device) throws -> [SelfTestResult] {
        var config = GPTConfig.preset("gpt-mini")!
        config.contextLength = 64
        let json = """
            {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2, "gradient_clipping": 1.0,
             "bf16": {"enabled": true}, "zero_optimization": {"stage": 2},
             "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.1}}}
            """
        func train(_ device: Device) throws -> ([Double], Tensor) {
            var rng = RandomStream(seed: 42)
            let cpuModel = GPT(config, device: .cpu, rng: &rng)
            let model: GPT
            if device.isCPU { model = cpuModel } else {
                var again = RandomStream(seed: 42)
                model = GPT(config, device: device, rng: &again)
                for ((_, p), (_, q)) in zip(model.namedParameters(), cpuModel.namedParameters()) { p.copyData(from: q) }
            }
            let ds = try DeepSpeedConfig.parse(json, worldSize: 1)
            let (engine, _, _, _) = try SwiftSpeed.initialize(model: model, config: ds, processGroup: SingleProcessGroup())
            var losses: [Double] = []
            let t = config.contextLength, v = UInt64(config.vocabSize)
            for step in 0..<steps {
                for micro in 0..<engine.gradientAccumulationSteps {
                    let ids = (0..<(2 * (t + 1))).map {
                        Float(RandomStream.bits(seed: 99, counter: UInt64((step * 2 + micro) * 2 * (t + 1) + $0)) % v)
                    }
                    let all = Tensor(ids, shape: [2, t + 1]).cast(to: .int32)
                    let input = all.slice(axis: 1, 0..<t).copy().to(device), target = all.slice(axis: 1, 1..<(t + 1)).copy().to(device)
                    let loss = engine(input).crossEntropy(targets: target)
                    try engine.backward(loss)
                    try engine.step()
                }
                losses.append(engine.lastLoss ?? .nan)
            }
            return (losses, noGrad { (engine.master ?? engine.weightShard).to(.cpu).cast(to: .float32) })
        }
        let (cpuLosses, cpuWeights) = try train(.cpu)
        let (gpuLosses, gpuWeights) = try train(gpu)
        // bf16 training: compared at bf16's tolerance (losses, and masters relative to their largest magnitude).
        let lossGPU = Tensor(gpuLosses.map { Float($0) }, shape: [steps]).cast(to: .bfloat16)
        let lossCPU = Tensor(cpuLosses.map { Float($0) }, shape: [steps]).cast(to: .bfloat16)
        let lossResult = SelfTest.compare("gpt-mini training: loss per step", gpu: lossGPU, cpu: lossCPU, tolerance: .pointwise)
        let weightResult = SelfTest.compare("gpt-mini training: master weights after \(steps) steps",
                                            gpu: gpuWeights.cast(to: .bfloat16), cpu: cpuWeights.cast(to: .bfloat16),
                                            tolerance: .accumulated)
        return [lossResult, weightResult]
    }
}
