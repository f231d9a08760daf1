// The `scheduler` block: a DeepSpeed schedule type and its params, and the factory the engine calls with the optimizer's LR.
// Invariant: parsing already builds the schedule once, so makeScheduler(baseLR:) cannot fail on a parsed config.

import SpeedOptim

/// `scheduler: {type, params}` from ds_config.json.
///
/// ```swift
/// if let block = config.scheduler {
///     let schedule = try block.makeScheduler(baseLR: optimizer.lr)
///     schedule.apply(to: optimizer)     // the construction-time LR
/// }
/// ```
public struct SchedulerConfig: Codable, Sendable, Equatable {
    public var type: LRScheduleType
    /// The type exactly as written in the config (DeepSpeed itself needs the canonical spelling).
    public var typeName: String
    public var params: LRScheduleParams

    public init(type: LRScheduleType, params: LRScheduleParams = LRScheduleParams()) {
        self.type = type
        self.typeName = type.rawValue
        self.params = params
    }

    /// Builds the schedule as DeepSpeed's engine does, from the optimizer's current LR.
    ///
    /// - Parameter baseLR: the optimizer's learning rate (WarmupCosineLR scales it; WarmupLR
    ///   without `warmup_max_lr` warms up to it).
    /// - Throws: ``ConfigError`` naming `scheduler.params.<key>` for a parameter out of range.
    public func makeScheduler(baseLR: Double) throws -> any LRScheduler {
        do {
            return try params.makeScheduler(type, baseLR: baseLR)
        } catch let e as LRScheduleError {
            throw ConfigError(keyPath: "scheduler.params.\(e.key)", value: e.value, allowed: e.allowed)
        }
    }

    enum CodingKeys: String, CodingKey { case type, params }

    /// Encoded as in ds_config.json: `{"type": <as written>, "params": {…}}`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(typeName, forKey: .type)
        try c.encode(params, forKey: .params)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .type)
        guard let type = LRScheduleType.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() })
        else {
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown scheduler type \(name)")
        }
        self.type = type
        typeName = name
        params = try c.decodeIfPresent(LRScheduleParams.self, forKey: .params) ?? LRScheduleParams()
    }
}

extension SchedulerConfig {
    init(reading r: ConfigReader) throws {
        let allowed = "one of " + LRScheduleType.allCases.map(\.rawValue).joined(separator: ", ")
        guard let typeValue = r.raw("type") else {
            throw ConfigError(keyPath: r.keyPath("type"), value: "missing", allowed: allowed)
        }
        guard case .string(let name) = typeValue,
              let type = LRScheduleType.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() })
        else {
            var hint = ""
            if case .string(let name) = typeValue,
               let near = closestKey(to: name, in: Set(LRScheduleType.allCases.map(\.rawValue))) {
                hint = " (did you mean \"\(near)\"?)"
            }
            throw ConfigError(r.keyPath("type"), typeValue,
                              allowed: allowed + "; torch schedulers are not supported" + hint)
        }
        if name != type.rawValue {
            r.log.warn(r.keyPath("type"), "DeepSpeed only accepts the spelling \"\(type.rawValue)\"; accepted")
        }
        self.type = type
        typeName = name
        params = LRScheduleParams()
        if let pr = try r.block("params") { params = try LRScheduleParams(reading: pr, type: type) }
        r.finish()
        _ = try makeScheduler(baseLR: 1e-3)
        if [.warmupDecayLR, .warmupCosineLR].contains(type), let total = params.totalNumSteps,
           total < (params.warmupNumSteps ?? 1000) {
            r.log.warn("scheduler.params.total_num_steps",
                       "\(total) is less than warmup_num_steps \(params.warmupNumSteps ?? 1000)")
        }
    }
}

extension LRScheduleParams {
    init(reading r: ConfigReader, type: LRScheduleType) throws {
        self.init()
        warmupMinLR = try r.optionalDouble("warmup_min_lr", min: 0)
        warmupMaxLR = try r.optionalDouble("warmup_max_lr", min: 0)
        warmupNumSteps = try r.optionalInt("warmup_num_steps", min: 1)
        warmupType = try r.optionalString("warmup_type")
        if let w = warmupType, WarmupType(rawValue: w) == nil {
            r.log.warn(r.keyPath("warmup_type"), "\"\(w)\" is not \"log\" or \"linear\"; using \"log\" (as DeepSpeed)")
        }
        totalNumSteps = try r.optionalInt("total_num_steps", min: 0)
        warmupMinRatio = try r.optionalDouble("warmup_min_ratio", min: 0)
        cosMinRatio = try r.optionalDouble("cos_min_ratio", min: 0)
        cycleMinLR = try r.optionalDouble("cycle_min_lr", min: 0)
        cycleMaxLR = try r.optionalDouble("cycle_max_lr", min: 0)
        decayLRRate = try r.optionalDouble("decay_lr_rate", min: 0)
        cycleFirstStepSize = try r.optionalInt("cycle_first_step_size", min: 1)
        cycleSecondStepSize = try r.optionalInt("cycle_second_step_size", min: 0)
        cycleFirstStairCount = try r.optionalInt("cycle_first_stair_count", min: 0)
        cycleSecondStairCount = try r.optionalInt("cycle_second_stair_count", min: 0)
        decayStepSize = try r.optionalInt("decay_step_size", min: 0)
        cycleMomentum = try r.optionalBool("cycle_momentum")
        cycleMinMom = try r.optionalDouble("cycle_min_mom")
        cycleMaxMom = try r.optionalDouble("cycle_max_mom")
        decayMomRate = try r.optionalDouble("decay_mom_rate")
        lrRangeTestMinLR = try r.optionalDouble("lr_range_test_min_lr")
        lrRangeTestStepSize = try r.optionalInt("lr_range_test_step_size", min: 1)
        lrRangeTestStepRate = try r.optionalDouble("lr_range_test_step_rate")
        lrRangeTestStaircase = try r.optionalBool("lr_range_test_staircase")

        let accepted = Set(type.parameterKeys)
        for key in r.members.keys.sorted() where r.queried.contains(key) && !accepted.contains(key) {
            r.log.warn(r.keyPath(key), "not a parameter of \(type.rawValue); ignored",
                       suggestion: closestKey(to: key, in: accepted).map(r.keyPath))
            clear(key)
        }
        r.finish()
    }

    /// Drops a key that the chosen type does not take, so the resolved params hold only its own keys.
    private mutating func clear(_ key: String) {
        switch key {
        case "warmup_min_lr": warmupMinLR = nil
        case "warmup_max_lr": warmupMaxLR = nil
        case "warmup_num_steps": warmupNumSteps = nil
        case "warmup_type": warmupType = nil
        case "total_num_steps": totalNumSteps = nil
        case "warmup_min_ratio": warmupMinRatio = nil
        case "cos_min_ratio": cosMinRatio = nil
        case "cycle_min_lr": cycleMinLR = nil
        case "cycle_max_lr": cycleMaxLR = nil
        case "decay_lr_rate": decayLRRate = nil
        case "cycle_first_step_size": cycleFirstStepSize = nil
        case "cycle_second_step_size": cycleSecondStepSize = nil
        case "cycle_first_stair_count": cycleFirstStairCount = nil
        case "cycle_second_stair_count": cycleSecondStairCount = nil
        case "decay_step_size": decayStepSize = nil
        case "cycle_momentum": cycleMomentum = nil
        case "cycle_min_mom": cycleMinMom = nil
        case "cycle_max_mom": cycleMaxMom = nil
        case "decay_mom_rate": decayMomRate = nil
        case "lr_range_test_min_lr": lrRangeTestMinLR = nil
        case "lr_range_test_step_size": lrRangeTestStepSize = nil
        case "lr_range_test_step_rate": lrRangeTestStepRate = nil
        case "lr_range_test_staircase": lrRangeTestStaircase = nil
        default: break
        }
    }
}
