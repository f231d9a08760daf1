// DeepSpeed's gradient averaging (deepspeed/runtime/engine.py, allreduce_bucket): prescale_gradients,
// gradient_predivide_factor and communication_data_type, seen from rank 0 of a two-rank group whose
// peer holds the same gradients.
import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
@testable import SpeedRuntime
import Testing

/// Rank 0 of 2 where rank 1 contributes exactly what rank 0 does: a sum doubles. Records what was sent.
final class MirrorGroup: ProcessGroup, @unchecked Sendable {
    var sent: [(dtype: DType, values: [Float])] = []
    var rank: Int { 0 }
    var size: Int { 2 }
    var timeout: Double { 60 }

    func allReduce(_ tensor: Tensor, op: CommOp) throws {
        sent.append((tensor.dtype, tensor.cast(to: .float32).scalars))
        if op != .max { tensor.scale(by: op == .sum ? 2 : 1) }
    }

    func reduceScatter(_ input: Tensor, into output: Tensor, counts: [Int], op: CommOp) throws {
        sent.append((input.dtype, input.cast(to: .float32).scalars))
        output.copyData(from: input.slice(axis: 0, 0..<counts[0]))
        if op == .sum { output.scale(by: 2) }
    }

    func allGather(_ input: Tensor, into output: Tensor, counts: [Int]) throws {
        output.slice(axis: 0, 0..<counts[0]).copyData(from: input)
        output.slice(axis: 0, counts[0]..<output.count).copyData(from: input)
    }

    func broadcast(_ tensor: Tensor, root: Int) throws {}
    func send(_ tensor: Tensor, to destination: Int, tag: Int) throws {}
    func receive(_ tensor: Tensor, from source: Int, tag: Int) throws {}
    func barrier() throws {}
    func makeCompanion() throws -> (any ProcessGroup)? { nil }
    func split(color: Int, key: Int) throws -> any ProcessGroup { self }
    func abort(code: Int32) -> Never { fatalError("MirrorGroup aborted with \(code)") }
    func finalize() {}
}

@Suite struct GradientAveragingTests {
    func engine(_ extra: String, group: MirrorGroup) throws -> Engine {
        var rng = RandomStream(seed: 3)
        let model = Linear(2, 2, rng: &rng)
        let text = #"{"train_micro_batch_size_per_gpu": 1, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}\#(extra)}"#
        return try initialize(model: model, config: try DeepSpeedConfig.parse(text, worldSize: 2), processGroup: group).engine
    }

    @Test(arguments: [
        ("", [Float](arrayLiteral: 1, 2, 3, 4)),                                   // post-scale: sum, then × 1/W
        (#", "prescale_gradients": true"#, [0.5, 1, 1.5, 2]),                      // ÷ W before the sum
        (#", "gradient_predivide_factor": 4"#, [0.25, 0.5, 0.75, 1]),              // ÷ f before, × f/W after
        (#", "gradient_predivide_factor": 2"#, [0.5, 1, 1.5, 2]),                  // f == W: nothing after
    ])
    func everyModeSendsTheDocumentedValuesAndAverages(_ extra: String, _ wire: [Float]) throws {
        let group = MirrorGroup()
        let e = try engine(extra, group: group)
        let buffer = Tensor([1, 2, 3, 4] as [Float])
        try e.reduceGradients(buffer, counts: nil)
        #expect(group.sent.last?.values == wire)
        #expect(buffer.scalars == [1, 2, 3, 4])   // the average of two equal contributions
        // The bucketed reduce-scatter (stages 2–3) scales the same way and adds into the partition.
        let target = Tensor([10, 10] as [Float])
        try e.reduceGradients(Tensor([1, 2, 3, 4] as [Float]), counts: [2, 2], accumulateInto: target)
        #expect(group.sent.last?.values == wire)
        #expect(target.scalars == [11, 12])
    }

    @Test(arguments: ["fp16", "bf16"])
    func communicationDataTypeIsWhatGoesOnTheWire(_ name: String) throws {
        let group = MirrorGroup()
        let e = try engine(#", "communication_data_type": "\#(name)""#, group: group)
        let buffer = Tensor([1, 2.001, 3, 4] as [Float])
        try e.reduceGradients(buffer, counts: nil)
        let dtype: DType = name == "fp16" ? .float16 : .bfloat16
        #expect(group.sent.last?.dtype == dtype)
        // The result comes back in the buffer's own dtype, rounded through the wire dtype.
        #expect(buffer.dtype == .float32)
        let rounded = Tensor([1, 2.001, 3, 4] as [Float]).cast(to: dtype).cast(to: .float32).scalars
        #expect(buffer.scalars == rounded)
        // Reduce-scatter too: the wire dtype on the way out, the partition's dtype on the way in.
        let target = Tensor.zeros([2])
        try e.reduceGradients(Tensor([1, 2.001, 3, 4] as [Float]), counts: [2, 2], accumulateInto: target)
        #expect(group.sent.last?.dtype == dtype)
        #expect(target.scalars == Array(rounded.prefix(2)))
    }
}
