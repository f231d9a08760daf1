// The executor: runs a schedule's instructions on this stage's buffers over the pipe group's send/receive.
// Invariant: an activation travels as a fixed 8-element int64 header (dtype, rank, shape) then its payload, and a
// gradient as a payload whose shape the receiver already knows (its own output's), so receivers always allocate
// exactly what the sender sends; every failure leaves as a PipelineError naming the instruction and the peer.

import SpeedComm
import SpeedCore
import SpeedRuntime

/// The per-buffer tensors of one batch on one stage.
final class StageBuffers {
    var inputs: [Tensor?], labels: [Tensor?], outputs: [Tensor?], grads: [Tensor?]
    init(count: Int) {
        inputs = Array(repeating: nil, count: count)
        labels = inputs; outputs = inputs; grads = inputs
    }
}

/// Message tags on the pipe group.
enum PipeTag {
    static let header = 71, activation = 72, gradient = 73
}

extension PipelineEngine {
    /// Runs every step of `schedule`; returns the last stage's per-micro-batch losses (empty elsewhere).
    @discardableResult
    func execute(_ schedule: any PipeSchedule, training: Bool, next: () throws -> MicroBatch) throws -> [Double] {
        let buffers = StageBuffers(count: schedule.bufferCount)
        var losses: [Tensor] = []
        var timings: [String: Double] = ["forward": 0, "backward": 0, "communication": 0, "step": 0]
        var inFlight = 0
        maxInFlight = 0
        let name = training ? "train" : "inference"
        for (step, instructions) in schedule.steps.enumerated() {
            for instruction in instructions {
                let start = monotonicSeconds()
                do {
                    try run(instruction, buffers, training: training, losses: &losses, next: next)
                } catch let error as PipelineError {
                    throw error
                } catch {
                    let peer: Int? = switch instruction {
                    case .sendActivation, .recvGrad: stageID + 1
                    case .recvActivation, .sendGrad: stageID - 1
                    default: nil
                    }
                    throw PipelineError.instruction(stage: stageID, rank: grid.world.rank, step: step, schedule: name,
                                                    instruction: instruction.description, peerStage: peer,
                                                    peerRank: peer.map { grid.globalRank(ofStage: $0) },
                                                    message: "\(error)")
                }
                let elapsed = monotonicSeconds() - start
                switch instruction {
                case .forwardPass:
                    timings["forward"]! += elapsed
                    if training { inFlight += 1; maxInFlight = Swift.max(maxInFlight, inFlight) }
                case .backwardPass:
                    timings["backward"]! += elapsed
                    inFlight -= 1
                case .sendActivation, .recvActivation, .sendGrad, .recvGrad, .reduceTiedGrads: timings["communication"]! += elapsed
                case .reduceGrads, .optimizerStep: timings["step"]! += elapsed
                case .loadMicroBatch: break
                }
            }
        }
        lastTimings = timings
        return losses.map { $0.cast(to: .float64).item() }
    }

    private func run(_ instruction: PipeInstruction, _ b: StageBuffers, training: Bool, losses: inout [Tensor],
                     next: () throws -> MicroBatch) throws {
        let pipe = grid.pipeGroup
        switch instruction {
        case .loadMicroBatch(let i):
            let batch = try next()
            if isFirstStage {
                let x = batch.input.to(engine.device)
                b.inputs[i] = x.dtype.isFloatingPoint && x.dtype != engine.modelDType ? x.cast(to: engine.modelDType) : x
            }
            if isLastStage { b.labels[i] = batch.target.to(engine.device) }

        case .forwardPass(let i):
            guard let input = b.inputs[i] else { preconditionFailure("ForwardPass(\(i)) on stage \(stageID): the buffer holds no input") }
            let output = stage(input)
            if isLastStage {
                guard let labels = b.labels[i] else { preconditionFailure("ForwardPass(\(i)) on the last stage: no labels loaded") }
                let loss = module.lossFunction(output, labels)
                losses.append(loss.detach())
                b.outputs[i] = loss
                b.labels[i] = nil
            } else {
                b.outputs[i] = output
            }
            if !training { b.inputs[i] = nil }

        case .sendActivation(let i):
            guard let output = b.outputs[i] else { preconditionFailure("SendActivation(\(i)) on stage \(stageID): nothing forwarded") }
            try pipe.send(Self.header(output), to: stageID + 1, tag: PipeTag.header)
            try pipe.send(output.detach(), to: stageID + 1, tag: PipeTag.activation)
            if !training { b.outputs[i] = nil }

        case .recvActivation(let i):
            let header = Tensor(empty: [8], dtype: .int64)
            try pipe.receive(header, from: stageID - 1, tag: PipeTag.header)
            let (shape, dtype) = try Self.decode(header)
            let x = Tensor(empty: shape, dtype: dtype, device: engine.device)
            try pipe.receive(x, from: stageID - 1, tag: PipeTag.activation)
            if training && dtype.isFloatingPoint { x.requiresGrad = true }
            b.inputs[i] = x

        case .recvGrad(let i):
            guard let output = b.outputs[i] else { preconditionFailure("RecvGrad(\(i)) on stage \(stageID): nothing forwarded") }
            let g = Tensor(empty: output.shape, dtype: output.dtype, device: engine.device)
            try pipe.receive(g, from: stageID + 1, tag: PipeTag.gradient)
            b.grads[i] = g

        case .backwardPass(let i):
            guard let output = b.outputs[i] else { preconditionFailure("BackwardPass(\(i)) on stage \(stageID): nothing forwarded") }
            if isLastStage {
                try engine.backward(output)
            } else {
                guard let g = b.grads[i] else { preconditionFailure("BackwardPass(\(i)) on stage \(stageID): no gradient received") }
                try engine.backward(output, gradient: g)
            }
            b.outputs[i] = nil
            b.grads[i] = nil
            if isFirstStage { b.inputs[i] = nil }

        case .sendGrad(let i):
            guard let input = b.inputs[i] else { preconditionFailure("SendGrad(\(i)) on stage \(stageID): no input") }
            // An input no parameter of this stage depended on gets a zero gradient.
            let g = input.grad ?? Tensor.zeros(input.shape, dtype: input.dtype, device: input.device)
            try pipe.send(g, to: stageID - 1, tag: PipeTag.gradient)
            b.inputs[i] = nil

        case .reduceTiedGrads:
            for tie in ties {
                guard let group = tie.group else { continue }
                for w in tie.weights {
                    guard let g = w.grad else { continue }
                    try group.allReduce(g, op: .sum)
                }
            }

        case .reduceGrads:
            break   // the engine's boundary step averages over the data-parallel group (ZeRO 0/1) in `optimizerStep`

        case .optimizerStep:
            // The engine counts micro-steps: the first GAS − 1 calls only count, the last applies the update.
            for _ in 0..<microBatches { try engine.step() }
        }
    }

    // MARK: Activation headers

    static let dtypes: [DType] = [.float32, .float64, .bfloat16, .float16, .int32, .int64]

    /// `[dtype code, rank, d0, …, d5]` (int64).
    static func header(_ t: Tensor) -> Tensor {
        precondition(t.shape.count <= 6, "pipeline activations have at most 6 dimensions, got \(t.shape)")
        let code = dtypes.firstIndex(of: t.dtype)!
        let values = [code, t.shape.count] + t.shape + Array(repeating: 0, count: 6 - t.shape.count)
        return Tensor(values, shape: [8])
    }

    static func decode(_ header: Tensor) throws -> ([Int], DType) {
        let v = header.scalars(as: Int.self)
        guard v[0] >= 0, v[0] < dtypes.count, v[1] >= 0, v[1] <= 6, v[2..<(2 + v[1])].allSatisfy({ $0 >= 0 }) else {
            throw PipelineError.configuration("received a malformed activation header \(v) (the previous stage runs a different program?)")
        }
        return (Array(v[2..<(2 + v[1])]), dtypes[v[0]])
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
