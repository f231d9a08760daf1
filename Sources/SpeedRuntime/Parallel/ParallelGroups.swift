// This rank's place in a pipe × data × model (tensor) grid and the process group along each axis, all `split`s of
// the world over DeepSpeed's PipeModelDataParallelTopology (axes ["pipe", "data", "model"], tensor innermost).
// Invariant: every rank splits the world the same three times in the same order (model, data, pipe), so the
// collective splits match; tensor-parallel ranks are adjacent (world ranks t·k … t·k + t − 1).

import SpeedComm
import SpeedCore
import SpeedNN

/// The groups a rank of a tensor- (and pipeline-) parallel job needs, from one world.
///
/// - `tensor`: the ranks that hold the shards of the same layers (adjacent ranks, as within a node); every
///   layer's all-reduces run over it, and every rank of it trains on the same batch.
/// - `data`: the ranks holding the same shard of the same stage; gradients are averaged and ZeRO partitions over it.
/// - `pipe`: the ranks holding the stages of one pipeline (one rank without pipeline parallelism).
///
/// ```swift
/// let groups = try ParallelGroups(world: world, tensorParallel: 2)      // 4 ranks: TP 2 × DP 2
/// groups.tensorRank, groups.dataRank                                   // (1, 0) on world rank 1
/// try model.shardForTensorParallel(groups.tensorParallel)
/// ```
public struct ParallelGroups: Sendable {
    /// Axes ["pipe", "data", "model"] (DeepSpeed's `PipeModelDataParallelTopology`).
    public let topology: ProcessTopology
    public let world: any ProcessGroup
    public let tensor: any ProcessGroup
    public let data: any ProcessGroup
    public let pipe: any ProcessGroup
    /// The tensor-parallel communicator the sharded layers use (over `tensor`, counting its traffic).
    public let tensorParallel: TensorParallelGroup
    /// This rank's coordinates: its shard, its data-parallel rank and its pipeline stage.
    public let tensorRank: Int, dataRank: Int, pipeRank: Int

    public var tensorParallelSize: Int { topology.dim("model") }
    public var dataParallelSize: Int { topology.dim("data") }
    public var pipelineStages: Int { topology.dim("pipe") }

    /// Splits `world` into tensor-parallel groups of `tensorParallel` adjacent ranks, `pipelineStages` stages and
    /// the data-parallel rest. Collective over `world`.
    /// - Throws: ``InitializeError`` when tensorParallel × pipelineStages does not divide the world.
    public init(world: any ProcessGroup, tensorParallel: Int, pipelineStages: Int = 1) throws {
        precondition(tensorParallel >= 1 && pipelineStages >= 1,
                     "ParallelGroups: tensorParallel \(tensorParallel) and pipelineStages \(pipelineStages) must be >= 1")
        let mp = tensorParallel * pipelineStages
        guard world.size % mp == 0 else {
            throw InitializeError("\(world.size) ranks do not split into tensor-parallel groups of \(tensorParallel)"
                + (pipelineStages > 1 ? " × \(pipelineStages) pipeline stages" : "")
                + "; launch a multiple of \(mp) processes or change tensor_parallel.autotp_size")
        }
        let topology = ProcessTopology.pipeModelDataParallel(stages: pipelineStages, model: tensorParallel,
                                                             dataParallel: world.size / mp)
        self.topology = topology
        self.world = world
        let c = topology.coordinate(of: world.rank)
        (tensorRank, dataRank, pipeRank) = (c["model"]!, c["data"]!, c["pipe"]!)
        tensor = try Self.split(world, topology, along: "model")
        data = try Self.split(world, topology, along: "data")
        pipe = try Self.split(world, topology, along: "pipe")
        self.tensorParallel = TensorParallelGroup(tensor)
    }

    /// The group along `axis` that holds this rank: colour = the rank with that coordinate zeroed, key = the coordinate.
    static func split(_ world: any ProcessGroup, _ topology: ProcessTopology, along axis: String) throws -> any ProcessGroup {
        var c = topology.coordinate(of: world.rank)
        let key = c[axis]!
        c[axis] = 0
        return try world.split(color: topology.rank(c), key: key)
    }

    /// Broadcasts every parameter and buffer of `module` from the tensor group's rank 0, so the ranks that will
    /// hold its shards start from one set of whole weights. Collective over `tensor`.
    public func broadcastOverTensorGroup(_ module: Module) throws {
        guard tensor.size > 1 else { return }
        for p in module.parameters() + module.buffers() { try tensor.broadcast(p, root: 0) }
    }
}
