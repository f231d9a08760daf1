// TensorParallelPlan, the name rules for a custom model's Linear layers: a plain MLP sharded by suffix and regex rules
// over 2 and 4 in-process ranks gives one process's output, loss and gradient slices; rules that match nothing, bad
// regexes and sizes that do not split are refused by name with the model left whole.
// Invariant: both sides build the model from the same seed; the expected slices are cut here by TensorParallelSplit.

import SpeedComm
import SpeedCore
import SpeedNN
import SpeedRuntime
import Testing

@Suite struct TensorParallelPlanTests {
    /// A custom MLP: up (8 → 16, column), ReLU, down (16 → 8, row), then a head (8 → 3) left whole.
    final class MLP: Module {
        let up: Linear, down: Linear, head: Linear
        init(seed: UInt64) {
            var rng = RandomStream(seed: seed)
            up = Linear(8, 16, rng: &rng)
            down = Linear(16, 8, rng: &rng)
            head = Linear(8, 3, rng: &rng)
            super.init()
        }
        override func forward(_ x: Tensor) -> Tensor { head(down(up(x).relu())) }
    }

    static let plan = TensorParallelPlan([.suffix("up", .column), .regex("d[o]wn", .row)])

    static func batch() -> Tensor {
        let values: [Float] = (0..<40).map { i -> Float in Float((i * 37) % 23 - 11) / 10 }
        return Tensor(values, shape: [5, 8])
    }

    @Test(arguments: [2, 4]) func plannedMLPMatchesOneProcess(parts: Int) throws {
        let whole = MLP(seed: 3)
        let out = whole(Self.batch())
        let loss = (out * out).mean()
        loss.backward()
        let expected: [[String: [Float]]] = try (0..<parts).map { rank in
            try Dictionary(uniqueKeysWithValues: whole.namedParameters().map { name, p -> (String, [Float]) in
                let g = p.grad!
                switch name {
                case "up.weight", "up.bias":
                    return (name, try TensorParallelSplit.shard(g, axis: 0, blocks: [16], rank: rank, parts: parts, layer: name).scalars)
                case "down.weight":
                    return (name, try TensorParallelSplit.shard(g, axis: 1, blocks: [16], rank: rank, parts: parts, layer: name).scalars)
                default:
                    return (name, g.scalars)                             // down.bias and the head stay whole
                }
            })
        }
        let reference = (loss: loss.item(), output: out.scalars)
        let results = try LocalProcessGroup.run(size: parts) { group -> [String] in
            let model = MLP(seed: 3)
            try model.applyTensorParallel(TensorParallelGroup(group), plan: Self.plan)
            var problems: [String] = []
            if Set(model.tensorParallelLayouts().keys) != ["up.weight", "up.bias", "down.weight"] {
                problems.append("layouts \(model.tensorParallelLayouts().keys.sorted())")
            }
            let out = model(Self.batch())
            let worst = zip(out.scalars, reference.output).map { abs($0 - $1) }.max() ?? .infinity
            if worst > 1e-5 { problems.append("output differs by \(worst)") }
            let l = (out * out).mean()
            if abs(l.item() - reference.loss) > 1e-5 { problems.append("loss \(l.item()) vs \(reference.loss)") }
            l.backward()
            for (name, p) in model.namedParameters() {
                let want = expected[group.rank][name]!
                let g = p.grad!.scalars
                let diff = g.count == want.count ? zip(g, want).map { abs($0 - $1) }.max() ?? 0 : .infinity
                if diff > 1e-5 { problems.append("\(name): gradient differs by \(diff)") }
            }
            return problems
        }
        for (rank, problems) in results.enumerated() { #expect(problems.isEmpty, "rank \(rank): \(problems)") }
    }

    /// A suffix matches whole name components, a regex the whole name; the first matching rule wins.
    @Test func rulesMatchWholeNamesAndTheFirstWins() throws {
        let model = MLP(seed: 1)
        let matched = try TensorParallelPlan([.regex("u.", .column), .suffix("up", .row), .suffix("down", .row)])
            .assignments(in: model)
        #expect(matched.map(\.name) == ["up", "down"])
        #expect(matched.map(\.style) == [.column, .row])
        #expect(throws: TensorParallelError.self) { try TensorParallelPlan([.suffix("own", .row)]).assignments(in: model) }
        #expect(throws: TensorParallelError.self) { try TensorParallelPlan([.regex("u", .row)]).assignments(in: model) }
    }

    @Test func badPlansAreRefusedByNameAndLeaveTheModelWhole() throws {
        let results = try LocalProcessGroup.run(size: 3) { group -> [String] in
            let comm = TensorParallelGroup(group)
            var errors: [String] = []
            for plan in [TensorParallelPlan([.suffix("up", .column), .suffix("fc2", .row)]),   // matches nothing
                         TensorParallelPlan([.regex("up(", .column)]),                          // not a regex
                         Self.plan] {                                                           // 16 over 3 ranks
                let model = MLP(seed: 1)
                do { try model.applyTensorParallel(comm, plan: plan); errors.append("no error") } catch {
                    let whole = model.up.weight.shape == [16, 8] && model.down.weight.shape == [8, 16]
                        && model.tensorParallelCommunicator() == nil
                    errors.append("\(error)" + (whole ? "" : " [model changed]"))
                }
            }
            return errors
        }
        for errors in results {
            #expect(errors[0].contains("rule suffix \"fc2\" → row matches no Linear layer of MLP; its Linear layers are up, down, head"), "\(errors[0])")
            #expect(errors[1].contains("rule regex \"up(\" → column is not a valid regular expression"), "\(errors[1])")
            #expect(errors[2].hasPrefix("up: 16 output features (weight [16, 8]) do not split into 3 tensor-parallel shards"), "\(errors[2])")
        }
    }
}
