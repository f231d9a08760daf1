// @ModuleInfo/@ParameterInfo give a module property an explicit state-dict key (MLX's wrappers); @BufferInfo marks a buffer.
// Invariant: reflection reads a wrapper through its `_name` storage, under its key (default: the name without `_`).

import SpeedCore

/// What a wrapped property contributes to its module.
enum PropertyRole: Equatable {
    case module, parameter, buffer(persistent: Bool)
}

/// A wrapper reflection reads: its key, its role, and the value it holds.
protocol KeyedProperty {
    var key: String? { get }
    var role: PropertyRole { get }
    /// The wrapped value, nil when it was never assigned (or is a nil optional).
    var reflectedValue: Any? { get }
    /// Whether the wrapped type is an optional, so an unassigned value just means nil.
    var wrapsOptional: Bool { get }
}

/// Lets generic code make the nil of an optional `Value`.
protocol OptionalValue { static var noValue: Self { get } }
extension Optional: OptionalValue { static var noValue: Self { .none } }

/// The value of a wrapper declared without one (`@ModuleInfo(key: "x") var x: Linear`) until it is
/// assigned; an optional type starts as nil.
struct WrapperSlot<Value> {
    var value: Value?

    init(_ value: Value?) {
        self.value = value ?? (Value.self as? any OptionalValue.Type).map { $0.noValue as! Value }
    }

    func get(_ wrapper: String, _ key: String?) -> Value {
        guard let value else {
            preconditionFailure("@\(wrapper)(key: \(key.map { "\"\($0)\"" } ?? "nil")) read before a value was assigned; assign `_name.wrappedValue = …` before super.init() or `name = …` after it")
        }
        return value
    }

    var reflected: Any? { value.flatMap { Self.unwrap($0) } }
    var isOptional: Bool { Value.self is any OptionalValue.Type }

    /// `value` as Any, nil for a nil optional.
    private static func unwrap(_ value: Value) -> Any? {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional { return mirror.children.first.map(\.value) }
        return value
    }
}

/// Gives a sub-module property an explicit name in parameter paths, like MLX's `@ModuleInfo`:
/// `Module`, `Module?` and `[Module]` (named `key.0`, `key.1`, …) all work.
///
/// Without a key the property's own name is used. Declared without a value, the module is
/// assigned in `init`: `_name.wrappedValue = …` before `super.init()`, or `name = …` after it.
///
/// ```swift
/// final class Attention: Module {
///     @ModuleInfo(key: "c_attn") var cAttn: Linear
///     @ModuleInfo(key: "c_proj") var cProj: Linear
///     init(rng: inout RandomStream) {
///         super.init()
///         cAttn = Linear(8, 24, rng: &rng)
///         cProj = Linear(8, 8, rng: &rng)
///     }
/// }
/// attention.namedParameters().map(\.0)   // ["c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"]
/// ```
@propertyWrapper
public struct ModuleInfo<Value> {
    var slot: WrapperSlot<Value>
    /// The name used in parameter paths; nil: the property's name.
    public let key: String?

    public var wrappedValue: Value {
        get { slot.get("ModuleInfo", key) }
        set { slot.value = newValue }
    }

    public init(wrappedValue: Value, key: String? = nil) {
        slot = WrapperSlot(wrappedValue)
        self.key = key
    }

    /// No value yet: assign it in the module's `init`.
    public init(key: String? = nil) {
        slot = WrapperSlot(nil)
        self.key = key
    }
}

/// Gives a parameter property (`Tensor` or `Tensor?`) an explicit name, like MLX's `@ParameterInfo`.
///
/// ```swift
/// final class Scale: Module {
///     @ParameterInfo(key: "weight") var gamma: Tensor
///     init(_ dim: Int) {
///         super.init()
///         gamma = Tensor.ones([dim], requiresGrad: true)
///     }
/// }
/// Scale(4).namedParameters().map(\.0)   // ["weight"]
/// ```
@propertyWrapper
public struct ParameterInfo<Value> {
    var slot: WrapperSlot<Value>
    /// The parameter's name; nil: the property's name.
    public let key: String?

    public var wrappedValue: Value {
        get { slot.get("ParameterInfo", key) }
        set { slot.value = newValue }
    }

    public init(wrappedValue: Value, key: String? = nil) {
        slot = WrapperSlot(wrappedValue)
        self.key = key
    }

    /// No value yet: assign it in the module's `init`.
    public init(key: String? = nil) {
        slot = WrapperSlot(nil)
        self.key = key
    }
}

/// Marks a `Tensor` (or `Tensor?`) property as a buffer, PyTorch's `register_buffer`: module state
/// that is not trained, e.g. position ids, a rotary `inv_freq` table or running statistics.
///
/// A buffer is not in ``Module/parameters()`` (no gradient, no optimizer state, not partitioned
/// by ZeRO) but is listed by ``Module/namedBuffers(persistentOnly:)`` and moved by
/// ``Module/to(_:)``. A persistent buffer (the default) is saved by ``Module/stateDict()`` and
/// loaded by ``Module/load(stateDict:strict:)``; a non-persistent one (`persistent: false`, like
/// `register_buffer(..., persistent=False)`) is neither, so checkpoints without it load cleanly.
/// A buffer should not require grad. The engine casts floating-point buffers to the model dtype,
/// as DeepSpeed's `module.half()` does.
///
/// ```swift
/// final class Positions: Module {
///     @BufferInfo(key: "position_ids") var positionIds = Tensor((0..<16).map { $0 })
///     @BufferInfo(key: "inv_freq", persistent: false) var invFreq = Tensor.ones([4])
/// }
/// Positions().namedBuffers().map(\.0)    // ["position_ids", "inv_freq"]
/// Positions().stateDict().keys           // ["position_ids"]
/// ```
@propertyWrapper
public struct BufferInfo<Value> {
    var slot: WrapperSlot<Value>
    /// The buffer's name; nil: the property's name.
    public let key: String?
    /// Whether ``Module/stateDict()`` saves it and ``Module/load(stateDict:strict:)`` expects it.
    public let persistent: Bool

    public var wrappedValue: Value {
        get { slot.get("BufferInfo", key) }
        set { slot.value = newValue }
    }

    public init(wrappedValue: Value, key: String? = nil, persistent: Bool = true) {
        slot = WrapperSlot(wrappedValue)
        self.key = key
        self.persistent = persistent
    }

    /// No value yet: assign it in the module's `init`.
    public init(key: String? = nil, persistent: Bool = true) {
        slot = WrapperSlot(nil)
        self.key = key
        self.persistent = persistent
    }
}

extension ModuleInfo: KeyedProperty {
    var role: PropertyRole { .module }
    var reflectedValue: Any? { slot.reflected }
    var wrapsOptional: Bool { slot.isOptional }
}

extension ParameterInfo: KeyedProperty {
    var role: PropertyRole { .parameter }
    var reflectedValue: Any? { slot.reflected }
    var wrapsOptional: Bool { slot.isOptional }
}

extension BufferInfo: KeyedProperty {
    var role: PropertyRole { .buffer(persistent: persistent) }
    var reflectedValue: Any? { slot.reflected }
    var wrapsOptional: Bool { slot.isOptional }
}
