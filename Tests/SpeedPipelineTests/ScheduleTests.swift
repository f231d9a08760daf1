// The schedules as data: DeepSpeed's own instruction lists (fixture from deepspeed 0.19.8), deadlock-freedom and
// the in-flight bound on the synchronous send/receive simulator, and the simulator catching broken schedules.
import Foundation
import SpeedComm
@testable import SpeedPipeline
import Testing

/// Tests/SpeedPipelineTests/Fixtures/deepspeed_pipe.json, written by scripts/make_pipeline_fixtures.py.
struct DeepSpeedPipeFixture: Decodable {
    struct Schedule: Decodable {
        let stages: Int, microBatches: Int, stageID: Int
        let train: [[String]], trainBuffers: Int
        let inference: [[String]], inferenceBuffers: Int
    }
    struct Balanced: Decodable { let weights: [Int], parts: Int, bounds: [Int] }
    struct Uniform: Decodable { let items: Int, parts: Int, bounds: [Int] }
    struct Topology: Decodable {
        let axes: [String], dims: [Int], coords: [[Int]], pipeLists: [[Int]], dataLists: [[Int]]
        let modelLists: [[Int]]?, rankRepr: [String]?
    }
    let deepspeed: String
    let schedules: [Schedule]
    let balanced: [Balanced]
    let uniform: [Uniform]
    let topologies: [Topology]

    static let shared: DeepSpeedPipeFixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/deepspeed_pipe.json")
        return try! JSONDecoder().decode(DeepSpeedPipeFixture.self, from: Data(contentsOf: url))
    }()
}

/// A schedule whose steps are given directly (to show the simulator rejects broken ones).
struct ListedSchedule: PipeSchedule {
    let microBatches: Int, stages: Int, stageID: Int, bufferCount: Int
    let steps: [[PipeInstruction]]
}

@Suite struct ScheduleTests {
    @Test func trainAndInferenceSchedulesEqualDeepSpeedsInstructionByInstruction() {
        let fixture = DeepSpeedPipeFixture.shared
        #expect(fixture.schedules.count == 27)
        for f in fixture.schedules {
            let train = TrainSchedule(microBatches: f.microBatches, stages: f.stages, stageID: f.stageID)
            let inference = InferenceSchedule(microBatches: f.microBatches, stages: f.stages, stageID: f.stageID)
            #expect(train.steps.map { $0.map(\.description) } == f.train, "train p=\(f.stages) m=\(f.microBatches) stage \(f.stageID)")
            #expect(train.bufferCount == f.trainBuffers)
            #expect(inference.steps.map { $0.map(\.description) } == f.inference, "inference p=\(f.stages) m=\(f.microBatches) stage \(f.stageID)")
            #expect(inference.bufferCount == f.inferenceBuffers)
        }
    }

    /// DeepSpeed's order for 2 stages × 4 micro-batches, written out: warm-up forwards, 1F1B, drain.
    @Test func twoStagesFourMicroBatchesByHand() {
        func d(_ s: TrainSchedule) -> [String] { s.steps.map { $0.map(\.description).joined(separator: " ") } }
        let first = TrainSchedule(microBatches: 4, stages: 2, stageID: 0)
        #expect(d(first) == [
            "LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0)",
            "SendActivation(buffer_id=0)",
            "LoadMicroBatch(buffer_id=1) ForwardPass(buffer_id=1)",
            "RecvGrad(buffer_id=0) SendActivation(buffer_id=1) BackwardPass(buffer_id=0)",
            "LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0)",
            "RecvGrad(buffer_id=1) SendActivation(buffer_id=0) BackwardPass(buffer_id=1)",
            "LoadMicroBatch(buffer_id=1) ForwardPass(buffer_id=1)",
            "RecvGrad(buffer_id=0) SendActivation(buffer_id=1) BackwardPass(buffer_id=0)",
            "",
            "RecvGrad(buffer_id=1) BackwardPass(buffer_id=1) ReduceTiedGrads() ReduceGrads() OptimizerStep()",
        ])
        let last = TrainSchedule(microBatches: 4, stages: 2, stageID: 1)
        #expect(d(last) == [
            "",
            "RecvActivation(buffer_id=0) LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0)",
            "BackwardPass(buffer_id=0)",
            "SendGrad(buffer_id=0) RecvActivation(buffer_id=1) LoadMicroBatch(buffer_id=1) ForwardPass(buffer_id=1)",
            "BackwardPass(buffer_id=1)",
            "SendGrad(buffer_id=1) RecvActivation(buffer_id=0) LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0)",
            "BackwardPass(buffer_id=0)",
            "SendGrad(buffer_id=0) RecvActivation(buffer_id=1) LoadMicroBatch(buffer_id=1) ForwardPass(buffer_id=1)",
            "BackwardPass(buffer_id=1)",
            "SendGrad(buffer_id=1) ReduceTiedGrads() ReduceGrads() OptimizerStep()",
        ])
        #expect(TrainSchedule.diagram(microBatches: 4, stages: 2) == """
            step    0  1  2  3  4  5  6  7  8  9
            stage 0 F0 .. F1 B0 F2 B1 F3 B2 .. B3
            stage 1 .. F0 B0 F1 B1 F2 B2 F3 B3 ..
            """)
    }

    /// Every (stages, micro-batches) pair up to 8 × 16 runs to the end on fully synchronous send/receive,
    /// forwards and back-propagates 0, 1, … in order on every stage, and keeps at most
    /// min(stages − s, m) micro-batches in flight on stage s (≤ p on stage 0), within its buffer count.
    @Test func everyPairIsDeadlockFreeInOrderAndWithinTheInFlightBound() {
        for p in 1...8 {
            for m in 1...16 {
                let train = ScheduleSimulator.run((0..<p).map { TrainSchedule(microBatches: m, stages: p, stageID: $0) })
                #expect(train.succeeded, "train p=\(p) m=\(m): \(train.problems)")
                #expect(train.maxInFlight == (0..<p).map { Swift.min(p - $0, m) }, "p=\(p) m=\(m)")
                #expect(train.maxInFlight[0] <= p)
                #expect(train.messages == 2 * m * (p - 1))
                for s in 0..<p {
                    #expect(train.maxInFlight[s] <= TrainSchedule(microBatches: m, stages: p, stageID: s).bufferCount)
                }
                let inference = ScheduleSimulator.run((0..<p).map { InferenceSchedule(microBatches: m, stages: p, stageID: $0) })
                #expect(inference.succeeded, "inference p=\(p) m=\(m): \(inference.problems)")
                #expect(inference.forwardOrder == Array(repeating: Array(0..<m), count: p))
                #expect(inference.messages == m * (p - 1))
            }
        }
    }

    @Test func theBubbleIsTheTheoreticalFraction() {
        for (m, p) in [(1, 2), (4, 2), (8, 4), (16, 4), (3, 7)] {
            let expected = Double(p - 1) / Double(m + p - 1)
            #expect(abs(TrainSchedule.bubbleFraction(microBatches: m, stages: p) - expected) < 1e-12)
        }
    }

    @Test func theSimulatorFindsADeadlockAndABufferOverwrite() {
        // Both stages receive first: nobody sends.
        let stuck = ScheduleSimulator.run([
            ListedSchedule(microBatches: 1, stages: 2, stageID: 0, bufferCount: 1,
                           steps: [[.loadMicroBatch(buffer: 0), .forwardPass(buffer: 0), .recvGrad(buffer: 0), .sendActivation(buffer: 0)]]),
            ListedSchedule(microBatches: 1, stages: 2, stageID: 1, bufferCount: 1,
                           steps: [[.recvActivation(buffer: 0), .forwardPass(buffer: 0), .backwardPass(buffer: 0), .sendGrad(buffer: 0)]]),
        ])
        #expect(stuck.problems.count == 1)
        #expect(stuck.problems.first?.hasPrefix("deadlock: stage 0 waits at step 0 RecvGrad(buffer_id=0); stage 1 waits at step 0 RecvActivation(buffer_id=0)") == true)
        // One buffer for two forwards in flight: the second load overwrites the first micro-batch.
        let overwrite = ScheduleSimulator.run([
            ListedSchedule(microBatches: 2, stages: 1, stageID: 0, bufferCount: 1,
                           steps: [[.loadMicroBatch(buffer: 0), .forwardPass(buffer: 0), .loadMicroBatch(buffer: 0), .backwardPass(buffer: 0)]]),
        ])
        #expect(overwrite.problems == ["stage 0 at step 0 LoadMicroBatch(buffer_id=0): buffer 0 still holds micro-batch 0; micro-batch 1 would overwrite it"])
        // Back-propagating before the gradient came back.
        let early = ScheduleSimulator.run([
            ListedSchedule(microBatches: 1, stages: 2, stageID: 0, bufferCount: 1,
                           steps: [[.loadMicroBatch(buffer: 0), .forwardPass(buffer: 0), .backwardPass(buffer: 0)]]),
            ListedSchedule(microBatches: 1, stages: 2, stageID: 1, bufferCount: 1, steps: [[]]),
        ])
        #expect(early.problems == ["stage 0 at step 0 BackwardPass(buffer_id=0): micro-batch 0 has no output gradient yet"])
    }

    @Test func partitionsEqualDeepSpeeds() {
        let fixture = DeepSpeedPipeFixture.shared
        for f in fixture.balanced {
            #expect(Partition.balanced(weights: f.weights, parts: f.parts) == f.bounds, "balanced \(f.weights) into \(f.parts)")
        }
        for f in fixture.uniform {
            #expect(Partition.uniform(items: f.items, parts: f.parts) == f.bounds, "uniform \(f.items) into \(f.parts)")
        }
    }

    @Test func topologiesEqualDeepSpeeds() {
        for f in DeepSpeedPipeFixture.shared.topologies {
            let topo = ProcessTopology(axes: f.axes, dims: f.dims)
            for r in 0..<topo.worldSize {
                let c = topo.coordinate(of: r)
                #expect(f.axes.map { c[$0]! } == f.coords[r])
                #expect(topo.rank(c) == r)
            }
            #expect(topo.axisCommLists("pipe") == f.pipeLists)
            #expect(topo.axisCommLists("data") == f.dataLists)
            if let model = f.modelLists { #expect(topo.axisCommLists("model") == model) }
            if let repr = f.rankRepr { #expect((0..<topo.worldSize).map { topo.rankRepr($0) } == repr) }
        }
        // rank = stage · dp + data
        let t = ProcessTopology.pipeDataParallel(stages: 3, dataParallel: 2)
        #expect((0..<6).map { t.coordinate(of: $0) } == (0..<3).flatMap { s in (0..<2).map { ["pipe": s, "data": $0] } })
    }
}

@Suite struct PipelineGuideTests {
    /// docs/SpeedPipeline.md's pictures are the schedule's own.
    @Test func theGuidesDiagramsAreTheSchedules() throws {
        let guide = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/SpeedPipeline.md"), encoding: .utf8)
        for (m, p) in [(4, 2), (8, 4)] {
            let picture = TrainSchedule.diagram(microBatches: m, stages: p)
            #expect(guide.contains("```\n\(picture)\n```"), "docs/SpeedPipeline.md lacks\n\(picture)")
        }
    }
}
