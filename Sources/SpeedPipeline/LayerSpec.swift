// The layers of a pipeline module as specifications (DeepSpeed's LayerSpec, TiedLayerSpec, plain functions).
// Invariant: a spec only describes a layer; its `build` closure runs on the stage that owns the layer and
// nowhere else (and, to count parameters for partitioning, only when no count is given).

import SpeedCore
import SpeedNN

/// A layer built lazily, on its own stage only (DeepSpeed's `LayerSpec(typename, *args)`).
///
/// ```swift
/// let spec = LayerSpec("Linear", parameters: 8 * 4 + 4) {
///     var rng = RandomStream(seed: 1)
///     return Linear(8, 4, rng: &rng)
/// }
/// ```
public struct LayerSpec: Sendable {
    /// The layer's type name, matched by `partitionMethod: "type:REGEX"` and printed in the partition report.
    public let typeName: String
    /// Its trainable parameter count for `"parameters"` partitioning; nil builds the layer once to count them
    /// (as DeepSpeed always does).
    public let parameterCount: Int?
    /// The layer's names in the unpartitioned model (`"blocks.2."`), for consolidated checkpoints; nil names its
    /// parameters `layer_XX.<name>`.
    public let modelPrefix: String?
    /// Forward FLOPs per token for `"flops"` partitioning; nil: twice the parameter count (a dense layer's).
    public let flopsPerToken: Int?
    let build: @Sendable () -> Module
    /// How the layer is applied; nil calls the module (`module(x)`).
    let forward: (@Sendable (Module, Tensor) -> Tensor)?

    public init(_ typeName: String, parameters: Int? = nil, flops: Int? = nil, modelPrefix: String? = nil,
                forward: (@Sendable (Module, Tensor) -> Tensor)? = nil, build: @escaping @Sendable () -> Module) {
        self.typeName = typeName
        self.parameterCount = parameters
        self.flopsPerToken = flops
        self.modelPrefix = modelPrefix
        self.build = build
        self.forward = forward
    }
}

/// A layer whose weights are shared by every layer with the same `key` (DeepSpeed's `TiedLayerSpec`):
/// each stage holding one of them builds the module once; `tiedWeights` (dotted parameter names) get
/// their gradients all-reduced over the stages of the tie and start from the first stage's values.
///
/// The input embedding and the LM head of a GPT are one tied pair: the same `Embedding` module, used
/// as a lookup on the first stage and as `x · Wᵀ` on the last.
///
/// ```swift
/// let embed = TiedLayerSpec(key: "embed", "Embedding") { makeEmbedding() }
/// let head = TiedLayerSpec(key: "embed", "Embedding", forward: { m, x in
///     Tensor.matmul(x, (m as! Embedding).weight, transposeB: true)
/// }) { makeEmbedding() }
/// ```
public struct TiedLayerSpec: Sendable {
    public let key: String
    public let typeName: String
    public let parameterCount: Int?
    /// As ``LayerSpec/modelPrefix``; the tie's first layer's prefix names the shared module.
    public let modelPrefix: String?
    /// Dotted names (in the built module's `namedParameters()`) of the weights the tie shares.
    public let tiedWeights: [String]
    /// As ``LayerSpec/flopsPerToken`` (an embedding lookup costs 0, the same weights as a head 2 · V · C).
    public let flopsPerToken: Int?
    let build: @Sendable () -> Module
    let forward: (@Sendable (Module, Tensor) -> Tensor)?

    public init(key: String, _ typeName: String, parameters: Int? = nil, flops: Int? = nil, modelPrefix: String? = nil,
                tiedWeights: [String] = ["weight"], forward: (@Sendable (Module, Tensor) -> Tensor)? = nil,
                build: @escaping @Sendable () -> Module) {
        self.key = key
        self.typeName = typeName
        self.parameterCount = parameters
        self.flopsPerToken = flops
        self.modelPrefix = modelPrefix
        self.tiedWeights = tiedWeights
        self.build = build
        self.forward = forward
    }
}

/// One entry of a ``PipelineModule``'s layer list.
public enum PipelineLayer: Sendable {
    case layer(LayerSpec)
    case tied(TiedLayerSpec)
    /// A parameter-free function (DeepSpeed accepts plain callables, e.g. a transpose).
    case function(String, @Sendable (Tensor) -> Tensor)

    public var typeName: String {
        switch self {
        case .layer(let s): s.typeName
        case .tied(let s): s.typeName
        case .function(let name, _): name
        }
    }

    /// The layer's prefix in the unpartitioned model (nil when its spec gives none).
    public var modelPrefix: String? {
        switch self {
        case .layer(let s): s.modelPrefix
        case .tied(let s): s.modelPrefix
        case .function: nil
        }
    }

    /// Trainable parameters, building the layer when its spec gives no count (DeepSpeed's `_count_layer_params`).
    func countParameters() -> Int {
        func count(_ m: Module) -> Int { m.parameters().filter(\.requiresGrad).reduce(0) { $0 + $1.count } }
        switch self {
        case .layer(let s): return s.parameterCount ?? count(s.build())
        case .tied(let s): return s.parameterCount ?? count(s.build())
        case .function: return 0
        }
    }

    /// Forward FLOPs per token, the `"flops"` partition's weight: the spec's figure, else 2 × the parameters.
    func countFlops() -> Int {
        switch self {
        case .layer(let s): return s.flopsPerToken ?? 2 * countParameters()
        case .tied(let s): return s.flopsPerToken ?? 2 * countParameters()
        case .function: return 0
        }
    }
}
