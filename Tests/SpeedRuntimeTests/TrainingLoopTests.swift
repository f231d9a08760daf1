// The shared training loop: a run stopped and resumed from its checkpoint equals an uninterrupted one, bit for
// bit; checkpoints land every `saveEvery` steps; each rank of W asks for its own micro-batch indices.
import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
@testable import SpeedRuntime
import SpeedTestSupport
import Testing

@Suite struct TrainingLoopTests {
    static let json = #"{"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#

    func engine(_ group: any ProcessGroup = SingleProcessGroup()) throws -> Engine {
        var rng = RandomStream(seed: 11)
        return try initialize(model: Linear(6, 3, rng: &rng), config: try config(Self.json, worldSize: group.size),
                              processGroup: group).engine
    }

    /// Micro-batch `i`: two rows of the regression data.
    static func batch(_ i: Int) -> (Tensor, Tensor) {
        let data = regressionData(samples: 64, seed: 5)
        let rows = (2 * i % 64)..<(2 * i % 64 + 2)
        return (data.0.slice(axis: 0, rows), data.1.slice(axis: 0, rows))
    }

    @Test func aResumedRunEqualsAnUninterruptedOneBitForBit() throws {
        let dir = IOTestDirectory()
        let whole = try engine()
        let straight = try TrainingLoop(steps: 6).run(whole, batch: Self.batch) { x, y in whole(x).mseLoss(y) }
        let first = try engine()
        let head = try TrainingLoop(steps: 3, saveDir: dir.url.path).run(first, batch: Self.batch) { x, y in first(x).mseLoss(y) }
        let second = try engine()
        let tail = try TrainingLoop(steps: 6, saveDir: dir.url.path, resume: true)
            .run(second, batch: Self.batch) { x, y in second(x).mseLoss(y) }
        #expect(straight.map(\.step) == Array(1...6))
        #expect((head + tail).map(\.loss) == straight.map(\.loss))
        #expect(weights(second.module) == weights(whole.module))
    }

    @Test func checkpointsLandEverySaveEveryStepsAndAtTheEnd() throws {
        let dir = IOTestDirectory()
        let e = try engine()
        try TrainingLoop(steps: 5, saveDir: dir.url.path, saveEvery: 2).run(e, batch: Self.batch) { x, y in e(x).mseLoss(y) }
        #expect(dir.listing().filter { $0.hasPrefix("global_step") } == ["global_step2", "global_step4", "global_step5"])
        #expect(try String(contentsOf: dir.file("latest"), encoding: .utf8) == "global_step5")
    }

    @Test func eachRankTakesItsOwnMicroBatchesOfTheGlobalBatch() throws {
        let asked = try LocalProcessGroup.run(size: 2) { group in
            let e = try engine(group)
            var indices: [Int] = []
            try TrainingLoop(steps: 2).run(e, batch: { i -> (Tensor, Tensor) in indices.append(i); return Self.batch(i) }) { x, y in
                e(x).mseLoss(y)
            }
            return indices
        }
        // GAS 2 on 2 ranks: step s, micro m on rank r takes (2s + m)·2 + r.
        #expect(asked == [[0, 2, 4, 6], [1, 3, 5, 7]])
    }
}

@Suite struct SkippedStepTests {
    /// A run whose every step overflows must say so (the log at 10, 100, … in a row, and every --json record),
    /// not skip silently forever.
    @Test func stepsSkippedInARowAreWarnedAndRecorded() throws {
        var rng = RandomStream(seed: 2)
        let recorder = LogRecorder()
        let e = try initialize(model: Linear(6, 3, rng: &rng), config: try config(TrainingLoopTests.json),
                               logger: recorder.logger()).engine
        let records = try TrainingLoop(steps: 12).run(e, batch: TrainingLoopTests.batch) { x, y in e(x).mseLoss(y) * Double.nan }
        #expect(records.map(\.consecutiveSkippedSteps) == Array(1...12))
        #expect(records.last?.skippedSteps == 12)
        #expect(records.last?.json.contains("\"consecutive_skipped_steps\":12") == true)
        #expect(recorder.all.filter { $0.contains("10 optimizer steps in a row were skipped") }.count == 1, "\(recorder.all)")
    }
}
