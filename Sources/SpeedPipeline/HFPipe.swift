// Hugging Face GPT-2 and Llama-family folders as pipeline modules, built from the models' own blocks (no rewrite).
// Invariant: a layer's build closure reads only its own tensors from the folder's memory-mapped safetensors, so each
// stage holds (and reads) only its layers; names are the file's (`transformer.h.3.` / `h.3.`, `model.layers.3.`).

import Foundation
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedTransformers

/// Pipeline modules of pretrained Hugging Face folders: GPT-2 (`GPT2LMHeadModel`) and Llama, Mistral and Qwen2
/// (`*ForCausalLM`), with transformers' shifted causal-LM loss. A micro-batch is `(input_ids, labels)` — for
/// plain language modelling the labels are the ids themselves, as with `model(input_ids, labels=input_ids)`.
/// Batches carry no attention mask (pipeline stages pass one tensor): rows are full-length, as in pretraining.
///
/// | model | layers |
/// |---|---|
/// | GPT-2 | `wte` (tied), `wpe` + dropout, `h.0` … `h.{L-1}`, `ln_f`, the tied LM head |
/// | Llama | `embed_tokens` (tied when `tie_word_embeddings`), `layers.0` … `layers.{L-1}`, `norm`, `lm_head` |
///
/// ```swift
/// let module = try HFPipe.module(folder: URL(fileURLWithPath: "tiny-llama"), numStages: 2)
/// let engine = try PipelineEngine(module: module, config: config, world: world)
/// let loss = try engine.trainBatch { MicroBatch(input: ids, target: ids) }
/// ```
public enum HFPipe {
    /// The tie key of the embedding and the LM head.
    public static let tieKey = "embed"

    /// transformers' causal-LM loss: logits at t against labels at t + 1, −100 ignored.
    public static let causalLMLoss: @Sendable (Tensor, Tensor) -> Tensor = { logits, labels in
        GPT2LMHeadModel.causalLoss(logits, labels: labels)
    }

    /// The pipeline module of the folder at `url`, chosen by its config.json `model_type`.
    /// - Throws: `PretrainedError` for a missing or malformed folder; ``PipelineError`` for a model type with no
    ///   pipeline layout here.
    public static func module(folder url: URL, numStages: Int, partitionMethod: String = "parameters",
                              activationCheckpointInterval: Int = 0, dtype: DType = .float32,
                              device: Device = .cpu) throws -> PipelineModule {
        let folder = try PretrainedFolder(url)
        let layers: [PipelineLayer]
        switch folder.modelType {
        case "gpt2": layers = try gpt2Layers(folder, dtype: dtype, device: device)
        case "llama", "mistral", "qwen2": layers = try llamaLayers(folder, dtype: dtype, device: device)
        default:
            throw PipelineError.configuration("\(url.path)/config.json: model_type \(folder.modelType.map { "\"\($0)\"" } ?? "(none)") has no pipeline layout; HFPipe splits gpt2, llama, mistral and qwen2 — express other models with LayerSpecs")
        }
        var module = try PipelineModule(layers: layers, numStages: numStages, lossFunction: causalLMLoss,
                                        partitionMethod: partitionMethod, activationCheckpointInterval: activationCheckpointInterval)
        module.modelOrigin = .init(source: url.standardizedFileURL.path, config: String(decoding: folder.configData, as: UTF8.self))
        return module
    }

    // MARK: GPT-2

    static func gpt2Layers(_ folder: PretrainedFolder, dtype: DType, device: Device) throws -> [PipelineLayer] {
        let config = try folder.decodeConfig(GPT2Config.self)
        let act = try config.validate(path: folder.url.appendingPathComponent(PretrainedFolder.configName).path)
        let (v, c, t) = (config.vocabSize, config.nEmbd, config.nPositions)
        let names = try WeightNames(folder, prefixes: ["transformer.", ""])
        try names.require(["wte.", "wpe.", "ln_f."] + (0..<config.nLayer).map { "h.\($0)." })
        let embedding: @Sendable () -> Module = {
            var rng = RandomStream(seed: 0)
            let e = Embedding(v, c, std: config.initializerRange, dtype: dtype, device: device, rng: &rng)
            names.load(e, at: "wte.")
            return e
        }
        var out: [PipelineLayer] = [.tied(TiedLayerSpec(key: tieKey, "Embedding", parameters: v * c, flops: 0, modelPrefix: "wte.", build: embedding))]
        out.append(.layer(LayerSpec("GPT2Positions", parameters: t * c, flops: c, modelPrefix: "") {
            var rng = RandomStream(seed: 0)
            let p = GPT2Positions(Embedding(t, c, std: config.initializerRange, dtype: dtype, device: device, rng: &rng),
                                  dropout: Dropout(config.embdPdrop, rng: &rng))
            names.load(p.wpe, at: "wpe.")
            return p
        }))
        for i in 0..<config.nLayer {
            out.append(.layer(LayerSpec("GPT2Block", modelPrefix: "h.\(i).", forward: { m, x in
                (m as! GPT2Block).forward(x, blocked: nil)
            }) {
                var rng = RandomStream(seed: 0)
                let block = GPT2Block(config, layer: i, act: act, dtype: dtype, device: device, rng: &rng)
                names.load(block, at: "h.\(i).")
                return block
            }))
        }
        out.append(.layer(LayerSpec("LayerNorm", parameters: 2 * c, modelPrefix: "ln_f.") {
            let norm = LayerNorm(c, eps: config.layerNormEpsilon, dtype: dtype, device: device)
            names.load(norm, at: "ln_f.")
            return norm
        }))
        out.append(.tied(TiedLayerSpec(key: tieKey, "Embedding", parameters: v * c, flops: 2 * v * c, forward: { m, x in
            Tensor.matmul(x, (m as! Embedding).weight, transposeB: true)   // [B, T, V]
        }, build: embedding)))
        return out
    }

    // MARK: Llama, Mistral, Qwen2

    static func llamaLayers(_ folder: PretrainedFolder, dtype: DType, device: Device) throws -> [PipelineLayer] {
        let config = try LlamaModel.decodeConfig(folder)
        try config.validate(path: folder.url.appendingPathComponent(PretrainedFolder.configName).path)
        let (v, c) = (config.vocabSize, config.hiddenSize)
        let names = try WeightNames(folder, prefixes: ["model.", ""])
        try names.require(["embed_tokens.", "norm."] + (0..<config.numHiddenLayers).map { "layers.\($0)." })
        let embedding: @Sendable () -> Module = {
            var rng = RandomStream(seed: 0)
            let e = Embedding(v, c, std: config.initializerRange, paddingIndex: config.padTokenId, dtype: dtype,
                              device: device, rng: &rng)
            names.load(e, at: "embed_tokens.")
            return e
        }
        let tied = config.tieWordEmbeddings
        var out: [PipelineLayer] = [tied
            ? .tied(TiedLayerSpec(key: tieKey, "Embedding", parameters: v * c, flops: 0, modelPrefix: "model.embed_tokens.", build: embedding))
            : .layer(LayerSpec("Embedding", parameters: v * c, flops: 0, modelPrefix: "model.embed_tokens.", build: embedding))]
        for i in 0..<config.numHiddenLayers {
            out.append(.layer(LayerSpec("LlamaDecoderLayer", modelPrefix: "model.layers.\(i).", forward: { m, x in
                let (b, t) = (x.shape[0], x.shape[1])
                let rotary = Rotary(config, positions: (0..<(b * t)).map { $0 % t }, batch: b, tokens: t,
                                    dtype: x.dtype, device: x.device)
                return (m as! LlamaDecoderLayer).forward(x, rotary: rotary, keyPadding: nil)
            }) {
                var rng = RandomStream(seed: 0)
                let layer = LlamaDecoderLayer(config, layer: i, dtype: dtype, device: device, rng: &rng)
                names.load(layer, at: "layers.\(i).")
                return layer
            }))
        }
        out.append(.layer(LayerSpec("LlamaRMSNorm", parameters: c, modelPrefix: "model.norm.") {
            let norm = LlamaRMSNorm(c, eps: config.rmsNormEps, dtype: dtype, device: device)
            names.load(norm, at: "norm.")
            return norm
        }))
        if tied {
            out.append(.tied(TiedLayerSpec(key: tieKey, "Embedding", parameters: v * c, flops: 2 * v * c, forward: { m, x in
                Tensor.matmul(x, (m as! Embedding).weight, transposeB: true)   // [B, T, V]
            }, build: embedding)))
        } else {
            let head = try WeightNames(folder, prefixes: [""])
            try head.require(["lm_head."])
            out.append(.layer(LayerSpec("Linear", parameters: v * c, modelPrefix: "lm_head.") {
                var rng = RandomStream(seed: 0)
                let linear = Linear(c, v, bias: false, std: config.initializerRange, dtype: dtype, device: device, rng: &rng)
                head.load(linear, at: "lm_head.")
                return linear
            }))
        }
        return out
    }
}

/// GPT-2's `wpe` and embedding dropout as one pipeline layer: `x [B, T, C]` (token embeddings) → `x + wpe(0..<T)`.
public final class GPT2Positions: Module {
    public let wpe: Embedding   // [n_positions, C]
    let dropout: Dropout

    init(_ wpe: Embedding, dropout: Dropout) {
        self.wpe = wpe
        self.dropout = dropout
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        let positions = Tensor((0..<x.shape[1]).map { $0 }, device: x.device)
        return dropout(x + wpe(positions))
    }
}

/// Where a layer's tensors are in a folder: the file names' prefix (`transformer.` or none) found once, then each
/// layer's own tensors copied out of the memory-mapped files when its stage builds it.
struct WeightNames: Sendable {
    let folder: URL
    let prefix: String
    let keys: Set<String>

    /// Picks the first of `prefixes` under which the folder has tensors.
    init(_ folder: PretrainedFolder, prefixes: [String]) throws {
        self.folder = folder.url
        let keys = try folder.withMappedWeights { Set($0.keys) }
        self.keys = keys
        prefix = prefixes.first { p in keys.contains { p.isEmpty || $0.hasPrefix(p) } } ?? ""
    }

    /// Checks, on every stage before any layer is built, that the files hold tensors under each layer's prefix.
    /// - Throws: ``PipelineError/configuration(_:)`` listing the layers with no tensors.
    func require(_ layers: [String]) throws {
        let missing = layers.filter { layer in !keys.contains { $0.hasPrefix(prefix + layer) } }
        guard missing.isEmpty else {
            throw PipelineError.configuration("\(folder.path): the safetensors hold no tensors for \(missing.map { prefix + $0 + "*" }.joined(separator: ", ")); is this a complete model folder?")
        }
    }

    /// Copies every parameter and persistent buffer of `module` from `prefix + layer + name`. ``require(_:)`` has
    /// checked the layers are there; a tensor still missing or mis-shaped (a damaged file) stops with the names.
    func load(_ module: Module, at layer: String) {
        do {
            let folder = try PretrainedFolder(self.folder)
            try folder.withMappedWeights { files in
                var missing: [String] = []
                for (name, t) in module.namedParameters() + module.namedBuffers(persistentOnly: true) {
                    let key = prefix + layer + name
                    guard let w = files[key] else { missing.append(key); continue }
                    guard w.shape == t.shape else {
                        throw PipelineError.configuration("\(self.folder.path): \(key) has shape \(w.shape), the layer needs \(t.shape)")
                    }
                    try noGrad { try w.copy(into: t) }
                }
                if !missing.isEmpty {
                    throw PipelineError.configuration("\(self.folder.path): the weights have no \(missing.joined(separator: ", "))")
                }
            }
        } catch {
            preconditionFailure("HFPipe: loading \(layer) from \(self.folder.path) failed: \(error)")
        }
    }
}
