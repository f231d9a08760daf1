// The instructions a pipeline stage executes (DeepSpeed's `deepspeed/runtime/pipe/schedule.py` PipeInstruction classes).
// Invariant: an instruction is pure data — what to do and on which buffer — so a schedule can be printed,
// compared and simulated without any tensors or communication.

/// One thing a pipeline stage does at one step of a schedule; the buffer-carrying cases name the
/// pipeline buffer (a slot that holds one micro-batch's input, output and gradient) they work on.
///
/// ```swift
/// let step: [PipeInstruction] = [.recvActivation(buffer: 0), .forwardPass(buffer: 0)]
/// step.map(\.description)   // ["RecvActivation(buffer_id=0)", "ForwardPass(buffer_id=0)"]
/// ```
public enum PipeInstruction: Sendable, Hashable, CustomStringConvertible {
    /// Reads the next micro-batch from the data iterator into the buffer (first stage: inputs; last stage: labels).
    case loadMicroBatch(buffer: Int)
    /// Runs this stage's layers on the buffer's input (the last stage also computes the loss).
    case forwardPass(buffer: Int)
    /// Back-propagates the buffer's output gradient (the last stage: its loss) through this stage.
    case backwardPass(buffer: Int)
    /// Sends the buffer's output to the next stage.
    case sendActivation(buffer: Int)
    /// Receives the previous stage's output into the buffer's input.
    case recvActivation(buffer: Int)
    /// Sends the gradient of the buffer's input to the previous stage.
    case sendGrad(buffer: Int)
    /// Receives the gradient of the buffer's output from the next stage.
    case recvGrad(buffer: Int)
    /// All-reduces the gradients of tied weights (embedding and LM head) over their tie groups.
    case reduceTiedGrads
    /// Averages the gradients over this stage's data-parallel group.
    case reduceGrads
    /// Applies the optimizer (unscale, overflow check, clip by the global norm, update) and zeroes gradients.
    case optimizerStep

    /// The buffer the instruction works on, nil for the batch-level ones.
    public var buffer: Int? {
        switch self {
        case .loadMicroBatch(let b), .forwardPass(let b), .backwardPass(let b), .sendActivation(let b),
             .recvActivation(let b), .sendGrad(let b), .recvGrad(let b): b
        case .reduceTiedGrads, .reduceGrads, .optimizerStep: nil
        }
    }

    /// DeepSpeed's class name.
    public var name: String {
        switch self {
        case .loadMicroBatch: "LoadMicroBatch"
        case .forwardPass: "ForwardPass"
        case .backwardPass: "BackwardPass"
        case .sendActivation: "SendActivation"
        case .recvActivation: "RecvActivation"
        case .sendGrad: "SendGrad"
        case .recvGrad: "RecvGrad"
        case .reduceTiedGrads: "ReduceTiedGrads"
        case .reduceGrads: "ReduceGrads"
        case .optimizerStep: "OptimizerStep"
        }
    }

    /// DeepSpeed's `repr`: `ForwardPass(buffer_id=1)`, `OptimizerStep()`.
    public var description: String { buffer.map { "\(name)(buffer_id=\($0))" } ?? "\(name)()" }

    /// Whether this instruction talks to a neighbouring stage.
    public var isCommunication: Bool {
        switch self {
        case .sendActivation, .recvActivation, .sendGrad, .recvGrad: true
        default: false
        }
    }
}
