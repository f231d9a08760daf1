// The ZeRO matrix (stage × offload × precision × accumulation) on two in-process ranks against one process:
// losses, weights, skipped steps, model-state bytes, a NaN on one rank, and checkpoints across stages and
// world sizes. The same cases run under mpirun in ZeroStageTests; here every comparison is an #expect.
import Foundation
import SwiftSpeed
@testable import swiftspeed
import Testing

@Suite(.serialized) struct ZeroMatrixInProcessTests {
    static let cases: [ZeroCase] = [0, 1, 2, 3].flatMap { stage in
        ["fp32", "fp16", "bf16"].flatMap { dtype in
            [1, 3].flatMap { gas in
                [false, true].map { offload in
                    ZeroCase(stage: stage, dtype: dtype, gas: gas, offload: offload, steps: 3, checkpointActivations: false)
                }
            }
        }
    }

    @Test(arguments: cases)
    func twoRanksMatchOneProcess(_ c: ZeroCase) throws {
        let world = 2
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("zero-matrix-\(ProcessInfo.processInfo.processIdentifier)-\(c.stage)-\(c.dtype)-\(c.gas)-\(c.offload)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ranks = try LocalProcessGroup.run(size: world) { group in try c.run(on: group, checkpoint: dir) }
        let want = try c.reference(world: world)
        for (rank, o) in ranks.enumerated() {
            #expect(o.losses.count == want.losses.count)
            for (step, (a, b)) in zip(o.losses, want.losses).enumerated() {
                #expect(c.close(a, b), "rank \(rank) step \(step + 1): loss \(a) on \(world) ranks vs \(b) on 1")
            }
            #expect(o.skipped == want.skipped, "rank \(rank)")
            let drift = zip(o.weights, want.weights).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
            #expect(drift <= c.weightTolerance, "rank \(rank): weights differ by up to \(drift)")
            #expect(o.memoryProblem == nil, "rank \(rank): \(o.memoryProblem ?? "")")
            if c.stage == 3 { #expect((o.prefetched ?? 0) > 0, "rank \(rank): stage 3 never used a prefetched gather") }
            #expect(o.nanSkipped, "a NaN gradient on rank \(world - 1) did not make rank \(rank) skip the step")
            #expect(c.close(o.resumedLoss, o.nextLoss),
                    "rank \(rank): loss \(o.resumedLoss) after loading at stage \((c.stage + 2) % 4) vs \(o.nextLoss)")
        }
        #expect(ranks[0].weights == ranks[1].weights, "the ranks' gathered weights differ")
        #expect(try c.reload(dir, world: world) == ranks[0].weights,
                "the \(world)-rank checkpoint loaded on one process has different fp32 weights")
    }
}

extension ZeroCase: CustomTestStringConvertible {
    public var testDescription: String { name }
}
