// Llama's (and so Mistral's and Qwen2's) AutoTP rules: q/k/v column-parallel in whole heads with grouped-query
// attention (each rank the whole query heads of its key/value groups), o_proj row-parallel, gate/up column-parallel,
// down row-parallel, q/k/v biases (Qwen2) split with their heads, embed_tokens and the LM head (tied or not)
// vocab-parallel, the labels' loss by the vocab-parallel cross-entropy; RMSNorms stay whole.
// Invariant: every size is checked before any weight changes, so a refused model is left whole; query head h uses
// key/value head h / (H / Hkv), so cutting both contiguously into tp equal runs gives rank r the kv heads its query
// heads read (H/tp query heads, Hkv/tp kv heads, the same group ratio as unsharded).

import SpeedCore
import SpeedNN

extension LlamaModel: TensorParallelShardable {
    /// Shards every decoder layer and `embed_tokens` over `comm` (num_key_value_heads — hence num_attention_heads —
    /// and intermediate_size must divide by `comm.size`; the vocabulary may split unevenly).
    ///
    /// ```swift
    /// let model = try LlamaModel.fromPretrained(dir)   // 32 query heads, 8 key/value heads
    /// try model.shardForTensorParallel(comm)           // on 4 ranks: 8 query and 2 key/value heads each
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try shardForTensorParallel(comm, prefix: "")
    }

    /// Refuses sizes that do not split, naming the first layer they concern (nothing is changed).
    func checkTensorParallel(_ tp: Int, prefix: String) throws {
        let c = config, layer = "\(prefix)layers.0"
        guard c.kvHeads % tp == 0 else {
            throw TensorParallelError("\(layer).self_attn.k_proj: \(c.kvHeads) key/value heads do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides num_key_value_heads (\(c.kvHeads))")
        }
        guard c.numAttentionHeads % tp == 0 else {
            throw TensorParallelError("\(layer).self_attn.q_proj: \(c.numAttentionHeads) attention heads do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides num_attention_heads")
        }
        guard c.intermediateSize % tp == 0 else {
            throw TensorParallelError("\(layer).mlp.gate_proj: \(c.intermediateSize) intermediate features do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides intermediate_size")
        }
        guard c.vocabSize >= tp else {
            throw TensorParallelError("\(prefix)embed_tokens: \(c.vocabSize) vocabulary rows do not split into \(tp) tensor-parallel shards; choose a smaller autotp_size")
        }
    }

    func shardForTensorParallel(_ comm: any TensorParallelCommunicator, prefix: String) throws {
        guard comm.size > 1 else { return }
        let tp = comm.size
        try checkTensorParallel(tp, prefix: prefix)
        for (i, layer) in layers.enumerated() {
            let name = "\(prefix)layers.\(i)", attn = layer.selfAttn, d = attn.headDim
            try attn.qProj.shard(.column, comm, unit: d, name: "\(name).self_attn.q_proj")
            try attn.kProj.shard(.column, comm, unit: d, name: "\(name).self_attn.k_proj")
            try attn.vProj.shard(.column, comm, unit: d, name: "\(name).self_attn.v_proj")
            try attn.oProj.shard(.row, comm, unit: d, name: "\(name).self_attn.o_proj")
            attn.heads = config.numAttentionHeads / tp
            attn.kvHeads = config.kvHeads / tp
            try layer.mlp.gateProj.shard(.column, comm, name: "\(name).mlp.gate_proj")
            try layer.mlp.upProj.shard(.column, comm, name: "\(name).mlp.up_proj")
            try layer.mlp.downProj.shard(.row, comm, name: "\(name).mlp.down_proj")
        }
        try embedTokens.shardVocabulary(comm, name: "\(prefix)embed_tokens")
    }
}

extension LlamaForCausalLM: TensorParallelShardable {
    /// Shards the decoder (``LlamaModel/shardForTensorParallel(_:)``) and the LM head: an untied `lm_head` is split
    /// over the vocabulary like `embed_tokens` (column-parallel, uneven when the vocabulary does not divide), a tied
    /// one reads the embedding's shard. Each rank computes its vocabulary shard of the logits, the `labels` loss is
    /// the vocab-parallel cross-entropy (never gathering the logits) and the `logits` output is gathered whole.
    ///
    /// ```swift
    /// let model = try LlamaForCausalLM.fromPretrained(dir)
    /// try model.shardForTensorParallel(comm)
    /// let loss = model(["input_ids": ids, "labels": ids]).loss!   // equal on every rank, equal to one process's
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        guard comm.size > 1 else { return }
        try model.checkTensorParallel(comm.size, prefix: "model.")
        try model.shardForTensorParallel(comm, prefix: "model.")
        try lmHead?.shard(.column, comm, uneven: true, name: "lm_head")
    }

    /// This rank's vocabulary shard of the logits (`[B, T, V_r]`), the vocabulary ids it holds and the group; nil
    /// unsharded.
    func vocabParallelLogits(_ hidden: Tensor) -> (Tensor, Range<Int>, any TensorParallelCommunicator)? {
        if let head = lmHead {
            guard let tp = head.tensorParallel else { return nil }
            return (head(hidden), TensorParallelSplit.ranges(config.vocabSize, parts: tp.comm.size)[tp.comm.rank], tp.comm)
        }
        guard let (range, comm) = model.embedTokens.vocabularyShard else { return nil }
        return (Tensor.matmul(hidden.copyToTensorParallelRegion(comm), model.embedTokens.weight, transposeB: true), range, comm)
    }
}
