// Runs every stage's instruction list against matched, fully synchronous send/receive queues, with no tensors.
// Invariant: a send completes only together with the neighbour's matching receive (the strictest transport,
// the in-process group's), so a schedule this accepts cannot deadlock on MPI or NCCL either.

/// What ``ScheduleSimulator/run(_:)`` found: whether every stage finished, the first deadlock or
/// data-flow error, and per stage the order of forwards and backwards and the most micro-batches in flight.
public struct ScheduleSimulation: Sendable, Equatable {
    /// Empty when the schedule ran to the end with every buffer used correctly.
    public var problems: [String] = []
    /// Per stage: micro-batch ids in the order their forwards ran.
    public var forwardOrder: [[Int]]
    /// Per stage: micro-batch ids in the order their backwards ran.
    public var backwardOrder: [[Int]]
    /// Per stage: the most micro-batches forwarded but not yet backwarded at any moment.
    public var maxInFlight: [Int]
    /// Messages exchanged (activations + gradients).
    public var messages = 0
    public var succeeded: Bool { problems.isEmpty }
}

/// Executes the schedules of all stages of one pipeline together, as DeepSpeed's engine would, but
/// with micro-batch ids instead of tensors.
///
/// Rules checked: a buffer is filled (load/receive) only when free, forwarded once it holds its
/// input (and labels on the last stage), its output is sent once, its gradient is received only
/// after the output was sent, the backward runs after that, and the input gradient is sent before
/// the buffer is reused; every stage forwards and backwards micro-batches 0, 1, … in order;
/// ReduceTiedGrads is a barrier over all stages (the worst case, a tie spanning the pipeline).
///
/// ```swift
/// let sim = ScheduleSimulator.run((0..<4).map { TrainSchedule(microBatches: 8, stages: 4, stageID: $0) })
/// sim.succeeded          // true
/// sim.maxInFlight        // [4, 3, 2, 1]
/// ```
public enum ScheduleSimulator {
    /// One buffer of one stage.
    struct Slot {
        var micro: Int?
        var hasInput = false, hasLabels = false, forwarded = false, outputSent = false
        var gradReceived = false, backwarded = false
    }

    struct Stage {
        let program: [(step: Int, instruction: PipeInstruction)]
        var pc = 0
        var slots: [Slot]
        var forwards: [Int] = [], backwards: [Int] = []
        var loads = 0
        var inFlight = 0, maxInFlight = 0
        var current: PipeInstruction? { pc < program.count ? program[pc].instruction : nil }
        var position: String { pc < program.count ? "step \(program[pc].step) \(program[pc].instruction)" : "the end" }
    }

    /// Runs `schedules` (one per stage, in stage order, all with the same stages and micro-batches).
    public static func run(_ schedules: [any PipeSchedule]) -> ScheduleSimulation {
        precondition(!schedules.isEmpty && schedules.enumerated().allSatisfy { $0.element.stageID == $0.offset && $0.element.stages == schedules.count },
                     "ScheduleSimulator.run: pass one schedule per stage, in stage order")
        // A schedule with backward passes trains (buffers live until the gradient is sent); else it infers.
        let isTraining = schedules.contains { $0.steps.contains { $0.contains { if case .backwardPass = $0 { true } else { false } } } }
        let m = schedules[0].microBatches
        var stages = schedules.map { s in
            Stage(program: s.steps.enumerated().flatMap { step, cmds in cmds.map { (step, $0) } },
                  slots: Array(repeating: Slot(), count: s.bufferCount))
        }
        var report = ScheduleSimulation(forwardOrder: [], backwardOrder: [], maxInFlight: [])
        let last = stages.count - 1

        func fail(_ s: Int, _ text: String) -> Bool {
            report.problems.append("stage \(s) at \(stages[s].position): \(text)")
            return false
        }
        /// Fills buffer `b` of stage `s` with micro-batch `micro` (load or receive).
        func fill(_ s: Int, _ b: Int, _ micro: Int, input: Bool) -> Bool {
            guard b < stages[s].slots.count else { return fail(s, "buffer \(b) does not exist (\(stages[s].slots.count) buffers)") }
            var slot = stages[s].slots[b]
            if let held = slot.micro, held != micro || (input ? slot.hasInput : slot.hasLabels) {
                return fail(s, "buffer \(b) still holds micro-batch \(held); micro-batch \(micro) would overwrite it")
            }
            slot.micro = micro
            if input { slot.hasInput = true } else { slot.hasLabels = true }
            stages[s].slots[b] = slot
            return true
        }
        func free(_ s: Int, _ b: Int) { stages[s].slots[b] = Slot() }

        /// Executes stage `s`'s current local instruction; false on a rule violation.
        func local(_ s: Int, _ instruction: PipeInstruction) -> Bool {
            let b = instruction.buffer ?? 0
            if let ib = instruction.buffer, ib >= stages[s].slots.count {
                return fail(s, "buffer \(ib) does not exist (\(stages[s].slots.count) buffers)")
            }
            switch instruction {
            case .loadMicroBatch:
                let micro = stages[s].loads
                stages[s].loads += 1
                // The first stage loads inputs, the last labels (a one-stage pipeline both).
                if s == 0 && !fill(s, b, micro, input: true) { return false }
                if s == last && !fill(s, b, micro, input: false) { return false }
            case .forwardPass:
                let slot = stages[s].slots[b]
                let expected = stages[s].forwards.count
                guard let micro = slot.micro, slot.hasInput, !slot.forwarded else {
                    return fail(s, "buffer \(b) holds no input to forward")
                }
                guard micro == expected else { return fail(s, "forwards micro-batch \(micro), expected \(expected)") }
                if s == last && isTraining && !slot.hasLabels { return fail(s, "micro-batch \(micro) has no labels for the loss") }
                stages[s].slots[b].forwarded = true
                stages[s].forwards.append(micro)
                if isTraining {
                    stages[s].inFlight += 1
                    stages[s].maxInFlight = Swift.max(stages[s].maxInFlight, stages[s].inFlight)
                } else if s == last {
                    free(s, b)
                }
            case .backwardPass:
                let slot = stages[s].slots[b]
                let expected = stages[s].backwards.count
                guard let micro = slot.micro, slot.forwarded, !slot.backwarded else {
                    return fail(s, "buffer \(b) holds no forwarded micro-batch to back-propagate")
                }
                guard micro == expected else { return fail(s, "back-propagates micro-batch \(micro), expected \(expected)") }
                if s != last && !slot.gradReceived { return fail(s, "micro-batch \(micro) has no output gradient yet") }
                stages[s].slots[b].backwarded = true
                stages[s].backwards.append(micro)
                stages[s].inFlight -= 1
                if s == 0 { free(s, b) }
            case .reduceGrads, .optimizerStep:
                if stages[s].backwards.count != m { return fail(s, "steps after \(stages[s].backwards.count) of \(m) backwards") }
            case .reduceTiedGrads, .sendActivation, .recvActivation, .sendGrad, .recvGrad:
                preconditionFailure("not a local instruction: \(instruction)")
            }
            return true
        }

        /// Stage `s` sends buffer `b` (activation when `forward`) to stage `t`, which receives into `tb`.
        func transfer(from s: Int, _ b: Int, to t: Int, _ tb: Int, activation: Bool) -> Bool {
            guard b < stages[s].slots.count else { return fail(s, "buffer \(b) does not exist") }
            guard tb < stages[t].slots.count else { return fail(t, "buffer \(tb) does not exist") }
            let slot = stages[s].slots[b]
            report.messages += 1
            if activation {
                guard let micro = slot.micro, slot.forwarded, !slot.outputSent else {
                    return fail(s, "buffer \(b) has no forwarded output to send")
                }
                stages[s].slots[b].outputSent = true
                if !isTraining { free(s, b) }
                return fill(t, tb, micro, input: true)
            }
            guard let micro = slot.micro, slot.backwarded else { return fail(s, "buffer \(b) has no input gradient to send") }
            free(s, b)
            let target = stages[t].slots[tb]
            guard target.micro == micro, target.forwarded, target.outputSent, !target.gradReceived else {
                return fail(t, "receives the gradient of micro-batch \(micro) into buffer \(tb), which holds \(target.micro.map(String.init) ?? "nothing") awaiting no gradient")
            }
            stages[t].slots[tb].gradReceived = true
            return true
        }

        var progressed = true
        loop: while progressed {
            progressed = false
            // Local instructions run as far as they can.
            for s in stages.indices {
                while let i = stages[s].current, !i.isCommunication, i != .reduceTiedGrads {
                    guard local(s, i) else { break loop }
                    stages[s].pc += 1
                    progressed = true
                }
            }
            // A send and the matching receive complete together.
            for s in stages.indices {
                guard let i = stages[s].current else { continue }
                switch i {
                case .sendActivation(let b):
                    guard s < last else { _ = fail(s, "the last stage has no next stage to send to"); break loop }
                    if case .recvActivation(let tb)? = stages[s + 1].current {
                        guard transfer(from: s, b, to: s + 1, tb, activation: true) else { break loop }
                        stages[s].pc += 1; stages[s + 1].pc += 1
                        progressed = true
                    }
                case .sendGrad(let b):
                    guard s > 0 else { _ = fail(s, "the first stage has no previous stage to send to"); break loop }
                    if case .recvGrad(let tb)? = stages[s - 1].current {
                        guard transfer(from: s, b, to: s - 1, tb, activation: false) else { break loop }
                        stages[s].pc += 1; stages[s - 1].pc += 1
                        progressed = true
                    }
                default: break
                }
            }
            // ReduceTiedGrads: a barrier over every stage.
            if stages.allSatisfy({ $0.current == .reduceTiedGrads }) {
                for s in stages.indices { stages[s].pc += 1 }
                progressed = true
            }
        }
        if report.problems.isEmpty, stages.contains(where: { $0.current != nil }) {
            let waiting = stages.indices.filter { stages[$0].current != nil }.map { "stage \($0) waits at \(stages[$0].position)" }
            report.problems.append("deadlock: " + waiting.joined(separator: "; "))
        }
        if report.problems.isEmpty {
            for s in stages.indices where stages[s].forwards != Array(0..<m) || (isTraining && stages[s].backwards != Array(0..<m)) {
                report.problems.append("stage \(s) forwarded \(stages[s].forwards) and back-propagated \(stages[s].backwards) of \(m) micro-batches")
            }
        }
        report.forwardOrder = stages.map(\.forwards)
        report.backwardOrder = stages.map(\.backwards)
        report.maxInFlight = stages.map(\.maxInFlight)
        return report
    }
}

extension TrainSchedule {
    /// A text picture of the whole pipeline: one row per stage, one column per step, `F3` for the
    /// forward of micro-batch 3, `B3` for its backward, `..` for an idle step (the bubble).
    ///
    /// ```swift
    /// print(TrainSchedule.diagram(microBatches: 4, stages: 2))
    /// // step     0  1  2  3  4  5  6  7  8  9
    /// // stage 0  F0 .. F1 B0 F2 B1 F3 B2 .. B3
    /// // stage 1  .. F0 B0 F1 B1 F2 B2 F3 B3 ..
    /// ```
    public static func diagram(microBatches: Int, stages: Int) -> String {
        let schedules = (0..<stages).map { TrainSchedule(microBatches: microBatches, stages: stages, stageID: $0) }
        let total = 2 * (microBatches + stages - 1)
        let width = Swift.max(2, String(microBatches - 1).count + 1)
        func cell(_ text: String) -> String { text + String(repeating: " ", count: Swift.max(0, width - text.count)) }
        var lines = ["step    " + (0..<total).map { cell(String($0)) }.joined(separator: " ")]
        for s in schedules {
            let cells = (0..<total).map { step -> String in
                let (micro, forward) = s.microBatch(atStep: step)
                return s.isValidMicroBatch(micro) ? cell((forward ? "F" : "B") + String(micro)) : cell(String(repeating: ".", count: width))
            }
            lines.append("stage \(s.stageID) " + cells.joined(separator: " "))
        }
        return lines.map { line in String(line.reversed().drop { $0 == " " }.reversed()) }.joined(separator: "\n")
    }

    /// The idle fraction of the schedule when a forward and a backward take the same time:
    /// `(stages − 1) / (microBatches + stages − 1)`, counted from the steps.
    public static func bubbleFraction(microBatches: Int, stages: Int) -> Double {
        let s = TrainSchedule(microBatches: microBatches, stages: stages, stageID: 0)
        let busy = s.steps.filter { $0.contains { if case .forwardPass = $0 { true } else if case .backwardPass = $0 { true } else { false } } }.count
        return 1 - Double(busy) / Double(s.steps.count)
    }
}
