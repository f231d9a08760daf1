// Failures: a dead or stuck neighbour ends the batch with an error naming the rank and the instruction (never a
// hang), and a non-finite gradient on one stage skips the step on every stage (fp32 and fp16 loss scaling).
import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
@testable import SpeedPipeline
@testable import SpeedRuntime
import Testing

@Suite struct PipelineFailureTests {
    @Test func aDeadNeighbourEndsTheBatchWithTheRankAndInstruction() throws {
        let errors = Captured<String>()
        let start = Date()
        #expect(throws: (any Error).self) {
            try LocalProcessGroup.run(size: 4, timeout: 30) { world in
                let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: 2)
                let engine = try PipelineEngine(module: module, config: try pipeConfig(gas: 2, dataParallel: 2, zeroStage: 1), world: world)
                if world.rank == 3 { return }          // stage 1, data rank 1 dies before the batch
                let data = RankData(dp: engine.grid.dataParallelID, dataParallel: 2, gas: 2)
                do { _ = try engine.trainBatch { data.next() } } catch {
                    errors.set(world.rank, "\(error)")
                    throw error
                }
            }
        }
        #expect(Date().timeIntervalSince(start) < 20, "the failure must not wait out the 30 s timeout")
        let message = try #require(errors[1])
        #expect(message.hasPrefix("pipeline stage 0 (global rank 1): SendActivation(buffer_id=0) at step 1 of the train schedule, sending to stage 1 (global rank 3), failed: "), "\(message)")
        #expect(message.contains("returned without joining"), "\(message)")
    }

    @Test func aStuckNeighbourTimesOutNamingTheInstruction() throws {
        let errors = Captured<String>()
        #expect(throws: (any Error).self) {
            try LocalProcessGroup.run(size: 2, timeout: 1) { world in
                let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: 2)
                let engine = try PipelineEngine(module: module, config: try pipeConfig(gas: 2, dataParallel: 1), world: world)
                if world.rank == 0 { Thread.sleep(forTimeInterval: 3) }   // stage 0 hangs before sending
                let data = RankData(dp: 0, dataParallel: 1, gas: 2)
                do { _ = try engine.trainBatch { data.next() } } catch {
                    errors.set(world.rank, "\(error)")
                    throw error
                }
            }
        }
        let message = try #require(errors[1])
        #expect(message.hasPrefix("pipeline stage 1 (global rank 1): RecvActivation(buffer_id=0) at step 1 of the train schedule, receiving from stage 0 (global rank 0), failed: "), "\(message)")
        #expect(message.contains("timed out after 1.0 s waiting for rank(s) [0]"), "\(message)")
    }

    /// Runs the backwards of one batch, poisons one gradient of stage 0's position embedding (not tied), then reduces
    /// and steps: every stage must skip, keep its weights and (fp16) halve the same loss scale.
    func poisonOneStage(extra: String) throws -> [(skipped: Int, unchanged: Bool, scale: Double, steps: Int)] {
        try LocalProcessGroup.run(size: 2, timeout: 60) { world in
            let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: 2)
            let engine = try PipelineEngine(module: module, config: try pipeConfig(gas: 2, dataParallel: 1, extra: extra), world: world)
            let data = RankData(dp: 0, dataParallel: 1, gas: 2)
            _ = try engine.trainBatch { data.next() }        // one ordinary step first
            data.endStep()
            let before = gptWeights(of: engine.stage)
            let train = TrainSchedule(microBatches: 2, stages: 2, stageID: engine.stageID)
            let batchOnly: [PipeInstruction] = [.reduceTiedGrads, .reduceGrads, .optimizerStep]
            try engine.execute(ListedSchedule(microBatches: 2, stages: 2, stageID: engine.stageID, bufferCount: train.bufferCount,
                                              steps: train.steps.map { $0.filter { !batchOnly.contains($0) } }),
                               training: true, next: data.next)
            if engine.stageID == 0 {
                let g = engine.stage.module(forLayer: 1)!.namedParameters()[0].1.grad!
                var values = g.cast(to: .float32).scalars
                values[5] = .nan
                g.copyData(from: Tensor(values, shape: g.shape).cast(to: g.dtype))
            }
            try engine.execute(ListedSchedule(microBatches: 2, stages: 2, stageID: engine.stageID, bufferCount: 1, steps: [batchOnly]),
                               training: true, next: data.next)
            return (engine.engine.skippedSteps, gptWeights(of: engine.stage) == before, engine.engine.lossScale, engine.globalSteps)
        }
    }

    @Test func aNaNOnOneStageSkipsTheStepOnEveryStage() throws {
        let ranks = try poisonOneStage(extra: "")
        for (r, rank) in ranks.enumerated() {
            #expect(rank.skipped == 1 && rank.unchanged && rank.steps == 2, "rank \(r): \(rank)")
        }
    }

    @Test func anFP16OverflowOnOneStageSkipsAndHalvesTheScaleEverywhere() throws {
        let ranks = try poisonOneStage(extra: #", "fp16": {"enabled": true, "initial_scale_power": 8, "hysteresis": 1}"#)
        for (r, rank) in ranks.enumerated() {
            #expect(rank.skipped == 1 && rank.unchanged && rank.steps == 2 && rank.scale == 128, "rank \(r): \(rank)")
        }
    }
}
