// The data and loss of each reference model for `swiftspeed train` (text LM or the seed's MSE task).
// Invariant: batches are a pure function of (seed, step, micro-step): no hidden iterator state.

import Foundation
import SwiftSpeed
#if canImport(Glibc)
import Glibc
#endif

/// A model with its data source and loss.
struct TrainingJob {
    /// The model (nil with `buildModel: false`: a pipeline builds its own stage's layers from ``gptConfig``).
    let module: Module?
    /// The GPT models' hyper-parameters (vocabulary 256 for text data); nil for `simple`.
    let gptConfig: GPTConfig?
    let tokensPerSample: Int
    private let kind: Kind
    private let microBatch: Int
    private let seed: UInt64
    private let device: Device

    private enum Kind {
        case text(TokenWindowDataset, DataLoader)
        case syntheticTokens
        case regression
    }

    /// - Parameters:
    ///   - checkpointActivations: GPT only: checkpoint every block (``GPTConfig/checkpointActivations``).
    ///   - buildModel: false gives the data and ``gptConfig`` only (the pipeline path, GPT models).
    init(model: String, dataPath: String?, seed: UInt64, microBatch: Int, checkpointActivations: Bool = false,
         buildModel: Bool = true, device: Device) throws {
        try Self.checkMemory(model: model, microBatch: microBatch, checkpointActivations: checkpointActivations)
        var rng = RandomStream(seed: seed)
        self.microBatch = microBatch
        self.seed = seed
        self.device = device
        if model == "simple" {
            module = SimpleModel(device: device, rng: &rng)
            gptConfig = nil
            kind = .regression
            tokensPerSample = 1
            return
        }
        var config = GPTConfig.preset(model)!
        config.checkpointActivations = checkpointActivations
        if let dataPath {
            config.vocabSize = ByteTokenizer().vocabularySize
            let text = try TextCorpus.load(dataPath)
            let tokens = ByteTokenizer().encode(text), t = config.contextLength
            // A window is T inputs plus the next token; a micro-batch takes B windows (the loader drops a partial one).
            guard tokens.count >= microBatch * t + 1 else {
                throw TrainingJobError(description: "--data \(dataPath) holds \(tokens.count) tokens (bytes); \(model) trains on "
                    + "windows of \(t) + 1 tokens and a micro-batch of \(microBatch) windows needs at least \(microBatch * t + 1): "
                    + "give a longer text (or a smaller train_micro_batch_size_per_gpu)")
            }
            let dataset = TokenWindowDataset(tokens: tokens, contextLength: t)
            kind = .text(dataset, DataLoader(dataset, batchSize: microBatch, shuffle: true, seed: seed,
                                             dropLast: true, device: device))
        } else {
            kind = .syntheticTokens
        }
        module = buildModel ? GPT(config, device: device, rng: &rng) : nil
        gptConfig = config
        tokensPerSample = config.contextLength
    }

    /// (input, target) for the `index`-th micro-batch of the run (consecutive indices walk the epochs
    /// in order).
    func batch(index: Int) -> (Tensor, Tensor) {
        switch kind {
        case .text(_, let loader):
            let n = loader.batchesPerEpoch
            let b = loader.batch(index % n, epoch: index / n)
            return (b[0], b[1])
        case .syntheticTokens:
            let t = gptConfig!.contextLength, v = UInt64(gptConfig!.vocabSize)
            let row = (0..<(microBatch * (t + 1))).map {
                Int32(RandomStream.bits(seed: seed ^ 0x5EED, counter: UInt64(index * microBatch * (t + 1) + $0)) % v)
            }
            var ids: [Int32] = [], targets: [Int32] = []
            for b in 0..<microBatch {
                let r = row[(b * (t + 1))..<((b + 1) * (t + 1))]
                ids += r.dropLast()
                targets += r.dropFirst()
            }
            return (Tensor(ids, shape: [microBatch, t], device: device), Tensor(targets, shape: [microBatch, t], device: device))
        case .regression:
            var rng = RandomStream(seed: seed ^ 0xDA7A, offset: UInt64(index) << 32)
            let x = Tensor.randn([microBatch, 768], device: device, rng: &rng)
            let y = Tensor.randn([microBatch, 768], device: device, rng: &rng)
            return (x, y)
        }
    }

    func loss(_ output: Tensor, _ target: Tensor) -> Tensor {
        switch kind {
        case .regression: output.mseLoss(target)
        default: output.crossEntropy(targets: target)
        }
    }

    /// Refuses, before anything is allocated, a micro-batch whose activations cannot fit in this machine's memory:
    /// a rough upper estimate (every layer's activations kept for backward, fp32) above twice the memory, so the
    /// estimate's slack never refuses a run that would fit.
    static func checkMemory(model: String, microBatch: Int, checkpointActivations: Bool) throws {
        let perSample: Double
        if model == "simple" {
            perSample = Double(768 + 2048 * 2 + 768 * 2) * 4
        } else {
            let c = GPTConfig.preset(model)!
            let (t, d, l, v) = (Double(c.contextLength), Double(c.embedDim), Double(c.layers), Double(c.vocabSize))
            let perLayer = t * d * 16 + Double(c.heads) * t * t * 2   // projections, MLP (4d), attention weights
            perSample = 4 * ((checkpointActivations ? 2 : l) * perLayer + t * v * 2)
        }
        let (needed, overflow) = Double(microBatch) * perSample > 9e18 ? (Int.max, true) : (Int(Double(microBatch) * perSample), false)
        let memory = Int(ProcessInfo.processInfo.physicalMemory)
        guard !overflow && needed / 2 <= memory else {
            throw TrainingJobError(description: "train_micro_batch_size_per_gpu \(microBatch) needs about "
                + "\(overflow ? "more than 8 EiB" : bytes(needed)) of activations per micro-batch for \(model); this machine has "
                + "\(bytes(memory)) of memory: lower it (gradient_accumulation_steps keeps the global batch)")
        }
    }

    /// Samples text from the trained model (text data only).
    func generate(characters: Int, seed: UInt64) -> String? {
        guard case .text = kind, let gpt = module as? GPT, characters > 0 else { return nil }
        let tok = ByteTokenizer()
        var ids = tok.encode("\n")
        var rng = RandomStream(seed: seed ^ 0x7E47)
        gpt.eval()
        defer { gpt.train() }
        for _ in 0..<characters {
            let context = Array(ids.suffix(gpt.config.contextLength))
            let logits = noGrad { gpt(Tensor(context, shape: [1, context.count], device: device)) }
            let last = noGrad { logits[0][context.count - 1].cast(to: .float32).scalars }
            ids.append(Int32(Self.sample(last, temperature: 0.8, rng: &rng)))
        }
        return tok.decode(ids)
    }

    /// Draws an index from softmax(logits / temperature).
    static func sample(_ logits: [Float], temperature: Float, rng: inout RandomStream) -> Int {
        let m = logits.max() ?? 0
        let weights = logits.map { Glibc.exp(Double(($0 - m) / temperature)) }
        let total = weights.reduce(0, +)
        var u = Double(RandomStream.uniform(seed: rng.seed, counter: rng.advance(by: 1))) * total
        for (i, w) in weights.enumerated() {
            u -= w
            if u <= 0 { return i }
        }
        return weights.count - 1
    }
}

/// A training setup that cannot run (data too short, a micro-batch too large for memory).
struct TrainingJobError: Error, CustomStringConvertible {
    let description: String
}

/// Bytes in binary units, e.g. "1.5 GiB".
func bytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(n), i = 0
    while value >= 1024 && i < units.count - 1 { value /= 1024; i += 1 }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[i])
}
