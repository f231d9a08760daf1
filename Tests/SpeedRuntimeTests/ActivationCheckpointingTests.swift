// The `activation_checkpointing` block applied to models: it configures checkpointing the model opted
// into and never turns it on; a checkpointed GPT trains under the engine exactly like a plain one.
// Invariant: models compared here are built from one seed, so any difference is checkpointing's.
import SpeedCore
import SpeedNN
@testable import SpeedRuntime
import Testing

private func gpt(checkpoint: Bool, dropout: Double = 0.1) -> GPT {
    var rng = RandomStream(seed: 21)
    return GPT(GPTConfig(vocabSize: 32, contextLength: 8, layers: 2, heads: 2, embedDim: 16, dropout: dropout,
                         checkpointActivations: checkpoint), rng: &rng)
}

@Suite struct ActivationCheckpointingTests {
    @Test func cpuCheckpointingConfiguresAModelThatOptedIn() throws {
        let model = gpt(checkpoint: true)
        let cfg = try config(#"{"train_batch_size": 2, "activation_checkpointing": {"cpu_checkpointing": true}}"#)
        let notes = applyActivationCheckpointing(cfg.activationCheckpointing, to: model)
        #expect(model.activationCheckpointing == ActivationCheckpointing(enabled: true, cpuCheckpointing: true))
        #expect(notes.count == 1)
        #expect(notes.first?.contains("cpu_checkpointing: the model already runs on the CPU") == true)
    }

    @Test func theBlockNeverTurnsCheckpointingOn() throws {
        let model = gpt(checkpoint: false)
        let cfg = try config(#"{"train_batch_size": 2, "activation_checkpointing": {"cpu_checkpointing": true, "partition_activations": true}}"#)
        let notes = applyActivationCheckpointing(cfg.activationCheckpointing, to: model)
        #expect(model.activationCheckpointing == .off)
        #expect(notes.contains { $0.contains("the model does not checkpoint activations") && $0.contains("GPT") })
        #expect(notes.contains { $0.contains("partition_activations") })
        // A model that cannot checkpoint at all is told what to do instead.
        var rng = RandomStream(seed: 1)
        let plain = applyActivationCheckpointing(cfg.activationCheckpointing, to: Linear(2, 2, rng: &rng))
        #expect(plain.contains { $0.contains("Module.checkpointed") })
    }

    @Test func defaultsChangeNothingAndSayNothing() throws {
        let model = gpt(checkpoint: true)
        model.activationCheckpointing.cpuCheckpointing = true
        let cfg = try config(#"{"train_batch_size": 2}"#)
        #expect(applyActivationCheckpointing(cfg.activationCheckpointing, to: model).isEmpty)
        #expect(model.activationCheckpointing == ActivationCheckpointing(enabled: true, cpuCheckpointing: true))
    }

    @Test func everyAcceptedKeyWithoutAnEffectIsNamed() throws {
        let cfg = try config(#"""
            {"train_batch_size": 2, "activation_checkpointing": {"partition_activations": true,
             "contiguous_memory_optimization": true, "number_checkpoints": 4,
             "synchronize_checkpoint_boundary": true, "profile": true}}
            """#)
        #expect(cfg.warnings.isEmpty)
        let notes = applyActivationCheckpointing(cfg.activationCheckpointing, to: gpt(checkpoint: true))
        let inert = try #require(notes.first { $0.contains("no effect in a single-device/CPU run") })
        for key in ["partition_activations", "contiguous_memory_optimization", "number_checkpoints 4",
                    "synchronize_checkpoint_boundary", "profile"] {
            #expect(inert.contains(key), "\(key)")
        }
        #expect(!notes.contains { $0.contains("does not checkpoint") })
    }

    /// docs/SpeedRuntime.md, "activation_checkpointing".
    @Test func theGuideExampleHolds() throws {
        var crng = RandomStream(seed: 1)
        let ckptGPT = GPT(GPTConfig(vocabSize: 64, contextLength: 16, layers: 2, heads: 2, embedDim: 32,
                                    checkpointActivations: true), rng: &crng)
        let acConfig = try DeepSpeedConfig.parse(#"""
            {"train_batch_size": 8, "activation_checkpointing": {"cpu_checkpointing": true, "profile": true}}
            """#)
        let notes = applyActivationCheckpointing(acConfig.activationCheckpointing, to: ckptGPT)
        #expect(notes.count == 2)
        #expect(ckptGPT.activationCheckpointing.cpuCheckpointing)
    }

    @Test func aCheckpointedGPTTrainsUnderTheEngineExactlyLikeAPlainOne() throws {
        let json = #"""
            {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2,
             "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
             "activation_checkpointing": {"cpu_checkpointing": true}}
            """#
        func run(checkpoint: Bool) throws -> ([Double], [Float]) {
            let model = gpt(checkpoint: checkpoint)
            let cfg = try config(json)
            _ = applyActivationCheckpointing(cfg.activationCheckpointing, to: model)
            let (engine, _, _, _) = try initialize(model: model, config: cfg)
            var losses: [Double] = []
            for step in 0..<3 {
                for micro in 0..<2 {
                    let ids = Tensor((0..<16).map { ($0 * 5 + step * 3 + micro) % 32 }, shape: [2, 8])
                    let targets = Tensor((0..<16).map { ($0 * 5 + step * 3 + micro + 1) % 32 }, shape: [2, 8])
                    let loss = engine(ids).crossEntropy(targets: targets)
                    losses.append(loss.item())
                    try engine.backward(loss)
                    try engine.step()
                }
            }
            return (losses, weights(model))
        }
        let (plainLosses, plainWeights) = try run(checkpoint: false)
        let (losses, trained) = try run(checkpoint: true)
        #expect(losses == plainLosses)
        let err = zip(trained, plainWeights).map { Swift.abs($0 - $1) }.max() ?? .infinity
        #expect(err <= 1e-6, "largest weight difference \(err)")
    }
}
