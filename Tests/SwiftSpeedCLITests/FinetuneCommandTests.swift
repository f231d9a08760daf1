// `swiftspeed finetune`: --print-deepspeed-config fills every "auto" from the flags (reading config.json and the row
// count only) or exits 1 with transformers' mismatch text; a short run prints HF-keyed JSON lines and saves the model.
// Invariant: every case runs the built binary on the committed tiny BERT classifier.
import Foundation
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

    @Test(arguments: [["--num_labels", "0"], ["--max_length", "0"], ["--learning_rat", "1e-3"]])
    func badFlagsAreNamed(flags: [String]) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try swiftspeed(["finetune", "--model", Self.model, "--train", try rows(in: dir), "--output_dir", dir.path] + flags)
        #expect(r.status != 0)
        #expect(r.stderr.contains(flags[0]), "\(r.stderr)")
    }
}
