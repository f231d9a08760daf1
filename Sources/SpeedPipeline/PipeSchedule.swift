// The training (1F1B) and inference schedules as lists of instructions per step, exactly as DeepSpeed's
// `TrainSchedule` and `InferenceSchedule` generate them. Invariant: at every step adjacent stages are on
// opposite parities (one forward, one backward), so each send is matched by the neighbour's receive in the
// same step and in the same order — the schedule is deadlock-free even with fully synchronous sends.

/// A schedule: for one stage of `stages`, the instructions of each step of one batch of `microBatches`.
///
/// ```swift
/// let s = TrainSchedule(microBatches: 4, stages: 2, stageID: 0)
/// s.steps.count          // 2 · (4 + 2 − 1) = 10
/// s.bufferCount          // 2
/// ```
public protocol PipeSchedule: Sendable {
    var microBatches: Int { get }
    var stages: Int { get }
    var stageID: Int { get }
    /// The instructions of every step, in order; a step may be empty (a bubble).
    var steps: [[PipeInstruction]] { get }
    /// How many pipeline buffers this stage needs (buffer ids are `0 ..< bufferCount`).
    var bufferCount: Int { get }
}

extension PipeSchedule {
    public var isFirstStage: Bool { stageID == 0 }
    public var isLastStage: Bool { stageID == stages - 1 }
    var previousStage: Int { stageID - 1 }
    var nextStage: Int { stageID + 1 }
    func isValidMicroBatch(_ m: Int) -> Bool { m >= 0 && m < microBatches }
    func isValidStage(_ s: Int) -> Bool { s >= 0 && s < stages }
    /// DeepSpeed's cyclic buffer allocation: micro-batch m lives in buffer m mod bufferCount.
    func bufferIndex(_ microBatch: Int) -> Int {
        precondition(isValidMicroBatch(microBatch), "bufferIndex: micro-batch \(microBatch) is outside 0..<\(microBatches)")
        return microBatch % bufferCount
    }

    static func checkArguments(_ microBatches: Int, _ stages: Int, _ stageID: Int, _ type: String) {
        precondition(microBatches >= 1 && stages >= 1 && stageID >= 0 && stageID < stages,
                     "\(type): microBatches \(microBatches) and stages \(stages) must be >= 1, stageID \(stageID) in 0..<\(stages)")
    }
}

/// DeepSpeed's synchronous 1F1B training schedule (`TrainSchedule`): stage s runs up to `stages − s`
/// warm-up forwards, then alternates one forward and one backward, then drains the remaining
/// backwards; the last step reduces tied and data-parallel gradients and steps the optimizer.
///
/// There are `2 · (microBatches + stages − 1)` steps. At an even step even stages do a forward and
/// odd stages a backward (at an odd step the other way round); a forward step first sends the
/// previous micro-batch's input gradient back and then receives this micro-batch's activation, a
/// backward step first receives this micro-batch's output gradient and then sends the previous
/// micro-batch's activation on.
///
/// ```swift
/// TrainSchedule(microBatches: 2, stages: 2, stageID: 1).steps.map { $0.map(\.description) }
/// // [[], ["RecvActivation(buffer_id=0)", "LoadMicroBatch(buffer_id=0)", "ForwardPass(buffer_id=0)"], ...]
/// ```
public struct TrainSchedule: PipeSchedule {
    public let microBatches: Int
    public let stages: Int
    public let stageID: Int

    public init(microBatches: Int, stages: Int, stageID: Int) {
        Self.checkArguments(microBatches, stages, stageID, "TrainSchedule")
        self.microBatches = microBatches
        self.stages = stages
        self.stageID = stageID
    }

    /// `max(2, min(stages − stageID, microBatches))`: the most forwards this stage has in flight
    /// (DeepSpeed keeps at least two buffers so a send of one never waits on a write to the other).
    public var bufferCount: Int { Swift.max(2, Swift.min(stages - stageID, microBatches)) }

    public var steps: [[PipeInstruction]] {
        let total = 2 * (microBatches + stages - 1)
        var out: [[PipeInstruction]] = []
        out.reserveCapacity(total)
        var previous = -1
        for step in 0..<total {
            let (micro, isForward) = microBatch(atStep: step)
            var cmds: [PipeInstruction] = []
            let prevValid = isValidMicroBatch(previous), currValid = isValidMicroBatch(micro)
            // Exchange activations and gradients with the neighbours.
            if isForward {
                if prevValid && isValidStage(previousStage) { cmds.append(.sendGrad(buffer: bufferIndex(previous))) }
                if currValid && isValidStage(previousStage) { cmds.append(.recvActivation(buffer: bufferIndex(micro))) }
            } else {
                if currValid && isValidStage(nextStage) { cmds.append(.recvGrad(buffer: bufferIndex(micro))) }
                if prevValid && isValidStage(nextStage) { cmds.append(.sendActivation(buffer: bufferIndex(previous))) }
            }
            // The first and last stages read the data (inputs and labels).
            if (isFirstStage || isLastStage) && isForward && currValid {
                cmds.append(.loadMicroBatch(buffer: bufferIndex(micro)))
            }
            if currValid {
                cmds.append(isForward ? .forwardPass(buffer: bufferIndex(micro)) : .backwardPass(buffer: bufferIndex(micro)))
            }
            if step == total - 1 {
                cmds += [.reduceTiedGrads, .reduceGrads, .optimizerStep]
            }
            previous = micro
            out.append(cmds)
        }
        return out
    }

    /// DeepSpeed's `_step_to_micro_batch`: the micro-batch this stage works on at `step` (possibly
    /// outside `0..<microBatches`, meaning idle) and whether it is a forward.
    func microBatch(atStep step: Int) -> (Int, Bool) {
        // Python's // floors; every numerator here is >= 0 except in the backward cases, handled by floorDiv.
        let evenStep = step % 2 == 0, evenStage = stageID % 2 == 0
        switch (evenStep, evenStage) {
        case (true, true): return (floorDiv(step, 2) - floorDiv(stageID, 2), true)
        case (false, false): return (floorDiv(step - 1, 2) - floorDiv(stageID, 2), true)
        case (true, false): return (floorDiv(step, 2) - stages + floorDiv(stageID + 1, 2), false)
        case (false, true): return (floorDiv(step - 1, 2) - stages + 1 + floorDiv(stageID, 2), false)
        }
    }
}

/// DeepSpeed's inference schedule (`InferenceSchedule`): `microBatches + stages − 1` steps, stage s
/// forwarding micro-batch `step − s`, with two buffers alternating between receiving and sending.
/// Even stages send before they receive, odd stages receive before they send.
///
/// ```swift
/// InferenceSchedule(microBatches: 3, stages: 2, stageID: 0).steps.count   // 4
/// ```
public struct InferenceSchedule: PipeSchedule {
    public let microBatches: Int
    public let stages: Int
    public let stageID: Int

    public init(microBatches: Int, stages: Int, stageID: Int) {
        Self.checkArguments(microBatches, stages, stageID, "InferenceSchedule")
        self.microBatches = microBatches
        self.stages = stages
        self.stageID = stageID
    }

    /// Always 2.
    public var bufferCount: Int { 2 }

    public var steps: [[PipeInstruction]] {
        let total = microBatches + stages - 1
        var out: [[PipeInstruction]] = []
        for step in 0..<total {
            var cmds: [PipeInstruction] = []
            let micro = step - stageID
            let even = stageID % 2 == 0
            let recvBuffer = even ? step % 2 : (step + 1) % 2
            let sendBuffer = even ? (step + 1) % 2 : step % 2
            if (isFirstStage || isLastStage) && isValidMicroBatch(micro) {
                cmds.append(.loadMicroBatch(buffer: recvBuffer))
            }
            let send: PipeInstruction? = isValidStage(nextStage) && isValidMicroBatch(micro - 1) ? .sendActivation(buffer: sendBuffer) : nil
            let recv: PipeInstruction? = isValidStage(previousStage) && isValidMicroBatch(micro) ? .recvActivation(buffer: recvBuffer) : nil
            cmds += (even ? [send, recv] : [recv, send]).compactMap { $0 }
            if isValidMicroBatch(micro) { cmds.append(.forwardPass(buffer: recvBuffer)) }
            out.append(cmds)
        }
        return out
    }
}

/// Python's floor division (rounds toward −∞).
func floorDiv(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
