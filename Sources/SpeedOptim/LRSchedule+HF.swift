// Hugging Face's schedules (transformers' `get_scheduler`): torch LambdaLR factors with transformers' exact expressions.
// Invariant: lr(at: i) = baseLR · factor(i + 1) — LambdaLR's construction already counts step 0, so optimizer step k
// runs at factor(k − 1), exactly what the HF Trainer observes when DeepSpeed steps the schedule.

import Foundation

/// The `lr_scheduler_type` values SwiftSpeed builds (transformers' `SchedulerType` names).
public enum HFScheduleType: String, Codable, Sendable, CaseIterable {
    case linear
    case cosine
    case cosineWithRestarts = "cosine_with_restarts"
    case polynomial
    case constant
    case constantWithWarmup = "constant_with_warmup"
    case inverseSqrt = "inverse_sqrt"
    case cosineWithMinLR = "cosine_with_min_lr"

    /// The `lr_scheduler_kwargs` keys this type takes (the schedule function's keyword arguments).
    public var kwargKeys: [String] {
        switch self {
        case .linear, .constantWithWarmup: return []
        case .cosine, .cosineWithRestarts: return ["num_cycles"]
        case .polynomial: return ["lr_end", "power"]
        case .constant: return []
        case .inverseSqrt: return ["timescale"]
        case .cosineWithMinLR: return ["num_cycles", "min_lr", "min_lr_rate"]
        }
    }

    /// transformers' schedule names that SwiftSpeed does not build (rejected with a clear message).
    public static let unsupportedNames: Set<String> = ["reduce_lr_on_plateau", "cosine_warmup_with_min_lr",
                                                       "warmup_stable_decay", "greedy"]
}

/// A Hugging Face schedule: `lr = baseLR · λ(step)` with transformers' λ for each ``HFScheduleType``.
///
/// Warmup (every type but `constant`): λ = step / max(1, W) for step < W. After it:
/// - `linear`: max(0, (T − step) / max(1, T − W))
/// - `cosine`: max(0, ½(1 + cos(π · 2·num_cycles · p))), p = (step − W) / max(1, T − W), num_cycles 0.5
/// - `cosine_with_restarts`: 0 once p ≥ 1, else max(0, ½(1 + cos(π · ((num_cycles · p) mod 1)))), num_cycles 1
/// - `polynomial`: lr_end/lr for step > T, else ((lr − lr_end)(1 − (step − W)/(T − W))^power + lr_end)/lr;
///   lr_end 1e-7, power 1.0
/// - `constant`: 1 (no warmup); `constant_with_warmup`: 1 after the warmup
/// - `inverse_sqrt`: 1/√((step + s − W)/s), s = timescale (default W, or 10 000 when W is 0)
/// - `cosine_with_min_lr`: the cosine factor scaled into [min_lr_rate, 1] (min_lr_rate, or min_lr / lr)
///
/// Like torch's LambdaLR, construction already applies λ(0): ``lr`` before any ``step()`` is
/// `baseLR · λ(0)`, and optimizer step k runs at `baseLR · λ(k − 1)`.
///
/// ```swift
/// let s = try HFSchedule(.linear, baseLR: 5e-5, numWarmupSteps: 2, numTrainingSteps: 10)
/// s.lrs(count: 4)   // [0, 2.5e-5, 5e-5, 4.375e-5]
/// ```
public final class HFSchedule: LRScheduler {
    public let type: HFScheduleType
    /// The optimizer's initial LR (torch's `base_lrs`, also `optimizer.defaults["lr"]` for polynomial).
    public let baseLR: Double
    public let numWarmupSteps: Int
    public let numTrainingSteps: Int
    public let numCycles: Double
    public let lrEnd: Double
    public let power: Double
    public let timescale: Int
    public let minLRRate: Double
    public var lastBatchIteration = -1

    /// - Parameters:
    ///   - kwargs: `lr_scheduler_kwargs` (numbers); a key the type does not take is an error, as the Python
    ///     function's TypeError (`constant` ignores them, as `get_scheduler` does).
    /// - Throws: ``LRScheduleError`` for a negative step count, an unknown kwarg, polynomial's lr_end ≥ lr, or
    ///   cosine_with_min_lr without exactly one of min_lr / min_lr_rate.
    public init(_ type: HFScheduleType, baseLR: Double, numWarmupSteps: Int, numTrainingSteps: Int,
                kwargs: [String: Double] = [:]) throws {
        guard numWarmupSteps >= 0 else {
            throw LRScheduleError(key: "num_warmup_steps", value: "\(numWarmupSteps)", allowed: "must be >= 0")
        }
        guard numTrainingSteps >= 0 else {
            throw LRScheduleError(key: "num_training_steps", value: "\(numTrainingSteps)", allowed: "must be >= 0")
        }
        if type != .constant {
            for key in kwargs.keys.sorted() where !type.kwargKeys.contains(key) {
                let allowed = type.kwargKeys.isEmpty ? "none: \(type.rawValue) takes no lr_scheduler_kwargs"
                    : "one of " + type.kwargKeys.joined(separator: ", ") + " for \(type.rawValue)"
                throw LRScheduleError(key: "lr_scheduler_kwargs.\(key)", value: "\(kwargs[key]!)", allowed: allowed)
            }
        }
        self.type = type
        self.baseLR = baseLR
        self.numWarmupSteps = numWarmupSteps
        self.numTrainingSteps = numTrainingSteps
        numCycles = kwargs["num_cycles"] ?? (type == .cosineWithRestarts ? 1 : 0.5)
        lrEnd = kwargs["lr_end"] ?? 1e-7
        power = kwargs["power"] ?? 1.0
        if type == .inverseSqrt, let t = kwargs["timescale"] {
            guard t > 0, t == t.rounded() else {
                throw LRScheduleError(key: "lr_scheduler_kwargs.timescale", value: "\(t)", allowed: "a positive integer")
            }
            timescale = Int(t)
        } else {
            timescale = numWarmupSteps > 0 ? numWarmupSteps : 10_000
        }
        if type == .polynomial, !(baseLR > lrEnd) {
            throw LRScheduleError(key: "lr_scheduler_kwargs.lr_end", value: "\(lrEnd)",
                                  allowed: "lr_end (\(lrEnd)) must be smaller than initial lr (\(baseLR))")
        }
        if type == .cosineWithMinLR {
            switch (kwargs["min_lr"], kwargs["min_lr_rate"]) {
            case let (lr?, nil): minLRRate = lr / baseLR
            case let (nil, rate?): minLRRate = rate
            case (.some, .some):
                throw LRScheduleError(key: "lr_scheduler_kwargs", value: "min_lr and min_lr_rate",
                                      allowed: "Only one of min_lr or min_lr_rate should be set")
            case (nil, nil):
                throw LRScheduleError(key: "lr_scheduler_kwargs", value: "neither min_lr nor min_lr_rate",
                                      allowed: "One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`")
            }
        } else {
            minLRRate = 0
        }
    }

    public var typeName: String { type.rawValue }

    public func lr(at iteration: Int) -> Double { baseLR * factor(iteration + 1) }

    /// transformers' λ(current_step), in the same floating-point operation order.
    public func factor(_ step: Int) -> Double {
        let w = numWarmupSteps, t = numTrainingSteps
        if type == .constant { return 1 }
        if step < w { return Double(step) / Double(Swift.max(1, w)) }
        let progress = Double(step - w) / Double(Swift.max(1, t - w))
        switch type {
        case .constant, .constantWithWarmup:
            return 1
        case .linear:
            return Swift.max(0.0, Double(t - step) / Double(Swift.max(1, t - w)))
        case .cosine:
            return Swift.max(0.0, 0.5 * (1.0 + cos(Double.pi * numCycles * 2.0 * progress)))
        case .cosineWithMinLR:
            let f = 0.5 * (1.0 + cos(Double.pi * numCycles * 2.0 * progress))
            return Swift.max(0, f * (1 - minLRRate) + minLRRate)
        case .cosineWithRestarts:
            if progress >= 1.0 { return 0.0 }
            let x = numCycles * progress
            return Swift.max(0.0, 0.5 * (1.0 + cos(Double.pi * (x - x.rounded(.down)))))
        case .polynomial:
            if step > t { return lrEnd / baseLR }
            // transformers divides by T − W here; when they are equal (no decay phase) it would raise
            // ZeroDivisionError at step W: the schedule is then at its end value.
            guard t > w else { return lrEnd / baseLR }
            let remaining = 1 - Double(step - w) / Double(t - w)
            let decay = (baseLR - lrEnd) * Foundation.pow(remaining, power) + lrEnd
            return decay / baseLR
        case .inverseSqrt:
            let shift = timescale - w
            return 1.0 / (Double(step + shift) / Double(timescale)).squareRoot()
        }
    }
}
