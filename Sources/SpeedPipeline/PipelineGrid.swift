// DeepSpeed's PipelineParallelGrid: this rank's place in a pipe × data (× model) topology and the process
// groups along each axis, every one a `ProcessGroup.split` of the world. Invariant: every rank makes the same
// splits in the same order (axis groups at init, tie groups in sorted key order), so the collective splits match.

import SpeedComm
import SpeedRuntime

/// The process groups one rank of a pipeline job needs.
///
/// - `pipeGroup`: the ranks with this rank's data (and model) coordinate, one per stage; its rank *is* the
///   stage id. Activations and gradients travel over it; the loss is broadcast and the global gradient norm
///   summed over it (DeepSpeed's "model parallel group" for overflow checks).
/// - `dataParallelGroup`: the ranks of this stage with the same model coordinate; ZeRO-1 and the gradient
///   average run over it.
///
/// ```swift
/// let grid = try PipelineGrid(topology: .pipeDataParallel(stages: 2, dataParallel: 2), world: world)
/// grid.stageID, grid.dataParallelID          // (1, 0) on global rank 2
/// ```
public final class PipelineGrid: @unchecked Sendable {
    public let topology: ProcessTopology
    public let world: any ProcessGroup
    public let stageID: Int
    public let dataParallelID: Int
    public let pipeGroup: any ProcessGroup
    public let dataParallelGroup: any ProcessGroup
    /// With tensor parallelism (a "model" axis): this rank's groups, whose `tensor` group holds the shards of the
    /// same stage; nil otherwise.
    public let parallelGroups: ParallelGroups?

    public var stages: Int { topology.dim("pipe") }
    public var dataParallelSize: Int { topology.dim("data") }
    public var isFirstStage: Bool { stageID == 0 }
    public var isLastStage: Bool { stageID == stages - 1 }

    /// Splits `world` along the topology's "pipe" and "data" axes. Collective over `world`.
    public init(topology: ProcessTopology, world: any ProcessGroup) throws {
        guard topology.worldSize == world.size else {
            throw PipelineError.configuration("the pipeline topology \(topology) needs \(topology.worldSize) ranks but the job has \(world.size); the number of ranks must be stages × data-parallel size")
        }
        precondition(topology.axes.contains("pipe") && topology.axes.contains("data"),
                     "PipelineGrid: the topology needs \"pipe\" and \"data\" axes, got \(topology.axes)")
        self.topology = topology
        self.world = world
        let coordinate = topology.coordinate(of: world.rank)
        stageID = coordinate["pipe"]!
        dataParallelID = coordinate["data"]!
        dataParallelGroup = try Self.split(world, topology, along: "data")
        pipeGroup = try Self.split(world, topology, along: "pipe")
        parallelGroups = nil
    }

    /// The grid of a tensor-parallel pipeline: `groups`' pipe × data × model topology and its groups (already split).
    public init(_ groups: ParallelGroups) {
        topology = groups.topology
        world = groups.world
        stageID = groups.pipeRank
        dataParallelID = groups.dataRank
        pipeGroup = groups.pipe
        dataParallelGroup = groups.data
        parallelGroups = groups
    }

    /// The global rank of `stage` in this rank's pipeline.
    public func globalRank(ofStage stage: Int) -> Int {
        var c = topology.coordinate(of: world.rank)
        c["pipe"] = stage
        return topology.rank(c)
    }

    /// The group of `stages` (sorted, this rank's data and model coordinate) that share a tied weight,
    /// or nil when this rank's stage is not among them. Collective over `world`: every rank calls it for
    /// every tie key, in the same order.
    public func tieGroup(stages: Set<Int>) throws -> (any ProcessGroup)? {
        let mine = stages.contains(stageID)
        var c = topology.coordinate(of: world.rank)
        c["pipe"] = 0
        // Ranks outside the tie get colours of their own group, which is dropped.
        let color = topology.rank(c) + (mine ? 0 : topology.worldSize)
        let group = try world.split(color: color, key: stageID)
        return mine ? group : nil
    }

    /// The group along `axis` that holds this rank: colour = the rank with that coordinate zeroed, key = the coordinate.
    static func split(_ world: any ProcessGroup, _ topology: ProcessTopology, along axis: String) throws -> any ProcessGroup {
        var c = topology.coordinate(of: world.rank)
        let key = c[axis]!
        c[axis] = 0
        return try world.split(color: topology.rank(c), key: key)
    }
}
