// Hugging Face schedules against the LR sequences of torch + transformers' get_scheduler (Fixtures/hf_schedules.json).
// Invariant: the fixture comes only from scripts/make_trainer_fixtures.py; every LR must match to 1e-12 relative.

import Foundation
import SpeedCore
import SpeedOptim
import Testing

struct HFScheduleCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var type: String
    var baseLR: Double
    var numWarmupSteps: Int
    var numTrainingSteps: Int
    var kwargs: [String: Double]
    var lr: [Double]
    var testDescription: String { name }

    enum CodingKeys: String, CodingKey {
        case name, type, baseLR = "base_lr", numWarmupSteps = "num_warmup_steps"
        case numTrainingSteps = "num_training_steps", kwargs, lr
    }

    static let all: [HFScheduleCase] = {
        struct File: Decodable { var cases: [HFScheduleCase] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/hf_schedules.json")
        do { return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases } catch {
            fatalError("cannot read \(url.path): \(error)")
        }
    }()
}

@Suite struct HFScheduleTests {
    @Test func fixtureCoversEveryType() {
        #expect(Set(HFScheduleCase.all.map(\.type)) == Set(HFScheduleType.allCases.map(\.rawValue)))
    }

    @Test(arguments: HFScheduleCase.all)
    func matchesTransformers(_ c: HFScheduleCase) throws {
        let type = try #require(HFScheduleType(rawValue: c.type))
        let s = try HFSchedule(type, baseLR: c.baseLR, numWarmupSteps: c.numWarmupSteps,
                               numTrainingSteps: c.numTrainingSteps, kwargs: c.kwargs)
        let ours = s.lrs(count: c.lr.count)
        for (k, (a, b)) in zip(ours, c.lr).enumerated() {
            #expect(a == b || abs(a - b) <= 1e-12 * max(abs(a), abs(b)), "\(c.name) step \(k + 1): \(a) vs transformers \(b)")
        }
        // Stepping the scheduler gives the same sequence, and the state round-trips.
        for _ in 0..<3 { s.step() }
        #expect(s.lr == ours[3])
        let fresh = try HFSchedule(type, baseLR: c.baseLR, numWarmupSteps: c.numWarmupSteps,
                                   numTrainingSteps: c.numTrainingSteps, kwargs: c.kwargs)
        try fresh.load(state: s.state)
        #expect(fresh.lr == s.lr)
    }

    @Test func theEngineContractOfStepAndApply() throws {
        // Optimizer step 1 runs at λ(0) = 0 during warmup, step 2 at λ(1) = 1/W.
        let s = try HFSchedule(.linear, baseLR: 1e-3, numWarmupSteps: 4, numTrainingSteps: 10)
        let adam = AdamW(lr: 1e-3)
        s.apply(to: adam)
        #expect(adam.lr == 0)
        s.step(); s.apply(to: adam)
        #expect(adam.lr == 1e-3 * 0.25)
        #expect(s.typeName == "linear")
    }

    @Test func badArgumentsAreErrorsNamingTheKey() {
        #expect(throws: LRScheduleError(key: "lr_scheduler_kwargs.num_cycles", value: "2.0",
                                        allowed: "none: linear takes no lr_scheduler_kwargs")) {
            try HFSchedule(.linear, baseLR: 1e-3, numWarmupSteps: 0, numTrainingSteps: 5, kwargs: ["num_cycles": 2])
        }
        #expect(throws: LRScheduleError.self) {
            try HFSchedule(.polynomial, baseLR: 1e-8, numWarmupSteps: 0, numTrainingSteps: 5)   // lr_end 1e-7 >= lr
        }
        #expect(throws: LRScheduleError.self) {
            try HFSchedule(.cosineWithMinLR, baseLR: 1e-3, numWarmupSteps: 0, numTrainingSteps: 5)
        }
        // constant ignores kwargs, as get_scheduler does.
        #expect(throws: Never.self) {
            try HFSchedule(.constant, baseLR: 1e-3, numWarmupSteps: 0, numTrainingSteps: 5, kwargs: ["x": 1])
        }
    }
}
