// The dynamic tape: each op records a GradNode (inputs + backward closure) on its output; backward()
// walks the graph in reverse topological order. Invariant: a tensor's gradient is complete before its
// node runs, because every consumer precedes it in the order; a leaf fires onGradReady exactly once.

/// Whether ops record gradients in the current task or thread.
public enum GradMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording gradients (PyTorch's `torch.no_grad()`).
///
/// ```swift
/// let y = noGrad { model(x) }   // y.requiresGrad == false
/// ```
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false) { try body() }
}

/// One recorded op: the inputs it read and how to turn the output's gradient into theirs.
package final class GradNode {
    /// Backward closure: `(gradOutput, needsGrad per input) -> grad per input` (nil = none).
    package typealias Backward = (_ gradOutput: Tensor, _ needs: [Bool]) -> [Tensor?]

    package let name: String
    package let inputs: [Tensor]
    /// Released after it runs, freeing the activations it captured.
    package var backward: Backward?

    init(name: String, inputs: [Tensor], backward: @escaping Backward) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

extension Tensor {
    /// Attaches a backward rule to `output` when grad mode is on and an input needs a gradient.
    /// Every differentiable op ends with this call, its backward written right beside its forward.
    /// A closure that needs `output` must capture it `[unowned output]` (it lives in output.gradFn).
    package static func record(_ name: String, _ output: Tensor, inputs: [Tensor],
                               backward: @escaping GradNode.Backward) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: \.requiresGrad) else { return output }
        output.requiresGrad = true
        output.gradFn = GradNode(name: name, inputs: inputs, backward: backward)
        return output
    }

    /// The name of the op that produced this tensor, if it was recorded.
    public var gradFnName: String? { gradFn?.name }

    /// Returns this tensor's data with no gradient history (shares storage).
    public func detach() -> Tensor { view(shape) }

    /// Back-propagates from this tensor, accumulating `.grad` into every leaf that requires it.
    ///
    /// - Parameters:
    ///   - gradient: d(objective)/d(self); omit for a scalar, where it is 1.
    ///   - retainGraph: keep the saved activations so `backward` can run through this graph again.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
        precondition(requiresGrad, "backward: tensor does not require grad (was it made under noGrad, or from leaves without requiresGrad?)")
        if gradient == nil {
            precondition(count == 1, "backward: gradient can be implied only for a scalar, not shape \(shape)")
        }
        let seed = gradient ?? Tensor.full(shape, 1, dtype: dtype, device: device)
        precondition(seed.shape == shape, "backward: gradient shape \(seed.shape) != tensor shape \(shape)")

        if isLeaf {
            Tensor.accumulateLeaf(self, seed)
            return
        }
        let (order, consumers) = topologicalOrder()
        var pending = consumers
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]

        for node in order {
            guard let fn = node.gradFn else { continue }
            guard let rule = fn.backward else {
                preconditionFailure("backward: the graph through '\(fn.name)' was already freed; pass retainGraph: true to the first backward")
            }
            var inputGrads = [Tensor?](repeating: nil, count: fn.inputs.count)
            if let g = grads.removeValue(forKey: ObjectIdentifier(node)) {
                inputGrads = noGrad { rule(g, fn.inputs.map(\.requiresGrad)) }
            }
            if !retainGraph { fn.backward = nil }
            precondition(inputGrads.count == fn.inputs.count, "backward: '\(fn.name)' returned \(inputGrads.count) gradients for \(fn.inputs.count) inputs")
            for (input, ig) in zip(fn.inputs, inputGrads) where input.requiresGrad {
                let iid = ObjectIdentifier(input)
                if let ig {
                    precondition(ig.shape == input.shape,
                                 "backward: '\(fn.name)' produced gradient \(ig.shape) for input \(input.shape)")
                    if let acc = grads[iid] { grads[iid] = acc.adding(ig) } else { grads[iid] = ig }
                }
                pending[iid, default: 1] -= 1
                if input.isLeaf && pending[iid] == 0, let total = grads.removeValue(forKey: iid) {
                    Tensor.accumulateLeaf(input, total)
                }
            }
        }
    }

    /// Adds `g` into `leaf.grad` (allocating it on first use, in the leaf's dtype; an existing
    /// `.grad` keeps its own dtype, e.g. fp32 accumulation for bf16 weights) and fires the hook.
    private static func accumulateLeaf(_ leaf: Tensor, _ g: Tensor) {
        noGrad {
            if let existing = leaf.grad {
                precondition(existing.shape == leaf.shape, "backward: .grad has shape \(existing.shape) but the tensor is \(leaf.shape)")
                let g = g.dtype == existing.dtype ? g : g.cast(to: existing.dtype)
                existing.backend.binary(.add, existing, g, into: existing)
            } else {
                leaf.grad = g.dtype == leaf.dtype ? g.copy() : g.cast(to: leaf.dtype)
            }
        }
        leaf.onGradReady?(leaf)
    }

    /// Non-leaf tensors reachable from `self` (root first) and how many recorded uses each tensor has.
    private func topologicalOrder() -> ([Tensor], [ObjectIdentifier: Int]) {
        var post: [Tensor] = []
        var consumers: [ObjectIdentifier: Int] = [:]
        var visited: Set<ObjectIdentifier> = []
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            let id = ObjectIdentifier(t)
            if expanded { post.append(t); continue }
            if visited.contains(id) { continue }
            visited.insert(id)
            guard let fn = t.gradFn else { continue }
            stack.append((t, true))
            for input in fn.inputs where input.requiresGrad {
                consumers[ObjectIdentifier(input), default: 0] += 1
                if !visited.contains(ObjectIdentifier(input)) { stack.append((input, false)) }
            }
        }
        return (post.reversed(), consumers)
    }
}
