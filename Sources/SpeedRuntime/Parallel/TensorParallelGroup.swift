// The tensor-parallel communicator over a `ProcessGroup`, counting what it moves (B10's traffic figures).
// Invariant: a collective that fails inside a layer's forward or backward cannot be thrown through autograd, so it
// is written to stderr with the rank and the collective and the whole job is aborted — never a hang or a wrong sum.

import Foundation
import SpeedComm
import SpeedCore
import SpeedNN

/// A ``TensorParallelCommunicator`` over the tensor-parallel `ProcessGroup` (adjacent ranks of the world).
///
/// ```swift
/// let tp = TensorParallelGroup(try world.split(color: world.rank / 2, key: world.rank))
/// try model.shardForTensorParallel(tp)
/// ```
public final class TensorParallelGroup: TensorParallelCommunicator, @unchecked Sendable {
    public let group: any ProcessGroup
    public var rank: Int { group.rank }
    public var size: Int { group.size }
    private let lock = NSLock()
    private var counts = (allReduces: 0, allReduceElements: 0, allGathers: 0, allGatherElements: 0)

    public init(_ group: any ProcessGroup) { self.group = group }

    public func allReduce(_ tensor: Tensor, _ reduction: TensorParallelReduction) {
        record { $0.allReduces += 1; $0.allReduceElements += tensor.count }
        run("all-reduce of \(tensor.shape)") { try group.allReduce(tensor, op: reduction == .sum ? .sum : .max) }
    }

    public func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) {
        record { $0.allGathers += 1; $0.allGatherElements += output.count }
        run("all-gather into \(output.shape)") { try group.allGather(input, into: output, counts: counts) }
    }

    /// Collectives issued so far and the elements they carried (an all-reduce counts its tensor once, an all-gather
    /// its whole output).
    public var traffic: (allReduces: Int, allReduceElements: Int, allGathers: Int, allGatherElements: Int) {
        lock.lock(); defer { lock.unlock() }
        return counts
    }

    /// Sets the counters back to zero.
    public func resetTraffic() { record { $0 = (0, 0, 0, 0) } }

    private func record(_ change: (inout (allReduces: Int, allReduceElements: Int, allGathers: Int, allGatherElements: Int)) -> Void) {
        lock.lock(); defer { lock.unlock() }
        change(&counts)
    }

    private func run(_ what: String, _ body: () throws -> Void) {
        do { try body() } catch {
            FileHandle.standardError.write(Data("[SwiftSpeed] tensor-parallel rank \(rank) of \(size): \(what) failed: \(error); aborting the job\n".utf8))
            group.abort(code: 3)
        }
    }
}
