// BERT's (and RoBERTa's, and on its own names DistilBERT's) AutoTP rules: per layer `attention.self.{query,key,value}` column-parallel (whole heads per rank),
// `attention.output.dense` row-parallel, `intermediate.dense` column-parallel, `output.dense` row-parallel; the
// embeddings, every LayerNorm, the pooler and the task heads (classifier, MLM head) stay whole (replicated).
// Invariant: every size is checked before any weight changes, so a refused model is left whole; a row-parallel
// layer's output is summed over the group before its residual LayerNorm, so everything outside attention and the
// MLP's inner width holds equal values on every rank.

import SpeedCore
import SpeedNN

extension BertModel: TensorParallelShardable {
    /// Shards every encoder layer over `comm` (num_attention_heads and intermediate_size must divide by `comm.size`).
    ///
    /// ```swift
    /// let model = try BertModel.fromPretrained(dir)
    /// try model.shardForTensorParallel(comm)   // 12 heads on 2 ranks: 6 heads each
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try shardForTensorParallel(comm, prefix: "")
    }

    func shardForTensorParallel(_ comm: any TensorParallelCommunicator, prefix: String) throws {
        guard comm.size > 1 else { return }
        let tp = comm.size
        guard config.numAttentionHeads % tp == 0 else {
            throw TensorParallelError("\(prefix)encoder.layer.0.attention.self.query: \(config.numAttentionHeads) attention heads do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides num_attention_heads")
        }
        guard config.intermediateSize % tp == 0 else {
            throw TensorParallelError("\(prefix)encoder.layer.0.intermediate.dense: \(config.intermediateSize) intermediate features do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides intermediate_size")
        }
        for (i, layer) in encoder.layer.enumerated() {
            let name = "\(prefix)encoder.layer.\(i)", attn = layer.attention.selfAttention
            try attn.query.shard(.column, comm, unit: attn.headDim, name: "\(name).attention.self.query")
            try attn.key.shard(.column, comm, unit: attn.headDim, name: "\(name).attention.self.key")
            try attn.value.shard(.column, comm, unit: attn.headDim, name: "\(name).attention.self.value")
            attn.heads = config.numAttentionHeads / tp
            try layer.attention.output.dense.shard(.row, comm, unit: attn.headDim, name: "\(name).attention.output.dense")
            try layer.intermediate.dense.shard(.column, comm, name: "\(name).intermediate.dense")
            try layer.output.dense.shard(.row, comm, name: "\(name).output.dense")
        }
    }
}

extension BertForSequenceClassification: TensorParallelShardable {
    /// Shards the encoder (``BertModel/shardForTensorParallel(_:)``); the pooler and classifier stay whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try bert.shardForTensorParallel(comm, prefix: "bert.")
    }
}

extension BertForMaskedLM: TensorParallelShardable {
    /// Shards the encoder (``BertModel/shardForTensorParallel(_:)``); the word embeddings and the tied MLM head stay
    /// whole, so the logits and the loss are computed whole on every rank.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try bert.shardForTensorParallel(comm, prefix: "bert.")
    }
}

extension RobertaForSequenceClassification: TensorParallelShardable {
    /// Shards the encoder as BERT's; the classification head stays whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try roberta.shardForTensorParallel(comm, prefix: "roberta.")
    }
}

extension RobertaForMaskedLM: TensorParallelShardable {
    /// Shards the encoder as BERT's; the word embeddings and the tied MLM head stay whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try roberta.shardForTensorParallel(comm, prefix: "roberta.")
    }
}

extension DistilBertModel: TensorParallelShardable {
    /// BERT's rules on DistilBERT's names: `q_lin`, `k_lin`, `v_lin` and `lin1` column-parallel, `out_lin` and `lin2`
    /// row-parallel (n_heads and hidden_dim must divide by `comm.size`); embeddings and LayerNorms stay whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try shardForTensorParallel(comm, prefix: "")
    }

    func shardForTensorParallel(_ comm: any TensorParallelCommunicator, prefix: String) throws {
        guard comm.size > 1 else { return }
        let tp = comm.size
        guard config.nHeads % tp == 0 else {
            throw TensorParallelError("\(prefix)transformer.layer.0.attention.q_lin: \(config.nHeads) attention heads do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides n_heads")
        }
        guard config.hiddenDim % tp == 0 else {
            throw TensorParallelError("\(prefix)transformer.layer.0.ffn.lin1: \(config.hiddenDim) hidden features do not split into \(tp) tensor-parallel shards; choose an autotp_size that divides hidden_dim")
        }
        for (i, layer) in transformer.layer.enumerated() {
            let name = "\(prefix)transformer.layer.\(i)", attn = layer.attention
            try attn.qLin.shard(.column, comm, unit: attn.headDim, name: "\(name).attention.q_lin")
            try attn.kLin.shard(.column, comm, unit: attn.headDim, name: "\(name).attention.k_lin")
            try attn.vLin.shard(.column, comm, unit: attn.headDim, name: "\(name).attention.v_lin")
            attn.heads = config.nHeads / tp
            try attn.outLin.shard(.row, comm, unit: attn.headDim, name: "\(name).attention.out_lin")
            try layer.ffn.lin1.shard(.column, comm, name: "\(name).ffn.lin1")
            try layer.ffn.lin2.shard(.row, comm, name: "\(name).ffn.lin2")
        }
    }
}

extension DistilBertForSequenceClassification: TensorParallelShardable {
    /// Shards the encoder (``DistilBertModel/shardForTensorParallel(_:)``); the classifier stays whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try distilbert.shardForTensorParallel(comm, prefix: "distilbert.")
    }
}

extension DistilBertForMaskedLM: TensorParallelShardable {
    /// Shards the encoder; the word embeddings and the tied MLM head stay whole.
    ///
    /// ```swift
    /// try model.shardForTensorParallel(comm)
    /// ```
    public func shardForTensorParallel(_ comm: any TensorParallelCommunicator) throws {
        try distilbert.shardForTensorParallel(comm, prefix: "distilbert.")
    }
}
