// WarmupLR, WarmupDecayLR and WarmupCosineLR, computed with DeepSpeed 0.19's exact floating-point expressions.
// Invariant: the warmup length used in formulas is K = max(2, warmup_num_steps) and warmup_num_steps must be ≥ 1.

import Foundation

/// Shared warmup arithmetic: γ(t) for t < K, in the same operation order as DeepSpeed.
struct WarmupRamp: Sendable {
    let k: Int
    let type: WarmupType
    let inverseLogWarmup: Double

    init(warmupNumSteps: Int, type: WarmupType) throws {
        guard warmupNumSteps > 0 else {
            throw LRScheduleError(key: "warmup_num_steps", value: "\(warmupNumSteps)",
                                  allowed: "must be a positive integer")
        }
        k = max(2, warmupNumSteps)
        self.type = type
        inverseLogWarmup = 1.0 / Foundation.log(Double(k))
    }

    /// γ during warmup (call only for 0 ≤ t < K).
    func gamma(_ t: Int) -> Double {
        switch type {
        case .log: return inverseLogWarmup * Foundation.log(Double(t + 1))
        case .linear: return Double(t) / Double(k)
        }
    }
}

/// DeepSpeed's `WarmupLR`: rises from `minLR` to `maxLR` over the warmup, then stays at `maxLR`.
///
/// lr = min + (max − min)·γ with γ = ln(t+1)/ln(K) ("log") or t/K ("linear") for t < K, else 1,
/// K = max(2, warmupNumSteps). At construction (t = −1) lr = min.
///
/// ```swift
/// let s = try WarmupLR(minLR: 0, maxLR: 1e-3, warmupNumSteps: 10, warmupType: .log)
/// s.lrs(count: 4)   // [0, 0, 3.0103e-4, 4.7712e-4]
/// ```
public final class WarmupLR: LRScheduler {
    public let minLR: Double
    public let maxLR: Double
    public let warmupNumSteps: Int
    public let warmupType: WarmupType
    let ramp: WarmupRamp
    public var lastBatchIteration = -1

    /// - Throws: ``LRScheduleError`` when `warmupNumSteps` < 1 (as DeepSpeed).
    public init(minLR: Double = 0, maxLR: Double = 1e-3, warmupNumSteps: Int = 1000,
                warmupType: WarmupType = .log) throws {
        self.minLR = minLR
        self.maxLR = maxLR
        self.warmupNumSteps = warmupNumSteps
        self.warmupType = warmupType
        ramp = try WarmupRamp(warmupNumSteps: warmupNumSteps, type: warmupType)
    }

    public var typeName: String { "WarmupLR" }

    public func lr(at t: Int) -> Double {
        if t < 0 { return minLR }
        return minLR + (maxLR - minLR) * gamma(t)
    }

    func gamma(_ t: Int) -> Double { t < ramp.k ? ramp.gamma(t) : 1.0 }

}

/// DeepSpeed's `WarmupDecayLR`: ``WarmupLR``'s warmup, then a linear decay to 0 at `totalNumSteps`.
///
/// After the warmup γ = max(0, (T − t) / max(1, T − K)).
///
/// ```swift
/// let s = try WarmupDecayLR(totalNumSteps: 100, maxLR: 1e-3, warmupNumSteps: 10, warmupType: .linear)
/// s.lr(at: 10)   // 1e-3 · 90/90
/// ```
public final class WarmupDecayLR: LRScheduler {
    public let totalNumSteps: Int
    public let minLR: Double
    public let maxLR: Double
    public let warmupNumSteps: Int
    public let warmupType: WarmupType
    let ramp: WarmupRamp
    public var lastBatchIteration = -1

    /// - Throws: ``LRScheduleError`` when `warmupNumSteps` < 1 or `totalNumSteps` < 0.
    public init(totalNumSteps: Int, minLR: Double = 0, maxLR: Double = 1e-3, warmupNumSteps: Int = 1000,
                warmupType: WarmupType = .log) throws {
        guard totalNumSteps >= 0 else {
            throw LRScheduleError(key: "total_num_steps", value: "\(totalNumSteps)",
                                  allowed: "must be a non-negative integer")
        }
        self.totalNumSteps = totalNumSteps
        self.minLR = minLR
        self.maxLR = maxLR
        self.warmupNumSteps = warmupNumSteps
        self.warmupType = warmupType
        ramp = try WarmupRamp(warmupNumSteps: warmupNumSteps, type: warmupType)
    }

    public var typeName: String { "WarmupDecayLR" }

    public func lr(at t: Int) -> Double {
        if t < 0 { return minLR }
        let gamma: Double
        if t < ramp.k {
            gamma = ramp.gamma(t)
        } else {
            gamma = max(0.0, Double(totalNumSteps - t) / max(1.0, Double(totalNumSteps - ramp.k)))
        }
        return minLR + (maxLR - minLR) * gamma
    }

}

/// DeepSpeed's `WarmupCosineLR`: scales the optimizer's own LR (`baseLR`) by a ratio that warms
/// up from `warmupMinRatio` to 1, then follows a half cosine down to `cosMinRatio` at `totalNumSteps`
/// and stays there (DeepSpeed 0.19 clamps the cosine progress to 1).
///
/// Warmup r = wmr + (1 − wmr)·γ; after: s = t − K + 1, S = max(1, T − K),
/// r = max(0, cmr + (1 − cmr)·(1 + cos(π·min(1, s/S)))/2). At construction lr = 0.
///
/// ```swift
/// let s = try WarmupCosineLR(baseLR: 3e-4, totalNumSteps: 1000, warmupNumSteps: 100)
/// s.lr(at: -1)   // 0
/// ```
public final class WarmupCosineLR: LRScheduler {
    public let baseLR: Double
    public let totalNumSteps: Int
    public let warmupMinRatio: Double
    public let warmupNumSteps: Int
    public let cosMinRatio: Double
    public let warmupType: WarmupType
    let ramp: WarmupRamp
    public var lastBatchIteration = -1

    /// - Parameter baseLR: the optimizer's learning rate when the schedule is built (DeepSpeed's `org_lrs`).
    /// - Throws: ``LRScheduleError`` when `warmupNumSteps` < 1 or `totalNumSteps` < 0.
    public init(baseLR: Double, totalNumSteps: Int, warmupMinRatio: Double = 0, warmupNumSteps: Int = 1000,
                cosMinRatio: Double = 1e-4, warmupType: WarmupType = .log) throws {
        guard totalNumSteps >= 0 else {
            throw LRScheduleError(key: "total_num_steps", value: "\(totalNumSteps)",
                                  allowed: "must be a non-negative integer")
        }
        self.baseLR = baseLR
        self.totalNumSteps = totalNumSteps
        self.warmupMinRatio = warmupMinRatio
        self.warmupNumSteps = warmupNumSteps
        self.cosMinRatio = cosMinRatio
        self.warmupType = warmupType
        ramp = try WarmupRamp(warmupNumSteps: warmupNumSteps, type: warmupType)
    }

    public var typeName: String { "WarmupCosineLR" }

    /// The ratio applied to `baseLR` at iteration `t` (0 before the first step).
    public func ratio(at t: Int) -> Double {
        if t < 0 { return 0.0 }
        if t < ramp.k {
            return warmupMinRatio + ramp.gamma(t) * (1.0 - warmupMinRatio)
        }
        let realLastStep = Double(t - ramp.k + 1)
        let realTotalSteps = Double(max(1, totalNumSteps - ramp.k))
        let progress = min(1.0, realLastStep / realTotalSteps)
        let cosine = (1 + Foundation.cos(Double.pi * progress)) / 2
        return max(0.0, cosMinRatio + (1.0 - cosMinRatio) * cosine)
    }

    public func lr(at t: Int) -> Double { t < 0 ? 0.0 : baseLR * ratio(at: t) }

}
