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
    /// `input` holds `size` equal blocks; rank r receives block r combined across ranks.
    func reduceScatter(_ input: Tensor, into output: Tensor, op: CommOp) throws
    /// Concatenates every rank's `input` (rank order) into `output` (`size × input.count`).
    func allGather(_ input: Tensor, into output: Tensor) throws
    /// Copies `root`'s `tensor` to every rank.
    func broadcast(_ tensor: Tensor, root: Int) throws
    func send(_ tensor: Tensor, to destination: Int, tag: Int) throws
    func receive(_ tensor: Tensor, from source: Int, tag: Int) throws
    func barrier() throws
}

/// The group of one process: every collective is the identity (or a copy).
public final class SingleProcessGroup: ProcessGroup {
    public let timeout: Double
    public init(timeout: Double = 1800) { self.timeout = timeout }
    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func allReduce(_ tensor: Tensor, op: CommOp) throws {}

    public func reduceScatter(_ input: Tensor, into output: Tensor, op: CommOp) throws {
        precondition(input.count == output.count, "reduceScatter: input \(input.count) elements, output \(output.count) (size 1)")
        output.copyData(from: input)
    }

    public func allGather(_ input: Tensor, into output: Tensor) throws {
        precondition(input.count == output.count, "allGather: input \(input.count) elements, output \(output.count) (size 1)")
        output.copyData(from: input)
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
