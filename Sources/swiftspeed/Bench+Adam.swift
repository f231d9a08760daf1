// `swiftspeed bench adam`: B2, one fused AdamW step over N fp32 parameters on the CPU backend.
// Invariant: every timed step runs on the same warmed-up buffers (pages touched before timing), so the
// median measures the memory sweep, not page faults.

import ArgumentParser
import SwiftSpeed

extension Bench {
    /// B2: AdamW over flat fp32 (p, g, m, v), optionally writing a bf16/fp16 copy of the weights.
    struct AdamStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "adam",
            abstract: "B2: one AdamW step over N fp32 parameters (28 bytes/param) on the CPU.")

        @Option(help: "Parameters in the flat buffer.") var params: Int = 50_000_000
        @Option(help: "Worker threads (default: all cores).") var threads: Int?
        @Option(help: "16-bit copy of the updated weights written in the same pass: bf16, fp16 or none.")
        var half: String = "none"
        @Option(help: "Timed steps after warm-up.") var steps: Int = 15
        @Option(help: "Warm-up steps.") var warmup: Int = 3
        @Flag(help: "Print one JSON line.") var json = false

        func validate() throws {
            guard ["bf16", "fp16", "none"].contains(half) else {
                throw ValidationError("--half must be bf16, fp16 or none, got '\(half)'")
            }
            guard params > 0, steps > 0, warmup >= 0 else {
                throw ValidationError("--params and --steps must be positive, --warmup >= 0")
            }
        }

        func run() throws {
            let device = threads.map { Device.cpu(threads: $0) } ?? .cpu
            var rng = RandomStream(seed: 2)
            let p = Tensor.randn([params], std: 0.02, device: device, rng: &rng)
            let g = Tensor.randn([params], std: 1e-3, device: device, rng: &rng)
            let optimizer = AdamW(lr: 3e-4, weightDecay: 0.1)
            let state = optimizer.makeState(count: params, device: device)
            let copy: Tensor? = switch half {
            case "bf16": Tensor.zeros([params], dtype: .bfloat16, device: device)
            case "fp16": Tensor.zeros([params], dtype: .float16, device: device)
            default: nil
            }
            var times: [Double] = []
            for step in 1...(warmup + steps) {
                let t0 = now()
                optimizer.update(param: p, grad: g, state: state, step: step, lowPrecisionCopy: copy)
                if step > warmup { times.append(now() - t0) }
            }
            times.sort()
            let ms = times[times.count / 2] * 1000
            let threadsUsed = (device.backend as? CPUBackend)?.threads ?? 0
            let perS = Double(params) / (ms / 1000)
            let gbs = Double(params) * Double(28 + (copy == nil ? 0 : 2)) / (ms / 1000) / 1e9
            if json {
                print("{\"case\":\"B2-adam\",\"params\":\(params),\"threads\":\(threadsUsed),\"half\":\"\(half)\","
                      + "\"ms_per_step\":\(fmt(ms)),\"params_per_s\":\(Int(perS.rounded())),"
                      + "\"min_ms\":\(fmt(times[0] * 1000)),\"max_ms\":\(fmt(times[times.count - 1] * 1000)),"
                      + "\"gb_per_s\":\(fmt(gbs))}")
            } else {
                print("B2 adam (\(params) params, \(threadsUsed) threads, copy \(half)): \(fmt(ms)) ms/step "
                      + "(min \(fmt(times[0] * 1000)), max \(fmt(times[times.count - 1] * 1000))), "
                      + "\(fmt(perS / 1e9)) G params/s, \(fmt(gbs)) GB/s")
            }
        }
    }
}
