// Saving and loading parameters and persistent buffers by name, with errors that list every bad key.
// Invariant: load(stateDict:) validates everything before it copies anything; non-persistent buffers are never saved or expected.

import SpeedCore

/// A mapping from dotted parameter (and persistent buffer) names to tensors.
public typealias StateDict = [String: Tensor]

/// Why a state dict could not be loaded.
public struct StateDictError: Error, CustomStringConvertible, Equatable {
    public var missing: [String] = []
    public var unexpected: [String] = []
    /// (name, expected shape, found shape)
    public var mismatched: [String] = []

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing keys: \(missing.joined(separator: ", "))") }
        if !unexpected.isEmpty { parts.append("unexpected keys: \(unexpected.joined(separator: ", "))") }
        if !mismatched.isEmpty { parts.append("shape mismatches: \(mismatched.joined(separator: "; "))") }
        return "load(stateDict:) failed — " + parts.joined(separator: "; ")
            + ". Check that the checkpoint was saved from the same model configuration (or pass strict: false to skip missing/unexpected keys)."
    }
}

extension Module {
    /// Parameters, then persistent buffers, by name: what ``stateDict()`` saves and
    /// ``load(stateDict:strict:)`` expects.
    func stateEntries() -> [(String, Tensor)] {
        namedParameters() + namedBuffers(persistentOnly: true)
    }

    /// Parameters and persistent buffers by name; the tensors share storage with the module (like
    /// PyTorch's `state_dict()`). Non-persistent buffers are left out.
    ///
    /// ```swift
    /// let saved = model.stateDict()       // e.g. "fc1.weight", "embeddings.position_ids"
    /// ```
    public func stateDict() -> StateDict {
        Dictionary(uniqueKeysWithValues: stateEntries().map { ($0.0, $0.1.detach()) })
    }

    /// Copies values from `stateDict` into this module's parameters and persistent buffers
    /// (converting dtype and device).
    ///
    /// A non-persistent buffer is never missing; a key for one in `stateDict` is unexpected, as
    /// in PyTorch.
    ///
    /// - Parameter strict: when true (default), missing and unexpected keys are errors; shape
    ///   mismatches are always errors.
    /// - Throws: ``StateDictError`` naming every problem; nothing is copied when it throws.
    ///
    /// ```swift
    /// try twin.load(stateDict: model.stateDict())
    /// ```
    public func load(stateDict: StateDict, strict: Bool = true) throws {
        let entries = stateEntries()
        let names = Set(entries.map(\.0))
        var error = StateDictError()
        for (name, p) in entries {
            guard let src = stateDict[name] else { if strict { error.missing.append(name) }; continue }
            if src.shape != p.shape { error.mismatched.append("\(name): model \(p.shape), state dict \(src.shape)") }
        }
        if strict { error.unexpected = stateDict.keys.filter { !names.contains($0) }.sorted() }
        guard error.missing.isEmpty && error.unexpected.isEmpty && error.mismatched.isEmpty else { throw error }
        for (name, p) in entries {
            if let src = stateDict[name] { p.copyData(from: src) }
        }
    }
}
