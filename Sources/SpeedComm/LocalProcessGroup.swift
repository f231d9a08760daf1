// N ranks as threads of one process, with real collectives over shared memory: the test double of MPI/NCCL.
// Invariant: collectives work on host copies (fp32 for the 16-bit types, as MPI does) combined in rank order
// by one thread, so every rank gets bit-identical results and a W-rank run is deterministic.

import Foundation
import SpeedCore

/// A process group whose ranks are threads of this process (swift-nio's `EmbeddedChannel` for
/// collectives): ZeRO, pipeline and tensor parallelism run on W ranks inside one test.
///
/// A rank that never arrives, calls a different collective or leaves early fails the whole job with a
/// ``CommError`` naming the ranks and the operation, after at most `timeout` seconds.
///
/// ```swift
/// let sums = try LocalProcessGroup.run(size: 4) { group in
///     let t = Tensor([Float(group.rank)])
///     try group.allReduce(t, op: .sum)
///     return t.item()                  // 6 on every rank
/// }
/// // sums == [6, 6, 6, 6]
/// ```
public final class LocalProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    let world: LocalWorld
    public var size: Int { world.size }
    public var timeout: Double { world.timeout }

    init(rank: Int, world: LocalWorld) {
        self.rank = rank
        self.world = world
    }

    /// Runs `body` once per rank, each on its own thread, and returns the results in rank order.
    /// Rethrows the job's first error (a rank's own, or a failed collective's).
    /// - Parameters:
    ///   - size: the number of ranks (>= 1).
    ///   - timeout: seconds a collective waits for the other ranks.
    public static func run<R>(size: Int, timeout: Double = 120,
                              _ body: @escaping @Sendable (LocalProcessGroup) throws -> R) throws -> [R] {
        precondition(size >= 1, "LocalProcessGroup.run: size \(size) must be >= 1")
        let job = LocalJob()
        let world = LocalWorld(job: job, members: Array(0..<size), timeout: timeout)
        let box = ResultBox<R>(count: size)
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let thread = Thread {
                let group = LocalProcessGroup(rank: r, world: world)
                let result = Result { try body(group) }
                job.condition.lock()
                box.results[r] = result
                job.exited.insert(r)
                if case .failure(let error) = result {
                    let comm = error as? CommError
                        ?? CommError(rank: r, operation: "rank body", message: "rank \(r) threw: \(error)")
                    if job.firstError == nil { job.firstError = error }
                    job.fail(comm)
                }
                job.condition.broadcast()
                job.condition.unlock()
                done.leave()
            }
            thread.stackSize = 64 << 20   // autograd over deep models recurses
            thread.name = "LocalProcessGroup rank \(r)"
            thread.start()
        }
        done.wait()
        if let error = job.firstError { throw error }
        return try box.results.map { try $0!.get() }
    }

    // MARK: Collectives

    public func allReduce(_ tensor: Tensor, op: CommOp) throws {
        let host = Self.stage(tensor)
        let what = "allReduce of \(tensor.count) \(tensor.dtype)"
        _ = try world.rendezvous(rank: rank, operation: what, contribution: host) { inputs in
            let buffers = inputs.map { $0 as! Tensor }
            let total = Self.reduce(buffers.map { ($0, 0) }, count: host.count, op: op)
            for b in buffers { Self.copy(total, 0, into: b, 0, count: b.count) }
            return Array(repeating: (), count: buffers.count)
        }
        if op == .avg { host.scale(by: 1 / Double(size)) }
        Self.unstage(host, into: tensor)
    }

    public func reduceScatter(_ input: Tensor, into output: Tensor, counts: [Int], op: CommOp) throws {
        checkReduceScatter(input, output, counts: counts)
        let (hostIn, hostOut) = (Self.stage(input), Self.stage(output))
        let what = "reduceScatter of \(input.count) \(input.dtype) in blocks \(counts)"
        _ = try world.rendezvous(rank: rank, operation: what, contribution: (hostIn, hostOut)) { inputs in
            let pairs = inputs.map { $0 as! (Tensor, Tensor) }
            // All blocks are reduced before any is written: an output may alias its rank's input.
            var start = 0
            let blocks = counts.map { c in
                defer { start += c }
                return Self.reduce(pairs.map { ($0.0, start) }, count: c, op: op)
            }
            for (r, pair) in pairs.enumerated() { Self.copy(blocks[r], 0, into: pair.1, 0, count: counts[r]) }
            return Array(repeating: (), count: pairs.count)
        }
        if op == .avg { hostOut.scale(by: 1 / Double(size)) }
        Self.unstage(hostOut, into: output)
    }

    public func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) throws {
        checkAllGather(input, output, counts: counts)
        let (hostIn, hostOut) = (Self.stage(input), Self.stage(output))
        let what = "allGather of \(output.count) \(input.dtype) in blocks \(counts)"
        _ = try world.rendezvous(rank: rank, operation: what, contribution: (hostIn, hostOut)) { inputs in
            let pairs = inputs.map { $0 as! (Tensor, Tensor) }
            // Gather into one buffer first: an input may be its rank's own block of its output.
            let whole = Tensor(empty: [output.count], dtype: hostOut.dtype)
            var start = 0
            for (r, pair) in pairs.enumerated() {
                Self.copy(pair.0, 0, into: whole, start, count: counts[r])
                start += counts[r]
            }
            for pair in pairs { Self.copy(whole, 0, into: pair.1, 0, count: whole.count) }
            return Array(repeating: (), count: pairs.count)
        }
        Self.unstage(hostOut, into: output)
    }

    public func broadcast(_ tensor: Tensor, root: Int) throws {
        precondition(root >= 0 && root < size, "broadcast: root \(root) is not a rank of a group of size \(size)")
        let host = Self.stage(tensor)
        let what = "broadcast of \(tensor.count) \(tensor.dtype) from rank \(root)"
        _ = try world.rendezvous(rank: rank, operation: what, contribution: host) { inputs in
            let buffers = inputs.map { $0 as! Tensor }
            for (r, b) in buffers.enumerated() where r != root { Self.copy(buffers[root], 0, into: b, 0, count: b.count) }
            return Array(repeating: (), count: buffers.count)
        }
        Self.unstage(host, into: tensor)
    }

    /// Waits until `destination` has received it (never buffers: a schedule that would deadlock on
    /// MPI with large messages deadlocks here, and fails after the timeout).
    public func send(_ tensor: Tensor, to destination: Int, tag: Int) throws {
        let copy = noGrad { tensor.device.isCPU ? tensor.cast(to: tensor.dtype) : tensor.to(.cpu) }
        try world.send(rank: rank, to: destination, tag: tag, payload: copy,
                       operation: "send of \(tensor.count) \(tensor.dtype) to rank \(destination) (tag \(tag))")
    }

    public func receive(_ tensor: Tensor, from source: Int, tag: Int) throws {
        let what = "receive of \(tensor.count) \(tensor.dtype) from rank \(source) (tag \(tag))"
        let message = try world.receive(rank: rank, from: source, tag: tag, operation: what)
        guard message.count == tensor.count, message.dtype == tensor.dtype else {
            throw CommError(rank: rank, operation: what, message:
                "rank \(source) sent \(message.count) \(message.dtype) elements (sender and receiver must agree)")
        }
        tensor.copyData(from: message)
    }

    public func barrier() throws {
        _ = try world.rendezvous(rank: rank, operation: "barrier", contribution: ()) { Array(repeating: (), count: $0.count) }
    }

    public func split(color: Int, key: Int) throws -> any ProcessGroup {
        precondition(color >= 0, "split: color \(color) must be >= 0")
        let (world, timeout) = (self.world, self.timeout)
        let mine = try world.rendezvous(rank: rank, operation: "split", contribution: (color, key)) { inputs in
            let wanted = inputs.map { $0 as! (Int, Int) }
            var placed = [Any](repeating: (), count: wanted.count)
            for c in Set(wanted.map(\.0)) {
                let ranks = (0..<wanted.count).filter { wanted[$0].0 == c }
                    .sorted { (wanted[$0].1, $0) < (wanted[$1].1, $1) }
                let part = LocalWorld(job: world.job, members: ranks.map { world.members[$0] }, timeout: timeout)
                for (newRank, old) in ranks.enumerated() { placed[old] = LocalProcessGroup(rank: newRank, world: part) }
            }
            return placed
        }
        return mine as! LocalProcessGroup
    }

    /// A separate world over the same ranks, so its collectives can overlap this group's.
    public func makeCompanion() throws -> (any ProcessGroup)? { try split(color: 0, key: rank) }

    /// Fails every collective of the job, then stops the process (the job is this process).
    public func abort(code: Int32) -> Never {
        world.job.condition.lock()
        world.job.fail(CommError(rank: rank, operation: "abort", message: "rank \(rank) aborted the job with code \(code)"))
        world.job.condition.unlock()
        fatalError("LocalProcessGroup: rank \(rank) aborted the job with code \(code)")
    }

    /// Nothing to release: the threads end with their bodies.
    public func finalize() {}

    // MARK: Host buffers

    /// The host tensor a collective works on: `t` itself when it is a CPU tensor of a 32/64-bit
    /// type, else a CPU copy (fp32 for bf16/fp16).
    static func stage(_ t: Tensor) -> Tensor {
        if t.device.isCPU && !t.dtype.isHalf { return t }
        return noGrad {
            let host = t.device.isCPU ? t : t.to(.cpu)   // a copy for device tensors
            return host.dtype.isHalf ? host.cast(to: .float32) : host
        }
    }

    static func unstage(_ host: Tensor, into t: Tensor) {
        if host !== t { t.copyData(from: host) }
    }

    /// Copies `count` elements (same dtype) between host tensors at element offsets.
    static func copy(_ source: Tensor, _ from: Int, into target: Tensor, _ to: Int, count: Int) {
        precondition(source.dtype == target.dtype, "copy: dtypes \(source.dtype) and \(target.dtype) differ")
        guard count > 0 else { return }
        let size = source.dtype.byteSize
        (target.rawPointer + to * size).copyMemory(from: source.rawPointer + from * size, byteCount: count * size)
    }

    /// Combines `count` elements starting at each (buffer, offset), in rank order, into a new tensor.
    static func reduce(_ sources: [(Tensor, Int)], count: Int, op: CommOp) -> Tensor {
        let dtype = sources[0].0.dtype
        let out = Tensor(empty: [count], dtype: dtype)
        guard count > 0 else { return out }
        func combine<T: Comparable>(_: T.Type, _ add: (T, T) -> T) {
            let o = out.pointer(as: T.self)
            o.update(from: sources[0].0.pointer(as: T.self) + sources[0].1, count: count)
            for (buffer, offset) in sources.dropFirst() {
                let p = buffer.pointer(as: T.self) + offset
                if op == .max {
                    for i in 0..<count { o[i] = max(o[i], p[i]) }
                } else {
                    for i in 0..<count { o[i] = add(o[i], p[i]) }
                }
            }
        }
        switch dtype {
        case .float32: combine(Float.self, +)
        case .float64: combine(Double.self, +)
        case .int32: combine(Int32.self, &+)   // wraps on overflow, as MPI does
        case .int64: combine(Int64.self, &+)
        case .bfloat16, .float16: preconditionFailure("reduce: 16-bit buffers are staged to fp32 first")
        }
        return out
    }
}

/// Per-rank results of `run`, written under the job's lock.
private final class ResultBox<R>: @unchecked Sendable {
    var results: [Result<R, any Error>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
}
