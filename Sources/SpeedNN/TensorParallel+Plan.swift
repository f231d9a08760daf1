// DeepSpeed-AutoTP-style name rules for a custom model: its Linear layers matched by name (suffix or regex) and split
// column- or row-parallel, and the one entry point that shards any model (its own rules, or a plan).
// Invariant: a plan checks every rule and every matched layer's size before it shards anything, so a refused plan
// leaves the model whole; each Linear takes the first rule that matches it.

import SpeedCore

/// One name rule: the `Linear` layers it matches and how they are split.
///
/// ```swift
/// let rules: [TensorParallelRule] = [.suffix("up", .column), .regex(#"blocks\.\d+\.down"#, .row)]
/// ```
public struct TensorParallelRule: Sendable, Equatable, CustomStringConvertible {
    public enum Pattern: Sendable, Equatable {
        /// The module name is `name` or ends in `.name` (`"fc1"` matches `mlp.fc1`, not `mlp.xfc1`).
        case suffix(String)
        /// The whole module name matches the regular expression.
        case regex(String)
    }

    public var pattern: Pattern
    public var style: TensorParallelStyle

    public init(_ pattern: Pattern, _ style: TensorParallelStyle) {
        self.pattern = pattern
        self.style = style
    }

    public static func suffix(_ name: String, _ style: TensorParallelStyle) -> TensorParallelRule { .init(.suffix(name), style) }
    public static func regex(_ pattern: String, _ style: TensorParallelStyle) -> TensorParallelRule { .init(.regex(pattern), style) }

    public var description: String {
        switch pattern {
        case .suffix(let s): "suffix \"\(s)\" → \(style)"
        case .regex(let r): "regex \"\(r)\" → \(style)"
        }
    }
}

/// Name rules for a model whose only sharded layers are `Linear`s (an MLP-like custom model): each matching layer is
/// split column- or row-parallel, everything else stays whole (replicated). A model with attention or a vocabulary
/// to split conforms to ``TensorParallelShardable`` instead, which is the primary way to give a model AutoTP rules.
///
/// A column-parallel layer's output is sharded, so the next matched layer must be row-parallel (Megatron's MLP pair),
/// and only elementwise ops may sit between them.
///
/// ```swift
/// let plan = TensorParallelPlan([.suffix("linear1", .column), .suffix("linear2", .row)])
/// try plan.shard(model, comm)   // SimpleModel: 2048 hidden features split over comm.size ranks
/// ```
public struct TensorParallelPlan: Sendable {
    public var rules: [TensorParallelRule]

    public init(_ rules: [TensorParallelRule]) { self.rules = rules }

    /// The `Linear` layers of `module` each rule gives a style, by module name (first matching rule wins).
    /// - Throws: ``TensorParallelError`` for a regex that does not compile or a rule that matches no `Linear`.
    public func assignments(in module: Module) throws -> [(name: String, layer: Linear, style: TensorParallelStyle)] {
        let linears = module.namedModules().compactMap { name, m in (m as? Linear).map { (name, $0) } }
        var matchers: [(String) -> Bool] = []
        for rule in rules {
            switch rule.pattern {
            case .suffix(let s):
                matchers.append { $0 == s || $0.hasSuffix("." + s) }
            case .regex(let r):
                let regex: Regex<AnyRegexOutput>
                do { regex = try Regex(r) } catch {
                    throw TensorParallelError("TensorParallelPlan: rule \(rule) is not a valid regular expression (\(error))")
                }
                matchers.append { (try? regex.wholeMatch(in: $0)) != nil }
            }
        }
        var used = Array(repeating: false, count: rules.count)
        var out: [(name: String, layer: Linear, style: TensorParallelStyle)] = []
        for (name, layer) in linears {
            let hits = matchers.indices.filter { matchers[$0](name) }
            guard let first = hits.first else { continue }
            for i in hits { used[i] = true }
            out.append((name, layer, rules[first].style))
        }
        if let unused = used.firstIndex(of: false) {
            let names = linears.map(\.0)
            throw TensorParallelError("TensorParallelPlan: rule \(rules[unused]) matches no Linear layer of \(type(of: module)); its Linear layers are \(names.isEmpty ? "none" : names.joined(separator: ", "))")
        }
        return out
    }

    /// Shards every matched layer of `module` over `comm` (nothing when `comm.size` is 1).
    /// - Throws: ``TensorParallelError`` naming the layer and the sizes when a split feature count does not divide by
    ///   `comm.size` (before any layer is changed), or for a rule as ``assignments(in:)`` says.
    public func shard(_ module: Module, _ comm: any TensorParallelCommunicator) throws {
        let matched = try assignments(in: module)
        guard comm.size > 1 else { return }
        for (name, layer, style) in matched {
            let axis = style == .column ? 0 : 1
            let n = layer.weight.shape[axis]
            guard n % comm.size == 0 else {
                let what = style == .column ? "output" : "input"
                throw TensorParallelError("\(name): \(n) \(what) features (weight \(layer.weight.shape)) do not split into \(comm.size) tensor-parallel shards for a \(style)-parallel layer; choose an autotp_size that divides \(n)")
            }
            guard layer.tensorParallel == nil else {
                throw TensorParallelError("\(name) is already tensor-parallel sharded; shard a model once")
            }
        }
        for (name, layer, style) in matched { try layer.shard(style, comm, name: name) }
    }
}

extension Module {
    /// AutoTP's entry point (what `initialize` calls for `tensor_parallel.autotp_size`): shards this model over
    /// `comm` by `plan` when one is given, else by its own rules (``TensorParallelShardable``); nothing when
    /// `comm.size` is 1.
    ///
    /// ```swift
    /// try model.applyTensorParallel(comm)                                                   // a GPT-2, BERT, Llama …
    /// try custom.applyTensorParallel(comm, plan: TensorParallelPlan([.suffix("fc1", .column), .suffix("fc2", .row)]))
    /// ```
    /// - Throws: ``TensorParallelError`` for a model with no rules (naming its type and both ways to give it some),
    ///   a model already sharded, or a size that does not split (naming the layer and the sizes).
    public func applyTensorParallel(_ comm: any TensorParallelCommunicator, plan: TensorParallelPlan? = nil) throws {
        guard comm.size > 1 else { return }
        guard tensorParallelCommunicator() == nil else {
            throw TensorParallelError("\(type(of: self)) is already tensor-parallel sharded; shard a model once (before initialize, or by autotp_size, not both)")
        }
        if let plan { return try plan.shard(self, comm) }
        guard let shardable = self as? any TensorParallelShardable else {
            throw TensorParallelError("\(type(of: self)) has no tensor-parallel rules for autotp_size \(comm.size): conform it to TensorParallelShardable, or pass a TensorParallelPlan of name rules for its Linear layers")
        }
        try shardable.shardForTensorParallel(comm)
    }
}
