// The built-in GPT's tensor-parallel rules (Megatron's layout): fused QKV and the MLP's first layer column-parallel,
// whole heads per rank; both output projections row-parallel; the tied embedding and LM head vocab-parallel.
// Invariant: the q, k and v blocks of `qkv` are split separately, so rank r's output is [q_r | k_r | v_r] and the
// attention's reshape to [B, T, 3, H/tp, D] still finds each head's q, k and v; layer norms and positions stay whole.

import SpeedCore

extension GPT: TensorParallelShardable {
    /// Shards every block and the tied embedding over `comm` (heads and 4·C must divide by `comm.size`; the
    /// vocabulary may split unevenly).
    ///
    /// ```swift
    /// let model = GPT(.gptMini, rng: &rng)
    /// try model.shardForTensorParallel(comm)   // 4 heads on 2 ranks: 2 heads each
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        guard comm.size > 1 else { return }
        guard config.heads % comm.size == 0 else {
            throw TensorParallelError("GPT: \(config.heads) attention heads do not split into \(comm.size) tensor-parallel shards; choose an autotp_size that divides the head count")
        }
        for (i, block) in blocks.enumerated() { try block.shardForTensorParallel(comm, name: "blocks.\(i)") }
        try wte.shardVocabulary(comm, name: "wte")
    }
}

extension Block: TensorParallelShardable {
    /// Shards this block alone (a pipeline stage's blocks): whole heads per rank in the fused QKV, the MLP's 4·C
    /// split, both output projections row-parallel; the layer norms stay whole.
    ///
    /// ```swift
    /// try block.shardForTensorParallel(comm, name: "layers.2")
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator, name: String) throws {
        guard comm.size > 1 else { return }
        let heads = attn.heads, c = attn.headDim * attn.heads
        guard heads % comm.size == 0 else {
            throw TensorParallelError("\(name): \(heads) attention heads do not split into \(comm.size) tensor-parallel shards; choose an autotp_size that divides the head count")
        }
        try attn.qkv.shard(.column, comm, blocks: [c, c, c], unit: attn.headDim, name: "\(name).attn.qkv")
        try attn.proj.shard(.row, comm, unit: attn.headDim, name: "\(name).attn.proj")
        attn.heads = heads / comm.size
        try mlp.fc.shard(.column, comm, name: "\(name).mlp.fc")
        try mlp.proj.shard(.row, comm, name: "\(name).mlp.proj")
    }

    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try shardForTensorParallel(comm, name: "Block")
    }
}
