// Llama's cached forward for generation: rotary positions continue from the cache, K/V are cached per KV head.
// Invariant: the cache holds un-repeated, rotated K/V heads, so a cached step attends exactly as a full forward does.

import SpeedCore
import SpeedNN

extension LlamaAttention {
    /// `x [B, t, C]` at the positions `rotary` was built for (the cache's next `t`).
    func forward(_ x: Tensor, rotary: Rotary, layer: Int, cache: KVCache) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let p = cache.length
        let q = rotary.apply(qProj(x).reshape([b, t, heads, headDim]).permute([0, 2, 1, 3]))
        let (k, v) = cache.append(layer: layer, rotary.apply(kProj(x).reshape([b, t, kvHeads, headDim]).permute([0, 2, 1, 3])),
                                  vProj(x).reshape([b, t, kvHeads, headDim]).permute([0, 2, 1, 3]))
        var blocked: Tensor?
        if t > 1 {
            let mask = (0..<(t * (p + t))).map { n -> Float in n % (p + t) > p + n / (p + t) ? 1 : 0 }
            blocked = Tensor(mask, shape: [1, 1, t, p + t], device: x.device)
        }
        let y = AttentionMask.attend(q, repeatKV(k), repeatKV(v), blocked: blocked, scale: 1 / Double(headDim).squareRoot(),
                                     dropout: nil)
        return oProj(AttentionMask.merge(y))
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
