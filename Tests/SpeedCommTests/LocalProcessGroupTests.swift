// The in-process group: every collective on 1–4 thread ranks, subgroups, point-to-point, and the failure
// modes a real transport has (a stuck rank, a mismatched call, a rank that leaves) ending in an error.
import Foundation
import SpeedComm
import SpeedCore
import Testing

@Suite struct LocalProcessGroupTests {
    @Test(arguments: [1, 2, 3, 4])
    func everyCollectiveGivesTheExpectedValuesOnEveryRank(ranks: Int) throws {
        let sizes = try LocalProcessGroup.run(size: ranks) { group in
            try group.verifyCollectives()
            return group.size
        }
        #expect(sizes == Array(repeating: ranks, count: ranks))
    }

    @Test func averagesOfHalfPrecisionAreRoundedOnceFromFP32() throws {
        let values = try LocalProcessGroup.run(size: 3) { group in
            let t = Tensor([Float(group.rank) + 0.1, 1000], dtype: .bfloat16)
            try group.allReduce(t, op: .avg)
            return t.scalars
        }
        let exact = [Tensor([Float(0.1), 1000], dtype: .bfloat16), Tensor([Float(1.1), 1000], dtype: .bfloat16),
                     Tensor([Float(2.1), 1000], dtype: .bfloat16)].map { $0.scalars }
        let mean = Tensor([(exact[0][0] + exact[1][0] + exact[2][0]) / 3, 1000], dtype: .bfloat16).scalars
        #expect(values == [mean, mean, mean])
    }

    @Test func splitsFormDataAndTensorParallelGrids() throws {
        // 6 ranks as 2 data-parallel replicas × 3 tensor-parallel ranks.
        let got = try LocalProcessGroup.run(size: 6) { world in
            let tp = try world.split(color: world.rank / 3, key: world.rank)
            let dp = try world.split(color: world.rank % 3, key: world.rank)
            let a = Tensor([Float(world.rank)]), b = Tensor([Float(world.rank)])
            try tp.allReduce(a, op: .sum)
            try dp.allReduce(b, op: .sum)
            return [tp.rank, tp.size, dp.rank, dp.size, Int(a.item()), Int(b.item())]
        }
        for r in 0..<6 {
            let tpSum = (r / 3) * 9 + 3, dpSum = 2 * (r % 3) + 3
            #expect(got[r] == [r % 3, 3, r / 3, 2, tpSum, dpSum], "rank \(r)")
        }
    }

    @Test func sendAndReceiveMatchByTagAndKeepOrder() throws {
        let got = try LocalProcessGroup.run(size: 2) { g in
            if g.rank == 0 {
                try g.send(Tensor([1, 2] as [Float]), to: 1, tag: 5)
                try g.send(Tensor([3, 4] as [Float]), to: 1, tag: 5)
                let back = Tensor.zeros([1], dtype: .int64)
                try g.receive(back, from: 1, tag: 9)
                return back.scalars
            }
            let first = Tensor.zeros([2]), second = Tensor.zeros([2])
            try g.receive(first, from: 0, tag: 5)
            try g.receive(second, from: 0, tag: 5)
            try g.send(Tensor([7] as [Float]).cast(to: .int64), to: 0, tag: 9)
            return first.scalars + second.scalars
        }
        #expect(got == [[7], [1, 2, 3, 4]])
    }

    @Test func aMessageOfTheWrongSizeIsAnErrorNamingTheSender() {
        #expect {
            _ = try LocalProcessGroup.run(size: 2, timeout: 10) { g in
                if g.rank == 0 { try g.send(Tensor([1, 2, 3] as [Float]), to: 1, tag: 0) }
                else { try g.receive(Tensor.zeros([2]), from: 0, tag: 0) }
            }
        } throws: { "\($0)".contains("rank 0 sent 3 float32 elements") }
    }

    @Test func aStuckRankEndsTheJobWithATimeoutNamingTheRankAndOperation() throws {
        let start = Date()
        #expect {
            _ = try LocalProcessGroup.run(size: 2, timeout: 0.5) { g in
                if g.rank == 1 { Thread.sleep(forTimeInterval: 1.5); return }
                try g.allReduce(Tensor.zeros([5]), op: .sum)
            }
        } throws: { error in
            let text = "\(error)"
            return text.contains("rank 0: allReduce of 5 float32 failed: timed out after 0.5 s waiting for rank(s) [1]")
        }
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func ranksCallingDifferentCollectivesFailAtOnce() {
        #expect {
            _ = try LocalProcessGroup.run(size: 2, timeout: 60) { g in
                if g.rank == 0 { try g.allReduce(Tensor.zeros([4]), op: .sum) } else { try g.barrier() }
            }
        } throws: { error in
            let text = "\(error)"
            return text.contains("barrier") && text.contains("allReduce of 4 float32")
        }
    }

    @Test func aRankThatLeavesOrThrowsReleasesTheOthersAtOnce() {
        struct Boom: Error {}
        let start = Date()
        #expect(throws: Boom.self) {
            _ = try LocalProcessGroup.run(size: 3, timeout: 60) { g in
                if g.rank == 2 { throw Boom() }
                try g.barrier()
            }
        }
        #expect {
            _ = try LocalProcessGroup.run(size: 2, timeout: 60) { g in
                if g.rank == 0 { try g.broadcast(Tensor.zeros([2]), root: 0) }
            }
        } throws: { "\($0)".contains("rank(s) [1] returned without joining it") }
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func companionGroupsRunCollectivesOnAnotherThreadAtTheSameTime() throws {
        let got = try LocalProcessGroup.run(size: 2) { g in
            let companion = try #require(try g.makeCompanion())
            let side = Locked(Tensor([Float(g.rank + 1)]))
            let done = DispatchSemaphore(value: 0)
            let failure = Locked<(any Error)?>(nil)
            Thread {
                do { try companion.allReduce(side.value, op: .sum) } catch { failure.value = error }
                done.signal()
            }.start()
            let main = Tensor([Float(10 * g.rank)])
            try g.allReduce(main, op: .sum)
            done.wait()
            if let error = failure.value { throw error }
            return [side.value.item(), main.item()]
        }
        #expect(got == [[3, 10], [3, 10]])
    }
}

/// A value shared with one helper thread (the semaphore orders the accesses).
final class Locked<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
