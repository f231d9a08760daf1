// The engine's view of tensor parallelism — the group its module is sharded over and each sharded parameter's cut —
// and what checkpoints need of it: a barrier over data × tensor parallel ranks, and a saved model cut for this rank.
// Invariant: everything here is derived from the module (its sharded layers hold their communicator and layout), so
// whoever shards the model before `initialize` sets nothing on the engine; `group` is the data-parallel group.

import Foundation
import SpeedComm
import SpeedCore
import SpeedIO
import SpeedNN

/// A tensor-parallel engine's group and layouts (see ``Engine/tensorParallel``).
package struct EngineTensorParallel {
    /// The tensor-parallel group the module's sharded layers exchange over.
    package let comm: any TensorParallelCommunicator
    /// Each sharded parameter's cut, by `namedParameters()` name (others are replicated).
    package let layouts: [String: TensorParallelLayout]
    package var rank: Int { comm.rank }
    package var size: Int { comm.size }
}

extension Engine {
    /// The tensor-parallel group and layouts when the module was sharded (``Module/applyTensorParallel(_:plan:)``)
    /// over more than one rank; nil otherwise. Checkpoints use it to write `mp_rank_XX` files and reshard on load.
    package var tensorParallel: EngineTensorParallel? {
        guard let comm = module.tensorParallelCommunicator(), comm.size > 1 else { return nil }
        return EngineTensorParallel(comm: comm, layouts: module.tensorParallelLayouts())
    }

    /// Returns once every rank of the data-parallel group and of the tensor-parallel group — every rank of the
    /// job — has called it (the data-parallel barrier, then the tensor-parallel one).
    func barrierAcrossTensorParallel() throws {
        try group.barrier()
        guard let tp = tensorParallel else { return }
        if let g = tp.comm as? TensorParallelGroup { return try g.group.barrier() }
        tp.comm.allReduce(Tensor.zeros([1]), .sum)   // any collective of the whole group is a barrier
    }

    /// `whole` (a parameter of the unsharded model) cut as this rank holds parameter `name`.
    /// - Throws: ``CheckpointError`` when it does not split at this tensor-parallel size.
    func tensorParallelCut(_ whole: Tensor, name: String) throws -> Tensor {
        guard let tp = tensorParallel, let layout = tp.layouts[name] else { return whole }
        do { return try layout.shard(whole, rank: tp.rank, parts: tp.size, name: name) } catch {
            throw CheckpointError("checkpoint parameter \(name) (whole shape \(whole.shape)) cannot be cut for tensor-parallel rank \(tp.rank) of \(tp.size): \(error)")
        }
    }

    /// The checkpoint's model states for this rank: every parameter joined from the ranks that saved it and cut as this
    /// rank holds it (names the model lacks pass through whole, for the caller's mismatch report).
    func reshardedModelStates(_ ckpt: TensorParallelCheckpoint, verify: Bool) throws -> (weights: [String: Tensor], checksummed: Bool) {
        var (weights, checksummed) = try ckpt.modelStates(verify: verify)
        for name in flat.names { if let whole = weights[name] { weights[name] = try tensorParallelCut(whole, name: name) } }
        return (weights, checksummed)
    }

    /// This rank's `partition` (`[partition.count]` fp32 each) of the fp32 master weights and optimizer buffers
    /// `names`, rebuilt from a checkpoint saved at another tensor-parallel size: whole per parameter, cut for this
    /// rank, laid out in this engine's flat buffer (padding zero).
    func reshardedOptimizerPartition(_ ckpt: TensorParallelCheckpoint, verify: Bool)
        throws -> (tensors: [String: Tensor], stateNames: [String], meta: OptimStateMeta, checksummed: Bool)
    {
        let probe = try ZeroCheckpoint.Shards(folder: ckpt.folder, mpRank: 0, verify: verify)
        let names = [ZeroCheckpoint.masterName] + probe.stateNames
        let (state, stateNames, meta, checksummed) = try ckpt.flatState(names, verify: verify)
        var out: [String: Tensor] = [:]
        for buffer in names {
            let full = Tensor.zeros([flat.paddedCount])                                     // [paddedCount] fp32
            for (i, name) in flat.names.enumerated() {
                guard let whole = state[buffer]![name] else {
                    throw CheckpointError("checkpoint \(ckpt.folder.path) has no optimizer state for \(name)")
                }
                let mine = try tensorParallelCut(whole, name: name)
                let range = flat.range(of: i)
                guard mine.count == range.count else {
                    throw CheckpointError("checkpoint \(ckpt.folder.path): \(name)'s optimizer state is \(mine.shape) for this rank, the model's shard \(flat.params[i].shape)")
                }
                noGrad { full.slice(axis: 0, range).copyData(from: mine.reshape([range.count])) }
            }
            out[buffer] = noGrad { full.slice(axis: 0, partition).copy() }
        }
        return (out, stateNames, meta, checksummed)
    }
}
