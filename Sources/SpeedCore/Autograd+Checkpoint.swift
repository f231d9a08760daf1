// Activation checkpointing (DeepSpeed's `checkpointing.checkpoint`): run a function without keeping its
// activations and recompute them in backward. Invariant: the recompute sees the inputs and the preserved
// state (RNG streams) exactly as the original forward did, and leaves that state as it found it.

/// A piece of mutable state that ``checkpoint(_:saveInputsOn:preserving:parameters:_:)`` snapshots
/// before the forward pass and replays for the recompute: typically a dropout layer's
/// `RandomStream`, so the recomputed masks equal the original ones.
///
/// SpeedCore has no global random generator (every stream is a value someone owns), so the owner
/// says how to read and write its state:
///
/// ```swift
/// final class Box { var rng = RandomStream(seed: 7) }
/// let box = Box()
/// let state = PreservedState(get: { box.rng }, set: { box.rng = $0 })
/// let y = checkpoint([x], preserving: [state]) { xs in xs[0].dropout(0.1, rng: &box.rng) }
/// ```
public struct PreservedState {
    /// Reads the current value and returns a closure that writes it back.
    let capture: () -> () -> Void

    /// - Parameters:
    ///   - get: reads the state (called when a snapshot is taken).
    ///   - set: writes a snapshot back.
    public init<Value>(get: @escaping () -> Value, set: @escaping (Value) -> Void) {
        capture = {
            let value = get()
            return { set(value) }
        }
    }
}

/// Runs `body(inputs)` without keeping its intermediate activations, and recomputes them when the
/// gradient is needed (DeepSpeed's `deepspeed.checkpointing.checkpoint`, PyTorch's reentrant
/// `torch.utils.checkpoint`). Memory for the activations inside `body` is traded for one extra
/// forward pass of `body` during backward.
///
/// The output carries one recorded op, `"checkpoint"`. Its backward:
/// 1. snapshots the `preserving` state as it is now and puts back the state from before the
///    original forward (so dropout draws the same masks);
/// 2. re-runs `body` with gradients on, on detached copies of the saved inputs whose
///    `requiresGrad` matches the originals;
/// 3. back-propagates the incoming gradient through that recomputed graph — this accumulates the
///    gradients of every leaf `body` reads (a module's weights) into their `.grad`, as a plain
///    backward would, and fires their `onGradReady` — and returns the inputs' gradients (nil for
///    inputs that do not require grad);
/// 4. restores the `preserving` state snapshotted in step 1, so the recompute leaves no trace.
///
/// Under `noGrad`, or when neither `inputs` nor `parameters` require grad, `body` simply runs.
///
/// - Parameters:
///   - inputs: the tensors `body` reads that gradients flow back to (activations).
///   - saveInputsOn: keep a copy of the inputs on this device for the recompute (DeepSpeed's
///     `cpu_checkpointing` passes `.cpu`); they are copied back to each input's device when
///     backward runs. nil keeps the inputs themselves (no copy). The copy is taken even when the
///     device compares equal, so in-place changes to an input after the forward do not reach the
///     recompute.
///   - preserving: state to replay for the recompute (dropout streams); see ``PreservedState``.
///   - parameters: leaves `body` reads besides `inputs` (a module's weights). They decide only
///     whether the output requires grad when no input does; gradients reach them either way
///     through the recomputed graph. Without them, a checkpoint whose inputs need no gradient
///     (e.g. raw data) would drop its weights' gradients, as PyTorch's reentrant checkpoint does.
///   - body: the function to checkpoint. It must be deterministic given its inputs and the
///     preserved state, and must not capture its own output.
/// - Returns: `body(inputs)`, with one recorded op when gradients are being recorded.
///
/// ```swift
/// let w = Tensor.randn([16, 16], rng: &rng); w.requiresGrad = true
/// let x = Tensor.randn([8, 16], rng: &rng); x.requiresGrad = true
/// let y = checkpoint([x]) { xs in Tensor.matmul(xs[0], w).tanh().matmul(w).tanh() }
/// y.sum().backward()         // recomputes both tanh layers, then x.grad and w.grad are set
/// ```
///
/// - Note: A leaf read both inside and outside a checkpoint (or by two checkpoints) gets its
///   gradient in several parts within one `backward()`, and its `onGradReady` fires once per part,
///   as with DeepSpeed's reentrant checkpointing. A module's weights used only inside its own
///   checkpointed call (a transformer block) fire once.
/// - Note: The recorded op holds the input tensors (the graph needs them), so `saveInputsOn`
///   changes where the saved copy lives but frees no memory of an input that something else
///   still holds; on the CPU backend it only costs a copy.
public func checkpoint(_ inputs: [Tensor], saveInputsOn device: Device? = nil,
                       preserving state: [PreservedState] = [], parameters: [Tensor] = [],
                       _ body: @escaping ([Tensor]) -> Tensor) -> Tensor {
    guard GradMode.isEnabled,
          inputs.contains(where: \.requiresGrad) || parameters.contains(where: \.requiresGrad) else {
        return body(inputs)
    }
    let beforeForward = state.map { $0.capture() }
    let saved: [Tensor] = noGrad {
        inputs.map { x in
            guard let device else { return x }
            return device == x.device ? x.copy() : x.to(device)
        }
    }
    let result = noGrad { body(inputs) }
    // A fresh tensor object carries the node, never an input or a tensor `body` captured.
    let output = result.detach()
    output.requiresGrad = true
    output.gradFn = GradNode(name: "checkpoint", inputs: inputs) { gradOutput, needs in
        let beforeRecompute = state.map { $0.capture() }
        for restore in beforeForward { restore() }
        defer { for restore in beforeRecompute { restore() } }
        let detached = saved.indices.map { i in
            let x = saved[i].to(inputs[i].device).detach()
            x.requiresGrad = needs[i]
            return x
        }
        // The outer backward runs rules under noGrad; the recompute must record.
        let recomputed = GradMode.$isEnabled.withValue(true) { body(detached) }
        guard recomputed.requiresGrad else { return detached.map { _ in nil } }
        // An inner backward: it walks only the recomputed subgraph, whose leaves are the detached
        // inputs and the weights `body` read, so it cannot touch the outer traversal's tensors.
        recomputed.backward(gradOutput)
        return detached.map { $0.requiresGrad ? $0.grad : nil }
    }
    return output
}

/// ``checkpoint(_:saveInputsOn:preserving:parameters:_:)`` for a function with several outputs
/// (a model returning loss and logits): runs `body(inputs)` without keeping its activations, and
/// in backward recomputes it once and back-propagates every output's gradient through the
/// recomputed graph together.
///
/// Autograd nodes have one output each, so the outputs share one hidden node: each
/// floating-point output gets a node that stashes its incoming gradient and passes a zero to a
/// one-element token; the token carries the `"checkpoint"` node, which autograd runs once, after
/// every output node reachable from the loss (a tensor's node runs after all its consumers). It
/// recomputes `body` and starts one backward from all the recomputed outputs that got a gradient
/// and require one, seeded with the stashed gradients exactly (no extra arithmetic), so the
/// gradients equal a plain call's. Outputs that are not floating point (ids, masks) come back
/// without gradient history; an output no gradient reached simply contributes none.
///
/// - Returns: `body(inputs)`, each floating-point output carrying one `"checkpoint_output"` op
///   when gradients are being recorded.
///
/// ```swift
/// let outs = checkpoint([x]) { xs in
///     let h = Tensor.matmul(xs[0], w).tanh()
///     return [h, h.square().mean()]
/// }
/// (outs[0].sum() + outs[1]).backward()      // one recompute, both outputs' gradients
/// ```
public func checkpoint(_ inputs: [Tensor], saveInputsOn device: Device? = nil,
                       preserving state: [PreservedState] = [], parameters: [Tensor] = [],
                       _ body: @escaping ([Tensor]) -> [Tensor]) -> [Tensor] {
    guard GradMode.isEnabled,
          inputs.contains(where: \.requiresGrad) || parameters.contains(where: \.requiresGrad) else {
        return body(inputs)
    }
    let beforeForward = state.map { $0.capture() }
    let saved: [Tensor] = noGrad {
        inputs.map { x in
            guard let device else { return x }
            return device == x.device ? x.copy() : x.to(device)
        }
    }
    let results = noGrad { body(inputs) }
    guard let first = results.first(where: { $0.dtype.isFloatingPoint }) else { return results }
    /// The gradients the output nodes stashed during this backward, by output index.
    final class Stash { var grads: [Int: Tensor] = [:] }
    let stash = Stash()
    let outputCount = results.count
    let (tokenDType, tokenDevice) = (first.dtype, first.device)
    let token = Tensor.zeros([1], dtype: tokenDType, device: tokenDevice)
    token.requiresGrad = true
    token.gradFn = GradNode(name: "checkpoint", inputs: inputs) { _, needs in
        let grads = stash.grads
        stash.grads = [:]
        let beforeRecompute = state.map { $0.capture() }
        for restore in beforeForward { restore() }
        defer { for restore in beforeRecompute { restore() } }
        let detached = saved.indices.map { i in
            let x = saved[i].to(inputs[i].device).detach()
            x.requiresGrad = needs[i]
            return x
        }
        let recomputed = GradMode.$isEnabled.withValue(true) { body(detached) }
        precondition(recomputed.count == outputCount,
                     "checkpoint: the recompute returned \(recomputed.count) outputs, the forward \(outputCount)")
        let roots = grads.keys.sorted().filter { recomputed[$0].requiresGrad }
        guard !roots.isEmpty else { return detached.map { _ in nil } }
        // One backward from every root at once: a scalar whose node hands each root its stashed
        // gradient, so shared subgraphs are walked once and each leaf's gradient is complete once.
        let seeds = roots.map { grads[$0]! }
        let root = GradMode.$isEnabled.withValue(true) {
            Tensor.record("checkpoint_roots", Tensor.zeros([1], dtype: tokenDType, device: tokenDevice),
                          inputs: roots.map { recomputed[$0] }) { _, _ in seeds }
        }
        root.backward()
        return detached.map { $0.requiresGrad ? $0.grad : nil }
    }
    return results.enumerated().map { k, result in
        // A fresh tensor object carries the node, never an input or a tensor `body` captured.
        let output = result.detach()
        guard result.dtype.isFloatingPoint else { return output }
        output.requiresGrad = true
        output.gradFn = GradNode(name: "checkpoint_output", inputs: [token]) { g, _ in
            stash.grads[k] = g
            return [Tensor.zeros([1], dtype: tokenDType, device: tokenDevice)]
        }
        return output
    }
}
