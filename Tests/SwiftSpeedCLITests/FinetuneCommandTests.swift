// `swiftspeed finetune`: --print-deepspeed-config fills every "auto" from the flags (reading config.json and the row
// count only) or exits 1 with transformers' mismatch text; a short run prints HF-keyed JSON lines and saves the model.
// Invariant: every case runs the built binary on the committed tiny BERT classifier.
import Foundation
import SpeedTestSupport
import Testing

@Suite(.serialized) struct FinetuneCommandTests {
    static let model = PretrainedTrainTests.fixtures.appendingPathComponent("tiny-bert-cls").path

    func rows(in dir: URL) throws -> String {
        let text = (0..<12).map { i in
            let ids = (0..<(3 + i % 4)).map { String(($0 * 7 + i * 5) % 90 + 5) }.joined(separator: ", ")
            return #"{"input_ids": [\#(ids)], "label": \#(i % 3)}"#
        }.joined(separator: "\n") + "\n"
        let url = dir.appendingPathComponent("rows.jsonl")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func write(_ text: String, _ name: String, in dir: URL) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test func printDeepSpeedConfigFillsAutoOrNamesEveryMismatch() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try rows(in: dir)
        let auto = try write(#"{"train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto", "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": 2, "reduce_bucket_size": "auto"}, "optimizer": {"type": "AdamW", "params": {"lr": "auto", "weight_decay": "auto"}}}"#, "auto.json", in: dir)
        let r = try swiftspeed(["finetune", "--model", Self.model, "--train", data, "--deepspeed", auto, "--print-deepspeed-config",
                                "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2",
                                "--learning_rate", "3e-5", "--weight_decay", "0.01", "--max_grad_norm", "0.5"])
        #expect(r.status == 0, "\(r.stderr)")
        let filled = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(filled["train_micro_batch_size_per_gpu"] as? Int == 4)
        #expect(filled["train_batch_size"] as? Int == 8)
        #expect(filled["gradient_clipping"] as? Double == 0.5)
        let params = (filled["optimizer"] as! [String: Any])["params"] as! [String: Any]
        #expect(params["lr"] as? Double == 3e-5 && params["weight_decay"] as? Double == 0.01)
        // hidden_size 32: reduce_bucket_size = h².
        #expect((filled["zero_optimization"] as! [String: Any])["reduce_bucket_size"] as? Int == 32 * 32)

        let fixed = try write(#"{"train_micro_batch_size_per_gpu": 16, "gradient_clipping": 1.0, "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}}"#, "fixed.json", in: dir)
        let bad = try swiftspeed(["finetune", "--model", Self.model, "--train", data, "--deepspeed", fixed, "--print-deepspeed-config",
                                  "--per_device_train_batch_size", "4", "--learning_rate", "3e-5"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("Please correct the following DeepSpeed config values that mismatch TrainingArguments values:"))
        #expect(bad.stderr.contains("- ds train_micro_batch_size_per_gpu=16 vs hf per_device_train_batch_size=4"), "\(bad.stderr)")
        #expect(bad.stderr.contains("- ds optimizer.params.lr=0.001 vs hf learning_rate=3e-05"), "\(bad.stderr)")
        #expect(!bad.stderr.contains("gradient_clipping"), "1.0 == max_grad_norm's default is no mismatch: \(bad.stderr)")
    }

    @Test func aShortRunPrintsHFKeyedLinesAndSavesTheModel() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try rows(in: dir)
        let out = dir.appendingPathComponent("out")
        let r = try swiftspeed(["finetune", "--model", Self.model, "--train", data, "--eval", data, "--json",
                                "--output_dir", out.path, "--per_device_train_batch_size", "4", "--max_steps", "4",
                                "--logging_steps", "2", "--save_strategy", "no", "--learning_rate", "1e-3"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try r.stdout.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let logs = lines.filter { $0["loss"] != nil }
        #expect(logs.map { $0["step"] as? Int } == [2, 4])
        #expect(logs.allSatisfy { $0["learning_rate"] is Double && $0["epoch"] is Double && $0["grad_norm"] is Double })
        let eval = try #require(lines.last)
        #expect(eval["eval_loss"] is Double && eval["eval_accuracy"] is Double && eval["eval_f1"] is Double, "\(eval)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path))
    }

    /// A causal LM from text rows: the losses of transformers' Trainer on the same tiny GPT-2 and rows
    /// (Tests/SpeedTrainerTests/Fixtures/causal-lm, scripts/make_causal_lm_trainer_fixture.py).
    @Test func aCausalLMFromTextRowsLogsTransformersLosses() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let root = tests.appendingPathComponent("SpeedTrainerTests/Fixtures/causal-lm")
        let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("trainer.json"))) as! [String: Any]
        let model = dir.appendingPathComponent("model")
        try FileManager.default.copyItem(at: root.appendingPathComponent("model"), to: model)
        try FileManager.default.copyItem(at: tests.appendingPathComponent("SpeedTokenizersTests/Fixtures/bpe-small/tokenizer.json"),
                                         to: model.appendingPathComponent("tokenizer.json"))
        let texts = fixture["texts"] as! [String]
        let rows = try String(decoding: JSONSerialization.data(withJSONObject: texts.map { ["text": $0] }), as: UTF8.self)
        let train = try write(rows.dropFirst().dropLast().replacingOccurrences(of: "},{", with: "}\n{") + "\n", "train.jsonl", in: dir)
        let r = try swiftspeed(["finetune", "--model", model.path, "--train", train, "--json", "--output_dir", dir.appendingPathComponent("out").path,
                                "--per_device_train_batch_size", "8", "--max_steps", "6", "--learning_rate", "1e-2",
                                "--warmup_steps", "2", "--weight_decay", "0.01", "--logging_steps", "1", "--seed", "7",
                                "--save_strategy", "no"])
        #expect(r.status == 0, "\(r.stderr)")
        let got = r.stdout.split(separator: "\n").compactMap { line -> Double? in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
        }
        let want = (fixture["steps"] as! [[String: Any]]).map { $0["loss"] as! Double }
        #expect(got.count == want.count, "\(r.stdout)")
        for (x, y) in zip(got, want) { #expect(abs(x - y) <= 1e-5 * y, "finetune \(got) vs transformers \(want)") }
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/model.safetensors").path))
    }

    @Test(arguments: [["--num_labels", "0"], ["--max_length", "0"], ["--learning_rat", "1e-3"]])
    func badFlagsAreNamed(flags: [String]) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try swiftspeed(["finetune", "--model", Self.model, "--train", try rows(in: dir), "--output_dir", dir.path] + flags)
        #expect(r.status != 0)
        #expect(r.stderr.contains(flags[0]), "\(r.stderr)")
    }
}

/// `swiftspeed launch --num_procs 2 -- swiftspeed finetune`: the distributed sampler gives each rank a disjoint half of
/// every global batch, evaluation is sharded and gathered, and only rank 0 logs and writes the model.
@Suite(.serialized, .needsMPI) struct FinetuneDistributedTests {
    /// tiny-bert-cls with dropout off (the masks of one process and of two ranks are drawn from different streams).
    func model(in dir: URL) throws -> String {
        let out = dir.appendingPathComponent("tiny-bert-cls-nodrop")
        try FileManager.default.copyItem(atPath: FinetuneCommandTests.model, toPath: out.path)
        let file = out.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        config["hidden_dropout_prob"] = 0.0
        config["attention_probs_dropout_prob"] = 0.0
        try JSONSerialization.data(withJSONObject: config).write(to: file)
        return out.path
    }

    /// `n` rows of 3–8 token ids, 3 classes.
    func rows(_ n: Int, salt: Int, in dir: URL, name: String) throws -> String {
        let text = (0..<n).map { i in
            let ids = (0..<(3 + (i * 5 + salt) % 6)).map { String(($0 * 11 + i * 7 + salt) % 90 + 5) }.joined(separator: ", ")
            return #"{"input_ids": [\#(ids)], "label": \#((i + salt) % 3)}"#
        }.joined(separator: "\n") + "\n"
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// JSON lines of one rank (`[1,R]<stdout>:` tags of mpirun), or of the single process (untagged).
    func lines(_ stdout: String, rank: Int?) throws -> [[String: Any]] {
        stdout.split(separator: "\n").compactMap { line -> [String: Any]? in
            var text = Substring(line)
            if let rank {
                guard text.hasPrefix("[1,\(rank)]<stdout>:") else { return nil }
                text = text.dropFirst("[1,\(rank)]<stdout>:".count)
            }
            guard text.hasPrefix("{") else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        }
    }

    @Test(arguments: [0, 2])
    func twoRanksMatchOneProcessWithTwiceTheBatch(stage: Int) throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try model(in: dir)
        // 24 training rows: 1 process × 4 or 2 ranks × 2 rows give 6 global batches an epoch, none short.
        let train = try rows(24, salt: 0, in: dir, name: "train.jsonl")
        // 13 eval rows in batches of 3: 5 batches, so rank 1 has no batch of its own in the third round.
        let eval = try rows(13, salt: 1, in: dir, name: "eval.jsonl")
        let ds = dir.appendingPathComponent("ds.json")
        try #"{"train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto", "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": \#(stage)}}"#
            .write(to: ds, atomically: true, encoding: .utf8)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        func args(batch: Int, out: String) -> [String] {
            ["finetune", "--model", model, "--train", train, "--eval", eval, "--json", "--threads", "1",
             "--deepspeed", ds.path, "--output_dir", dir.appendingPathComponent(out).path,
             "--per_device_train_batch_size", "\(batch)", "--per_device_eval_batch_size", "3", "--num_train_epochs", "1",
             "--learning_rate", "5e-3", "--warmup_steps", "2", "--logging_steps", "1", "--eval_strategy", "steps",
             "--eval_steps", "3", "--save_strategy", "steps", "--save_steps", "6", "--seed", "7"]
        }
        let one = try swiftspeed(args(batch: 4, out: "one"))
        #expect(one.status == 0, "\(one.stderr)")
        let two = try swiftspeed(["launch", "--num_procs", "2", "--", exe] + args(batch: 2, out: "two"))
        #expect(two.status == 0, "\(two.stderr)")
        let reference = try lines(one.stdout, rank: nil), got = try lines(two.stdout, rank: 0)
        #expect(try lines(two.stdout, rank: 1).isEmpty, "rank 1 logs nothing: \(two.stdout)")

        let steps = { (l: [[String: Any]]) in l.compactMap { $0["loss"] as? Double } }
        let (a, b) = (steps(reference), steps(got))
        #expect(a.count == 6 && b.count == 6, "one \(a), two \(b)")
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-5 * abs(x), "losses: 1 process \(a) vs 2 ranks \(b)") }
        // Evaluations at steps 3 and 6 and the final evaluate(): the same loss, accuracy and F1 on the gathered rows.
        let evals = { (l: [[String: Any]]) in l.filter { $0["eval_loss"] != nil } }
        let (ea, eb) = (evals(reference), evals(got))
        #expect(ea.count == 3 && eb.count == 3, "\(ea) vs \(eb)")
        for (x, y) in zip(ea, eb) {
            let (lx, ly) = (x["eval_loss"] as! Double, y["eval_loss"] as! Double)
            #expect(abs(lx - ly) <= 1e-5 * abs(lx), "eval_loss \(lx) vs \(ly)")
            #expect(x["eval_accuracy"] as? Double == y["eval_accuracy"] as? Double, "\(x) vs \(y)")
            #expect(x["eval_f1"] as? Double == y["eval_f1"] as? Double, "\(x) vs \(y)")
        }
        // The checkpoint holds both ranks' ZeRO shards; the final model is one HF folder (rank 0 wrote it).
        let ckpt = dir.appendingPathComponent("two/checkpoint-6")
        let tagFiles = try FileManager.default.contentsOfDirectory(atPath: ckpt.appendingPathComponent("global_step6").path)
        #expect(tagFiles.contains { $0.contains("rank_1") } == (stage > 0), "\(tagFiles)")
        #expect(FileManager.default.fileExists(atPath: ckpt.appendingPathComponent("trainer_state.json").path))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("two/model.safetensors").path))
    }
}
