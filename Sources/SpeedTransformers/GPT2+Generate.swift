// Text generation for GPT-2 with a key/value cache, and the sampling rules (temperature, top-k, top-p) HF's
// generate uses. Invariant: a cached step attends to exactly the keys a full forward would, so greedy decoding
// with the cache gives the tokens of re-running the whole sequence each step.

import Foundation
import SpeedCore
import SpeedNN

/// Past keys and values of every layer (`[B, H, T, D]` each), grown by one chunk per call.
public final class KVCache {
    var keys: [Tensor?]
    var values: [Tensor?]
    /// Positions already in the cache.
    public private(set) var length = 0

    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
    }

    /// Appends this chunk's `k`, `v` for `layer` along the token axis (2 for `[B, H, T, D]`, 1 for token-major
    /// `[B, T, H, D]`); returns the whole keys and values.
    func append(layer: Int, _ k: Tensor, _ v: Tensor, axis: Int = 2) -> (Tensor, Tensor) {
        let all = (keys[layer].map { Tensor.concat([$0, k], axis: axis) } ?? k,
                   values[layer].map { Tensor.concat([$0, v], axis: axis) } ?? v)
        keys[layer] = all.0
        values[layer] = all.1
        return all
    }

    func advance(by t: Int) { length += t }
}

extension GPT2Attention {
    /// `x [B, t, C]`: the next `t` positions after the cache's, attending to the cache and causally within the chunk.
    func forward(_ x: Tensor, layer: Int, cache: KVCache) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let c = heads * headDim, p = cache.length   // this rank's heads (all of them unsharded)
        let parts = cAttn(x).split([c, c, c], axis: 2)
        let q = HFAttention.heads(parts[0], heads)
        let (k, v) = cache.append(layer: layer, HFAttention.heads(parts[1], heads), HFAttention.heads(parts[2], heads))
        // Query i (position p + i) may not see keys after it: only within the chunk.
        var blocked: Tensor?
        if t > 1 {
            let mask = (0..<(t * (p + t))).map { n -> Float in n % (p + t) > p + n / (p + t) ? 1 : 0 }
            blocked = Tensor(mask, shape: [1, 1, t, p + t], device: x.device)
        }
        let y = HFAttention.merge(HFAttention.attend(q, k, v, blocked: blocked, scale: scale,
                                                         dropout: nil))
        precondition(y.shape == [b, t, c], "GPT2Attention: cached attention gave \(y.shape)")
        return cProj(y)
    }
}

extension GPT2LMHeadModel {
    /// Logits `[B, t, V]` of the next `t` tokens `ids [B, t]` after those already in `cache` (which grows by `t`).
    ///
    /// ```swift
    /// let cache = KVCache(layers: model.config.nLayer)
    /// var logits = model.logits(prompt, cache: cache)          // the whole prompt once
    /// logits = model.logits(nextToken, cache: cache)           // then one position per token
    /// ```
    public func logits(_ ids: Tensor, cache: KVCache) -> Tensor {
        noGrad {
            let (b, t) = (ids.shape[0], ids.shape[1])
            let m = transformer
            precondition(cache.length + t <= m.config.nPositions,
                         "generate: \(cache.length + t) positions exceed n_positions \(m.config.nPositions)")
            let positions = Tensor((0..<(b * t)).map { cache.length + $0 % t }, shape: [b, t], device: ids.device)
            var x = m.wte(ids) + m.wpe(positions)
            for (i, block) in m.h.enumerated() {
                let h = x + block.attn.forward(block.ln1(x), layer: i, cache: cache)
                x = h + block.mlp(block.ln2(h))
            }
            cache.advance(by: t)
            return Tensor.matmul(m.lnF(x), m.wte.weight, transposeB: true)
        }
    }
}

/// A causal LM that runs one chunk of positions at a time against a ``KVCache`` (GPT-2, Llama), and so generates.
public protocol CausalLanguageModel: Module {
    /// Logits `[B, t, V]` of the next `t` tokens `ids [B, t]` after those in `cache` (which grows by `t`).
    func logits(_ ids: Tensor, cache: KVCache) -> Tensor
    /// Decoder layers (the cache holds one key/value pair per layer).
    var layerCount: Int { get }
    /// The most positions the model takes.
    var maxPositions: Int { get }
}

extension GPT2LMHeadModel: CausalLanguageModel {
    public var layerCount: Int { config.nLayer }
    public var maxPositions: Int { config.nPositions }
}

extension CausalLanguageModel {
    /// Continues `prompt` by up to `maxNewTokens` tokens (stopping at `eosTokenID`), one cached position per token.
    /// `temperature` 0 is greedy; otherwise logits are divided by it, cut to the `topK` largest and to the smallest
    /// set whose probability reaches `topP`, then sampled with `seed`.
    public func generate(_ prompt: [Int32], maxNewTokens: Int, temperature: Double = 1, topK: Int? = nil,
                         topP: Double? = nil, seed: UInt64 = 0, eosTokenID: Int32? = nil) -> [Int32] {
        precondition(!prompt.isEmpty, "generate: the prompt needs at least one token")
        eval()
        let device = parameters()[0].device
        let cache = KVCache(layers: layerCount)
        var rng = RandomStream(seed: seed)
        var out: [Int32] = []
        var logits = self.logits(Tensor(prompt, shape: [1, prompt.count], device: device), cache: cache)
        for _ in 0..<maxNewTokens {
            let last = logits[0][logits.shape[1] - 1].cast(to: .float32).scalars
            let next = Int32(CausalLanguageModelSampling.sample(last, temperature: temperature, topK: topK, topP: topP, rng: &rng))
            out.append(next)
            if next == eosTokenID || cache.length >= maxPositions { break }
            logits = self.logits(Tensor([next], shape: [1, 1], device: device), cache: cache)
        }
        return out
    }
}

/// HF's sampling order: temperature, top-k, top-p, then a seeded draw.
enum CausalLanguageModelSampling {
    /// Argmax when `temperature` is 0.
    static func sample(_ logits: [Float], temperature: Double, topK: Int?, topP: Double?, rng: inout RandomStream) -> Int {
        guard temperature > 0 else { return logits.indices.max { logits[$0] < logits[$1] }! }
        var order = logits.indices.sorted { logits[$0] > logits[$1] }
        if let k = topK, k > 0 { order = Array(order.prefix(k)) }
        let top = Double(logits[order[0]])
        var weights = order.map { Foundation.exp((Double(logits[$0]) - top) / temperature) }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        if let p = topP, p < 1 {
            var sum = 0.0, keep = 0
            while keep < weights.count { sum += weights[keep]; keep += 1; if sum >= p { break } }
            order = Array(order.prefix(keep))
            weights = Array(weights.prefix(keep))
        }
        let u = Tensor.uniform([1], low: 0, high: weights.reduce(0, +), rng: &rng).item()
        var running = 0.0
        for (i, w) in weights.enumerated() {
            running += w
            if u < running { return order[i] }
        }
        return order[order.count - 1]
    }
}
