// The MPI backend: OpenMPI collectives on CPU tensors through the CSpeedMPI wrappers.
// Invariant: 16-bit float reductions are staged through fp32 (MPI has no bf16/fp16 sum), so every
// rank sees the same rounded result; data-movement collectives move the raw bytes.

import CSpeedMPI
import SpeedComm
import SpeedCore

/// A process group over `MPI_COMM_WORLD`, a duplicate of it (``makeCompanion()``) or a split of it.
///
/// ```swift
/// let world = try MPIProcessGroup(timeout: 600)   // under mpirun / swiftspeed launch
/// let rows = try world.split(color: world.rank / 2, key: world.rank)
/// ```
public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int
    public let timeout: Double
    /// The shim's communicator handle (0 = MPI_COMM_WORLD).
    let comm: Int32
    /// Whether MPI granted MPI_THREAD_MULTIPLE (needed for a companion group on another thread).
    public let threadMultiple: Bool

    /// Initialises MPI (once per process) and joins the world communicator.
    public init(timeout: Double = 1800) throws {
        var r: Int32 = 0, s: Int32 = 0, multiple: Int32 = 0
        let rc = ss_mpi_init(&r, &s, &multiple)
        guard rc == 0 else {
            throw CommError(rank: -1, operation: "MPI initialisation", message: Self.message(rc))
        }
        rank = Int(r)
        size = Int(s)
        self.timeout = timeout
        comm = 0
        threadMultiple = multiple != 0
    }

    private init(rank: Int, size: Int, timeout: Double, comm: Int32, threadMultiple: Bool) {
        self.rank = rank; self.size = size; self.timeout = timeout; self.comm = comm; self.threadMultiple = threadMultiple
    }

    /// A companion's communicator is freed with it (every rank drops its engine in the same order).
    deinit { if comm != 0 { _ = ss_mpi_comm_free(comm) } }

    /// A duplicate communicator over the same ranks (collective: every rank must call it), whose
    /// collectives may run on a second thread; nil when MPI did not grant MPI_THREAD_MULTIPLE.
    public func makeCompanion() throws -> (any ProcessGroup)? {
        guard threadMultiple else { return nil }
        var handle: Int32 = 0
        try run("communicator duplicate") { ss_mpi_comm_dup(comm, &handle) }
        return MPIProcessGroup(rank: rank, size: size, timeout: timeout, comm: handle, threadMultiple: true)
    }

    /// `MPI_Comm_split` of this group's communicator (collective over this group's ranks).
    public func split(color: Int, key: Int) throws -> any ProcessGroup {
        precondition(color >= 0, "split: color \(color) must be >= 0")
        var handle: Int32 = 0, r: Int32 = 0, s: Int32 = 0
        try run("split (color \(color), key \(key))") { ss_mpi_comm_split(comm, Int32(color), Int32(key), &handle, &r, &s) }
        return MPIProcessGroup(rank: Int(r), size: Int(s), timeout: timeout, comm: handle, threadMultiple: threadMultiple)
    }

    /// Ends the whole job (every rank of `MPI_COMM_WORLD`) with `code`, e.g. after a timeout.
    public func abort(code: Int32) -> Never {
        ss_mpi_abort(code)
        fatalError("MPI_Abort returned")
    }

    /// `MPI_Finalize` for the world group; a split or companion group is released when it is dropped.
    public func finalize() { if comm == 0 { _ = ss_mpi_finalize() } }

    /// OpenMPI's own blocking `MPI_Allreduce` (sum, in place): the anchor for `bench collectives`.
    public func referenceAllReduce(_ tensor: Tensor) throws {
        try checkCPU(tensor, "MPI_Allreduce")
        try run("MPI_Allreduce of \(tensor.count) \(tensor.dtype)") {
            ss_mpi_allreduce_blocking(comm, tensor.rawPointer, tensor.count, Self.type(tensor.dtype), Int32(SS_MPI_SUM))
        }
    }

    // MARK: Collectives

    public func allReduce(_ tensor: Tensor, op: CommOp) throws {
        if !tensor.device.isCPU { return try viaHost([tensor], writes: [true]) { try allReduce($0[0], op: op) } }
        if tensor.dtype.isHalf {
            let staged = noGrad { tensor.cast(to: .float32) }
            try allReduce(staged, op: op)
            tensor.copyData(from: staged)
            return
        }
        try run("allReduce of \(tensor.count) \(tensor.dtype)") {
            ss_mpi_allreduce(comm, nil, tensor.rawPointer, tensor.count, Self.type(tensor.dtype), Self.mpiOp(op), timeout)
        }
        if op == .avg { tensor.scale(by: 1 / Double(size)) }
    }

    public func reduceScatter(_ input: Tensor, into output: Tensor, counts: [Int], op: CommOp) throws {
        if !input.device.isCPU || !output.device.isCPU {
            return try viaHost([input, output], writes: [false, true]) { try reduceScatter($0[0], into: $0[1], counts: counts, op: op) }
        }
        checkReduceScatter(input, output, counts: counts)
        if input.dtype.isHalf {
            let i32 = noGrad { input.cast(to: .float32) }, o32 = Tensor(empty: output.shape, dtype: .float32)
            try reduceScatter(i32, into: o32, counts: counts, op: op)
            output.copyData(from: o32)
            return
        }
        // MPI forbids aliasing send and receive buffers; stage this rank's result when they overlap.
        let aliased = input.storage === output.storage
        let target = aliased ? Tensor(empty: output.shape, dtype: output.dtype) : output
        try run("reduceScatter of \(input.count) \(input.dtype)") {
            counts.withUnsafeBufferPointer { c in
                ss_mpi_reduce_scatter(comm, input.rawPointer, target.rawPointer, c.baseAddress, Self.type(input.dtype),
                                      Self.mpiOp(op), timeout)
            }
        }
        if aliased { output.copyData(from: target) }
        if op == .avg { output.scale(by: 1 / Double(size)) }
    }

    public func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) throws {
        if !input.device.isCPU || !output.device.isCPU {
            return try viaHost([input, output], writes: [false, true]) { try allGather($0[0], into: $0[1], counts: counts) }
        }
        checkAllGather(input, output, counts: counts)
        // `input` may be this rank's own block of `output` (ZeRO's gather of updated weights): MPI then
        // needs MPI_IN_PLACE instead of an aliasing send buffer.
        let inPlace = input.storage === output.storage && input.offset == output.offset + counts[..<rank].reduce(0, +)
        try run("allGather of \(output.count) \(input.dtype)") {
            counts.withUnsafeBufferPointer { c in
                ss_mpi_allgatherv(comm, inPlace ? nil : input.rawPointer, output.rawPointer, c.baseAddress,
                                  Self.type(input.dtype), timeout)
            }
        }
    }

    public func broadcast(_ tensor: Tensor, root: Int) throws {
        if !tensor.device.isCPU { return try viaHost([tensor], writes: [true]) { try broadcast($0[0], root: root) } }
        precondition(root >= 0 && root < size, "broadcast: root \(root) is not a rank of a group of size \(size)")
        try run("broadcast of \(tensor.count) \(tensor.dtype) from rank \(root)") {
            ss_mpi_bcast(comm, tensor.rawPointer, tensor.count, Self.type(tensor.dtype), Int32(root), timeout)
        }
    }

    public func send(_ tensor: Tensor, to destination: Int, tag: Int) throws {
        if !tensor.device.isCPU { return try viaHost([tensor], writes: [false]) { try send($0[0], to: destination, tag: tag) } }
        try run("send of \(tensor.count) \(tensor.dtype) to rank \(destination)") {
            ss_mpi_send(comm, tensor.rawPointer, tensor.count, Self.type(tensor.dtype), Int32(destination), Int32(tag), timeout)
        }
    }

    public func receive(_ tensor: Tensor, from source: Int, tag: Int) throws {
        if !tensor.device.isCPU { return try viaHost([tensor], writes: [true]) { try receive($0[0], from: source, tag: tag) } }
        try run("receive of \(tensor.count) \(tensor.dtype) from rank \(source)") {
            ss_mpi_recv(comm, tensor.rawPointer, tensor.count, Self.type(tensor.dtype), Int32(source), Int32(tag), timeout)
        }
    }

    public func barrier() throws {
        try run("barrier") { ss_mpi_barrier(comm, timeout) }
    }

    // MARK: Helpers

    private func run(_ operation: String, _ body: () -> Int32) throws {
        let rc = body()
        guard rc == 0 else {
            var extra = ""
            if rc == Int32(SS_MPI_TIMEOUT) {
                var buffer = [CChar](repeating: 0, count: 512)
                ss_mpi_timeout_detail(&buffer, Int32(buffer.count))
                let detail = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                extra = " after \(timeout) s" + (detail.isEmpty ? " (a rank died or called a different collective)" : ": \(detail)")
                    + "; the job ends (set the wait with --comm-timeout, SWIFTSPEED_COMM_TIMEOUT or comm_timeout)"
            }
            throw CommError(rank: rank, operation: operation, message: Self.message(rc) + extra)
        }
    }

    /// The fallback for device tensors (GPU buffers without NCCL): copy to host memory, run the CPU collective,
    /// copy the results back.
    private func viaHost(_ tensors: [Tensor], writes: [Bool], _ body: ([Tensor]) throws -> Void) throws {
        let host = noGrad { tensors.map { $0.device.isCPU ? $0 : $0.to(.cpu) } }
        try body(host)
        for (i, t) in tensors.enumerated() where writes[i] && !t.device.isCPU { t.copyData(from: host[i]) }
    }

    private func checkCPU(_ t: Tensor, _ op: String) throws {
        guard t.device.isCPU else {
            throw CommError(rank: rank, operation: op, message: "the MPI backend needs CPU tensors; this one is on \(t.device)")
        }
    }

    static func message(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        ss_mpi_error_string(code, &buffer, Int32(buffer.count))
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func type(_ d: DType) -> Int32 {
        switch d {
        case .float32: Int32(SS_MPI_FLOAT)
        case .float64: Int32(SS_MPI_DOUBLE)
        case .int32: Int32(SS_MPI_INT32)
        case .int64: Int32(SS_MPI_INT64)
        case .bfloat16, .float16: Int32(SS_MPI_UINT16)
        }
    }

    static func mpiOp(_ op: CommOp) -> Int32 {
        op == .max ? Int32(SS_MPI_MAX) : Int32(SS_MPI_SUM)
    }
}
