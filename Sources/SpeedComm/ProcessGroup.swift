// The collectives contract ZeRO and data parallelism are written against, plus the size-1 group.
// Invariant: every rank calls the same collectives in the same order with the same element counts;
// a rank that never arrives turns into a `CommError` after the group's timeout, never a silent hang.

import SpeedCore

/// How a collective combines values across ranks.
public enum CommOp: String, Sendable, Hashable {
    case sum, avg, max
}

/// A failed or timed-out collective, naming the rank, the operation and what MPI said.
public struct CommError: Error, CustomStringConvertible {
    public let rank: Int
    public let operation: String
    public let message: String
    public init(rank: Int, operation: String, message: String) {
        self.rank = rank; self.operation = operation; self.message = message
    }
    public var description: String { "rank \(rank): \(operation) failed: \(message)" }
}

/// A group of cooperating processes (DeepSpeed's `torch.distributed` process group).
///
/// Tensors are contiguous and, for the MPI backend, on the CPU.
///
/// ```swift
/// let group = try ProcessGroups.fromEnvironment()   // MPI under mpirun, else a single process
/// try group.allReduce(grads, op: .avg)
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
    func send(_ tensor: Tensor, to destination: Int, tag: Int) throws
    func receive(_ tensor: Tensor, from source: Int, tag: Int) throws
    func barrier() throws
    /// A second group over the same ranks whose collectives may run on another thread while this
    /// one's run (ZeRO-3's prefetch thread), or nil when the transport cannot do that.
    func makeCompanion() throws -> (any ProcessGroup)?
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
}

/// The group of one process: every collective is the identity (or a copy).
public final class SingleProcessGroup: ProcessGroup {
    public let timeout: Double
    public init(timeout: Double = 1800) { self.timeout = timeout }
    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func allReduce(_ tensor: Tensor, op: CommOp) throws {}

    public func reduceScatter(_ input: Tensor, into output: Tensor, counts: [Int], op: CommOp) throws {
        precondition(counts == [output.count] && input.count == output.count,
                     "reduceScatter: counts \(counts), input \(input.count) and output \(output.count) elements (size 1)")
        if input.storage !== output.storage || input.offset != output.offset { output.copyData(from: input) }
    }

    public func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) throws {
        precondition(counts == [input.count] && input.count == output.count,
                     "allGather: counts \(counts), input \(input.count) and output \(output.count) elements (size 1)")
        if input.storage !== output.storage || input.offset != output.offset { output.copyData(from: input) }
    }

    public func broadcast(_ tensor: Tensor, root: Int) throws {
        precondition(root == 0, "broadcast: root \(root) does not exist in a group of size 1")
    }

    public func send(_ tensor: Tensor, to destination: Int, tag: Int) throws {
        throw CommError(rank: 0, operation: "send to \(destination)", message: "a single-process group has no peers")
    }

    public func receive(_ tensor: Tensor, from source: Int, tag: Int) throws {
        throw CommError(rank: 0, operation: "receive from \(source)", message: "a single-process group has no peers")
    }

    public func barrier() throws {}

    public func makeCompanion() throws -> (any ProcessGroup)? { SingleProcessGroup(timeout: timeout) }
}

/// Choosing a process group.
public enum ProcessGroups {
    /// MPI when the process was started by `mpirun` (or `swiftspeed launch`), else one process.
    /// - Parameter timeout: seconds a collective waits (DeepSpeed's default is 30 minutes).
    public static func fromEnvironment(timeout: Double = 1800) throws -> any ProcessGroup {
        let env = ProcessEnvironment.current
        if env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil {
            return try MPIProcessGroup(timeout: timeout)
        }
        return SingleProcessGroup(timeout: timeout)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Read-only view of the process environment.
enum ProcessEnvironment {
    static var current: [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
