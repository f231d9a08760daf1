// Errors of pipeline set-up and execution, each naming what to fix or which rank and instruction failed.
// Invariant: a communication failure during a schedule always comes back as `.instruction`, carrying the
// stage, the global ranks of this rank and its peer, the step and the instruction — never as a bare CommError.

/// What went wrong in a pipeline job.
///
/// ```swift
/// do { _ = try engine.trainBatch { loader.next() } }
/// catch let error as PipelineError { print(error) }
/// // pipeline stage 1 (global rank 1): RecvActivation(buffer_id=0) at step 1 of the train schedule, receiving
/// // from stage 0 (global rank 0), failed: rank 1: receive of ... failed: rank(s) [0] returned without joining it
/// ```
public enum PipelineError: Error, CustomStringConvertible, Equatable {
    /// A setting that cannot work (ZeRO stage 2–3, a world size that is not stages × dp, a bad partition method).
    case configuration(String)
    /// An instruction failed on this rank, usually because the neighbour `peerRank` died or is stuck.
    case instruction(stage: Int, rank: Int, step: Int, schedule: String, instruction: String,
                     peerStage: Int?, peerRank: Int?, message: String)
    /// A checkpoint that cannot be saved or loaded here (missing layer file, shape mismatch).
    case checkpoint(String)

    public var description: String {
        switch self {
        case .configuration(let text): return "pipeline configuration: \(text)"
        case .checkpoint(let text): return "pipeline checkpoint: \(text)"
        case let .instruction(stage, rank, step, schedule, instruction, peerStage, peerRank, message):
            var text = "pipeline stage \(stage) (global rank \(rank)): \(instruction) at step \(step) of the \(schedule) schedule"
            if let peerStage, let peerRank {
                let verb = instruction.hasPrefix("Send") ? "sending to" : "receiving from"
                text += ", \(verb) stage \(peerStage) (global rank \(peerRank)),"
            }
            return text + " failed: \(message)"
        }
    }
}
