// The Trainer's optimizer against torch: AdamW with transformers' two decay groups on a tiny model (3 steps), through
// TrainerSetup and the engine (1 process, and ZeRO 2 on 2 in-process ranks), and decay names of GPT-2, BERT and Llama.
// Invariant: Fixtures/adamw_groups.json comes from scripts/make_trainer_fixtures.py (torch.optim.AdamW, transformers 5.x).

import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
import SpeedOptim
import SpeedRuntime
import SpeedTrainer
import SpeedTransformers
import Testing

/// The fixture's torch model: Linear(4, 5) → LayerNorm(5) → Linear(5, 2).
final class TinyNet: Module {
    let fc1: Linear
    let norm: LayerNorm
    let fc2: Linear

    override init() {
        var rng = RandomStream(seed: 0)
        fc1 = Linear(4, 5, rng: &rng)
        norm = LayerNorm(5)
        fc2 = Linear(5, 2, rng: &rng)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { fc2(norm(fc1(x))) }
}

struct GroupsFixture: Decodable {
    struct Tiny: Decodable {
        var lr: Double
        var weightDecay: Double
        var x: [Float]
        var y: [Float]
        var decay: [String]
        var initial: [String: [Float]]
        var final: [String: [Float]]
        var losses: [Double]
        enum CodingKeys: String, CodingKey { case lr, weightDecay = "weight_decay", x, y, decay, initial, final, losses }
    }
    struct ModelCase: Decodable {
        var folder: String
        var architecture: String
        var config: JSONValue
        var parameters: [[JSONValue]]
    }
    var tiny: Tiny
    var models: [ModelCase]

    static let shared: GroupsFixture = load("adamw_groups.json")
}

/// Trains TinyNet from the fixture's weights as the Trainer would (TrainerSetup → initialize); rank `r` of `world`
/// takes rows r·6/W ..< (r+1)·6/W. Returns the final weights by name and the per-step losses.
private func trainTiny(deepspeed: String?, group: (any ProcessGroup)?) throws -> ([String: [Float]], [Double]) {
    let f = GroupsFixture.shared.tiny
    let world = group?.size ?? 1, rank = group?.rank ?? 0
    let model = TinyNet()
    for (name, p) in model.namedParameters() { p.copyData(from: Tensor(f.initial[name]!, shape: p.shape)) }
    var argv = ["--learning_rate", "\(f.lr)", "--weight_decay", "\(f.weightDecay)", "--max_grad_norm", "0",
                "--per_device_train_batch_size", "\(6 / world)", "--lr_scheduler_type", "constant", "--max_steps", "3"]
    if let deepspeed { argv += ["--deepspeed", deepspeed] }
    let args = try TrainingArguments.parse(arguments: argv)
    let setup = try TrainerSetup(arguments: args, modelConfig: nil, trainRows: 6, worldSize: world)
    let opt = try setup.optimization(model: model)
    let engine = try initialize(model: model, config: setup.config, optimizer: opt.optimizer, lrScheduler: opt.scheduler,
                                processGroup: group, parameterGroups: opt.parameterGroups).engine
    let rows = (rank * 6 / world)..<((rank + 1) * 6 / world)
    let x = Tensor(f.x, shape: [6, 4]).slice(axis: 0, rows).copy(), y = Tensor(f.y, shape: [6, 2]).slice(axis: 0, rows).copy()
    var losses: [Double] = []
    for _ in 0..<setup.steps.totalSteps {
        try engine.backward(engine(x).mseLoss(y))
        try engine.step()
        losses.append(engine.lastLoss!)
    }
    let final = try engine.withGatheredParameters {
        Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.scalars) })
    }
    return (final, losses)
}

private func expectTorch(_ got: ([String: [Float]], [Double]), _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let f = GroupsFixture.shared.tiny
    for (name, want) in f.final {
        let ours = got.0[name] ?? []
        let diff = zip(ours, want).map { abs($0 - $1) }.max() ?? .infinity
        #expect(ours.count == want.count && diff <= 1e-5, "\(what): \(name) differs from torch by \(diff)", sourceLocation: sourceLocation)
    }
    for (k, (a, b)) in zip(got.1, f.losses).enumerated() {
        #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "\(what): loss \(k + 1) \(a) vs torch \(b)", sourceLocation: sourceLocation)
    }
}

@Suite struct AdamWGroupTests {
    @Test func decayNamesAreTransformers() {
        #expect(decayParameterNames(TinyNet()) == GroupsFixture.shared.tiny.decay)
    }

    @Test func trainerAdamWWithTwoGroupsMatchesTorch() throws {
        expectTorch(try trainTiny(deepspeed: nil, group: nil), "1 process")
        // Weight decay really differs between the groups: the norm's weights were not decayed.
        let f = GroupsFixture.shared.tiny
        #expect(f.decay == ["fc1.weight", "fc2.weight"])
    }

    @Test func zero2And3OnTwoRanksMatchTorch() throws {
        for stage in [2, 3] {
            let ds = #"{"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": \#(stage), "stage3_param_persistence_threshold": 0, "offload_optimizer": {"device": "cpu"}}}"#
            let ranks = try LocalProcessGroup.run(size: 2) { group in try trainTiny(deepspeed: ds, group: group) }
            for (r, result) in ranks.enumerated() { expectTorch(result, "stage \(stage) rank \(r)") }
        }
    }

    @Test func modelDecayNamesMatchTransformers() throws {
        for m in GroupsFixture.shared.models {
            let data = try JSONEncoder().encode(m.config)
            let model: Module
            switch m.architecture {
            case "GPT2LMHeadModel": model = try GPT2LMHeadModel(JSONDecoder().decode(GPT2Config.self, from: data))
            case "BertForSequenceClassification": model = try BertForSequenceClassification(JSONDecoder().decode(BertConfig.self, from: data))
            case "LlamaForCausalLM": model = try LlamaForCausalLM(JSONDecoder().decode(LlamaConfig.self, from: data))
            default: Issue.record("no Swift model for \(m.architecture)"); continue
            }
            let hf = m.parameters.map { p -> (String, Bool) in
                guard case .string(let n) = p[0], case .bool(let d) = p[1] else { fatalError("bad fixture row \(p)") }
                return (n, d)
            }
            let decay = Set(decayParameterNames(model))
            let ours = model.namedParameters().map { ($0.0, decay.contains($0.0)) }
            #expect(ours.map(\.0) == hf.map(\.0), "\(m.folder): parameter names differ")
            for ((name, a), (_, b)) in zip(ours, hf) { #expect(a == b, "\(m.folder): \(name) decay \(a), transformers \(b)") }
        }
    }
}
