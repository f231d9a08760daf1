// Megatron's vocab-parallel cross-entropy: each rank holds the logits of its vocabulary shard and the full logits are
// never gathered. Invariant: only per-row scalars cross the group (the shard's log-sum-exp max and sum, the target's
// logit), three all-reduces of [rows] each; backward needs no communication at all.

import SpeedCore

extension Tensor {
    /// Mean cross-entropy of vocabulary-sharded logits: this tensor is `[..., V_r]`, the columns
    /// `vocabRange` of the whole `[..., V]` logits, and `targets` (`[...]`, ids in `0..<V` or `ignoreIndex`) are
    /// the same on every rank. Equals `wholeLogits.crossEntropy(targets:ignoreIndex:)` on every rank.
    ///
    /// ```swift
    /// let local = Tensor.matmul(h.copyToTensorParallelRegion(comm), wteShard, transposeB: true)   // [B, T, V/tp]
    /// let loss = local.vocabParallelCrossEntropy(targets: y, vocabRange: 4096..<8192, comm: comm)
    /// ```
    public func vocabParallelCrossEntropy(targets: Tensor, vocabRange: Range<Int>, comm: any TensorParallelCommunicator,
                                          ignoreIndex: Int = -100) -> Tensor {
        let v = shape.last ?? 1
        precondition(vocabRange.count == v, "vocabParallelCrossEntropy: logits have \(v) columns but vocabRange \(vocabRange) holds \(vocabRange.count)")
        precondition(Array(shape.dropLast()) == targets.shape,
                     "vocabParallelCrossEntropy: logits \(shape) need targets of shape \(Array(shape.dropLast())), got \(targets.shape)")
        precondition(!targets.dtype.isFloatingPoint, "vocabParallelCrossEntropy: targets must be int32 or int64, got \(targets.dtype)")
        let rows = count / Swift.max(v, 1)
        let logits = reshape([rows, v])                                   // [N, V_r]
        let global = targets.scalars(as: Int.self)                         // [N], the same on every rank
        let notHere = -1                                                  // never a local column
        let local = global.map { vocabRange.contains($0) ? Int32($0 - vocabRange.lowerBound) : Int32(notHere) }
        let localTargets = Tensor(local, shape: [rows], device: device)
        let stats = statsDType
        let isLocal = Tensor(global.map { vocabRange.contains($0) ? 1.0 : 0.0 }, shape: [rows], dtype: stats, device: device)
        let counted = global.filter { $0 != ignoreIndex }.count
        let isCounted = Tensor(global.map { $0 == ignoreIndex ? 0.0 : 1.0 }, shape: [rows], dtype: stats, device: device)
        let lse = noGrad { () -> Tensor in                                  // [N], the whole vocabulary's
            let losses = new([rows], dtype: stats), shardLSE = new([rows], dtype: stats)
            backend.crossEntropy(logits, targets: localTargets, ignoreIndex: notHere, into: losses, lse: shardLSE)
            let targetLogit = (shardLSE - losses) * isLocal               // the target's logit on its owner, else 0
            comm.allReduce(targetLogit, .sum)
            let top = shardLSE.copy()
            comm.allReduce(top, .max)
            let sum = (shardLSE - top).exp()
            comm.allReduce(sum, .sum)
            let whole = top + sum.log()
            return Tensor.concat([whole, targetLogit], axis: 0)
        }
        let (wholeLSE, targetLogit) = (lse.slice(axis: 0, 0..<rows), lse.slice(axis: 0, rows..<(2 * rows)))
        let denominator = Double(Swift.max(1, counted))
        let out = noGrad { ((wholeLSE - targetLogit) * isCounted).sum() / denominator }.cast(to: dtype)
        let infinity = Tensor.full([rows], .infinity, dtype: stats, device: device)
        return Tensor.record("vocab_parallel_cross_entropy", out, inputs: [logits]) { g, _ in
            let perRow = g.cast(to: stats).expand(to: [rows]) * isCounted / denominator      // [N]
            // softmax over the whole vocabulary, restricted to this shard's columns, times the row's weight …
            let softmax = (logits.cast(to: stats) - wholeLSE.reshape([rows, 1])).exp() * perRow.reshape([rows, 1])
            // … minus the weight at the target's column where this shard owns it (the kernel with an infinite
            // log-sum-exp contributes exactly that one-hot term).
            let oneHot = g.new([rows, v], dtype: logits.dtype)
            g.backend.crossEntropyBackward(logits, targets: localTargets, lse: infinity, gradLoss: perRow,
                                           ignoreIndex: notHere, into: oneHot)
            let gx = softmax.cast(to: logits.dtype) + oneHot
            return [gx]
        }
    }
}
