// Which parameters get weight decay: transformers' `get_decay_parameter_names` for SwiftSpeed's modules.
// Invariant: a parameter is excluded when it lies inside a LayerNorm-like module (below the root) or its lowercased full
// name matches transformers' patterns (bias, layernorm, rmsnorm, a `norm` component, a `*_norm` component) — for models
// with Hugging Face names this is exactly transformers' list.

import SpeedNN
import SpeedOptim
import SpeedTransformers

/// Whether a module normalizes (transformers excludes `nn.LayerNorm`; SwiftSpeed also its RMSNorm-like modules):
/// SpeedNN's `LayerNorm`, Llama's `LlamaRMSNorm`, or any module type whose name ends in LayerNorm or RMSNorm.
public func isNormalizationModule(_ module: Module) -> Bool {
    if module is LayerNorm || module is LlamaRMSNorm { return true }
    let name = String(describing: type(of: module))
    return name.hasSuffix("LayerNorm") || name.hasSuffix("RMSNorm")
}

/// transformers' name patterns for parameters without weight decay, on the lowercased full name.
func hasNoDecayName(_ name: String) -> Bool {
    let lower = name.lowercased()
    if lower.contains("bias") || lower.contains("layernorm") || lower.contains("rmsnorm") { return true }
    return lower.split(separator: ".", omittingEmptySubsequences: false).contains { $0 == "norm" || $0.hasSuffix("_norm") }
}

/// The names of the parameters the Trainer's optimizer decays (transformers' `get_decay_parameter_names`): every
/// parameter except biases and the weights of normalization layers, in `namedParameters()` order.
///
/// ```swift
/// decayParameterNames(gpt2)   // ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight", …]
/// ```
public func decayParameterNames(_ model: Module) -> [String] {
    let normPrefixes = model.namedModules().filter { !$0.0.isEmpty && isNormalizationModule($0.1) }.map { $0.0 + "." }
    return model.namedParameters().map(\.0).filter { name in
        !hasNoDecayName(name) && !normPrefixes.contains { name.hasPrefix($0) }
    }
}

/// The Trainer's two parameter groups (transformers' `create_optimizer`): the trainable parameters of
/// ``decayParameterNames(_:)`` with `weightDecay`, every other trainable parameter with 0.
///
/// ```swift
/// let groups = trainerParameterGroups(model, weightDecay: args.weightDecay)
/// let (engine, _, _, _) = try initialize(model: model, config: config, optimizer: adamw, parameterGroups: groups)
/// ```
public func trainerParameterGroups(_ model: Module, weightDecay: Double) -> [ParameterGroup] {
    let decay = Set(decayParameterNames(model))
    let trainable = model.namedParameters().filter { $0.1.requiresGrad }
    return [ParameterGroup(parameters: trainable.filter { decay.contains($0.0) }.map(\.1), weightDecay: weightDecay),
            ParameterGroup(parameters: trainable.filter { !decay.contains($0.0) }.map(\.1), weightDecay: 0)]
}
