// `swiftspeed bench pipeline`: B9, gpt-mini as p pipeline stages (one per rank) — the measured 1F1B bubble against
// (p−1)/(m+p−1), and each stage's peak activation memory against the 1F1B bound min(p − s, m) micro-batches.
// Invariant: every rank runs the same micro-batch counts in the same order; rank 0 gathers the stages' figures.

import ArgumentParser
import SwiftSpeed

extension Bench {
    struct PipelineBubble: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pipeline",
            abstract: "B9: gpt-mini over the job's ranks as pipeline stages: bubble and activation memory per stage.",
            discussion: """
                Run under swiftspeed launch --num_procs p (p stages, no data parallelism). For each m in \
                --micro-batches it trains --warmup + --steps batches of m micro-batches (fp32, AdamW, no clipping) and \
                times each stage's forward and backward passes. A stage's bubble is 1 − (forward + backward) / \
                (batch wall time − its optimizer step); reported are the mean over stages (which includes the partition's \
                imbalance) and the bubble of the stage with the most compute (which sets the pace), against (p−1)/(m+p−1). Activation memory is the stage's peak allocation during a batch above what it held \
                before; the bound is min(p − s, m) times the peak of a one-micro-batch batch. Rank 0 prints.
                """)

        @Option(help: "Micro-batch counts, comma-separated.") var microBatches: String = "4,8,16"
        @Option(help: "Rows per micro-batch.") var batch: Int = 2
        @Option(help: "Timed batches per micro-batch count.") var steps: Int = 3
        @Option(help: "Warm-up batches.") var warmup: Int = 1
        @Option(help: "Worker threads per rank.") var threads: Int = 1
        @Option(help: "Seconds a send or receive may wait.") var timeout: Double = 600
        @Flag(help: "Print JSON lines.") var json = false

        func run() throws {
            let world = try ProcessGroups.fromEnvironment(timeout: timeout)
            let device = Device.cpu(threads: threads)
            let p = world.size
            let counts = microBatches.split(separator: ",").compactMap { Int($0) }
            // Activations of one micro-batch in flight, per stage (the unit of the 1F1B bound).
            let single = try measure(world, device: device, microBatches: 1)
            for m in counts {
                let stats = try measure(world, device: device, microBatches: m)
                guard world.rank == 0 else { continue }
                let theory = Double(p - 1) / Double(m + p - 1)
                var bubbles: [Double] = []
                for s in 0..<p {
                    let st = stats[s], wall = st.wall - st.step
                    let bubble = 1 - (st.forward + st.backward) / wall
                    bubbles.append(bubble)
                    let bound = Swift.min(p - s, m) * single[s].activation
                    let line = "{\"case\":\"B9-pipeline-stage\",\"stages\":\(p),\"micro_batches\":\(m),\"stage\":\(s),"
                        + "\"batch_ms\":\(fmt(st.wall * 1000)),\"forward_ms\":\(fmt(st.forward * 1000)),\"backward_ms\":\(fmt(st.backward * 1000)),"
                        + "\"step_ms\":\(fmt(st.step * 1000)),\"bubble\":\(fmt(bubble)),\"max_in_flight\":\(st.inFlight),"
                        + "\"activation_bytes\":\(st.activation),\"one_micro_batch_bytes\":\(single[s].activation),"
                        + "\"bound_1f1b_bytes\":\(bound),\"all_forwards_first_bytes\":\(m * single[s].activation)}"
                    if json { print(line) } else {
                        print("p=\(p) m=\(m) stage \(s): bubble \(fmt(bubble)), in flight \(st.inFlight), activations \(st.activation) B (1F1B bound \(bound) B)")
                    }
                }
                let mean = bubbles.reduce(0, +) / Double(p)
                // The stage with the most compute sets the pace; its idle share is the schedule's bubble, the others'
                // also hold the partition's imbalance.
                let slowest = (0..<p).max { stats[$0].forward + stats[$0].backward < stats[$1].forward + stats[$1].backward }!
                let bottleneck = bubbles[slowest]
                let samples = Double(m * batch) / (stats.map(\.wall).max() ?? 1)
                if json {
                    print("{\"case\":\"B9-pipeline\",\"stages\":\(p),\"micro_batches\":\(m),\"bubble\":\(fmt(mean)),"
                        + "\"bubble_slowest_stage\":\(fmt(bottleneck)),\"slowest_stage\":\(slowest),\"bubble_theory\":\(fmt(theory)),\"samples_per_s\":\(fmt(samples))}")
                } else {
                    print("p=\(p) m=\(m): bubble \(fmt(mean)), slowest stage \(slowest)'s \(fmt(bottleneck)) (theory \(fmt(theory))), \(fmt(samples)) samples/s")
                }
            }
            world.finalize()
        }

        struct StageStats { var wall = 0.0, forward = 0.0, backward = 0.0, step = 0.0, inFlight = 0, activation = 0 }

        /// Every stage's mean figures over the timed batches (gathered on every rank).
        func measure(_ world: any ProcessGroup, device: Device, microBatches m: Int) throws -> [StageStats] {
            let ds = try DeepSpeedConfig.parse("""
                {"train_micro_batch_size_per_gpu": \(batch), "gradient_accumulation_steps": \(m), "gradient_clipping": 0,
                 "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "weight_decay": 0.1}}}
                """)
            let module = try GPTPipe.module(.gptMini, seed: 1337, numStages: world.size, device: device)
            let engine = try PipelineEngine(module: module, config: ds, world: world)
            let (input, target) = syntheticTokens(batch: batch, config: .gptMini, device: device)
            var mine = StageStats()
            for i in 0..<(warmup + steps) {
                try world.barrier()
                let before = device.backend.memoryStats.allocatedBytes
                device.backend.resetPeakMemory()
                let start = now()
                _ = try engine.trainBatch { MicroBatch(input: input, target: target) }
                let wall = now() - start
                guard i >= warmup else { continue }
                let t = engine.lastTimings
                mine.wall += wall / Double(steps)
                mine.forward += t["forward"]! / Double(steps)
                mine.backward += t["backward"]! / Double(steps)
                mine.step += t["step"]! / Double(steps)
                mine.inFlight = Swift.max(mine.inFlight, engine.maxInFlight)
                mine.activation = Swift.max(mine.activation, device.backend.memoryStats.peakAllocatedBytes - before)
            }
            let local = Tensor([mine.wall, mine.forward, mine.backward, mine.step, Double(mine.inFlight), Double(mine.activation)],
                               shape: [6], dtype: .float64)
            let all = Tensor(empty: [6 * world.size], dtype: .float64)
            try world.allGather(local, into: all)
            let v = all.scalars(as: Double.self)
            return (0..<world.size).map { s in
                let r = Array(v[(6 * s)..<(6 * s + 6)])
                return StageStats(wall: r[0], forward: r[1], backward: r[2], step: r[3], inFlight: Int(r[4]), activation: Int(r[5]))
            }
        }
    }
}
