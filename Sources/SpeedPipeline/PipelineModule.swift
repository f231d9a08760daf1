// DeepSpeed's PipelineModule: a model as an ordered list of layer specs, split over stages, plus the loss.
// Invariant: the module is pure description — the partition is computed identically on every rank from the
// specs alone, and only `build(stage:)` creates layers, those of that one stage.

import SpeedCore
import SpeedNN

/// A model for pipeline parallelism (`deepspeed.pipe.PipelineModule`).
///
/// ```swift
/// let module = try PipelineModule(layers: GPTPipe.layers(.gptMini, seed: 1337), numStages: 2,
///                                 lossFunction: GPTPipe.loss, partitionMethod: "parameters")
/// module.parts                  // [0, 4, 8]: stage 0 owns layers 0..<4, stage 1 layers 4..<8
/// let stage = module.build(stage: 1)   // builds only layers 4..<8 (and the tied embedding for the head)
/// ```
public struct PipelineModule: Sendable {
    public let layers: [PipelineLayer]
    public let numStages: Int
    public let partitionMethod: String
    /// Checkpoint every `interval` consecutive layers of a stage as one unit (0 = off), DeepSpeed's
    /// `activation_checkpoint_interval`.
    public let activationCheckpointInterval: Int
    /// `(last stage's output, labels) → scalar loss`.
    public let lossFunction: @Sendable (Tensor, Tensor) -> Tensor
    /// `numStages + 1` boundaries: stage s owns layers `parts[s] ..< parts[s + 1]`.
    public let parts: [Int]
    /// The Hugging Face folder the layers came from and its config.json text (``HFPipe`` sets it), saved with every
    /// checkpoint so `swiftspeed zero-to-fp32` writes a folder that loads with `from_pretrained`; nil otherwise.
    public var modelOrigin: ModelOrigin?

    /// Where a pipeline's weights came from.
    public struct ModelOrigin: Sendable, Codable, Equatable {
        public var source: String
        public var config: String
        public init(source: String, config: String) { self.source = source; self.config = config }
    }

    /// - Throws: ``PipelineError/configuration(_:)`` for an unknown partition method or a `type:` regex that
    ///   matches no layer.
    public init(layers: [PipelineLayer], numStages: Int, lossFunction: @escaping @Sendable (Tensor, Tensor) -> Tensor,
                partitionMethod: String = "parameters", activationCheckpointInterval: Int = 0) throws {
        guard numStages >= 1 else { throw PipelineError.configuration("numStages must be >= 1, got \(numStages)") }
        guard activationCheckpointInterval >= 0 else {
            throw PipelineError.configuration("activationCheckpointInterval must be >= 0, got \(activationCheckpointInterval)")
        }
        guard !layers.isEmpty else { throw PipelineError.configuration("a PipelineModule needs at least one layer") }
        self.layers = layers
        self.numStages = numStages
        self.lossFunction = lossFunction
        self.partitionMethod = partitionMethod
        self.activationCheckpointInterval = activationCheckpointInterval
        parts = try Partition.boundaries(partitionMethod, layers: layers, stages: numStages)
    }

    /// The layers stage `stage` owns.
    public func layerRange(stage: Int) -> Range<Int> {
        precondition(stage >= 0 && stage < numStages, "layerRange: stage \(stage) is outside 0..<\(numStages)")
        return parts[stage]..<parts[stage + 1]
    }

    /// The stage that owns layer `index`.
    public func stageOwner(layer index: Int) -> Int {
        precondition(index >= 0 && index < layers.count, "stageOwner: layer \(index) is outside 0..<\(layers.count)")
        return (0..<numStages).first { parts[$0 + 1] > index }!
    }

    /// The tie keys, sorted (the order tie groups are made and reduced in, on every rank).
    public var tieKeys: [String] {
        Set(layers.compactMap { if case .tied(let s) = $0 { s.key } else { nil } }).sorted()
    }

    /// Layer indices that use tie `key`, in order.
    public func tiedLayers(_ key: String) -> [Int] {
        layers.indices.filter { if case .tied(let s) = layers[$0], s.key == key { true } else { false } }
    }

    /// The stages holding a layer of tie `key`.
    public func tiedStages(_ key: String) -> Set<Int> { Set(tiedLayers(key).map { stageOwner(layer: $0) }) }

    /// Trainable parameters of the whole model, each tied module counted once (what one process trains).
    public var parameterCount: Int {
        var seen = Set<String>()
        return layers.reduce(0) { total, layer in
            if case .tied(let s) = layer, !seen.insert(s.key).inserted { return total }
            return total + layer.countParameters()
        }
    }

    /// Trainable parameters stage `stage` holds, its tied modules counted once (the stage's flat buffer before padding).
    public func parameterCount(stage: Int) -> Int {
        var seen = Set<String>()
        return layerRange(stage: stage).reduce(0) { total, i in
            if case .tied(let s) = layers[i], !seen.insert(s.key).inserted { return total }
            return total + layers[i].countParameters()
        }
    }

    /// One line per stage with its layers' indices and type names (DeepSpeed's partition printout).
    public var partitionReport: String {
        (0..<numStages).map { s in
            let r = layerRange(stage: s)
            return "stage=\(s) layers=\(r.count)" + r.map { i in "\n    \(i < 10 ? " " : "")\(i): \(layers[i].typeName)" }.joined()
        }.joined(separator: "\n")
    }

    /// Builds stage `stage`'s layers (and nothing else) as one ``PipelineStage`` module.
    public func build(stage: Int) -> PipelineStage {
        PipelineStage(module: self, stage: stage)
    }
}
