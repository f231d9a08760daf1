// Causal-LM fine-tuning with the Trainer against the real transformers' Trainer (scripts/make_causal_lm_trainer_fixture.py):
// a tiny GPT-2, text rows tokenized with the bpe-small tokenizer, DataCollatorForLanguageModeling(mlm=False), AdamW with
// decay groups, linear warmup, clipping. Invariant: each step's batch is the whole training set, so the sampler's order
// cannot matter and every step's loss must be transformers' (its num_items_in_batch normalisation included).
import Foundation
import SpeedComm
import SpeedData
import SpeedRuntime
import SpeedTokenizers
import SpeedTrainer
import SpeedTransformers
import Testing

struct CausalLMFixture: Decodable {
    struct Step: Decodable {
        var loss: Double
        var num_items_in_batch: Int
        var grad_norm: Double
    }
    var texts: [String]
    var input_ids: [[Int]]
    var pad_token_id: Int
    var steps: [Step]

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/causal-lm")
    static let tokenizer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SpeedTokenizersTests/Fixtures/bpe-small/tokenizer.json")
    static let shared = try! JSONDecoder().decode(CausalLMFixture.self, from: Data(contentsOf: root.appendingPathComponent("trainer.json")))

    /// The fixture's model folder with the tokenizer beside it, in a scratch folder.
    static func folder() throws -> URL {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ss-causal-lm-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: root.appendingPathComponent("model"), to: out)
        try FileManager.default.copyItem(at: tokenizer, to: out.appendingPathComponent("tokenizer.json"))
        return out
    }
}

@Suite(.serialized) struct CausalLMTrainerTests {
    let fixture = CausalLMFixture.shared

    func train(_ folder: URL, batch: Int, gas: Int = 1, group: (any ProcessGroup)? = nil,
               deepspeed: String? = nil) throws -> (losses: [Double], gradNorms: [Double]) {
        let args = try TrainingArguments.parse(arguments: [
            "--output_dir", folder.appendingPathComponent("out").path, "--per_device_train_batch_size", "\(batch)",
            "--gradient_accumulation_steps", "\(gas)", "--max_steps", "6", "--learning_rate", "1e-2", "--warmup_steps", "2",
            "--weight_decay", "0.01", "--logging_steps", "1", "--seed", "7", "--save_strategy", "no",
        ] + (deepspeed.map { ["--deepspeed", $0] } ?? []))
        let model = try AutoModelForCausalLM.fromPretrained(folder)
        let tokenizer = try Tokenizer(contentsOf: folder)
        let table = try DatasetTable(rows: fixture.texts.map { ["text": .string($0)] }).tokenized(with: tokenizer)
        let trainer = try Trainer(model: model, arguments: args, trainDataset: table,
                                  dataCollator: DataCollatorForLanguageModeling(padTokenId: fixture.pad_token_id, mlm: false),
                                  processGroup: group)
        try trainer.train()
        var losses: [Double] = [], norms: [Double] = []
        for e in trainer.state.logHistory {
            if case .double(let l)? = e["loss"], case .double(let g)? = e["grad_norm"] { losses.append(l); norms.append(g) }
        }
        return (losses, norms)
    }

    func expectTransformers(_ got: (losses: [Double], gradNorms: [Double]), _ what: String) {
        #expect(got.losses.count == fixture.steps.count, "\(what): \(got.losses)")
        for (i, (s, (loss, norm))) in zip(fixture.steps, zip(got.losses, got.gradNorms)).enumerated() {
            #expect(abs(loss - s.loss) <= 1e-5 * s.loss, "\(what) step \(i + 1): loss \(loss) vs transformers \(s.loss)")
            #expect(abs(norm - s.grad_norm) <= 1e-4 * s.grad_norm, "\(what) step \(i + 1): grad_norm \(norm) vs transformers \(s.grad_norm)")
        }
    }

    @Test func textRowsTokenizeAsTransformersDoes() throws {
        let folder = try CausalLMFixture.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let table = try DatasetTable(rows: fixture.texts.map { ["text": .string($0)] }).tokenized(with: Tokenizer(contentsOf: folder))
        #expect(try table.intLists("input_ids") == fixture.input_ids)
    }

    @Test func autoModelForCausalLMRefusesAClassifierFolder() throws {
        let error = #expect(throws: PretrainedError.self) { try AutoModelForCausalLM.fromPretrained(TrainerLoopTests.model) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("a causal LM"), "\(String(describing: error))")
    }

    @Test func lossesAndGradNormsMatchTransformersTrainer() throws {
        let folder = try CausalLMFixture.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // transformers' loss is the token sum over num_items_in_batch (106 unshifted label tokens), not the mean
        // over the 98 predicted ones: the first step's loss is 6.016 × 98 / 106.
        #expect(fixture.steps[0].num_items_in_batch == 106)
        expectTransformers(try train(folder, batch: fixture.texts.count), "1 process × 8")
    }

    /// transformers normalises by the step's label tokens across accumulation and ranks, so 2 × 4 rows accumulated,
    /// and 2 ranks × 4 rows, give the one-batch losses (a mean of micro-batch means would not).
    @Test func accumulationAndTwoRanksNormaliseByTheStepsTokens() throws {
        let folder = try CausalLMFixture.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        expectTransformers(try train(folder, batch: 4, gas: 2), "GAS 2 × 4")
        let ranks = try LocalProcessGroup.run(size: 2, timeout: 120) { group in try train(folder, batch: 4, group: group) }
        for (r, got) in ranks.enumerated() { expectTransformers(got, "rank \(r) of 2 × 4") }
    }

    /// Under DeepSpeed AutoTP (TP 2 on 2 ranks, TP 2 × DP 2 on 4) the token count is divided by the ranks sharing a
    /// batch, as transformers does, so the losses and norms are still transformers' one-process ones.
    @Test func tensorParallelRanksNormaliseAsTransformers() throws {
        let folder = try CausalLMFixture.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let ds = #"{"train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": 1}, "tensor_parallel": {"autotp_size": 2}}"#
        let pair = try LocalProcessGroup.run(size: 2, timeout: 120) { group in
            try train(folder, batch: fixture.texts.count, group: group, deepspeed: ds)
        }
        for (r, got) in pair.enumerated() { expectTransformers(got, "TP 2, rank \(r)") }
        let grid = try LocalProcessGroup.run(size: 4, timeout: 120) { group in try train(folder, batch: 4, group: group, deepspeed: ds) }
        for (r, got) in grid.enumerated() { expectTransformers(got, "TP 2 × DP 2, rank \(r)") }
    }
}
