// The Module base class: parameters and children found by reflection, with stable dotted names.
// Invariant: names follow stored-property declaration order (superclass first), arrays index as
// `name.i`, so `namedParameters()` order and names are identical across runs and processes.

import SpeedCore

/// A neural-network building block, like `torch.nn.Module`.
///
/// Subclasses declare parameters as stored `Tensor` (or `Tensor?`) properties and sub-modules as
/// stored `Module`, `[Module]` or `Module?` properties; both are found automatically.
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
    /// Called with the module before each ``callAsFunction(_:)`` (ZeRO-3 gathers parameters here).
    public var forwardPreHooks: [(Module) -> Void] = []
    /// Called with the module and its output after each call; returns the output to pass on
    /// (ZeRO-3 releases parameters here and wraps the output so backward gathers them again).
    public var forwardPostHooks: [(Module, Tensor) -> Tensor] = []

    public init() {}

    /// The computation. Override in subclasses; call the module itself (`m(x)`) to run hooks too.
    open func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(type(of: self)) does not override forward(_:)")
    }

    /// Runs the pre-hooks, ``forward(_:)``, then the post-hooks.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        for hook in forwardPreHooks { hook(self) }
        var out = forward(input)
        for hook in forwardPostHooks { out = hook(self, out) }
        return out
    }

    /// Parameters of other modules that this module's forward reads directly, e.g. a tied output
    /// projection reading the embedding's weight (DeepSpeed's `register_external_parameter`):
    /// ZeRO-3 keeps them gathered while this module runs.
    open var externalParameters: [Tensor] { [] }

    // MARK: Reflection

    /// Direct children with their property names (`blocks.0`, `blocks.1`, … for arrays).
    public func namedChildren() -> [(String, Module)] {
        var out: [(String, Module)] = []
        forEachProperty { label, value in
            if let m = value as? Module { out.append((label, m)) }
            else if let ms = value as? [Module] { for (i, m) in ms.enumerated() { out.append(("\(label).\(i)", m)) } }
        }
        return out
    }

    /// This module's own tensors (not its children's).
    public func namedOwnParameters() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        forEachProperty { label, value in
            if let t = value as? Tensor { out.append((label, t)) }
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

    private func forEachProperty(_ body: (String, Any) -> Void) {
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let current = m { mirrors.append(current); m = current.superclassMirror }
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard let label = child.label, !label.hasPrefix("_"), label != "forwardPreHooks",
                      label != "forwardPostHooks" else { continue }
                body(label, child.value)
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

    /// Moves every parameter to `device` in place (same tensor objects).
    public func to(_ device: Device) {
        for p in parameters() where p.device != device {
            let moved = noGrad { p.to(device) }
            p.rebind(storage: moved.storage, offset: moved.offset)
        }
    }
}
