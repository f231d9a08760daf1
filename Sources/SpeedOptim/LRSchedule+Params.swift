// The `scheduler.params` block of ds_config.json as data, and the factory that builds a scheduler from it.
// Invariant: a key left out (nil) takes DeepSpeed 0.19's default for that schedule type, applied only in makeScheduler.

/// The five DeepSpeed schedule types (`scheduler.type`).
public enum LRScheduleType: String, Codable, Sendable, CaseIterable {
    case warmupLR = "WarmupLR"
    case warmupDecayLR = "WarmupDecayLR"
    case warmupCosineLR = "WarmupCosineLR"
    case oneCycle = "OneCycle"
    case lrRangeTest = "LRRangeTest"

    /// The `params` keys this type accepts (DeepSpeed's constructor arguments).
    ///
    /// ```swift
    /// LRScheduleType.warmupLR.parameterKeys  // ["warmup_min_lr", "warmup_max_lr", …]
    /// ```
    public var parameterKeys: [String] {
        let warmup = ["warmup_min_lr", "warmup_max_lr", "warmup_num_steps", "warmup_type"]
        switch self {
        case .warmupLR: return warmup
        case .warmupDecayLR: return ["total_num_steps"] + warmup
        case .warmupCosineLR:
            return ["total_num_steps", "warmup_min_ratio", "warmup_num_steps", "cos_min_ratio", "warmup_type"]
        case .oneCycle:
            return ["cycle_min_lr", "cycle_max_lr", "decay_lr_rate", "cycle_first_step_size",
                    "cycle_second_step_size", "cycle_first_stair_count", "cycle_second_stair_count",
                    "decay_step_size", "cycle_momentum", "cycle_min_mom", "cycle_max_mom", "decay_mom_rate"]
        case .lrRangeTest:
            return ["lr_range_test_min_lr", "lr_range_test_step_size", "lr_range_test_step_rate",
                    "lr_range_test_staircase"]
        }
    }

    /// Whether the schedule's LR depends on the optimizer's own LR: WarmupCosineLR always (it
    /// scales it), WarmupLR when `warmup_max_lr` is left out (DeepSpeed then uses the optimizer's LR).
    public func needsBaseLR(_ params: LRScheduleParams) -> Bool {
        switch self {
        case .warmupCosineLR: return true
        case .warmupLR: return params.warmupMaxLR == nil
        default: return false
        }
    }
}

/// `scheduler.params`: the union of every schedule type's keys, nil where the config leaves a
/// key out. Field names mirror DeepSpeed's snake_case keys.
///
/// ```swift
/// var p = LRScheduleParams()
/// p.warmupNumSteps = 100
/// let s = try p.makeScheduler(.warmupLR, baseLR: 3e-4)  // warms up to 3e-4 (warmup_max_lr unset)
/// ```
public struct LRScheduleParams: Codable, Sendable, Equatable {
    // WarmupLR, WarmupDecayLR, WarmupCosineLR
    public var warmupMinLR: Double?
    public var warmupMaxLR: Double?
    public var warmupNumSteps: Int?
    /// "log" or "linear"; anything else falls back to "log" as in DeepSpeed.
    public var warmupType: String?
    public var totalNumSteps: Int?
    public var warmupMinRatio: Double?
    public var cosMinRatio: Double?
    // OneCycle
    public var cycleMinLR: Double?
    public var cycleMaxLR: Double?
    public var decayLRRate: Double?
    public var cycleFirstStepSize: Int?
    public var cycleSecondStepSize: Int?
    public var cycleFirstStairCount: Int?
    public var cycleSecondStairCount: Int?
    public var decayStepSize: Int?
    public var cycleMomentum: Bool?
    public var cycleMinMom: Double?
    public var cycleMaxMom: Double?
    public var decayMomRate: Double?
    // LRRangeTest
    public var lrRangeTestMinLR: Double?
    public var lrRangeTestStepSize: Int?
    public var lrRangeTestStepRate: Double?
    public var lrRangeTestStaircase: Bool?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case warmupMinLR = "warmup_min_lr", warmupMaxLR = "warmup_max_lr", warmupNumSteps = "warmup_num_steps"
        case warmupType = "warmup_type", totalNumSteps = "total_num_steps"
        case warmupMinRatio = "warmup_min_ratio", cosMinRatio = "cos_min_ratio"
        case cycleMinLR = "cycle_min_lr", cycleMaxLR = "cycle_max_lr", decayLRRate = "decay_lr_rate"
        case cycleFirstStepSize = "cycle_first_step_size", cycleSecondStepSize = "cycle_second_step_size"
        case cycleFirstStairCount = "cycle_first_stair_count", cycleSecondStairCount = "cycle_second_stair_count"
        case decayStepSize = "decay_step_size", cycleMomentum = "cycle_momentum"
        case cycleMinMom = "cycle_min_mom", cycleMaxMom = "cycle_max_mom", decayMomRate = "decay_mom_rate"
        case lrRangeTestMinLR = "lr_range_test_min_lr", lrRangeTestStepSize = "lr_range_test_step_size"
        case lrRangeTestStepRate = "lr_range_test_step_rate", lrRangeTestStaircase = "lr_range_test_staircase"
    }

    /// The warmup curve: "linear" → `.linear`, anything else (including nil) → `.log`, as DeepSpeed.
    public var resolvedWarmupType: WarmupType { warmupType == "linear" ? .linear : .log }

    /// Builds the scheduler DeepSpeed's engine would build from `{type, params}`.
    ///
    /// - Parameter baseLR: the optimizer's learning rate (used by WarmupCosineLR, and by WarmupLR
    ///   when `warmup_max_lr` is unset).
    /// - Throws: ``LRScheduleError`` for a missing required key (`total_num_steps` for
    ///   WarmupDecayLR/WarmupCosineLR, `cycle_min_lr`/`cycle_max_lr` for OneCycle) or a value out of range.
    ///
    /// ```swift
    /// let s = try params.makeScheduler(.oneCycle, baseLR: optimizer.lr)
    /// s.apply(to: optimizer)
    /// ```
    public func makeScheduler(_ type: LRScheduleType, baseLR: Double) throws -> any LRScheduler {
        switch type {
        case .warmupLR:
            return try WarmupLR(minLR: warmupMinLR ?? 0, maxLR: warmupMaxLR ?? baseLR,
                                warmupNumSteps: warmupNumSteps ?? 1000, warmupType: resolvedWarmupType)
        case .warmupDecayLR:
            return try WarmupDecayLR(totalNumSteps: required(totalNumSteps, "total_num_steps", type),
                                     minLR: warmupMinLR ?? 0, maxLR: warmupMaxLR ?? 1e-3,
                                     warmupNumSteps: warmupNumSteps ?? 1000, warmupType: resolvedWarmupType)
        case .warmupCosineLR:
            return try WarmupCosineLR(baseLR: baseLR, totalNumSteps: required(totalNumSteps, "total_num_steps", type),
                                      warmupMinRatio: warmupMinRatio ?? 0, warmupNumSteps: warmupNumSteps ?? 1000,
                                      cosMinRatio: cosMinRatio ?? 1e-4, warmupType: resolvedWarmupType)
        case .oneCycle:
            return try OneCycle(cycleMinLR: required(cycleMinLR, "cycle_min_lr", type),
                                cycleMaxLR: required(cycleMaxLR, "cycle_max_lr", type),
                                decayLRRate: decayLRRate ?? 0, cycleFirstStepSize: cycleFirstStepSize ?? 2000,
                                cycleSecondStepSize: cycleSecondStepSize, cycleFirstStairCount: cycleFirstStairCount ?? 0,
                                cycleSecondStairCount: cycleSecondStairCount, decayStepSize: decayStepSize ?? 0,
                                cycleMomentum: cycleMomentum ?? true, cycleMinMom: cycleMinMom ?? 0.8,
                                cycleMaxMom: cycleMaxMom ?? 0.9, decayMomRate: decayMomRate ?? 0)
        case .lrRangeTest:
            return try LRRangeTest(minLR: lrRangeTestMinLR ?? 1e-3, stepSize: lrRangeTestStepSize ?? 2000,
                                   stepRate: lrRangeTestStepRate ?? 1.0, staircase: lrRangeTestStaircase ?? false)
        }
    }

    private func required<T>(_ value: T?, _ key: String, _ type: LRScheduleType) throws -> T {
        guard let value else {
            throw LRScheduleError(key: key, value: "missing", allowed: "\(type.rawValue) requires \(key)")
        }
        return value
    }
}
