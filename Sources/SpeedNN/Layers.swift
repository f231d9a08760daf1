// The standard layers: Linear, Embedding, LayerNorm, Dropout, Sequential and activation modules.
// Invariant: weights use PyTorch's layouts (`Linear.weight` is [out, in]) so state dicts map one to one.

import SpeedCore

/// `y = x · weightᵀ + bias`, weight `[out, in]`.
///
/// ```swift
/// var rng = RandomStream(seed: 0)
/// let fc = Linear(768, 2048, rng: &rng)
/// let y = fc(Tensor.zeros([16, 768]))   // [16, 2048]
/// ```
public final class Linear: Module {
    public let weight: Tensor   // [out, in]
    public let bias: Tensor?    // [out]

    /// PyTorch's default init (uniform ±1/√in) unless `std` is given (normal, GPT-2 style: bias 0).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, std: Double? = nil,
                dtype: DType = .float32, device: Device = .cpu, rng: inout RandomStream) {
        if let std {
            weight = Tensor.randn([outFeatures, inFeatures], std: std, dtype: dtype, device: device, rng: &rng)
            self.bias = bias ? Tensor.zeros([outFeatures], dtype: dtype, device: device) : nil
        } else {
            let bound = 1 / Double(inFeatures).squareRoot()
            weight = Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, dtype: dtype, device: device, rng: &rng)
            self.bias = bias ? Tensor.uniform([outFeatures], low: -bound, high: bound, dtype: dtype, device: device, rng: &rng) : nil
        }
        weight.requiresGrad = true
        self.bias?.requiresGrad = true
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { Tensor.linear(x, weight: weight, bias: bias) }
}

/// A lookup table `[count, dim]` indexed by integer ids.
public final class Embedding: Module {
    public let weight: Tensor   // [count, dim]
    /// PyTorch's `padding_idx`: this row gets no gradient (Hugging Face's BERT passes `pad_token_id`).
    public let paddingIndex: Int?

    public init(_ count: Int, _ dim: Int, std: Double = 1, paddingIndex: Int? = nil, dtype: DType = .float32,
                device: Device = .cpu, rng: inout RandomStream) {
        weight = Tensor.randn([count, dim], std: std, dtype: dtype, device: device, rng: &rng)
        weight.requiresGrad = true
        self.paddingIndex = paddingIndex.flatMap { (0..<count).contains($0) ? $0 : nil }
        super.init()
    }

    /// `ids` (int32/int64, any shape) → `ids.shape + [dim]`.
    public override func forward(_ ids: Tensor) -> Tensor { Tensor.embedding(weight, ids: ids, paddingIndex: paddingIndex) }
}

/// Layer normalisation over the last axis with learnable scale and shift.
public final class LayerNorm: Module {
    public let weight: Tensor   // [dim]
    public let bias: Tensor     // [dim]
    public let eps: Double

    public init(_ dim: Int, eps: Double = 1e-5, dtype: DType = .float32, device: Device = .cpu) {
        weight = Tensor.ones([dim], dtype: dtype, device: device, requiresGrad: true)
        bias = Tensor.zeros([dim], dtype: dtype, device: device, requiresGrad: true)
        self.eps = eps
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }
}

/// Inverted dropout, active only in training mode. Its own counter-based stream makes masks
/// reproducible from the seed alone.
public final class Dropout: Module {
    public let p: Double
    /// Advanced by every training-mode call; save and restore it to replay the same masks.
    public var rng: RandomStream

    public init(_ p: Double, rng: inout RandomStream) {
        precondition(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got \(p)")
        self.p = p
        self.rng = rng.split()
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        isTraining && p > 0 ? x.dropout(p, rng: &rng) : x
    }
}

/// Runs its layers in order.
public final class Sequential: Module {
    public let layers: [Module]

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
    }

    public convenience init(_ layers: Module...) { self.init(layers) }

    public override func forward(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }
}

/// Activation modules, for `Sequential`.
public final class ReLU: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.relu() }
}

public final class GELU: Module {
    public let approximate: Bool
    public init(approximate: Bool = true) { self.approximate = approximate; super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x.gelu(approximate: approximate) }
}

public final class Tanh: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.tanh() }
}

public final class Sigmoid: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.sigmoid() }
}
