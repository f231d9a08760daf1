// What a pipeline stage needs from the engine beyond DeepSpeed's forward/backward/step: a backward seeded with the
// gradient the next stage sent. Invariant: that gradient already carries the loss scale and the 1/GAS factor (the
// last stage's `backward(loss)` applied them), so it is back-propagated unchanged.

import SpeedCore

extension Engine {
    /// Back-propagates `gradient` (d loss / d `output`, from the next pipeline stage) into the flat gradient
    /// buffer, as ``backward(_:)`` does for a loss. Used by SpeedPipeline's `PipelineEngine` on every stage
    /// but the last.
    ///
    /// ```swift
    /// let hidden = stage(input)                          // this stage's output, sent on
    /// try engine.backward(hidden, gradient: received)    // the gradient that came back
    /// ```
    public func backward(_ output: Tensor, gradient: Tensor) throws {
        let start = now()
        defer { timers.backward += now() - start }
        precondition(output.shape == gradient.shape,
                     "Engine.backward(_:gradient:): gradient \(gradient.shape) does not match the output \(output.shape)")
        flat.reattachGrads()
        partitioner?.begin(.backward)
        output.backward(gradient)
        try finishBackward()
    }
}
