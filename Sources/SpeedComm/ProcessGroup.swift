// The collectives contract ZeRO, data, pipeline and tensor parallelism are written against.
// Invariant: every rank calls the same collectives in the same order with the same element counts;
// a rank that never arrives turns into a `CommError` after the group's timeout, never a silent hang.

import SpeedCore

/// How a collective combines values across ranks.
public enum CommOp: String, Sendable, Hashable {
    case sum, avg, max
}

/// A failed or timed-out collective, naming the rank, the operation and what the transport said.
public struct CommError: Error, CustomStringConvertible {
    public let rank: Int
    public let operation: String
    public let message: String
    public init(rank: Int, operation: String, message: String) {
        self.rank = rank; self.operation = operation; self.message = message
    }
    public var description: String { "rank \(rank): \(operation) failed: \(message)" }
}

/// A group of cooperating ranks (DeepSpeed's `torch.distributed` process group).
///
/// Three engines implement it: ``SingleProcessGroup`` (one rank), ``LocalProcessGroup`` (N ranks as
/// threads of one process, the test double) and, in their own targets, MPI (CPU) and NCCL (GPU).
/// Code above this layer names only the protocol.
///
/// ```swift
/// let groups = try LocalProcessGroup.run(size: 4) { group in
///     let t = Tensor([Float(group.rank)])
///     try group.allReduce(t, op: .sum)                    // 0 + 1 + 2 + 3 on every rank
///     let pair = try group.split(color: group.rank / 2, key: group.rank)   // {0, 1} and {2, 3}
///     return (t.item(), pair.size)
/// }
/// ```
public protocol ProcessGroup: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Seconds a collective may wait for the other ranks before it fails.
    var timeout: Double { get }
    /// Combines `tensor` across ranks, in place.
    func allReduce(_ tensor: Tensor, op: CommOp) throws
    /// `input` holds `counts.reduce(0, +)` elements, rank r's block (`counts[r]` of them) after
    /// rank r-1's; this rank's block, combined across ranks, lands in `output` (`counts[rank]`).
    /// Uneven blocks are how ZeRO reduces a gradient bucket straight into its owners' partitions.
    func reduceScatter(_ input: Tensor, into output: Tensor, counts: [Int], op: CommOp) throws
    /// Concatenates every rank's `input` (`counts[r]` elements from rank r, rank order) into `output`.
    /// `input` may be this rank's own block of `output` (gathering in place).
    func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) throws
    /// Copies `root`'s `tensor` to every rank.
    func broadcast(_ tensor: Tensor, root: Int) throws
    /// Sends `tensor` to `destination`; may wait until the receiver has taken it, so a correct program
    /// never relies on buffering (the in-process group always waits).
    func send(_ tensor: Tensor, to destination: Int, tag: Int) throws
    /// Receives into `tensor` (same element count and dtype as sent) from `source`.
    func receive(_ tensor: Tensor, from source: Int, tag: Int) throws
    func barrier() throws
    /// Collective: ranks passing the same `color` (>= 0) form a new group, ordered by `key`, then by
    /// rank here (MPI's `MPI_Comm_split`). Data-, pipeline- and tensor-parallel groups are splits.
    func split(color: Int, key: Int) throws -> any ProcessGroup
    /// A second group over the same ranks whose collectives may run on another thread while this
    /// one's run (ZeRO-3's prefetch thread), or nil when the transport cannot do that. Collective.
    func makeCompanion() throws -> (any ProcessGroup)?
    /// Ends the job — every rank of every group — with `code` (after a failure one rank cannot
    /// recover from, such as a timed-out collective inside an autograd hook).
    func abort(code: Int32) -> Never
    /// Releases the transport at the end of a run (MPI_Finalize for the world group); collectives
    /// fail afterwards. Call it once, on every rank, after the last collective.
    func finalize()
}

extension ProcessGroup {
    /// `input` holds `size` equal blocks; rank r receives block r combined across ranks.
    ///
    /// ```swift
    /// try group.reduceScatter(grads, into: myShard, op: .avg)   // grads.count == size * myShard.count
    /// ```
    public func reduceScatter(_ input: Tensor, into output: Tensor, op: CommOp) throws {
        precondition(input.count == output.count * size,
                     "reduceScatter: input has \(input.count) elements; it needs size (\(size)) × output (\(output.count))")
        try reduceScatter(input, into: output, counts: Array(repeating: output.count, count: size), op: op)
    }

    /// Concatenates every rank's `input` (rank order) into `output` (`size × input.count`).
    public func allGather(_ input: Tensor, into output: Tensor) throws {
        precondition(output.count == input.count * size,
                     "allGather: output has \(output.count) elements; it needs size (\(size)) × input (\(input.count))")
        try allGather(input, into: output, counts: Array(repeating: input.count, count: size))
    }

    /// Checks the arguments every engine's `reduceScatter` shares (caller bugs stop with the values).
    public func checkReduceScatter(_ input: Tensor, _ output: Tensor, counts: [Int]) {
        precondition(counts.count == size && output.count == counts[rank] && input.count == counts.reduce(0, +),
                     "reduceScatter: counts \(counts) (need \(size)), input \(input.count) elements, output \(output.count) on rank \(rank)")
        precondition(input.dtype == output.dtype, "reduceScatter: dtypes \(input.dtype) and \(output.dtype) differ")
    }

    /// Checks the arguments every engine's `allGather` shares.
    public func checkAllGather(_ input: Tensor, _ output: Tensor, counts: [Int]) {
        precondition(counts.count == size && input.count == counts[rank] && output.count == counts.reduce(0, +),
                     "allGather: counts \(counts) (need \(size)), input \(input.count) elements, output \(output.count) on rank \(rank)")
        precondition(input.dtype == output.dtype, "allGather: dtypes \(input.dtype) and \(output.dtype) differ")
    }
}

/// Factories for the process group a job runs in; the MPI and NCCL targets add theirs
/// (`ProcessGroups.fromEnvironment`, `ProcessGroups.accelerated(_:for:)`), so callers never name an engine.
public enum ProcessGroups {}
