// The summary `swiftspeed config` prints: resolved batch sizes, precision, ZeRO stage and the LR at each step.
// Invariant: `lr[k]` is the LR of optimizer step k+1 — the construction-time value first, then one per scheduler step.

import SpeedOptim

/// What `swiftspeed config FILE` prints (``json``) and says on stderr (``warnings``).
public struct ConfigReport: Sendable {
    /// One JSON object: the summary keys plus `resolved`, the whole config with defaults applied.
    public var json: JSONValue
    /// The config's warnings, then the report's own (e.g. why `lr` is null).
    public var warnings: [String]
}

extension DeepSpeedConfig {
    /// The summary printed by `swiftspeed config`.
    ///
    /// Keys: `train_batch_size`, `train_micro_batch_size_per_gpu`, `gradient_accumulation_steps`,
    /// `world_size`, `zero_stage`, `fp16`, `bf16` (booleans), `gradient_clipping`, `optimizer`
    /// (lower-cased type or null), `scheduler` (type as written or null), `fp16_settings` (when fp16
    /// is on), `resolved` (the whole config), and with `lrSteps` K: `lr`, the learning rate in effect
    /// at each of the first K optimizer steps (construction-time value first, then one per
    /// `step()`), plus `beta1` when the schedule cycles momentum (OneCycle on an optimizer with betas).
    ///
    /// Without a scheduler the optimizer's LR is constant. When the LR is not defined by the config
    /// — no optimizer and no scheduler, or a schedule that scales the optimizer's LR (WarmupCosineLR,
    /// WarmupLR without `warmup_max_lr`) with no optimizer block — `lr` is K nulls and a warning says why.
    ///
    /// ```swift
    /// let report = try config.report(lrSteps: 5)
    /// print(report.json.rendered(pretty: true))
    /// ```
    public func report(lrSteps: Int? = nil) throws -> ConfigReport {
        var out: [String: JSONValue] = [
            "train_batch_size": .int(trainBatchSize),
            "train_micro_batch_size_per_gpu": .int(trainMicroBatchSizePerGPU),
            "gradient_accumulation_steps": .int(gradientAccumulationSteps),
            "world_size": .int(worldSize),
            "zero_stage": .int(zeroOptimization.stage),
            "fp16": .bool(fp16.enabled),
            "bf16": .bool(bf16.enabled),
            "gradient_clipping": .double(gradientClipping),
            "optimizer": optimizer.map { .string($0.type.rawValue) } ?? .null,
            "scheduler": scheduler.map { .string($0.typeName) } ?? .null,
            "resolved": json,
        ]
        if fp16.enabled {
            out["fp16_settings"] = [
                "loss_scale": .double(fp16.lossScale),
                "initial_scale_power": .int(fp16.initialScalePower),
                "loss_scale_window": .int(fp16.lossScaleWindow),
                "hysteresis": .int(fp16.hysteresis),
                "min_loss_scale": .double(fp16.minLossScale),
                "consecutive_hysteresis": .bool(fp16.consecutiveHysteresis),
            ]
        }
        var notes = warnings.map(\.description)
        if let k = lrSteps {
            let (lrs, beta1s, note) = try learningRates(steps: max(0, k))
            out["lr"] = .array(lrs.map { $0.map(JSONValue.double) ?? .null })
            if let beta1s { out["beta1"] = .array(beta1s.map(JSONValue.double)) }
            if let note { notes.append(note) }
        }
        return ConfigReport(json: .object(out), warnings: notes)
    }

    /// The LR (and beta1) sequence for the first `steps` optimizer steps, or nils with the reason.
    func learningRates(steps: Int) throws -> (lr: [Double?], beta1: [Double]?, note: String?) {
        let baseLR = optimizer?.params.lr
        guard let scheduler else {
            guard let baseLR else {
                return (Array(repeating: nil, count: steps), nil,
                        "lr: null — the config has neither an optimizer nor a scheduler, so the learning rate "
                            + "comes from the client optimizer passed to initialize()")
            }
            return (Array(repeating: baseLR, count: steps), nil, nil)
        }
        if baseLR == nil, scheduler.type.needsBaseLR(scheduler.params) {
            return (Array(repeating: nil, count: steps), nil,
                    "lr: null — \(scheduler.type.rawValue) here scales the optimizer's own learning rate and the "
                        + "config has no optimizer block (the client optimizer's lr decides)")
        }
        let schedule = try scheduler.makeScheduler(baseLR: baseLR ?? 0)
        let lrs = schedule.lrs(count: steps)
        let hasBetas = optimizer.map { [.adam, .adamw, .lamb, .lion].contains($0.type) } ?? false
        guard hasBetas, schedule.beta1 != nil else { return (lrs, nil, nil) }
        return (lrs, (0..<steps).map { schedule.beta1(at: $0 - 1)! }, nil)
    }
}
