// LR schedules beyond the fixture: DeepSpeed's deepspeed/runtime/lr_schedules.py examples, checkpoint state, apply(to:), parameter errors.
// Invariant: a ScheduleProbeOptimizer stands in for a real one; only lr and betas are ever touched by a schedule.

import Foundation
import Testing
import SpeedCore
import SpeedOptim

final class ScheduleProbeOptimizer: Optimizer {
    var typeName = "fake"
    var lr: Double
    var betas: (Double, Double)?
    var stateNames: [String] = []
    var hyperparameters: [String: Double] { ["lr": lr] }

    init(lr: Double, betas: (Double, Double)?) {
        self.lr = lr
        self.betas = betas
    }

    func update(param: Tensor, grad: Tensor, state: [Tensor], step: Int, lowPrecisionCopy: Tensor?) {}
}

@Suite struct LRScheduleTests {
    @Test func warmupLogMatchesSpecExample() throws {
        let s = try WarmupLR(minLR: 0, maxLR: 1e-3, warmupNumSteps: 10, warmupType: .log)
        #expect(s.lastBatchIteration == -1)
        #expect(s.lr == 0)
        let seq = s.lrs(count: 4)
        #expect(seq[0] == 0 && seq[1] == 0)
        #expect(abs(seq[2] - 3.0103e-4) < 1e-8)
        #expect(abs(seq[3] - 4.7712e-4) < 1e-8)
    }

    @Test func oneCycleMatchesSpecExampleAndStartsAtMinMomentum() throws {
        let s = try OneCycle(cycleMinLR: 1e-4, cycleMaxLR: 1e-2, cycleFirstStepSize: 10, cycleSecondStepSize: 15)
        #expect(s.lr == 1e-4)
        #expect(s.beta1 == 0.8)
        s.step()
        #expect(lrMatches(s.lr, 1.09e-3, 1e-9))
        #expect(lrMatches(s.beta1!, 0.89, 1e-9))
        s.step()
        #expect(lrMatches(s.lr, 2.08e-3, 1e-9))
    }

    @Test func stepIncrementsThenSets() throws {
        let s = try LRRangeTest(minLR: 1e-3, stepSize: 2, stepRate: 1, staircase: false)
        #expect(s.lr == 1e-3)
        s.step()
        #expect(s.lastBatchIteration == 0)
        #expect(s.lr == s.lr(at: 0))
        #expect(lrMatches(s.lr, 1.5e-3))
    }

    @Test func stateRoundTripsThroughJSONWithDeepSpeedsKey() throws {
        let s = try WarmupDecayLR(totalNumSteps: 50, warmupNumSteps: 5, warmupType: .linear)
        for _ in 0..<17 { s.step() }
        let data = try JSONEncoder().encode(s.state)
        #expect(String(decoding: data, as: UTF8.self) == #"{"last_batch_iteration":16}"#)
        let restored = try WarmupDecayLR(totalNumSteps: 50, warmupNumSteps: 5, warmupType: .linear)
        try restored.load(state: JSONDecoder().decode(LRSchedulerState.self, from: data))
        #expect(restored.lastBatchIteration == 16)
        #expect(restored.lr == s.lr)
        s.step(); restored.step()
        #expect(restored.lr == s.lr)
    }

    @Test func loadingAStateBeforeMinusOneThrows() throws {
        let s = try WarmupLR()
        #expect(throws: LRScheduleError.self) { try s.load(state: LRSchedulerState(lastBatchIteration: -2)) }
        #expect(s.lastBatchIteration == -1)
    }

    @Test func applySetsBeta1OnlyWhenTheOptimizerHasBetas() throws {
        let s = try OneCycle(cycleMinLR: 1e-4, cycleMaxLR: 1e-3, cycleFirstStepSize: 4)
        let adam = ScheduleProbeOptimizer(lr: 1, betas: (0.9, 0.95))
        let sgd = ScheduleProbeOptimizer(lr: 1, betas: nil)
        s.step()
        s.apply(to: adam)
        s.apply(to: sgd)
        #expect(adam.lr == s.lr && sgd.lr == s.lr)
        #expect(adam.betas?.0 == s.beta1 && adam.betas?.1 == 0.99)   // DeepSpeed overwrites beta2
        #expect(sgd.betas == nil)
    }

    @Test func noMomentumCyclingLeavesBetasAlone() throws {
        let s = try OneCycle(cycleMinLR: 1e-4, cycleMaxLR: 1e-3, cycleMomentum: false)
        let adam = ScheduleProbeOptimizer(lr: 1, betas: (0.9, 0.95))
        s.apply(to: adam)
        #expect(s.beta1 == nil)
        #expect(adam.betas?.0 == 0.9)
    }

    @Test func warmupLRWithoutMaxUsesTheOptimizersLR() throws {
        var p = LRScheduleParams()
        p.warmupNumSteps = 3
        #expect(LRScheduleType.warmupLR.needsBaseLR(p))
        let s = try p.makeScheduler(.warmupLR, baseLR: 5e-4)
        #expect(s.lrs(count: 6).last == 5e-4)
        p.warmupMaxLR = 1e-3
        #expect(!LRScheduleType.warmupLR.needsBaseLR(p))
    }

    @Test func missingRequiredParametersNameTheKey() {
        let p = LRScheduleParams()
        for (type, key) in [(LRScheduleType.warmupDecayLR, "total_num_steps"), (.warmupCosineLR, "total_num_steps"),
                            (.oneCycle, "cycle_min_lr")] {
            let error = #expect(throws: LRScheduleError.self) { try p.makeScheduler(type, baseLR: 1e-3) }
            #expect(error?.key == key)
            #expect(error?.description.contains(type.rawValue) == true)
        }
    }

    @Test func outOfRangeParametersNameKeyAndValue() {
        let error = #expect(throws: LRScheduleError.self) { try WarmupLR(warmupNumSteps: 0) }
        #expect(error?.description == "warmup_num_steps = 0 is not allowed: must be a positive integer")
        #expect(throws: LRScheduleError.self) { try OneCycle(cycleMinLR: 0, cycleMaxLR: 1, cycleSecondStepSize: -1) }
        #expect(throws: LRScheduleError.self) { try OneCycle(cycleMinLR: 0, cycleMaxLR: 1, decayStepSize: -3) }
        #expect(throws: LRScheduleError.self) { try WarmupCosineLR(baseLR: 1, totalNumSteps: -1) }
    }

    @Test func paramsDecodeFromDeepSpeedKeys() throws {
        let json = #"{"warmup_min_lr": 0, "warmup_max_lr": 0.001, "warmup_num_steps": 100, "warmup_type": "linear"}"#
        let p = try JSONDecoder().decode(LRScheduleParams.self, from: Data(json.utf8))
        #expect(p.warmupMaxLR == 0.001 && p.warmupNumSteps == 100 && p.resolvedWarmupType == .linear)
        #expect(LRScheduleType.warmupLR.parameterKeys.contains("warmup_type"))
    }

    @Test func cosineStaysAtItsFloorPastTheEnd() throws {
        let s = try WarmupCosineLR(baseLR: 1e-3, totalNumSteps: 20, warmupNumSteps: 5, cosMinRatio: 0.1)
        #expect(s.lr == 0)
        for t in 20..<40 { #expect(lrMatches(s.lr(at: t), 1e-4)) }
    }
}
