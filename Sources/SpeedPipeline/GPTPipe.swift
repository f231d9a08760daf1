// SpeedNN's GPT as a pipeline module, built from GPT's own pieces (Embedding, Block, LayerNorm) without changing GPT.
// Invariant: each spec draws its weights from the counter of the seed's stream at which GPT(config, rng:) draws
// them (wte, wpe, embed dropout, block 0…L−1, ln_f), so a pipeline built on any number of stages holds exactly the
// weights of `GPT(config, rng: &RandomStream(seed: seed))`, and each stage builds only its own layers.

import SpeedCore
import SpeedNN

/// `x + wpe(0..<T)`, then GPT's embedding dropout: the position half of GPT's input embedding.
public final class GPTPositions: Module {
    public let wpe: Embedding         // [T, C]
    public let embedDropout: Dropout

    public init(_ config: GPTConfig, dtype: DType = .float32, device: Device = .cpu, rng: inout RandomStream) {
        wpe = Embedding(config.contextLength, config.embedDim, std: 0.02, dtype: dtype, device: device, rng: &rng)
        embedDropout = Dropout(config.dropout, rng: &rng)
        super.init()
    }

    /// `x [B, T, C]` (token embeddings) → `[B, T, C]`.
    public override func forward(_ x: Tensor) -> Tensor {
        let positions = Tensor((0..<x.shape[1]).map { $0 }, device: x.device)
        return embedDropout(x + wpe(positions))
    }
}

/// GPT-2 (SpeedNN's ``GPT``) as `L + 4` pipeline layers:
///
/// | layer | spec | holds |
/// |---|---|---|
/// | 0 | `TiedLayerSpec("embed")` | `wte` — token lookup `ids [B, T] → [B, T, C]` |
/// | 1 | `LayerSpec("GPTPositions")` | `wpe`, embedding dropout |
/// | 2 … L+1 | `LayerSpec("Block")` | transformer block i |
/// | L+2 | `LayerSpec("LayerNorm")` | `ln_f` |
/// | L+3 | `TiedLayerSpec("embed")` | the same `wte`, as the LM head `x · wteᵀ → [B, T, V]` |
///
/// ```swift
/// let module = try GPTPipe.module(.gptMini, seed: 1337, numStages: 2)
/// // same weights as: var rng = RandomStream(seed: 1337); GPT(.gptMini, rng: &rng)
/// ```
public enum GPTPipe {
    /// The tie key of the embedding and the LM head.
    public static let tieKey = "embed"

    /// GPT's next-token cross-entropy: `logits [B, T, V]`, `targets [B, T]`.
    public static let loss: @Sendable (Tensor, Tensor) -> Tensor = { logits, targets in logits.crossEntropy(targets: targets) }

    /// The layer specs of `config`'s GPT with weights from `seed`.
    public static func layers(_ config: GPTConfig, seed: UInt64, dtype: DType = .float32, device: Device = .cpu) -> [PipelineLayer] {
        let (v, t, c) = (config.vocabSize, config.contextLength, config.embedDim)
        // The counters GPT's initialiser reaches: wte [V, C], wpe [T, C], one split for the embed dropout,
        // then per block qkv 3C·C + proj C·C + fc 4C·C + proj 4C·C and one split for its dropout.
        let blockDraws = 12 * c * c + 1
        let firstBlock = v * c + t * c + 1
        let embed = TiedLayerSpec(key: tieKey, "Embedding", parameters: v * c, flops: 0, modelPrefix: "wte.") {
            var rng = RandomStream(seed: seed, offset: 0)
            return Embedding(v, c, std: 0.02, dtype: dtype, device: device, rng: &rng)
        }
        let head = TiedLayerSpec(key: tieKey, "Embedding", parameters: v * c, flops: 2 * v * c, forward: { m, x in
            let e = m as! Embedding
            guard let (_, comm) = e.vocabularyShard else { return Tensor.matmul(x, e.weight, transposeB: true) }   // [B, T, V]
            // Tensor-parallel: this rank's vocabulary columns, gathered whole for the loss.
            let local = Tensor.matmul(x.copyToTensorParallelRegion(comm), e.weight, transposeB: true)        // [B, T, V/tp]
            let sizes = TensorParallelSplit.ranges(e.wholeRows, parts: comm.size).map(\.count)
            return local.gatherFromTensorParallelRegion(comm, sizes: sizes)                                  // [B, T, V]
        }) {
            var rng = RandomStream(seed: seed, offset: 0)
            return Embedding(v, c, std: 0.02, dtype: dtype, device: device, rng: &rng)
        }
        var out: [PipelineLayer] = [.tied(embed)]
        out.append(.layer(LayerSpec("GPTPositions", parameters: t * c, flops: c, modelPrefix: "") {
            var rng = RandomStream(seed: seed, offset: UInt64(v * c))
            return GPTPositions(config, dtype: dtype, device: device, rng: &rng)
        }))
        for i in 0..<config.layers {
            // Per token: the four matmuls (2 · 12C²) and attention's scores and values over the context (4 · T · C).
            out.append(.layer(LayerSpec("Block", parameters: 12 * c * c + 13 * c, flops: 24 * c * c + 4 * t * c,
                                        modelPrefix: "blocks.\(i).") {
                var rng = RandomStream(seed: seed, offset: UInt64(firstBlock + i * blockDraws))
                return Block(config, dtype: dtype, device: device, rng: &rng)
            }))
        }
        out.append(.layer(LayerSpec("LayerNorm", parameters: 2 * c, modelPrefix: "lnF.") {
            LayerNorm(c, eps: config.layerNormEps, dtype: dtype, device: device)
        }))
        out.append(.tied(head))
        return out
    }

    /// ``layers(_:seed:dtype:device:)`` as a ``PipelineModule`` with GPT's loss.
    public static func module(_ config: GPTConfig, seed: UInt64, numStages: Int, partitionMethod: String = "parameters",
                              activationCheckpointInterval: Int = 0, dtype: DType = .float32,
                              device: Device = .cpu) throws -> PipelineModule {
        try PipelineModule(layers: layers(config, seed: seed, dtype: dtype, device: device), numStages: numStages,
                           lossFunction: loss, partitionMethod: partitionMethod,
                           activationCheckpointInterval: activationCheckpointInterval)
    }

    /// The name in SpeedNN's ``GPT`` `stateDict()` of parameter `name` of pipeline layer `layer`; nil for the
    /// LM head (it is `wte.weight`, saved with layer 0).
    ///
    /// ```swift
    /// GPTPipe.gptName(layer: 3, parameter: "attn.qkv.weight", config: .gptMini)   // "blocks.1.attn.qkv.weight"
    /// ```
    public static func gptName(layer: Int, parameter name: String, config: GPTConfig) -> String? {
        switch layer {
        case 0: "wte.\(name)"
        case 1: name
        case 2..<(config.layers + 2): "blocks.\(layer - 2).\(name)"
        case config.layers + 2: "lnF.\(name)"
        default: nil
        }
    }
}
