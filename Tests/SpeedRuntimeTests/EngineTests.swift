// DeepSpeed engine semantics (https://www.deepspeed.ai/docs/config-json/, deepspeed/runtime/engine.py): accumulation boundaries, counters, clipping, optimizer and schedule wiring.
import Foundation
import Logging
import SpeedCore
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Testing

@Suite struct EngineTests {
    @Test func stepUpdatesOnlyAtTheAccumulationBoundaryAndCountsLikeDeepSpeed() throws {
        var rng = RandomStream(seed: 1)
        let model = Linear(6, 3, rng: &rng)
        let cfg = try config(#"{"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 3, "gradient_clipping": 0, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}}"#)
        let (engine, _, _, _) = try initialize(model: model, config: cfg)
        let (x, y) = regressionData(samples: 2, seed: 2)
        #expect(engine.trainBatchSize == 6)
        let start = weights(model)
        for micro in 1...3 {
            #expect(engine.isGradientAccumulationBoundary == (micro == 3))
            try engine.backward(engine(x).mseLoss(y))
            try engine.step()
            #expect(engine.microSteps == micro)
            if micro < 3 { #expect(weights(model) == start) }
        }
        #expect(engine.globalSteps == 1)
        #expect(engine.globalSamples == 6)
        #expect(engine.skippedSteps == 0)
        #expect(weights(model) != start)
        // Gradients are cleared after the boundary.
        #expect(engine.flat.grads!.scalars.allSatisfy { $0 == 0 })
    }

    @Test func accumulatingThreeMicroBatchesEqualsOneBatchOfThreeTimesTheSize() throws {
        let (x, y) = regressionData(samples: 6, seed: 3)
        func run(micro: Int, gas: Int) throws -> [Float] {
            var rng = RandomStream(seed: 4)
            let model = Linear(6, 3, rng: &rng)
            let cfg = try config(#"{"train_micro_batch_size_per_gpu": \#(micro), "gradient_accumulation_steps": \#(gas), "optimizer": {"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.1}}}"#)
            let (engine, _, _, _) = try initialize(model: model, config: cfg)
            for step in 0..<4 {
                for m in 0..<gas {
                    let rows = ((step * 0 + m) * micro)..<((m + 1) * micro)
                    try engine.backward(engine(x.slice(axis: 0, rows)).mseLoss(y.slice(axis: 0, rows)))
                    try engine.step()
                }
            }
            return weights(model)
        }
        let accumulated = try run(micro: 2, gas: 3), whole = try run(micro: 6, gas: 1)
        for (a, b) in zip(accumulated, whole) { #expect(Swift.abs(a - b) < 2e-6) }
    }

    @Test func theEngineAppliesExactlyTheOptimizersUpdate() throws {
        var rng = RandomStream(seed: 5)
        let model = Linear(6, 3, rng: &rng)
        var rng2 = RandomStream(seed: 5)
        let reference = Linear(6, 3, rng: &rng2)
        let (x, y) = regressionData(samples: 4, seed: 6)
        let cfg = try config(#"{"train_batch_size": 4, "gradient_clipping": 0, "optimizer": {"type": "Adam", "params": {"lr": 0.01, "weight_decay": 0.05}}}"#)
        let (engine, optimizer, _, _) = try initialize(model: model, config: cfg)
        #expect(optimizer.typeName == "adam")
        let adam = Adam(lr: 0.01, weightDecay: 0.05)
        let params = reference.parameters()
        let states = params.map { adam.makeState(count: $0.count, device: .cpu) }
        for step in 1...3 {
            try engine.backward(engine(x).mseLoss(y))
            try engine.step()
            reference(x).mseLoss(y).backward()
            for (p, s) in zip(params, states) {
                adam.update(param: p.reshape([-1]), grad: p.grad!.reshape([-1]), state: s, step: step)
                p.grad = nil
            }
        }
        for (a, b) in zip(weights(model), weights(reference)) { #expect(Swift.abs(a - b) < 1e-6) }
    }

    @Test func gradientClippingScalesToTheConfiguredGlobalNorm() throws {
        var rng = RandomStream(seed: 7)
        let model = Linear(6, 3, rng: &rng)
        let (x, y) = regressionData(samples: 4, seed: 8)
        let cfg = try config(#"{"train_batch_size": 4, "gradient_clipping": 0.01, "optimizer": {"type": "SGD", "params": {"lr": 1.0}}}"#)
        let (engine, _, _, _) = try initialize(model: model, config: cfg)
        let before = weights(model)
        try engine.backward(engine(x).mseLoss(y))
        let norm = Double(engine.flat.grads!.scalars.reduce(0) { $0 + $1 * $1 }).squareRoot()
        try engine.step()
        #expect(Swift.abs(engine.globalGradNorm! - norm) < 1e-4 * norm)
        // SGD with lr 1: the weight change is the clipped gradient, whose norm is the clip value.
        let delta = zip(weights(model), before).map { Double($0 - $1) }
        let moved = delta.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(norm > 0.01)
        #expect(Swift.abs(moved - 0.01) < 1e-5)
    }

    @Test func schedulerFromConfigSetsTheLRSequenceDeepSpeedObserves() throws {
        var rng = RandomStream(seed: 9)
        let model = Linear(6, 3, rng: &rng)
        let (x, y) = regressionData(samples: 2, seed: 10)
        let cfg = try config(#"{"train_batch_size": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.5}}, "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 0.001, "warmup_num_steps": 10}}}"#)
        let (engine, _, _, scheduler) = try initialize(model: model, config: cfg)
        var seen: [Double] = []
        for _ in 0..<5 {
            seen.append(engine.getLR()[0])
            try engine.backward(engine(x).mseLoss(y))
            try engine.step()
        }
        #expect(scheduler != nil)
        let expected = [0, 0, 3.0103e-4, 4.7712e-4, 6.0206e-4]
        for (a, b) in zip(seen, expected) { #expect(Swift.abs(a - b) < 1e-7) }
    }

    @Test func aClientOptimizerWinsOverTheConfigBlock() throws {
        var rng = RandomStream(seed: 11)
        let model = Linear(6, 3, rng: &rng)
        let cfg = try config(#"{"train_batch_size": 2, "optimizer": {"type": "Adam", "params": {"lr": 0.5}}}"#)
        let client = SGD(lr: 0.25)
        let (_, optimizer, _, _) = try initialize(model: model, config: cfg, optimizer: client)
        #expect(optimizer === client)
        #expect(optimizer.lr == 0.25)
    }

    @Test func noOptimizerAnywhereIsAClearError() throws {
        var rng = RandomStream(seed: 12)
        let model = Linear(2, 2, rng: &rng)
        #expect(throws: InitializeError.self) { try initialize(model: model, config: try config(#"{"train_batch_size": 2}"#)) }
    }

    @Test func parametersMoveIntoFlatBuffersKeepingIdentityAndValues() throws {
        var rng = RandomStream(seed: 13)
        let model = Sequential(Linear(4, 5, rng: &rng), ReLU(), Linear(5, 2, rng: &rng))
        let before = model.parameters().map { ($0, $0.scalars) }
        let (engine, _, _, _) = try initialize(model: model, config: try config(#"{"train_batch_size": 1, "optimizer": {"type": "SGD", "params": {}}}"#))
        for (p, values) in before {
            #expect(p.storage === engine.flat.values!.storage)
            #expect(p.scalars == values)
            #expect(p.grad?.storage === engine.flat.grads!.storage)
        }
        #expect(engine.flat.count == 4 * 5 + 5 + 5 * 2 + 2)
    }

    @Test func stepsPerPrintAndWallClockBreakdownLog() throws {
        var rng = RandomStream(seed: 14)
        let model = Linear(6, 3, rng: &rng)
        let (x, y) = regressionData(samples: 2, seed: 15)
        let recorder = LogRecorder()
        let cfg = try config(#"{"train_batch_size": 2, "steps_per_print": 2, "wall_clock_breakdown": true, "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}}"#)
        let (engine, _, _, _) = try initialize(model: model, config: cfg, logger: recorder.logger())
        for _ in 0..<4 {
            try engine.backward(engine(x).mseLoss(y))
            try engine.step()
        }
        let steps = recorder.all.filter { $0.contains("step=") }
        #expect(steps.count == 2)
        #expect(steps.first?.contains("step=2, skipped=0, lr=[0.001]") == true)
        #expect(recorder.all.filter { $0.contains("forward:") && $0.contains("backward:") && $0.contains("step:") }.count == 4)
    }
}

@Suite struct EngineMonitorTests {
    @Test func csvAndTensorBoardMonitorsRecordLossAndLRPerStep() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-mon-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = RandomStream(seed: 40)
        let model = Linear(6, 3, rng: &rng)
        let cfg = try config(#"{"train_batch_size": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}, "csv_monitor": {"enabled": true, "output_path": "\#(dir)", "job_name": "job"}, "tensorboard": {"enabled": true, "output_path": "\#(dir)", "job_name": "job"}}"#)
        let (engine, _, _, _) = try initialize(model: model, config: cfg)
        let (x, y) = regressionData(samples: 2, seed: 41)
        var losses: [Double] = []
        for _ in 0..<3 {
            let loss = engine(x).mseLoss(y)
            losses.append(loss.item())
            try engine.backward(loss)
            try engine.step()
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/job").sorted()
        #expect(files.contains { $0.hasPrefix("events.out.tfevents.") })
        let lossFile = try #require(files.first { $0.contains("train_loss") })
        let rows = try String(contentsOfFile: dir + "/job/" + lossFile, encoding: .utf8)
            .split(whereSeparator: \.isNewline).map(String.init)
        #expect(rows.count == 4)   // header + 3 steps
        // DeepSpeed keys monitor events by global samples: 2, 4, 6.
        #expect(rows[1] == "2,\(losses[0])")
        #expect(rows[3] == "6,\(losses[2])")
    }
}

@Suite struct EngineLambTests {
    /// DeepSpeed's Lamb takes its trust ratio per parameter tensor; the engine must too.
    @Test func lambUpdatesEachParameterWithItsOwnTrustRatio() throws {
        var rng = RandomStream(seed: 60), rng2 = RandomStream(seed: 60)
        let model = Sequential(Linear(6, 4, rng: &rng), Tanh(), Linear(4, 3, rng: &rng))
        let reference = Sequential(Linear(6, 4, rng: &rng2), Tanh(), Linear(4, 3, rng: &rng2))
        let (x, y) = regressionData(samples: 4, seed: 61)
        let cfg = try config(#"{"train_batch_size": 4, "gradient_clipping": 0, "optimizer": {"type": "Lamb", "params": {"lr": 0.01, "weight_decay": 0.01}}}"#)
        let (engine, _, _, _) = try initialize(model: model, config: cfg)
        let lamb = Lamb(lr: 0.01, weightDecay: 0.01)
        let params = reference.parameters()
        let states = params.map { lamb.makeState(count: $0.count, device: .cpu) }
        for step in 1...2 {
            try engine.backward(engine(x).mseLoss(y))
            try engine.step()
            reference(x).mseLoss(y).backward()
            for (p, s) in zip(params, states) {
                lamb.update(param: p, grad: p.grad!, state: s, step: step)
                p.grad = nil
            }
        }
        for (a, b) in zip(weights(model), weights(reference)) { #expect(Swift.abs(a - b) < 1e-6) }
    }
}

@Suite struct EngineMemoryTests {
    /// The ZeRO paper's accounting (https://www.deepspeed.ai/tutorials/zero/) at stage 0: 16 bytes per parameter with mixed-precision Adam (2 + 2 + 12),
    /// and 16 with fp32 Adam (4 + 4 + 8).
    @Test(arguments: [("fp16", 2, 2, 12), ("bf16", 2, 2, 12), ("fp32", 4, 4, 8)])
    func memoryPerParameterMatchesTheFormula(_ precision: String, _ p: Int, _ g: Int, _ o: Int) throws {
        var rng = RandomStream(seed: 70)
        let model = Linear(6, 3, rng: &rng)
        let block = precision == "fp32" ? "" : #", "\#(precision)": {"enabled": true}"#
        let (engine, _, _, _) = try initialize(model: model, config: try config(#"{"train_batch_size": 2\#(block), "optimizer": {"type": "Adam", "params": {}}}"#))
        let m = engine.memoryBytes, n = engine.flat.count
        #expect(m.params == p * n && m.grads == g * n && m.optimizer == o * n)
    }
}
