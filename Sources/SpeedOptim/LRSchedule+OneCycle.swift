// OneCycle (with momentum cycling and post-cycle decay) and LRRangeTest, as DeepSpeed 0.19 computes them.
// Invariant: OneCycle's construction values are (cycle_min_lr, cycle_min_mom), not the formula at t = −1.

import Foundation

/// DeepSpeed's `OneCycle`: one triangular cycle of the LR (up over `cycleFirstStepSize` steps,
/// down over `cycleSecondStepSize`) with momentum cycled inversely, then an optional decay.
///
/// N = first + second, ρ = first/N, i = t + 1, x = frac(1 + i/N);
/// sf = x/ρ if x ≤ ρ else (x − 1)/(ρ − 1) (floored to stairs when a stair count is set);
/// lr = min + (max − min)·sf; beta1 = maxMom − (maxMom − minMom)·sf. Past the cycle (t ≥ N):
/// lr = min / (1 + decayLRRate·(t − N + 1)/decayStepSize) and beta1 = maxMom·(1 + decayMomRate·…),
/// or min and maxMom when the step size or rate is 0. Construction sets lr = min, beta1 = minMom.
///
/// As in DeepSpeed, cycling momentum sets the optimizer's betas to `(beta1, 0.99)`
/// (``LRScheduler/apply(to:)``).
///
/// ```swift
/// let s = try OneCycle(cycleMinLR: 1e-4, cycleMaxLR: 1e-2, cycleFirstStepSize: 10, cycleSecondStepSize: 15)
/// s.lrs(count: 3)   // [1e-4, 1.09e-3, 2.08e-3]
/// ```
public final class OneCycle: LRScheduler {
    public let cycleMinLR: Double
    public let cycleMaxLR: Double
    public let decayLRRate: Double
    public let cycleFirstStepSize: Int
    public let cycleSecondStepSize: Int
    public let cycleFirstStairCount: Int
    public let cycleSecondStairCount: Int
    public let decayStepSize: Int
    public let cycleMomentum: Bool
    public let cycleMinMom: Double
    public let cycleMaxMom: Double
    public let decayMomRate: Double
    let totalSize: Double
    let stepRatio: Double
    public var lastBatchIteration = -1

    /// - Parameters:
    ///   - cycleSecondStepSize: nil = `cycleFirstStepSize`.
    ///   - cycleFirstStairCount: 0 = continuous; n > 0 holds the LR on n stairs per half cycle.
    ///   - cycleSecondStairCount: nil = `cycleFirstStairCount`.
    ///   - decayStepSize: 0 = no post-cycle decay (LR stays at `cycleMinLR`).
    /// - Throws: ``LRScheduleError`` when `cycleFirstStepSize` < 1, `cycleSecondStepSize` < 0, a
    ///   stair count < 0 or `decayStepSize` < 0.
    public init(cycleMinLR: Double, cycleMaxLR: Double, decayLRRate: Double = 0, cycleFirstStepSize: Int = 2000,
                cycleSecondStepSize: Int? = nil, cycleFirstStairCount: Int = 0, cycleSecondStairCount: Int? = nil,
                decayStepSize: Int = 0, cycleMomentum: Bool = true, cycleMinMom: Double = 0.8,
                cycleMaxMom: Double = 0.9, decayMomRate: Double = 0) throws {
        let second = cycleSecondStepSize ?? cycleFirstStepSize
        let secondStairs = cycleSecondStairCount ?? cycleFirstStairCount
        guard cycleFirstStepSize > 0 else {
            throw LRScheduleError(key: "cycle_first_step_size", value: "\(cycleFirstStepSize)",
                                  allowed: "must be a positive integer")
        }
        guard second >= 0 else {
            throw LRScheduleError(key: "cycle_second_step_size", value: "\(second)",
                                  allowed: "must be a non-negative integer")
        }
        for (key, value) in [("cycle_first_stair_count", cycleFirstStairCount),
                             ("cycle_second_stair_count", secondStairs), ("decay_step_size", decayStepSize)]
        where value < 0 {
            throw LRScheduleError(key: key, value: "\(value)", allowed: "must be a non-negative integer")
        }
        self.cycleMinLR = cycleMinLR
        self.cycleMaxLR = cycleMaxLR
        self.decayLRRate = decayLRRate
        self.cycleFirstStepSize = cycleFirstStepSize
        self.cycleSecondStepSize = second
        self.cycleFirstStairCount = cycleFirstStairCount
        self.cycleSecondStairCount = secondStairs
        self.decayStepSize = decayStepSize
        self.cycleMomentum = cycleMomentum
        self.cycleMinMom = cycleMinMom
        self.cycleMaxMom = cycleMaxMom
        self.decayMomRate = decayMomRate
        totalSize = Double(cycleFirstStepSize) + Double(second)
        stepRatio = Double(cycleFirstStepSize) / totalSize
    }

    public var typeName: String { "OneCycle" }

    var skipLRDecay: Bool { decayStepSize == 0 || decayLRRate == 0 }
    var skipMomDecay: Bool { decayStepSize == 0 || decayMomRate == 0 }

    /// The cycle's scale factor in [0, 1] for iteration `t` (DeepSpeed's `_get_scale_factor`).
    func scaleFactor(_ t: Int) -> Double {
        let batchIteration = Double(t + 1)
        let cycle = (1 + batchIteration / totalSize).rounded(.down)
        let x = 1.0 + batchIteration / totalSize - cycle
        var scale: Double
        let stairCount: Int
        if x <= stepRatio {
            scale = x / stepRatio
            stairCount = cycleFirstStairCount
        } else {
            scale = (x - 1) / (stepRatio - 1)
            stairCount = cycleSecondStairCount
        }
        if stairCount > 0 {
            let cycleIteration = batchIteration.truncatingRemainder(dividingBy: totalSize)
            let stairs = Double(stairCount)
            let position = cycleIteration <= Double(cycleFirstStepSize)
                ? cycleIteration * stairs / Double(cycleFirstStepSize)
                : (totalSize - cycleIteration) * stairs / Double(cycleSecondStepSize)
            scale = position.rounded(.down) / stairs
        }
        return scale
    }

    public func lr(at t: Int) -> Double {
        if t < 0 { return cycleMinLR }
        if Double(t) < totalSize { return cycleMinLR + (cycleMaxLR - cycleMinLR) * scaleFactor(t) }
        if skipLRDecay { return cycleMinLR }
        let interval = (Double(t) - totalSize + 1) / Double(decayStepSize)
        return cycleMinLR / (1 + decayLRRate * interval)
    }

    public func beta1(at t: Int) -> Double? {
        guard cycleMomentum else { return nil }
        if t < 0 { return cycleMinMom }
        if Double(t) < totalSize { return cycleMaxMom - (cycleMaxMom - cycleMinMom) * scaleFactor(t) }
        if skipMomDecay { return cycleMaxMom }
        let interval = (Double(t) - totalSize + 1) / Double(decayStepSize)
        return cycleMaxMom * (1 + decayMomRate * interval)
    }

}

/// DeepSpeed's `LRRangeTest`: grows the LR linearly (or in stairs) from `minLR` to find the
/// largest LR that still trains.
///
/// lr = min·(1 + rate·(t + 1)/stepSize), with the ratio (t + 1)/stepSize floored when `staircase`.
///
/// ```swift
/// let s = try LRRangeTest(minLR: 1e-3, stepSize: 2, stepRate: 1, staircase: true)
/// s.lrs(count: 4)   // [1e-3, 1e-3, 2e-3, 2e-3]
/// ```
public final class LRRangeTest: LRScheduler {
    public let minLR: Double
    public let stepSize: Int
    public let stepRate: Double
    public let staircase: Bool
    public var lastBatchIteration = -1

    /// - Throws: ``LRScheduleError`` when `stepSize` < 1 (as DeepSpeed).
    public init(minLR: Double = 1e-3, stepSize: Int = 2000, stepRate: Double = 1.0, staircase: Bool = false) throws {
        guard stepSize > 0 else {
            throw LRScheduleError(key: "lr_range_test_step_size", value: "\(stepSize)",
                                  allowed: "must be a positive integer")
        }
        self.minLR = minLR
        self.stepSize = stepSize
        self.stepRate = stepRate
        self.staircase = staircase
    }

    public var typeName: String { "LRRangeTest" }

    public func lr(at t: Int) -> Double {
        if t < 0 { return minLR }
        var interval = Double(t + 1) / Double(stepSize)
        if staircase { interval = interval.rounded(.down) }
        return minLR * (1 + stepRate * interval)
    }

}
