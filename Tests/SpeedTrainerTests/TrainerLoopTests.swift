// The Trainer loop on a tiny BERT classifier: it lowers the loss and raises accuracy on a learnable task, saves
// checkpoint-N folders in transformers' layout with rotation, and a run resumed from a checkpoint logs exactly the
// losses of the uninterrupted run. Invariant: every run starts from the same committed weights and seed.
import Foundation
import SpeedData
import SpeedRuntime
import SpeedTrainer
import SpeedTransformers
import Testing

@Suite(.serialized) struct TrainerLoopTests {
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SpeedTransformersTests/Fixtures/tiny-bert-cls")

    /// 24 rows whose label is whether token 7 occurs: learnable by a tiny BERT in a few dozen steps.
    static func rows() throws -> DatasetTable {
        let rows: [DataRow] = (0..<24).map { i in
            let label = i % 2
            var ids = [2] + (0..<(3 + i % 4)).map { 10 + ($0 * 5 + i * 3) % 50 } + [3]
            if label == 1 { ids.insert(7, at: 1 + i % 3) }
            return ["input_ids": .ints(ids), "attention_mask": .ints(ids.map { _ in 1 }), "label": .int(label)]
        }
        return try DatasetTable(rows: rows)
    }

    func trainer(_ out: URL, _ extra: [String], steps: Int) throws -> Trainer {
        let args = try TrainingArguments.parse(arguments: [
            "--output_dir", out.path, "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2",
            "--learning_rate", "1e-2", "--max_steps", String(steps), "--logging_steps", "1", "--save_steps", "3",
            "--weight_decay", "0.01", "--warmup_steps", "2", "--seed", "7",
        ] + extra)
        let (model, _, _) = try AutoModelForSequenceClassification.fromPretrained(Self.model, numLabels: 3, seed: 7)
        let data = try Self.rows()
        return try Trainer(model: model, arguments: args, trainDataset: data, evalDataset: data,
                           dataCollator: DataCollatorWithPadding(padTokenId: 0), computeMetrics: Metrics.classification(average: .macro))
    }

    func losses(_ t: Trainer) -> [Int: Double] {
        Dictionary(uniqueKeysWithValues: t.state.logHistory.compactMap { e -> (Int, Double)? in
            guard case .double(let loss)? = e["loss"], case .int(let step)? = e["step"] else { return nil }
            return (step, loss)
        })
    }

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func trainingLearnsAndEvaluatesWithMetrics() throws {
        let out = try scratch()
        defer { try? FileManager.default.removeItem(at: out) }
        let t = try trainer(out, ["--save_strategy", "no"], steps: 60)
        let before = try t.evaluate()
        let result = try t.train()
        let after = try t.evaluate()
        #expect(result.globalStep == 60)
        #expect(after["eval_loss"]! < before["eval_loss"]! * 0.7, "eval loss \(before["eval_loss"]!) → \(after["eval_loss"]!)")
        #expect(after["eval_accuracy"]! >= 0.9, "accuracy \(after["eval_accuracy"]!)")
        #expect(Set(after.keys).isSuperset(of: ["eval_loss", "eval_accuracy", "eval_f1", "eval_runtime"]))
        // 24 rows / 4 per batch = 6 batches per epoch = 3 optimizer steps: step 60 ends epoch 20.
        #expect(Swift.abs(t.state.epoch - 20) < 1e-9)
    }

    @Test func resumingFromACheckpointReproducesTheUninterruptedRunExactly() throws {
        let full = try scratch(), part = try scratch()
        defer { try? FileManager.default.removeItem(at: full); try? FileManager.default.removeItem(at: part) }
        let uninterrupted = try trainer(full, ["--save_total_limit", "2"], steps: 9)
        try uninterrupted.train()
        // Rotation kept the newest two; each holds the DeepSpeed checkpoint, the model folder and the state.
        let names = try FileManager.default.contentsOfDirectory(atPath: full.path).filter { $0.hasPrefix("checkpoint-") }.sorted()
        #expect(names == ["checkpoint-6", "checkpoint-9"])
        let six = full.appendingPathComponent("checkpoint-6")
        for file in ["latest", "global_step6", "config.json", "model.safetensors", "trainer_state.json", "training_args.json"] {
            #expect(FileManager.default.fileExists(atPath: six.appendingPathComponent(file).path), "\(file) missing")
        }
        let resumed = try trainer(part, [], steps: 9)
        try resumed.train(resumeFromCheckpoint: six.path)
        let a = losses(uninterrupted), b = losses(resumed)
        #expect(b.keys.sorted() == Array(1...9), "resumed history \(b.keys.sorted())")
        for step in 7...9 { #expect(a[step] == b[step], "step \(step): \(a[step]!) vs resumed \(b[step] ?? .nan)") }
        let saved = try JSONDecoder().decode(TrainerState.self,
                                             from: Data(contentsOf: six.appendingPathComponent("trainer_state.json")))
        #expect(saved.globalStep == 6 && saved.logHistory.count == 6)
    }

    @Test func aDatasetWithoutInputIdsIsRefusedWithTheFix() throws {
        let out = try scratch()
        defer { try? FileManager.default.removeItem(at: out) }
        let t = try trainer(out, [], steps: 1)
        t.trainDataset = try DatasetTable(rows: [["text": "hello", "label": 1]])
        #expect { try t.train() } throws: { "\($0)".contains("no input_ids column") && "\($0)".contains("tokenize") }
    }

    /// `seed` seeds the dropout masks (tiny-bert-cls has hidden and attention dropout 0.1), as transformers' Trainer
    /// seeds torch: the same seed gives the same losses, another seed (same data_seed, same head) other ones.
    @Test func theSeedDrivesTheDropoutMasks() throws {
        let out = try scratch()
        defer { try? FileManager.default.removeItem(at: out) }
        func run(_ seed: Int) throws -> [Int: Double] {
            let t = try trainer(out.appendingPathComponent("\(seed)-\(UUID().uuidString)"),
                                ["--save_strategy", "no", "--seed", "\(seed)", "--data_seed", "7"], steps: 3)
            try t.train()
            return losses(t)
        }
        let (a, b, c) = (try run(7), try run(7), try run(8))
        #expect(a.count == 3 && a == b, "seed 7 twice: \(a) vs \(b)")
        #expect(a[1] != c[1], "seeds 7 and 8 gave the same first loss \(a[1] ?? .nan): dropout not seeded")
    }

    @Test func aDecoderClassifierWithoutAPadTokenIsRefusedForBatchesByName() throws {
        // transformers refuses batches > 1 when it cannot find each row's last token; so do train() and evaluate().
        let out = try scratch()
        defer { try? FileManager.default.removeItem(at: out) }
        let model = try GPT2ForSequenceClassification(GPT2Config(vocabSize: 100, nPositions: 16, nEmbd: 8, nLayer: 1, nHead: 2),
                                                      head: SequenceClassificationConfig(numLabels: 3))
        let args = try TrainingArguments.parse(arguments: ["--output_dir", out.path, "--per_device_train_batch_size", "4",
                                                           "--per_device_eval_batch_size", "2", "--max_steps", "1"])
        let t = try Trainer(model: model, arguments: args, trainDataset: try Self.rows(), evalDataset: try Self.rows())
        #expect { try t.train() } throws: { "\($0)".contains("pad_token_id") && "\($0)".contains("per_device_train_batch_size 1") }
        #expect { try t.evaluate() } throws: { "\($0)".contains("pad_token_id") && "\($0)".contains("per_device_eval_batch_size 1") }
    }
}
