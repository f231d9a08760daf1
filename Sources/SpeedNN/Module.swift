// The Module base class: parameters, buffers and children found by reflection, with stable dotted names.
// Invariant: names follow stored-property declaration order (superclass first), arrays index as
// `name.i`, so `namedParameters()` order and names are identical across runs and processes.

import SpeedCore

/// A neural-network building block, like `torch.nn.Module`.
///
/// Subclasses declare parameters as stored `Tensor` (or `Tensor?`) properties and sub-modules as
/// stored `Module`, `[Module]` or `Module?` properties; both are found automatically.
/// `@ModuleInfo(key:)` and `@ParameterInfo(key:)` give a property an explicit name (a Hugging
/// Face key), `@BufferInfo` marks a tensor that is state but not a parameter.
///
/// A module computes either one tensor from one tensor (override ``forward(_:)-(Tensor)``) or
/// named outputs from named inputs (override ``forward(_:)-(ModuleInputs)``); either call form
/// works on either kind, and both run the same hooks.
///
/// ```swift
/// final class TwoLayer: Module {
///     let fc1: Linear, fc2: Linear
///     init(rng: inout RandomStream) {
///         fc1 = Linear(4, 8, rng: &rng); fc2 = Linear(8, 1, rng: &rng)
///         super.init()
///     }
///     override func forward(_ x: Tensor) -> Tensor { fc2(fc1(x).relu()) }
/// }
/// var rng = RandomStream(seed: 0)
/// let m = TwoLayer(rng: &rng)
/// m.namedParameters().map(\.0)   // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
/// ```
open class Module {
    /// True in training mode (dropout active); see ``train(_:)`` and ``eval()``.
    public private(set) var isTraining = true
    /// Called with the module before each call, of either form (ZeRO-3 gathers parameters here).
    public var forwardPreHooks: [(Module) -> Void] = []
    /// Called with the module and its outputs after each call; returns the outputs to pass on
    /// (ZeRO-3 releases parameters here and wraps every output that requires grad so backward
    /// gathers them again). A single-tensor call hands the hooks its result under
    /// ``ModuleOutputs/singleKey``, and a hook must give back exactly one output for it.
    public var forwardPostHooks: [(Module, ModuleOutputs) -> ModuleOutputs] = []
    /// Set while the default multi-input forward runs the single-tensor one, so that a module
    /// overriding neither fails instead of recursing.
    private var inDefaultForward = false

    public init() {}

    /// The single-tensor computation. Override it in a one-in, one-out module; call the module
    /// itself (`m(x)`) to run the hooks too.
    ///
    /// The default runs ``forward(_:)-(ModuleInputs)`` on `ModuleInputs(input)` (key
    /// ``ModuleInputs/singleKey``, `"input"`) and returns its only output, so a module that
    /// overrides just the multi-input forward can still be called with one tensor.
    ///
    /// ```swift
    /// override func forward(_ x: Tensor) -> Tensor { fc2(fc1(x).relu()) }
    /// ```
    open func forward(_ input: Tensor) -> Tensor {
        precondition(!inDefaultForward,
                     "\(type(of: self)) overrides neither forward(_: Tensor) nor forward(_: ModuleInputs)")
        let outputs = forward(ModuleInputs(input))
        precondition(outputs.count == 1,
                     "\(type(of: self)): a single-tensor call needs one output, but forward(_: ModuleInputs) returned \(outputs.keys); call it with ModuleInputs and read the outputs by name")
        return outputs.single
    }

    /// The named-inputs computation (Hugging Face style: `input_ids`, `attention_mask`, … in;
    /// `loss`, `logits`, … out). Override it in a module with several inputs or outputs.
    ///
    /// The default takes exactly one input, runs ``forward(_:)-(Tensor)`` on it and returns the
    /// result under ``ModuleOutputs/singleKey`` (`"output"`), whatever the input's key.
    ///
    /// ```swift
    /// override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
    ///     var out = ModuleOutputs()
    ///     out.logits = head(encoder(inputs.inputIds!, mask: inputs.attentionMask))
    ///     if let labels = inputs.labels { out.loss = out.logits!.crossEntropy(targets: labels) }
    ///     return out
    /// }
    /// ```
    open func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        precondition(inputs.count == 1,
                     "\(type(of: self)) does not override forward(_: ModuleInputs), so it takes exactly one input; got \(inputs.count): \(inputs.keys)")
        inDefaultForward = true
        defer { inDefaultForward = false }
        return ModuleOutputs(forward(inputs.tensors[0]))
    }

    /// Runs the pre-hooks, ``forward(_:)-(Tensor)``, then the post-hooks.
    ///
    /// ```swift
    /// let y = fc(Tensor.zeros([2, 768]))
    /// ```
    public func callAsFunction(_ input: Tensor) -> Tensor {
        for hook in forwardPreHooks { hook(self) }
        let out = forward(input)
        guard !forwardPostHooks.isEmpty else { return out }
        var outputs = ModuleOutputs(out)
        for hook in forwardPostHooks { outputs = hook(self, outputs) }
        precondition(outputs.count == 1,
                     "\(type(of: self)): a forward post-hook returned \(outputs.keys) for a single-tensor call; it must return one output")
        return outputs.single
    }

    /// Runs the pre-hooks, ``forward(_:)-(ModuleInputs)``, then the post-hooks.
    ///
    /// ```swift
    /// let out = model(["input_ids": ids, "attention_mask": mask, "labels": labels])
    /// out.loss!.backward()
    /// ```
    public func callAsFunction(_ inputs: ModuleInputs) -> ModuleOutputs {
        for hook in forwardPreHooks { hook(self) }
        var outputs = forward(inputs)
        for hook in forwardPostHooks { outputs = hook(self, outputs) }
        return outputs
    }

    /// Parameters of other modules that this module's forward reads directly, e.g. a tied output
    /// projection reading the embedding's weight (DeepSpeed's `register_external_parameter`):
    /// ZeRO-3 keeps them gathered while this module runs.
    open var externalParameters: [Tensor] { [] }

    // MARK: Reflection

    /// Direct children with their names (`blocks.0`, `blocks.1`, … for arrays; a `@ModuleInfo`
    /// key instead of the property name when given).
    public func namedChildren() -> [(String, Module)] {
        var out: [(String, Module)] = []
        forEachProperty { name, value, role in
            guard role == nil || role == .module else { return }
            if let m = value as? Module { out.append((name, m)) }
            else if let ms = value as? [Module] { for (i, m) in ms.enumerated() { out.append(("\(name).\(i)", m)) } }
            else if role != nil {
                preconditionFailure("\(type(of: self)).\(name): @ModuleInfo holds a \(type(of: value)), not a Module, Module? or [Module]")
            }
        }
        return out
    }

    /// This module's own parameters (not its children's, not its buffers).
    public func namedOwnParameters() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        forEachProperty { name, value, role in
            guard role == nil || role == .parameter else { return }
            if let t = value as? Tensor { out.append((name, t)) }
            else if role != nil { preconditionFailure("\(type(of: self)).\(name): @ParameterInfo holds a \(type(of: value)), not a Tensor or Tensor?") }
        }
        return out
    }

    /// Every parameter in this module and below, with dotted names, in a stable order.
    public func namedParameters() -> [(String, Tensor)] {
        var out = namedOwnParameters()
        for (name, child) in namedChildren() {
            out += child.namedParameters().map { ("\(name).\($0.0)", $0.1) }
        }
        return out
    }

    /// This module's own `@BufferInfo` tensors with whether each is persistent.
    func namedOwnBufferEntries() -> [(name: String, tensor: Tensor, persistent: Bool)] {
        var out: [(name: String, tensor: Tensor, persistent: Bool)] = []
        forEachProperty { name, value, role in
            guard case .buffer(let persistent)? = role else { return }
            guard let t = value as? Tensor else {
                preconditionFailure("\(type(of: self)).\(name): @BufferInfo holds a \(type(of: value)), not a Tensor or Tensor?")
            }
            out.append((name, t, persistent))
        }
        return out
    }

    /// Every buffer in this module and below with its dotted name and persistence, in a stable order.
    func namedBufferEntries() -> [(name: String, tensor: Tensor, persistent: Bool)] {
        var out = namedOwnBufferEntries()
        for (name, child) in namedChildren() {
            out += child.namedBufferEntries().map { ("\(name).\($0.name)", $0.tensor, $0.persistent) }
        }
        return out
    }

    /// Every `@BufferInfo` tensor in this module and below, with dotted names (PyTorch's
    /// `named_buffers()`); `persistentOnly` leaves out the non-persistent ones.
    ///
    /// ```swift
    /// model.namedBuffers().map(\.0)                        // ["embeddings.position_ids", "rotary.inv_freq"]
    /// model.namedBuffers(persistentOnly: true).map(\.0)    // ["embeddings.position_ids"]
    /// ```
    public func namedBuffers(persistentOnly: Bool = false) -> [(String, Tensor)] {
        namedBufferEntries().filter { !persistentOnly || $0.persistent }.map { ($0.name, $0.tensor) }
    }

    /// The tensors of ``namedBuffers(persistentOnly:)``.
    public func buffers() -> [Tensor] { namedBuffers().map(\.1) }

    /// Every sub-module (depth-first, self first) with dotted names ("" for self).
    public func namedModules() -> [(String, Module)] {
        var out: [(String, Module)] = [("", self)]
        for (name, child) in namedChildren() {
            out += child.namedModules().map { ($0.0.isEmpty ? name : "\(name).\($0.0)", $0.1) }
        }
        return out
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.1) }

    /// Total number of parameter elements.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Calls `body(name, value, role)` for every stored property that can hold state: plain ones
    /// (role nil) by label, skipping labels that start with `_`, and property wrappers by key
    /// (role set; unassigned optionals skipped). Two properties with one name are a caller bug.
    private func forEachProperty(_ body: (String, Any, PropertyRole?) -> Void) {
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let current = m { mirrors.append(current); m = current.superclassMirror }
        var seen: Set<String> = []
        func emit(_ name: String, _ value: Any, _ role: PropertyRole?) {
            precondition(seen.insert(name).inserted,
                         "\(type(of: self)): two properties are named '\(name)' (a @ModuleInfo/@ParameterInfo/@BufferInfo key repeats a name)")
            body(name, value, role)
        }
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard let label = child.label else { continue }
                if label.hasPrefix("_"), let keyed = child.value as? any KeyedProperty {
                    let name = keyed.key ?? String(label.dropFirst())
                    guard let value = keyed.reflectedValue else {
                        precondition(keyed.wrapsOptional,
                                     "\(type(of: self)).\(label.dropFirst()): the wrapped property was never assigned")
                        continue
                    }
                    emit(name, value, keyed.role)
                } else if !label.hasPrefix("_"), label != "forwardPreHooks", label != "forwardPostHooks",
                          child.value is Tensor || child.value is Module || child.value is [Module] {
                    emit(label, child.value, nil)
                }
            }
        }
    }

    // MARK: Modes and gradients

    /// Sets training mode on this module and every descendant.
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = on }
    }

    /// Evaluation mode (dropout off).
    public func eval() { train(false) }

    /// Clears every parameter's `.grad`.
    public func zeroGrad() {
        for p in parameters() { p.grad = nil }
    }

    /// Moves every parameter and buffer to `device` in place (same tensor objects).
    ///
    /// ```swift
    /// model.to(.cpu(threads: 4))
    /// ```
    public func to(_ device: Device) {
        for p in parameters() + buffers() where p.device != device {
            let moved = noGrad { p.to(device) }
            p.rebind(storage: moved.storage, offset: moved.offset)
        }
    }
}
