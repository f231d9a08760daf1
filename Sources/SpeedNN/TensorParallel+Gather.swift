// The unsharded model's state dict from a tensor-parallel sharded one: every sharded parameter all-gathered over its
// group and joined by its layout (for a Hugging Face save of a sharded model).
// Invariant: collective — every rank of the group gathers the same parameters in the same (name) order; each rank's
// shard shape follows from the layout alone (equal blocks, or the vocabulary's uneven ranges), so no sizes are exchanged.

import SpeedCore

extension Module {
    /// ``stateDict()`` with every tensor-parallel sharded parameter gathered whole (the unsharded model's names, shapes
    /// and values) on every rank; just ``stateDict()`` for an unsharded module. Collective: every rank of the
    /// tensor-parallel group must call it.
    ///
    /// ```swift
    /// try model.applyTensorParallel(comm)
    /// let whole = model.tensorParallelGatheredStateDict()   // == the unsharded model's stateDict()
    /// ```
    public func tensorParallelGatheredStateDict() -> StateDict {
        var out = stateDict()
        guard let comm = tensorParallelCommunicator(), comm.size > 1 else { return out }
        for (name, layout) in tensorParallelLayouts().sorted(by: { $0.key < $1.key }) {
            guard let mine = out[name] else { continue }
            let total = layout.blocks.reduce(0, +)
            let rows = layout.uneven ? TensorParallelSplit.ranges(total, parts: comm.size).map(\.count)
                                     : Array(repeating: total / comm.size, count: comm.size)
            precondition(rows[comm.rank] == mine.shape[layout.axis],
                         "tensorParallelGatheredStateDict: \(name) is \(mine.shape) on rank \(comm.rank), its layout says \(rows[comm.rank]) along axis \(layout.axis)")
            let shapes = rows.map { n -> [Int] in
                var s = mine.shape
                s[layout.axis] = n
                return s
            }
            let counts = shapes.map { $0.reduce(1, *) }
            let flat = Tensor(empty: [counts.reduce(0, +)], dtype: mine.dtype, device: mine.device)   // [Σ counts]
            noGrad { comm.allGather(mine.reshape([mine.count]), into: flat, counts: counts) }
            var start = 0
            let shards = zip(shapes, counts).map { shape, n -> Tensor in
                defer { start += n }
                return flat.view(shape, offset: start)
            }
            out[name] = layout.merge(shards)
        }
        return out
    }
}
