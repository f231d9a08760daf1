// Named inputs and outputs of a module call (Hugging Face's keyword arguments and ModelOutput).
// Invariant: keys are unique and keep insertion order; setting an existing key keeps its place, setting nil removes it.

import SpeedCore

/// Ordered, unique-keyed tensors: the storage ``ModuleInputs`` and ``ModuleOutputs`` share.
struct OrderedTensors {
    private(set) var entries: [(key: String, value: Tensor)] = []

    init() {}

    init<S: Sequence>(_ pairs: S, kind: String) where S.Element == (String, Tensor) {
        for (key, value) in pairs {
            precondition(self[key] == nil, "\(kind): key '\(key)' given twice (keys: \(entries.map(\.key) + [key]))")
            entries.append((key, value))
        }
    }

    subscript(key: String) -> Tensor? {
        get { entries.first { $0.key == key }?.value }
        set {
            let i = entries.firstIndex { $0.key == key }
            switch (i, newValue) {
            case let (i?, value?): entries[i].value = value
            case let (i?, nil): entries.remove(at: i)
            case let (nil, value?): entries.append((key, value))
            case (nil, nil): break
            }
        }
    }
}

/// The named tensors a module is called with, in order: Hugging Face's `input_ids`,
/// `attention_mask`, `token_type_ids`, … keyword arguments.
///
/// Keys are unique and keep the order they were added in. The typed accessors read and write the
/// Hugging Face names; any other name works through the subscript.
///
/// ```swift
/// var inputs: ModuleInputs = ["input_ids": ids, "attention_mask": mask]
/// inputs.tokenTypeIds = types          // appended as "token_type_ids"
/// inputs.keys                          // ["input_ids", "attention_mask", "token_type_ids"]
/// let out = bert(inputs)               // ModuleOutputs
/// ```
public struct ModuleInputs: Sequence, ExpressibleByDictionaryLiteral {
    /// The key a lone tensor goes under when a single-tensor call reaches
    /// `Module.forward(_: ModuleInputs)`: `"input"`.
    public static let singleKey = "input"

    var storage: OrderedTensors

    /// No inputs.
    public init() { storage = OrderedTensors() }

    /// `pairs` in order; a key given twice is a caller bug.
    public init<S: Sequence>(_ pairs: S) where S.Element == (String, Tensor) {
        storage = OrderedTensors(pairs, kind: "ModuleInputs")
    }

    public init(dictionaryLiteral elements: (String, Tensor)...) { self.init(elements) }

    /// One tensor under ``singleKey``.
    public init(_ input: Tensor) { self.init([(Self.singleKey, input)]) }

    /// The usual Hugging Face encoder inputs; nil arguments are left out.
    ///
    /// ```swift
    /// let inputs = ModuleInputs(inputIds: ids, attentionMask: mask, labels: targets)
    /// ```
    public init(inputIds: Tensor, attentionMask: Tensor? = nil, tokenTypeIds: Tensor? = nil,
                positionIds: Tensor? = nil, labels: Tensor? = nil) {
        self.init()
        self.inputIds = inputIds
        self.attentionMask = attentionMask
        self.tokenTypeIds = tokenTypeIds
        self.positionIds = positionIds
        self.labels = labels
    }

    /// The tensor under `key`; assigning nil removes it, assigning to a new key appends it.
    public subscript(key: String) -> Tensor? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    /// The keys in order.
    public var keys: [String] { storage.entries.map(\.key) }
    /// The tensors in key order.
    public var tensors: [Tensor] { storage.entries.map(\.value) }
    public var count: Int { storage.entries.count }
    public var isEmpty: Bool { storage.entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: Tensor)]> { storage.entries.makeIterator() }

    /// The same keys with `transform` applied to every tensor.
    public func mapTensors(_ transform: (Tensor) throws -> Tensor) rethrows -> ModuleInputs {
        ModuleInputs(try storage.entries.map { ($0.key, try transform($0.value)) })
    }

    /// `"input_ids"`: token ids `[batch, time]` (int32/int64).
    public var inputIds: Tensor? { get { self["input_ids"] } set { self["input_ids"] = newValue } }
    /// `"attention_mask"`: 1 for tokens to attend to, 0 for padding.
    public var attentionMask: Tensor? { get { self["attention_mask"] } set { self["attention_mask"] = newValue } }
    /// `"token_type_ids"`: segment ids (BERT's sentence A / B).
    public var tokenTypeIds: Tensor? { get { self["token_type_ids"] } set { self["token_type_ids"] = newValue } }
    /// `"position_ids"`: explicit positions, when not `0..<time`.
    public var positionIds: Tensor? { get { self["position_ids"] } set { self["position_ids"] = newValue } }
    /// `"labels"`: targets; a model given them returns a `loss`.
    public var labels: Tensor? { get { self["labels"] } set { self["labels"] = newValue } }
    /// `"inputs_embeds"`: embeddings given instead of `input_ids`.
    public var inputsEmbeds: Tensor? { get { self["inputs_embeds"] } set { self["inputs_embeds"] = newValue } }
}

/// The named tensors a module call returns, in order: Hugging Face's `ModelOutput`
/// (`loss`, `logits`, `hidden_states`, …).
///
/// Keys are unique and keep insertion order. A module that only overrides the single-tensor
/// `Module.forward(_: Tensor)` returns its tensor under ``singleKey`` (`"output"`).
///
/// ```swift
/// var out = ModuleOutputs()
/// out.logits = logits
/// out.loss = logits.crossEntropy(targets: labels)
/// out.keys                          // ["logits", "loss"]
/// try engine.backward(out.loss!)
/// ```
public struct ModuleOutputs: Sequence, ExpressibleByDictionaryLiteral {
    /// The key a single-tensor forward's result goes under: `"output"`.
    public static let singleKey = "output"

    var storage: OrderedTensors

    /// No outputs.
    public init() { storage = OrderedTensors() }

    /// `pairs` in order; a key given twice is a caller bug.
    public init<S: Sequence>(_ pairs: S) where S.Element == (String, Tensor) {
        storage = OrderedTensors(pairs, kind: "ModuleOutputs")
    }

    public init(dictionaryLiteral elements: (String, Tensor)...) { self.init(elements) }

    /// One tensor under ``singleKey``.
    public init(_ output: Tensor) { self.init([(Self.singleKey, output)]) }

    /// The tensor under `key`; assigning nil removes it, assigning to a new key appends it.
    public subscript(key: String) -> Tensor? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    /// The keys in order.
    public var keys: [String] { storage.entries.map(\.key) }
    /// The tensors in key order.
    public var tensors: [Tensor] { storage.entries.map(\.value) }
    public var count: Int { storage.entries.count }
    public var isEmpty: Bool { storage.entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: Tensor)]> { storage.entries.makeIterator() }

    /// The same keys with `transform` applied to every tensor.
    public func mapTensors(_ transform: (Tensor) throws -> Tensor) rethrows -> ModuleOutputs {
        ModuleOutputs(try storage.entries.map { ($0.key, try transform($0.value)) })
    }

    /// The only tensor; more or fewer is a caller bug (the message names the keys).
    ///
    /// ```swift
    /// ModuleOutputs(y).single === y     // true
    /// ```
    public var single: Tensor {
        precondition(count == 1, "ModuleOutputs.single: expected exactly one output, got \(count) (keys: \(keys)); read one by name instead")
        return storage.entries[0].value
    }

    /// `"loss"`: the scalar training loss (present when labels were given).
    public var loss: Tensor? { get { self["loss"] } set { self["loss"] = newValue } }
    /// `"logits"`: the prediction scores before softmax.
    public var logits: Tensor? { get { self["logits"] } set { self["logits"] = newValue } }
    /// `"hidden_states"`: hidden states `[batch, time, dim]`.
    public var hiddenStates: Tensor? { get { self["hidden_states"] } set { self["hidden_states"] = newValue } }
    /// `"last_hidden_state"`: the encoder's final hidden states.
    public var lastHiddenState: Tensor? { get { self["last_hidden_state"] } set { self["last_hidden_state"] = newValue } }
}
