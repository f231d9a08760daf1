// GPT-2's AutoTP rules (DeepSpeed's for `c_attn`, `c_proj`, `c_fc`): the fused q/k/v Conv1D column-parallel with
// whole heads per rank, `attn.c_proj` and `mlp.c_proj` row-parallel, `mlp.c_fc` column-parallel, the tied `wte`/LM head
// vocab-parallel (the labels' loss by the vocab-parallel cross-entropy); positions and layer norms stay whole.
// Invariant: every size is checked before any weight changes, so a refused model is left whole; the q, k and v
// blocks of `c_attn` are split separately, so rank r's output is [q_r | k_r | v_r] and the attention's reshape to
// [B, T, 3, H/tp, D] still finds each of its heads' q, k and v.

import SpeedCore
import SpeedNN

extension GPT2Model: TensorParallelShardable {
    /// Shards every block and `wte` over `comm` (n_head and the MLP width must divide by `comm.size`; the vocabulary
    /// may split unevenly).
    ///
    /// ```swift
    /// let model = try GPT2Model.fromPretrained(dir)
    /// try model.shardForTensorParallel(comm)   // 12 heads on 4 ranks: 3 heads each
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try shardForTensorParallel(comm, prefix: "")
    }

    func shardForTensorParallel(_ comm: any TensorParallelCommunicator, prefix: String) throws {
        guard comm.size > 1 else { return }
        let tp = comm.size, c = config.nEmbd, inner = config.nInner ?? 4 * config.nEmbd
        guard config.nHead % tp == 0 else {
            throw TensorParallelError("\(prefix)h.0.attn.c_attn: \(config.nHead) attention heads do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides n_head")
        }
        guard inner % tp == 0 else {
            throw TensorParallelError("\(prefix)h.0.mlp.c_fc: \(inner) MLP features do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides n_inner")
        }
        guard config.vocabSize >= tp else {
            throw TensorParallelError("\(prefix)wte: \(config.vocabSize) vocabulary rows do not split into \(tp) tensor-parallel shards; choose a smaller autotp_size")
        }
        for (i, block) in h.enumerated() {
            let name = "\(prefix)h.\(i)", attn = block.attn
            try attn.cAttn.shard(.column, comm, blocks: [c, c, c], unit: attn.headDim, name: "\(name).attn.c_attn")
            try attn.cProj.shard(.row, comm, unit: attn.headDim, name: "\(name).attn.c_proj")
            attn.heads = config.nHead / tp
            try block.mlp.cFc.shard(.column, comm, name: "\(name).mlp.c_fc")
            try block.mlp.cProj.shard(.row, comm, name: "\(name).mlp.c_proj")
        }
        try wte.shardVocabulary(comm, name: "\(prefix)wte")
    }
}

extension GPT2LMHeadModel: TensorParallelShardable {
    /// Shards the transformer (``GPT2Model/shardForTensorParallel(_:)``); the tied LM head follows `wte`: each rank
    /// computes its vocabulary shard of the logits, the `labels` loss is the vocab-parallel cross-entropy (the logits
    /// are never gathered for it), and the `logits` output is gathered whole.
    ///
    /// ```swift
    /// let model = try GPT2LMHeadModel.fromPretrained(dir)
    /// try model.shardForTensorParallel(comm)
    /// let loss = model(["input_ids": ids, "labels": ids]).loss!   // equal on every rank, equal to one process's
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try transformer.shardForTensorParallel(comm, prefix: "transformer.")
    }
}
