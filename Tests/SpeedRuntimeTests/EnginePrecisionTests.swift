// Mixed precision in the engine: fp16 loss scaling with skipped steps, bf16 with fp32 master weights.
import SpeedCore
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Testing

@Suite struct EnginePrecisionTests {
    @Test func fp16OverflowSkipsTheStepHalvesTheScaleAndFreezesEverything() throws {
        var rng = RandomStream(seed: 20)
        let model = Linear(6, 3, rng: &rng)
        let cfg = try config(#"{"train_batch_size": 2, "fp16": {"enabled": true, "hysteresis": 1, "initial_scale_power": 8}, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}, "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0.001, "warmup_max_lr": 0.01, "warmup_num_steps": 5, "warmup_type": "linear"}}}"#)
        let (engine, optimizer, _, _) = try initialize(model: model, config: cfg)
        #expect(engine.modelDType == .float16)
        #expect(engine.lossScale == 256)
        let (x, y) = regressionData(samples: 2, seed: 21)
        // A clean step first.
        try engine.backward(engine(x).mseLoss(y))
        try engine.step()
        let lrAfterOne = optimizer.lr
        let before = weights(model), master = engine.master!.scalars
        // A loss of 1e6 times the scale overflows fp16 gradients.
        try engine.backward(engine(x).mseLoss(y) * 1e6)
        try engine.step()
        #expect(engine.skippedSteps == 1)
        #expect(engine.globalSteps == 2)
        #expect(engine.lossScale == 128)
        #expect(weights(model) == before)
        #expect(engine.master!.scalars == master)
        #expect(optimizer.lr == lrAfterOne)        // schedules do not step on skipped steps
        #expect(engine.globalGradNorm == nil)
        // Training continues normally afterwards.
        try engine.backward(engine(x).mseLoss(y))
        try engine.step()
        #expect(weights(model) != before)
    }

    @Test func fp16GradientsAreUnscaledBeforeTheUpdate() throws {
        // With a static scale, the fp16 engine takes the same SGD step as fp32 (within fp16 rounding).
        func run(_ json: String) throws -> [Float] {
            var rng = RandomStream(seed: 22)
            let model = Linear(6, 3, rng: &rng)
            let (engine, _, _, _) = try initialize(model: model, config: try config(json))
            let (x, y) = regressionData(samples: 2, seed: 23)
            try engine.backward(engine(x).mseLoss(y))
            try engine.step()
            return (engine.master ?? engine.flat.values!).scalars
        }
        let half = try run(#"{"train_batch_size": 2, "gradient_clipping": 0, "fp16": {"enabled": true, "loss_scale": 1024}, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}}"#)
        let full = try run(#"{"train_batch_size": 2, "gradient_clipping": 0, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}}"#)
        for (a, b) in zip(half, full) { #expect(Swift.abs(a - b) < 5e-3) }
    }

    @Test func dynamicScaleGrowsAfterAWindowOfCleanSteps() throws {
        var s = LossScaler(dynamic: true, initialScalePower: 4, window: 2, hysteresis: 2, consecutiveHysteresis: false, minScale: 1)
        try s.update(overflow: true)   // hysteresis 2 -> 1
        #expect(s.scale == 16 && s.currentHysteresis == 1)
        try s.update(overflow: true)   // now halves
        #expect(s.scale == 8)
        try s.update(overflow: false)  // stable 0
        try s.update(overflow: false)  // stable 1
        #expect(s.scale == 8)
        try s.update(overflow: false)  // stable 2 -> grow, hysteresis restored
        #expect(s.scale == 16 && s.currentHysteresis == 2)
        var floor = LossScaler(dynamic: true, initialScalePower: 0, window: 10, hysteresis: 1, consecutiveHysteresis: false, minScale: 1)
        #expect(throws: LossScaleError.self) { try floor.update(overflow: true) }
        var consecutive = LossScaler(dynamic: true, initialScalePower: 4, window: 100, hysteresis: 3, consecutiveHysteresis: true, minScale: 1)
        try consecutive.update(overflow: true)
        #expect(consecutive.currentHysteresis == 2)
        try consecutive.update(overflow: false)
        #expect(consecutive.currentHysteresis == 3)   // refilled by one clean step
    }

    @Test func bf16TrainsWithFP32MasterWeights() throws {
        var rng = RandomStream(seed: 24)
        let model = Linear(6, 3, rng: &rng)
        let original = weights(model)
        let cfg = try config(#"{"train_batch_size": 4, "bf16": {"enabled": true}, "optimizer": {"type": "AdamW", "params": {"lr": 0.05}}}"#)
        let (engine, _, _, _) = try initialize(model: model, config: cfg)
        #expect(engine.modelDType == .bfloat16)
        #expect(model.weight.dtype == .bfloat16)
        // The fp32 masters hold the exact original values, not their bf16 rounding.
        #expect(Array(engine.master!.scalars.prefix(original.count)) == original)
        let (x, y) = regressionData(samples: 4, seed: 25)
        var losses: [Double] = []
        for _ in 0..<30 {
            let loss = engine(x).mseLoss(y.cast(to: .bfloat16))
            losses.append(loss.item())
            try engine.backward(loss)
            try engine.step()
        }
        #expect(losses.last! < 0.5 * losses.first!)
        // The bf16 weights are the masters rounded.
        let rounded = engine.master!.cast(to: .bfloat16).scalars
        #expect(engine.flat.values!.scalars == rounded)
    }

    @Test func gradAccumDTypeFP32KeepsFP32GradientsForBF16Weights() throws {
        var rng = RandomStream(seed: 26)
        let model = Linear(6, 3, rng: &rng)
        let cfg = try config(#"{"train_batch_size": 2, "bf16": {"enabled": true}, "data_types": {"grad_accum_dtype": "fp32"}, "optimizer": {"type": "SGD", "params": {"lr": 0.01}}}"#)
        let (engine, _, _, _) = try initialize(model: model, config: cfg)
        #expect(engine.flat.grads!.dtype == .float32)
        let (x, y) = regressionData(samples: 2, seed: 27)
        try engine.backward(engine(x).mseLoss(y.cast(to: .bfloat16)))
        #expect(model.weight.grad?.dtype == .float32)
        #expect(engine.flat.grads!.scalars.contains { $0 != 0 })
        try engine.step()
    }
}
