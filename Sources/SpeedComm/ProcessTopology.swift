// DeepSpeed's ProcessTopology: named axes over the ranks, row-major with the last axis fastest.
// Invariant: rank = Σ coord[i] · Π dims[i+1...], so with axes ["pipe", "data"] rank = stage · dp + data, and a
// tensor-parallel "model" axis added last stays innermost (its ranks adjacent, on one node).

/// A Cartesian grid of ranks with named axes (`deepspeed/runtime/pipe/topology.py`).
///
/// ```swift
/// let topo = ProcessTopology.pipeDataParallel(stages: 2, dataParallel: 3)   // axes ["pipe", "data"]
/// topo.rank(["pipe": 1, "data": 2])          // 5 = 1 · 3 + 2
/// topo.coordinate(of: 4)                     // ["pipe": 1, "data": 1]
/// topo.axisCommLists("pipe")                 // [[0, 3], [1, 4], [2, 5]]
/// ```
public struct ProcessTopology: Sendable, Hashable, CustomStringConvertible {
    public let axes: [String]
    public let dims: [Int]

    public init(axes: [String], dims: [Int]) {
        precondition(axes.count == dims.count && !axes.isEmpty && Set(axes).count == axes.count && dims.allSatisfy { $0 >= 1 },
                     "ProcessTopology: axes \(axes) must be distinct and match dims \(dims) (each >= 1)")
        self.axes = axes
        self.dims = dims
    }

    /// DeepSpeed's `PipeDataParallelTopology(num_pp, num_dp)`: axes ["pipe", "data"], data innermost,
    /// so gradient all-reduces stay on fast intra-node links and the lighter activation traffic crosses nodes.
    public static func pipeDataParallel(stages: Int, dataParallel: Int) -> ProcessTopology {
        ProcessTopology(axes: ["pipe", "data"], dims: [stages, dataParallel])
    }

    /// DeepSpeed's `PipeModelDataParallelTopology(num_pp, num_mp, num_dp)`: axes ["pipe", "data", "model"],
    /// tensor ("model") parallelism innermost.
    public static func pipeModelDataParallel(stages: Int, model: Int, dataParallel: Int) -> ProcessTopology {
        ProcessTopology(axes: ["pipe", "data", "model"], dims: [stages, dataParallel, model])
    }

    public var worldSize: Int { dims.reduce(1, *) }

    /// The length of `axis`, 0 when the topology has no such axis (as DeepSpeed's `get_dim`).
    public func dim(_ axis: String) -> Int { axes.firstIndex(of: axis).map { dims[$0] } ?? 0 }

    /// The rank at `coordinate` (every axis named).
    public func rank(_ coordinate: [String: Int]) -> Int {
        precondition(Set(coordinate.keys) == Set(axes), "ProcessTopology.rank: give every axis of \(axes), got \(coordinate.keys.sorted())")
        var r = 0
        for (axis, d) in zip(axes, dims) {
            let c = coordinate[axis]!
            precondition(c >= 0 && c < d, "ProcessTopology.rank: \(axis) = \(c) is outside 0..<\(d)")
            r = r * d + c
        }
        return r
    }

    /// The coordinate of `rank` along every axis.
    public func coordinate(of rank: Int) -> [String: Int] {
        precondition(rank >= 0 && rank < worldSize, "ProcessTopology.coordinate: rank \(rank) is outside 0..<\(worldSize)")
        var out: [String: Int] = [:], rest = rank
        for (axis, d) in zip(axes, dims).reversed() {
            out[axis] = rest % d
            rest /= d
        }
        return out
    }

    /// Lists of ranks that agree on every axis but `axis`, each ordered along `axis`: the members of
    /// each communicator along that axis (empty when there is no such axis).
    public func axisCommLists(_ axis: String) -> [[Int]] {
        guard axes.contains(axis) else { return [] }
        var lists: [Int: [Int]] = [:]
        for r in 0..<worldSize {
            var c = coordinate(of: r)
            c[axis] = 0
            lists[rank(c), default: []].append(r)
        }
        return lists.keys.sorted().map { lists[$0]! }
    }

    /// Ranks whose coordinates match every given axis value, in rank order.
    public func filterMatch(_ criteria: [String: Int]) -> [Int] {
        (0..<worldSize).filter { r in
            let c = coordinate(of: r)
            return criteria.allSatisfy { c[$0.key] == $0.value }
        }
    }

    /// DeepSpeed's `get_rank_repr`: `model_01` for the axes not omitted, `""` when all are.
    public func rankRepr(_ rank: Int, omitting omit: Set<String> = ["data", "pipe"]) -> String {
        let c = coordinate(of: rank)
        return axes.filter { !omit.contains($0) }.map { axis in
            let v = c[axis]!
            return "\(axis)_\(v < 10 ? "0" : "")\(v)"
        }.joined(separator: "-")
    }

    public var description: String { "ProcessTopology(" + zip(axes, dims).map { "\($0)=\($1)" }.joined(separator: ", ") + ")" }
}
