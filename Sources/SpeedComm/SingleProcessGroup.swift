// The group of one process: every collective is the identity (or a copy), every split is itself again.
// Invariant: it never waits, so nothing here can time out; point-to-point has no peer and throws.

#if canImport(Glibc)
import Glibc
#endif
import SpeedCore

/// The group of one process: every collective is the identity (or a copy).
///
/// ```swift
/// let g = SingleProcessGroup()
/// try g.allReduce(t, op: .avg)   // t unchanged
/// ```
public final class SingleProcessGroup: ProcessGroup {
    public let timeout: Double
    public init(timeout: Double = 1800) { self.timeout = timeout }
    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func allReduce(_ tensor: Tensor, op: CommOp) throws {}

    public func reduceScatter(_ input: Tensor, into output: Tensor, counts: [Int], op: CommOp) throws {
        checkReduceScatter(input, output, counts: counts)
        if input.storage !== output.storage || input.offset != output.offset { output.copyData(from: input) }
    }

    public func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) throws {
        checkAllGather(input, output, counts: counts)
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

    public func split(color: Int, key: Int) throws -> any ProcessGroup {
        precondition(color >= 0, "split: color \(color) must be >= 0")
        return SingleProcessGroup(timeout: timeout)
    }

    public func makeCompanion() throws -> (any ProcessGroup)? { SingleProcessGroup(timeout: timeout) }

    /// Exits the process with `code`.
    public func abort(code: Int32) -> Never { exit(code) }

    public func finalize() {}
}
