// The GPU process group: NCCL collectives on device buffers, bootstrapped by an MPI broadcast of rank 0's unique id.
// Invariant: every NCCL call is issued on the CUDA backend's stream (the legacy default stream), so collectives are
// ordered with the kernels that produce and consume their buffers and the host never waits for them (device-to-device
// sends and receives too); host tensors go through the MPI group it was built from.

import CSpeedCUDA
import SpeedComm
import SpeedCommMPI
import SpeedCore
import SpeedCUDA

/// NCCL over the ranks of an ``MPIProcessGroup``, for tensors on `device` (one GPU per rank).
///
/// ```swift
/// let mpi = try MPIProcessGroup()
/// let gpu = try Device.cuda(localRank)
/// let group = try NCCLProcessGroup(mpi: mpi, device: gpu)
/// try group.allReduce(grads, op: .avg)      // grads on gpu
/// ```
public final class NCCLProcessGroup: ProcessGroup, @unchecked Sendable {
    public let mpi: MPIProcessGroup
    public let device: Device
    let backend: CUDABackend
    let nccl: NCCLLibrary
    let libraries: CUDALibraries
    let comm: SSNCCLcomm

    public var rank: Int { mpi.rank }
    public var size: Int { mpi.size }
    public var timeout: Double { mpi.timeout }

    /// Creates the NCCL communicator (collective over `mpi`'s ranks). Throws when NCCL is missing or the device
    /// is not a GPU; callers fall back to `mpi` (host staging) then.
    public init(mpi: MPIProcessGroup, device: Device, libraries: CUDALibraries = .shared) throws {
        guard let backend = device.backend as? CUDABackend else {
            throw CommError(rank: mpi.rank, operation: "NCCL init", message: "NCCL needs a CUDA device, got \(device)")
        }
        let nccl = try libraries.nccl.get()
        var id = SSNCCLUniqueId()
        if mpi.rank == 0 { try Self.check(nccl, nccl.api.ncclGetUniqueId!(&id), "ncclGetUniqueId", rank: 0) }
        // The 128-byte id travels as 32 int32s over MPI.
        let idTensor = Tensor.zeros([32], dtype: .int32)
        withUnsafeBytes(of: &id) { idTensor.rawPointer.copyMemory(from: $0.baseAddress!, byteCount: 128) }
        try mpi.broadcast(idTensor, root: 0)
        withUnsafeMutableBytes(of: &id) { $0.baseAddress!.copyMemory(from: idTensor.rawPointer, byteCount: 128) }
        try backend.context.makeCurrent()
        var comm: SSNCCLcomm?
        try Self.check(nccl, nccl.api.ncclCommInitRank!(&comm, Int32(mpi.size), id, Int32(mpi.rank)), "ncclCommInitRank", rank: mpi.rank)
        self.mpi = mpi
        self.libraries = libraries
        self.device = device
        self.backend = backend
        self.nccl = nccl
        self.comm = comm!
    }

    deinit { _ = nccl.api.ncclCommDestroy!(comm) }

    static func check(_ nccl: NCCLLibrary, _ result: SSNCCLresult, _ call: String, rank: Int) throws {
        guard result == SS_NCCL_SUCCESS else {
            let text = nccl.api.ncclGetErrorString!(result).map { String(cString: $0) } ?? "NCCL error"
            throw CommError(rank: rank, operation: call, message: "\(text) (ncclResult \(result))")
        }
    }

    private func check(_ result: SSNCCLresult, _ call: @autoclosure () -> String) throws {
        try Self.check(nccl, result, call(), rank: rank)
    }

    private func onDevice(_ tensors: Tensor...) -> Bool { tensors.allSatisfy { $0.device == device } }

    private func address(_ t: Tensor) -> UnsafeMutableRawPointer? {
        precondition((t.offset + t.count) * t.dtype.byteSize <= t.storage.byteCount,
                     "NCCL: this \(t.shape) tensor's data is not resident (a released ZeRO-3 parameter)")
        return t.storage.pointer + t.offset * t.dtype.byteSize
    }

    static func type(_ d: DType) -> Int32 {
        switch d {
        case .float32: Int32(SS_NCCL_FLOAT32)
        case .float64: Int32(SS_NCCL_FLOAT64)
        case .bfloat16: Int32(SS_NCCL_BFLOAT16)
        case .float16: Int32(SS_NCCL_FLOAT16)
        case .int32: Int32(SS_NCCL_INT32)
        case .int64: Int32(SS_NCCL_INT64)
        }
    }

    static func op(_ op: CommOp) -> Int32 {
        switch op {
        case .sum: Int32(SS_NCCL_SUM)
        case .avg: Int32(SS_NCCL_AVG)
        case .max: Int32(SS_NCCL_MAX)
        }
    }

    // MARK: Collectives

    public func allReduce(_ tensor: Tensor, op: CommOp) throws {
        guard onDevice(tensor) else { return try mpi.allReduce(tensor, op: op) }
        guard tensor.count > 0 else { return }
        try backend.context.makeCurrent()
        try check(nccl.api.ncclAllReduce!(address(tensor), address(tensor), tensor.count, Self.type(tensor.dtype), Self.op(op), comm, nil),
                  "ncclAllReduce of \(tensor.count) \(tensor.dtype)")
    }

    public func reduceScatter(_ input: Tensor, into output: Tensor, counts: [Int], op: CommOp) throws {
        guard onDevice(input, output) else { return try mpi.reduceScatter(input, into: output, counts: counts, op: op) }
        checkReduceScatter(input, output, counts: counts)
        try backend.context.makeCurrent()
        let block = counts.max() ?? 0
        guard block > 0 else { return }
        if counts.allSatisfy({ $0 == block }) && input.storage !== output.storage {
            return try check(nccl.api.ncclReduceScatter!(address(input), address(output), block, Self.type(input.dtype), Self.op(op), comm, nil),
                             "ncclReduceScatter of \(input.count) \(input.dtype)")
        }
        // Uneven blocks (ZeRO's buckets across partition boundaries): pad each to the largest, reduce-scatter,
        // copy this rank's part out.
        let padded = Tensor.zeros([size * block], dtype: input.dtype, device: device)
        var start = 0
        for (r, c) in counts.enumerated() {
            if c > 0 { padded.slice(axis: 0, (r * block)..<(r * block + c)).copyData(from: input.slice(axis: 0, start..<(start + c))) }
            start += c
        }
        let mine = Tensor(empty: [block], dtype: input.dtype, device: device)
        try check(nccl.api.ncclReduceScatter!(address(padded), address(mine), block, Self.type(input.dtype), Self.op(op), comm, nil),
                  "ncclReduceScatter of \(padded.count) \(input.dtype)")
        if counts[rank] > 0 { output.copyData(from: mine.slice(axis: 0, 0..<counts[rank])) }
    }

    public func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) throws {
        guard onDevice(input, output) else { return try mpi.allGather(input, into: output, counts: counts) }
        checkAllGather(input, output, counts: counts)
        try backend.context.makeCurrent()
        let block = counts.max() ?? 0
        guard block > 0 else { return }
        if counts.allSatisfy({ $0 == block }) {
            // NCCL gathers in place when input is this rank's block of output.
            return try check(nccl.api.ncclAllGather!(address(input), address(output), block, Self.type(input.dtype), comm, nil),
                             "ncclAllGather of \(output.count) \(input.dtype)")
        }
        let mine = Tensor.zeros([block], dtype: input.dtype, device: device)
        if counts[rank] > 0 { mine.slice(axis: 0, 0..<counts[rank]).copyData(from: input) }
        let padded = Tensor(empty: [size * block], dtype: input.dtype, device: device)
        try check(nccl.api.ncclAllGather!(address(mine), address(padded), block, Self.type(input.dtype), comm, nil),
                  "ncclAllGather of \(padded.count) \(input.dtype)")
        var start = 0
        for (r, c) in counts.enumerated() {
            if c > 0 { output.slice(axis: 0, start..<(start + c)).copyData(from: padded.slice(axis: 0, (r * block)..<(r * block + c))) }
            start += c
        }
    }

    public func broadcast(_ tensor: Tensor, root: Int) throws {
        guard onDevice(tensor) else { return try mpi.broadcast(tensor, root: root) }
        precondition(root >= 0 && root < size, "broadcast: root \(root) is not a rank of a group of size \(size)")
        guard tensor.count > 0 else { return }
        try backend.context.makeCurrent()
        try check(nccl.api.ncclBroadcast!(address(tensor), address(tensor), tensor.count, Self.type(tensor.dtype), Int32(root), comm, nil),
                  "ncclBroadcast of \(tensor.count) \(tensor.dtype) from rank \(root)")
    }

    /// Device tensors go GPU to GPU with `ncclSend`, queued on the stream (the host does not wait); host tensors
    /// through MPI. NCCL has no tags: messages between two ranks arrive in the order they were sent, which is
    /// what the pipeline's schedule relies on (activations flow one way, gradients the other).
    public func send(_ tensor: Tensor, to destination: Int, tag: Int) throws {
        guard onDevice(tensor) else { return try mpi.send(tensor, to: destination, tag: tag) }
        precondition(destination >= 0 && destination < size && destination != rank,
                     "send: destination \(destination) is not another rank of a group of size \(size) (this is rank \(rank))")
        guard tensor.count > 0 else { return }
        try backend.context.makeCurrent()
        try check(nccl.api.ncclSend!(address(tensor), tensor.count, Self.type(tensor.dtype), Int32(destination), comm, nil),
                  "ncclSend of \(tensor.count) \(tensor.dtype) to rank \(destination)")
    }

    public func receive(_ tensor: Tensor, from source: Int, tag: Int) throws {
        guard onDevice(tensor) else { return try mpi.receive(tensor, from: source, tag: tag) }
        precondition(source >= 0 && source < size && source != rank,
                     "receive: source \(source) is not another rank of a group of size \(size) (this is rank \(rank))")
        guard tensor.count > 0 else { return }
        try backend.context.makeCurrent()
        try check(nccl.api.ncclRecv!(address(tensor), tensor.count, Self.type(tensor.dtype), Int32(source), comm, nil),
                  "ncclRecv of \(tensor.count) \(tensor.dtype) from rank \(source)")
    }

    /// Waits for this rank's queued GPU work, then for every rank.
    public func barrier() throws {
        backend.synchronize()
        try mpi.barrier()
    }

    /// No second NCCL communicator yet: ZeRO-3 prefetching runs inline.
    public func makeCompanion() throws -> (any ProcessGroup)? { nil }

    /// Splits the MPI group, then builds an NCCL communicator over each part (collective).
    public func split(color: Int, key: Int) throws -> any ProcessGroup {
        let part = try mpi.split(color: color, key: key) as! MPIProcessGroup
        return try NCCLProcessGroup(mpi: part, device: device, libraries: libraries)
    }

    /// Ends the whole job through MPI.
    public func abort(code: Int32) -> Never { mpi.abort(code: code) }

    /// Waits for queued GPU work, then finalizes the MPI group it was built from.
    public func finalize() {
        backend.synchronize()
        mpi.finalize()
    }
}
