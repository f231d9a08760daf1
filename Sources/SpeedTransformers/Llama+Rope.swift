// Rotary position embeddings for the Llama family: config.json's rope parameters and the cos/sin tables of a forward.
// Invariant: frequencies follow transformers' ROPE_INIT_FUNCTIONS; `dynamic` and `longrope` depend on the forward's
// largest position (HF's dynamic_rope_update), so the tables are built per forward from its positions, never cached.

import Foundation
import SpeedCore

/// config.json's `rope_scaling` / `rope_parameters` (transformers 5 keeps `rope_theta` inside it).
///
/// ```swift
/// let yarn = RopeScaling(ropeType: "yarn", factor: 4, originalMaxPositionEmbeddings: 4096)
/// let config = LlamaConfig(maxPositionEmbeddings: 16384, ropeScaling: yarn)
/// ```
public struct RopeScaling: Codable, Sendable, Equatable {
    /// `default`, `linear`, `dynamic`, `llama3`, `yarn` or `longrope`.
    public var ropeType: String
    public var factor: Double?
    /// llama3's frequency bands.
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    /// The pretraining context (llama3, yarn, longrope); nil: `max_position_embeddings`, as transformers 5.
    public var originalMaxPositionEmbeddings: Int?
    public var ropeTheta: Double?
    /// yarn / longrope: the scale on cos and sin; nil: derived from `factor` as transformers does.
    public var attentionFactor: Double?
    /// yarn: the rotation counts bounding the ramp between interpolated and extrapolated frequencies (32 and 1).
    public var betaFast: Double?
    public var betaSlow: Double?
    /// yarn: `attention_factor = mscale(factor, mscale) / mscale(factor, mscale_all_dim)` when both are set.
    public var mscale: Double?
    public var mscaleAllDim: Double?
    /// yarn: round the ramp's bounds to whole dimensions (default true).
    public var truncate: Bool?
    /// longrope: per-frequency divisors `[head_dim / 2]` past / within the pretraining context.
    public var longFactor: [Double]?
    public var shortFactor: [Double]?
    /// Rotating only part of each head (not supported by the Llama family here; kept so it is refused by name).
    public var partialRotaryFactor: Double?

    public init(ropeType: String = "default", factor: Double? = nil, lowFreqFactor: Double? = nil,
                highFreqFactor: Double? = nil, originalMaxPositionEmbeddings: Int? = nil, ropeTheta: Double? = nil,
                attentionFactor: Double? = nil, betaFast: Double? = nil, betaSlow: Double? = nil, mscale: Double? = nil,
                mscaleAllDim: Double? = nil, truncate: Bool? = nil, longFactor: [Double]? = nil,
                shortFactor: [Double]? = nil, partialRotaryFactor: Double? = nil) {
        self.ropeType = ropeType; self.factor = factor; self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor; self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
        self.ropeTheta = ropeTheta; self.attentionFactor = attentionFactor; self.betaFast = betaFast
        self.betaSlow = betaSlow; self.mscale = mscale; self.mscaleAllDim = mscaleAllDim; self.truncate = truncate
        self.longFactor = longFactor; self.shortFactor = shortFactor; self.partialRotaryFactor = partialRotaryFactor
    }

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type", type, factor, lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings", ropeTheta = "rope_theta"
        case attentionFactor = "attention_factor", betaFast = "beta_fast", betaSlow = "beta_slow", mscale
        case mscaleAllDim = "mscale_all_dim", truncate, longFactor = "long_factor", shortFactor = "short_factor"
        case partialRotaryFactor = "partial_rotary_factor"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(ropeType: try c.decodeIfPresent(String.self, forKey: .ropeType)
                      ?? c.decodeIfPresent(String.self, forKey: .type) ?? "default",
                  factor: try c.decodeIfPresent(Double.self, forKey: .factor),
                  lowFreqFactor: try c.decodeIfPresent(Double.self, forKey: .lowFreqFactor),
                  highFreqFactor: try c.decodeIfPresent(Double.self, forKey: .highFreqFactor),
                  originalMaxPositionEmbeddings: try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings),
                  ropeTheta: try c.decodeIfPresent(Double.self, forKey: .ropeTheta),
                  attentionFactor: try c.decodeIfPresent(Double.self, forKey: .attentionFactor),
                  betaFast: try c.decodeIfPresent(Double.self, forKey: .betaFast),
                  betaSlow: try c.decodeIfPresent(Double.self, forKey: .betaSlow),
                  mscale: try c.decodeIfPresent(Double.self, forKey: .mscale),
                  mscaleAllDim: try c.decodeIfPresent(Double.self, forKey: .mscaleAllDim),
                  truncate: try c.decodeIfPresent(Bool.self, forKey: .truncate),
                  longFactor: try c.decodeIfPresent([Double].self, forKey: .longFactor),
                  shortFactor: try c.decodeIfPresent([Double].self, forKey: .shortFactor),
                  partialRotaryFactor: try c.decodeIfPresent(Double.self, forKey: .partialRotaryFactor))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ropeType, forKey: .ropeType)
        try c.encodeIfPresent(factor, forKey: .factor)
        try c.encodeIfPresent(lowFreqFactor, forKey: .lowFreqFactor)
        try c.encodeIfPresent(highFreqFactor, forKey: .highFreqFactor)
        try c.encodeIfPresent(originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
        try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(attentionFactor, forKey: .attentionFactor)
        try c.encodeIfPresent(betaFast, forKey: .betaFast)
        try c.encodeIfPresent(betaSlow, forKey: .betaSlow)
        try c.encodeIfPresent(mscale, forKey: .mscale)
        try c.encodeIfPresent(mscaleAllDim, forKey: .mscaleAllDim)
        try c.encodeIfPresent(truncate, forKey: .truncate)
        try c.encodeIfPresent(longFactor, forKey: .longFactor)
        try c.encodeIfPresent(shortFactor, forKey: .shortFactor)
        try c.encodeIfPresent(partialRotaryFactor, forKey: .partialRotaryFactor)
    }

    /// The rope types this implementation computes.
    public static let supportedTypes = ["default", "linear", "dynamic", "llama3", "yarn", "longrope"]
}

extension LlamaConfig {
    /// Rejects rope parameters this implementation does not compute, naming the config.json key.
    func validateRope(path: String) throws {
        guard let s = ropeScaling else { return }
        func bad(_ key: String, _ value: String, _ supported: String) -> PretrainedError {
            .unsupported(path: path, key: "rope_parameters.\(key)", value: value, supported: supported)
        }
        guard RopeScaling.supportedTypes.contains(s.ropeType) else {
            throw bad("rope_type", "\"\(s.ropeType)\"", RopeScaling.supportedTypes.joined(separator: ", "))
        }
        if let p = s.partialRotaryFactor, p != 1 { throw bad("partial_rotary_factor", "\(p)", "1.0 (whole heads)") }
        if ["linear", "dynamic"].contains(s.ropeType), s.factor == nil {
            throw bad("factor", "missing", "a number (\(s.ropeType) rope needs it)")
        }
        if s.ropeType == "longrope" {
            let half = headSize / 2
            for (key, f) in [("long_factor", s.longFactor), ("short_factor", s.shortFactor)] where f?.count != half {
                throw bad(key, f.map { "\($0.count) numbers" } ?? "missing", "\(half) numbers (head_dim / 2)")
            }
        }
    }

    /// The pretraining context llama3 / yarn / longrope scale from (transformers 5's default: max_position_embeddings).
    var originalContext: Int { ropeScaling?.originalMaxPositionEmbeddings ?? maxPositionEmbeddings }

    /// The rotary inverse frequencies `[headSize / 2]` and the factor on cos and sin, for a forward whose largest
    /// position is `seqLen - 1` (only `dynamic` and `longrope` depend on it).
    public func rotaryParameters(seqLen: Int) -> (inverseFrequencies: [Double], scale: Double) {
        let dim = headSize
        let exponents = stride(from: 0, to: dim, by: 2).map { Double($0) / Double(dim) }
        let plain = exponents.map { 1 / Foundation.pow(ropeTheta, $0) }
        guard let s = ropeScaling else { return (plain, 1) }
        switch s.ropeType {
        case "linear":
            return (plain.map { $0 / (s.factor ?? 1) }, 1)
        case "dynamic":
            // NTK-aware: a larger base once the sequence runs past max_position_embeddings.
            let factor = s.factor ?? 1, maxPos = Double(maxPositionEmbeddings)
            let len = Double(Swift.max(seqLen, maxPositionEmbeddings))
            let base = ropeTheta * Foundation.pow(factor * len / maxPos - (factor - 1), Double(dim) / Double(dim - 2))
            return (exponents.map { 1 / Foundation.pow(base, $0) }, 1)
        case "llama3":
            let factor = s.factor ?? 8, low = s.lowFreqFactor ?? 1, high = s.highFreqFactor ?? 4
            let old = Double(originalContext)
            let lowWavelen = old / low, highWavelen = old / high
            return (plain.map { f in
                let wavelen = 2 * Double.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / factor }
                let smooth = (old / wavelen - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }, 1)
        case "yarn":
            return yarn(s, dim: dim, plain: plain)
        case "longrope":
            let original = originalContext
            let factor = s.factor ?? Double(maxPositionEmbeddings) / Double(original)
            let scale = s.attentionFactor
                ?? (factor <= 1 ? 1 : (1 + Foundation.log(factor) / Foundation.log(Double(original))).squareRoot())
            let ext = (seqLen > original ? s.longFactor : s.shortFactor) ?? []
            return (zip(plain, ext).map { $0 / $1 }, scale)
        default:
            return (plain, 1)
        }
    }

    /// YaRN: interpolated frequencies below the ramp, extrapolated above it, the cos/sin scale from `factor`.
    private func yarn(_ s: RopeScaling, dim: Int, plain: [Double]) -> ([Double], Double) {
        let original = Double(originalContext)
        let factor = s.factor ?? Double(maxPositionEmbeddings) / original
        func mscale(_ m: Double) -> Double { factor <= 1 ? 1 : 0.1 * m * Foundation.log(factor) + 1 }
        let scale: Double
        if let a = s.attentionFactor {
            scale = a
        } else if let m = s.mscale, let all = s.mscaleAllDim, m != 0, all != 0 {
            scale = mscale(m) / mscale(all)
        } else {
            scale = mscale(1)
        }
        let betaFast = s.betaFast ?? 32, betaSlow = s.betaSlow ?? 1
        func correctionDim(_ rotations: Double) -> Double {
            Double(dim) * Foundation.log(original / (rotations * 2 * Double.pi)) / (2 * Foundation.log(ropeTheta))
        }
        var low = correctionDim(betaFast), high = correctionDim(betaSlow)
        if s.truncate ?? true { low = low.rounded(.down); high = high.rounded(.up) }
        low = Swift.max(low, 0); high = Swift.min(high, Double(dim - 1))
        if low == high { high += 0.001 }
        let freqs = plain.enumerated().map { i, f -> Double in
            // The ramp in fp32, as transformers computes it.
            let ramp = Double(Swift.min(Swift.max((Float(i) - Float(low)) / Float(high - low), 0), 1))
            let extrapolation = 1 - ramp
            return f / factor * (1 - extrapolation) + f * extrapolation
        }
        return (freqs, scale)
    }
}

/// Rotary tables for one forward: `cos`, `sin` `[B, T, D/2]` (fp32; fp64 for an fp64 model) at any positions (a
/// KV cache's continue from its length).
package struct Rotary {
    let cos: Tensor
    let sin: Tensor

    package init(_ config: LlamaConfig, positions: [Int], batch: Int, tokens: Int, dtype: DType, device: Device) {
        // HF's dynamic_rope_update: the sequence length is the batch's largest position + 1.
        let (inv, scale) = config.rotaryParameters(seqLen: (positions.max() ?? 0) + 1)
        let half = config.headSize / 2
        var c = [Float](repeating: 0, count: batch * tokens * half), s = c
        for i in 0..<(batch * tokens) {
            for j in 0..<half {
                let angle = Double(Float(positions[i]) * Float(inv[j]))   // fp32 product, as HF's matmul
                c[i * half + j] = Float(Foundation.cos(angle)) * Float(scale)
                s[i * half + j] = Float(Foundation.sin(angle)) * Float(scale)
            }
        }
        let stats: DType = dtype == .float64 ? .float64 : .float32
        cos = Tensor(c, shape: [batch, tokens, half], device: device).cast(to: stats)
        sin = Tensor(s, shape: [batch, tokens, half], device: device).cast(to: stats)
    }

    /// `x · cos + rotate_half(x) · sin` for token-major `x [B, T, H, D]` (the fused kernel).
    func apply(_ x: Tensor) -> Tensor { x.rotary(cos: cos, sin: sin) }
}
