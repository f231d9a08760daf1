// Applies the `activation_checkpointing` block to a model at initialize, as DeepSpeed's
// `checkpointing.configure` does. Invariant: the block only configures checkpointing the model's code
// opted into (ActivationCheckpointable, enabled); it never turns checkpointing on or changes results.

import SpeedCore
import SpeedNN

/// Configures the model's activation checkpointing from the config's `activation_checkpointing`
/// block and returns notes for the log (one per setting that has no effect here).
///
/// DeepSpeed's semantics: the model's code decides where to checkpoint
/// (`deepspeed.checkpointing.checkpoint(fn, x)`, or `GPTConfig.checkpointActivations` /
/// ``ActivationCheckpointable/activationCheckpointing`` here); the config block only says how.
/// So every ``ActivationCheckpointable`` module in `module`'s tree (itself included) that has
/// checkpointing enabled gets `cpuCheckpointing` from the block; modules that did not opt in are
/// left alone, and a block that equals the defaults changes nothing.
///
/// | Key | Here |
/// |---|---|
/// | `cpu_checkpointing` | saved block inputs are copied to the CPU (a copy only on the CPU backend) |
/// | `partition_activations` | no effect: there is no model-parallel group to partition activations over yet |
/// | `contiguous_memory_optimization`, `number_checkpoints` | no effect: DeepSpeed uses them for partitioned activations' buffers |
/// | `synchronize_checkpoint_boundary` | no effect: CPU kernels are synchronous |
/// | `profile` | no effect: checkpoint timings are not collected |
///
/// ```swift
/// let config = try DeepSpeedConfig.load(path: "ds_config.json")
/// let gpt = GPT(GPTConfig(vocabSize: 64, contextLength: 16, layers: 2, heads: 2, embedDim: 32,
///                         checkpointActivations: true), rng: &rng)
/// for note in applyActivationCheckpointing(config.activationCheckpointing, to: gpt) { logger.warning("\(note)") }
/// gpt.activationCheckpointing.cpuCheckpointing   // the block's cpu_checkpointing
/// ```
public func applyActivationCheckpointing(_ config: ActivationCheckpointingConfig, to module: Module) -> [String] {
    guard config != ActivationCheckpointingConfig() else { return [] }
    let checkpointable = module.namedModules().compactMap { name, m in
        (m as? any ActivationCheckpointable).map { (name.isEmpty ? "the model" : "'\(name)'", $0) }
    }
    let enabled = checkpointable.filter { $0.1.activationCheckpointing.enabled }
    var notes: [String] = []
    if enabled.isEmpty {
        let hint = checkpointable.isEmpty
            ? "the model's code must call checkpoint(_:) or Module.checkpointed(_:) itself"
            : "turn it on in the model (\(checkpointable.map { "\($0.0): \(type(of: $0.1))" }.joined(separator: ", ")) supports it, e.g. GPTConfig.checkpointActivations or --checkpoint-activations)"
        notes.append("activation_checkpointing: the model does not checkpoint activations, so this block changes nothing; as in DeepSpeed the block only configures checkpointing and \(hint)")
    }
    for (_, m) in enabled { m.activationCheckpointing.cpuCheckpointing = config.cpuCheckpointing }
    if config.cpuCheckpointing && !enabled.isEmpty
        && module.parameters().allSatisfy({ $0.device.isCPU }) {
        notes.append("activation_checkpointing.cpu_checkpointing: the model already runs on the CPU; saved inputs are copied there, which saves no memory")
    }
    var inert: [String] = []
    if config.partitionActivations { inert.append("partition_activations (no model-parallel group to partition over yet)") }
    if config.contiguousMemoryOptimization { inert.append("contiguous_memory_optimization (DeepSpeed applies it to partitioned activations only)") }
    if let n = config.numberCheckpoints { inert.append("number_checkpoints \(n) (sizes DeepSpeed's contiguous buffers; the model decides where to checkpoint)") }
    if config.synchronizeCheckpointBoundary { inert.append("synchronize_checkpoint_boundary (CPU kernels are synchronous)") }
    if config.profile { inert.append("profile (checkpoint timings are not collected)") }
    if !inert.isEmpty {
        notes.append("activation_checkpointing: accepted with no effect in a single-device/CPU run: " + inert.joined(separator: "; "))
    }
    return notes
}
