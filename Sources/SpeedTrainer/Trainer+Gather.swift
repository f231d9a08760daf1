// Sharded evaluation's gather: every rank's per-batch results (loss, logits, labels) are all-gathered and put back in
// batch order, so metrics over W ranks are computed on the same rows in the same order as in one process.
// Invariant: batch b was evaluated by data-parallel rank b mod W (all its tensor-parallel ranks) as its (b / W)-th batch; each rank sends a header of three numbers
// per batch (loss or NaN, prediction count, label count; columns, or -1 when no predictions were kept) before the values.

import SpeedComm
import SpeedCore

/// One evaluation batch's results on the rank that ran it.
struct EvalBatchResult: Equatable {
    /// The batch's mean loss, nil when the model returned none.
    var loss: Double?
    /// Row-major logits `[rows, columns]` (or values `[rows]`, columns 0).
    var predictions: [Double] = []
    /// Logit columns (0 for one value per row); nil when this batch kept no predictions.
    var columns: Int?
    var labels: [Double] = []
}

extension Trainer {
    /// All ranks' results, in batch order (collective: every rank calls it with its own batches).
    func gatherInBatchOrder(_ mine: [EvalBatchResult], batchCount: Int) throws -> [EvalBatchResult] {
        var header: [Double] = []
        var values: [Double] = []
        for r in mine {
            header += [r.loss ?? .nan, Double(r.columns ?? -1), Double(r.predictions.count), Double(r.labels.count)]
            values += r.predictions + r.labels
        }
        let headers = try allGatherVariable(header), streams = try allGatherVariable(values)
        // Data-parallel rank d's results are read from its first tensor-parallel rank, d · tp.
        let world = dataParallelSize, tp = tensorParallelSize
        var offsets = Array(repeating: 0, count: group.size)   // into each rank's value stream
        var out: [EvalBatchResult] = []
        out.reserveCapacity(batchCount)
        for b in 0..<batchCount {
            let owner = (b % world) * tp, i = b / world
            let h = headers[owner]
            precondition(h.count >= (i + 1) * 4, "gatherInBatchOrder: rank \(owner) sent \(h.count / 4) batch results, batch \(b) needs \(i + 1)")
            let loss = h[i * 4], columns = Int(h[i * 4 + 1]), np = Int(h[i * 4 + 2]), nl = Int(h[i * 4 + 3])
            let stream = streams[owner], o = offsets[owner]
            out.append(EvalBatchResult(loss: loss.isNaN ? nil : loss, predictions: Array(stream[o..<(o + np)]),
                                       columns: columns < 0 ? nil : columns,
                                       labels: Array(stream[(o + np)..<(o + np + nl)])))
            offsets[owner] = o + np + nl
        }
        return out
    }

    /// Every rank's `values` (any length, rank order), as float64 over the Trainer's group.
    func allGatherVariable(_ values: [Double]) throws -> [[Double]] {
        let world = group.size
        let count = Tensor([Double(values.count)], shape: [1], dtype: .float64)
        let counts = Tensor(empty: [world], dtype: .float64)
        try group.allGather(count, into: counts)
        let sizes = counts.scalars(as: Double.self).map { Int($0) }
        // One slot more per rank, so no rank sends an empty block.
        let padded = sizes.map { $0 + 1 }
        let input = Tensor(values + [0], shape: [values.count + 1], dtype: .float64)
        let output = Tensor(empty: [padded.reduce(0, +)], dtype: .float64)
        try group.allGather(input, into: output, counts: padded)
        let all = output.scalars(as: Double.self)
        var start = 0
        return padded.map { n in
            defer { start += n }
            return Array(all[start..<(start + n - 1)])
        }
    }
}
