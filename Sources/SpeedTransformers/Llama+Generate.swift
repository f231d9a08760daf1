// Llama's cached forward for generation: rotary positions continue from the cache, K/V are cached per KV head.
// Invariant: the cache holds rotated, un-repeated K/V token-major (`[B, T, Hkv, D]`), and the fused attention puts the
// chunk's queries at the cache's last positions (causal, sliding window), so a cached step attends exactly as a full
// forward does.

import SpeedCore
import SpeedNN

extension LlamaAttention {
    /// `x [B, t, C]` at the positions `rotary` was built for (the cache's next `t`).
    func forward(_ x: Tensor, rotary: Rotary, layer: Int, cache: KVCache) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let (q, kNew, vNew) = projections(x, rotary: rotary)
        let (k, v) = cache.append(layer: layer, kNew, vNew, axis: 1)   // [B, p + t, Hkv, D]
        let y = Tensor.attention(q, k, v, mask: AttentionMask(causal: true, window: window), tokenMajor: true)
        return oProj(y.reshape([b, t, heads * headDim]))
    }
}

extension LlamaForCausalLM: CausalLanguageModel {
    public var layerCount: Int { config.numHiddenLayers }
    public var maxPositions: Int { config.maxPositionEmbeddings }

    public func logits(_ ids: Tensor, cache: KVCache) -> Tensor {
        noGrad {
            let (b, t) = (ids.shape[0], ids.shape[1])
            let positions = (0..<(b * t)).map { cache.length + $0 % t }
            var x = model.embedTokens(ids)
            let rotary = Rotary(config, positions: positions, batch: b, tokens: t, dtype: x.dtype, device: ids.device)
            for (i, layer) in model.layers.enumerated() {
                let h = x + layer.selfAttn.forward(layer.inputLayernorm(x), rotary: rotary, layer: i, cache: cache)
                x = h + layer.mlp(layer.postAttentionLayernorm(h))
            }
            cache.advance(by: t)
            let hidden = model.norm(x)
            return lmHead.map { $0(hidden) } ?? Tensor.matmul(hidden, model.embedTokens.weight, transposeB: true)
        }
    }
}
