// Activation checkpointing for modules: a checkpointed call, the setting a model keeps, and the
// protocol the runtime uses to configure models that opt in. Invariant: a checkpointed call gives the
// same output and gradients as a plain one, because every Dropout stream below the module is replayed.

import SpeedCore

/// How a model checkpoints its activations. The model decides where (GPT: every transformer block);
/// this value says whether it does, and where the saved inputs live.
///
/// ```swift
/// gpt.activationCheckpointing = ActivationCheckpointing(enabled: true, cpuCheckpointing: true)
/// ```
public struct ActivationCheckpointing: Sendable, Hashable {
    /// Recompute activations in backward instead of keeping them.
    public var enabled: Bool
    /// Keep each checkpoint's saved inputs on the CPU (DeepSpeed's `cpu_checkpointing`).
    public var cpuCheckpointing: Bool

    public init(enabled: Bool = false, cpuCheckpointing: Bool = false) {
        self.enabled = enabled
        self.cpuCheckpointing = cpuCheckpointing
    }

    /// No checkpointing.
    public static let off = ActivationCheckpointing()

    /// Where ``Module/checkpointed(_:saveInputsOn:)`` should keep saved inputs: `.cpu` or nil.
    public var saveInputsOn: Device? { cpuCheckpointing ? .cpu : nil }
}

/// A module whose own code knows where to checkpoint (DeepSpeed's model-side
/// `deepspeed.checkpointing.checkpoint` calls). The runtime's `activation_checkpointing` block
/// configures such a module; it never turns checkpointing on by itself.
///
/// ```swift
/// if let m = model as? any ActivationCheckpointable, m.activationCheckpointing.enabled {
///     m.activationCheckpointing.cpuCheckpointing = true
/// }
/// ```
public protocol ActivationCheckpointable: AnyObject {
    var activationCheckpointing: ActivationCheckpointing { get set }
}

extension Module {
    /// Calls this module on `input` under activation checkpointing: nothing inside the call is
    /// kept, and backward recomputes it. The `rng` of every ``Dropout`` in this module's subtree is
    /// snapshotted and replayed, so the recomputed dropout masks are the original ones and the
    /// gradients equal a plain call's. Forward hooks run again during the recompute (ZeRO-3 gathers
    /// the weights again, as DeepSpeed does).
    ///
    /// - Parameters:
    ///   - input: the activation going in; its gradient flows back as usual.
    ///   - saveInputsOn: keep a copy of `input` on this device until backward (`.cpu` for
    ///     DeepSpeed's `cpu_checkpointing`); nil keeps `input` itself.
    ///
    /// ```swift
    /// var x = embeddings
    /// for block in blocks { x = block.checkpointed(x) }   // keeps only the block boundaries
    /// ```
    public func checkpointed(_ input: Tensor, saveInputsOn: Device? = nil) -> Tensor {
        SpeedCore.checkpoint([input], saveInputsOn: saveInputsOn, preserving: dropoutStreams(),
                             parameters: parameters()) { xs in self(xs[0]) }
    }

    /// ``checkpointed(_:saveInputsOn:)-(Tensor,_)`` for a call with named inputs and outputs:
    /// runs `self(inputs)` keeping nothing inside, and recomputes it once in backward for all the
    /// outputs together (SpeedCore's several-output `checkpoint`). Dropout streams are replayed
    /// and forward hooks run again in the recompute, as for the single-tensor form.
    ///
    /// Inputs that do not require grad (int ids, masks) are saved and passed through without
    /// gradients; outputs that are not floating point come back without gradient history.
    ///
    /// ```swift
    /// let out = layer.checkpointed(["hidden_states": h, "attention_mask": mask])
    /// out.hiddenStates!.sum().backward()     // recomputes the layer, then h.grad and the weights' grads
    /// ```
    public func checkpointed(_ inputs: ModuleInputs, saveInputsOn: Device? = nil) -> ModuleOutputs {
        let inputKeys = inputs.keys
        final class Keys { var value: [String]? }
        let outputKeys = Keys()
        let tensors = SpeedCore.checkpoint(inputs.tensors, saveInputsOn: saveInputsOn, preserving: dropoutStreams(),
                                           parameters: parameters()) { xs in
            let outputs = self(ModuleInputs(zip(inputKeys, xs)))
            if let keys = outputKeys.value {
                precondition(keys == outputs.keys, "\(type(of: self)).checkpointed: the recompute returned outputs \(outputs.keys), the forward \(keys)")
            } else {
                outputKeys.value = outputs.keys
            }
            return outputs.tensors
        }
        return ModuleOutputs(zip(outputKeys.value ?? [], tensors))
    }

    /// The `rng` of every ``Dropout`` in this module's subtree, to snapshot and replay.
    private func dropoutStreams() -> [PreservedState] {
        namedModules().compactMap { $0.1 as? Dropout }.map { dropout in
            PreservedState(get: { dropout.rng }, set: { dropout.rng = $0 })
        }
    }
}
