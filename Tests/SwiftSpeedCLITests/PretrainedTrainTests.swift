// `swiftspeed train --model DIR`: a Hugging Face folder fine-tuned on JSONL rows (causal LM and sequence
// classification), saved back as a folder that loads again, and the same losses on two ranks as on one.
import Foundation
import SpeedTestSupport
import SwiftSpeed
import Testing

@Suite(.serialized) struct PretrainedTrainTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SpeedTransformersTests/Fixtures")

    func write(_ text: String, _ name: String, in dir: URL) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Rows of token ids of lengths 3...9 (a fixed pattern, so padding and masks are exercised).
    func rows(_ n: Int, label: Bool = false) -> String {
        (0..<n).map { i in
            let ids = (0..<(3 + i % 7)).map { String(($0 * 7 + i * 13) % 97) }.joined(separator: ", ")
            return label ? #"{"input_ids": [\#(ids)], "label": \#(i % 3)}"# : #"{"input_ids": [\#(ids)]}"#
        }.joined(separator: "\n") + "\n"
    }

    /// A copy of the model folder `source` in `dir` whose config.json sets every dropout probability to 0.
    func withoutDropout(_ source: URL, in dir: URL) throws -> URL {
        let out = dir.appendingPathComponent(source.lastPathComponent + "-no-dropout")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source.appendingPathComponent("model.safetensors"),
                                         to: out.appendingPathComponent("model.safetensors"))
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as? [String: Any])
        for key in ["resid_pdrop", "embd_pdrop", "attn_pdrop", "hidden_dropout_prob", "attention_probs_dropout_prob",
                    "classifier_dropout", "attention_dropout"] where config[key] != nil {
            config[key] = 0.0
        }
        try JSONSerialization.data(withJSONObject: config).write(to: out.appendingPathComponent("config.json"))
        return out
    }

    /// Dropout is on while training (the config's probabilities, one seeded stream per layer): two seeds give
    /// different losses after the first step on GPT-2 (resid/embd/attn_pdrop 0.1), the same seed the same ones, and a
    /// dropout-free copy of the folder gives the eval-mode losses of transformers' model.
    @Test func trainingAppliesTheConfigsDropout() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = try write(#"{"train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.0}}}"#, "ds.json", in: dir)
        let data = try write(rows(4), "rows.jsonl", in: dir)
        func run(_ model: URL, seed: Int) throws -> [Int: Double] {
            let r = try swiftspeed(["train", "--model", model.path, "--config", cfg, "--data", data, "--no-shuffle",
                                    "--steps", "2", "--json", "--seed", "\(seed)"])
            #expect(r.status == 0, "\(r.stderr)")
            return try losses(r.stdout)
        }
        let gpt2 = Self.fixtures.appendingPathComponent("tiny-gpt2")
        let (a, b, c) = (try run(gpt2, seed: 1), try run(gpt2, seed: 2), try run(gpt2, seed: 1))
        #expect(a == c && a.count == 2)
        #expect(a[1] != b[1], "dropout off while training? seeds 1 and 2 gave \(a) and \(b)")
        let plain = try withoutDropout(gpt2, in: dir)
        let (x, y) = (try run(plain, seed: 1), try run(plain, seed: 2))
        #expect(x == y && x.count == 2, "no dropout, yet the seed changed the losses: \(x) vs \(y)")
    }

    @Test func aCausalLMTrainsOnJSONLRowsAndSavesAFolderThatLoads() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = try write(#"{"train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#, "ds.json", in: dir)
        let data = try write(rows(5), "rows.jsonl", in: dir)
        let out = dir.appendingPathComponent("out")
        let r = try swiftspeed(["train", "--model", Self.fixtures.appendingPathComponent("tiny-gpt2").path, "--config", cfg,
                                "--data", data, "--no-shuffle", "--steps", "6", "--json", "--save-pretrained", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let got = try losses(r.stdout)
        #expect(got.count == 6 && got.values.allSatisfy { $0.isFinite && $0 > 0 }, "\(r.stdout)")
        #expect(got[6]! < got[1]!, "6 steps on 5 rows did not lower the loss: \(got)")
        let saved = try GPT2LMHeadModel.fromPretrained(out)   // strict: every key present, none unexpected
        #expect(saved.parameterCount > 0)
    }

    @Test func zeroToFP32WritesAFolderThatLoadsWithTheTrainedWeights() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = try write(#"{"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 2}, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#, "ds.json", in: dir)
        let data = try write(rows(4), "rows.jsonl", in: dir)
        let (ckpt, pretrained, consolidated) = (dir.appendingPathComponent("ckpt").path, dir.appendingPathComponent("hf"), dir.appendingPathComponent("fp32"))
        let r = try swiftspeed(["train", "--model", Self.fixtures.appendingPathComponent("tiny-gpt2").path, "--config", cfg,
                                "--data", data, "--no-shuffle", "--steps", "3", "--json", "--save-dir", ckpt,
                                "--save-pretrained", pretrained.path])
        #expect(r.status == 0, "\(r.stderr)")
        let z = try swiftspeed(["zero-to-fp32", ckpt, consolidated.path])
        #expect(z.status == 0, "\(z.stderr)")
        #expect(FileManager.default.fileExists(atPath: consolidated.appendingPathComponent("config.json").path))
        let a = try GPT2LMHeadModel.fromPretrained(consolidated), b = try GPT2LMHeadModel.fromPretrained(pretrained)
        let ids = Tensor([1, 5, 9, 2] as [Int32], shape: [1, 4]).cast(to: .int64)
        #expect(a(["input_ids": ids]).logits!.scalars == b(["input_ids": ids]).logits!.scalars)
    }

    /// ZeRO 1–3 (stage 3 with parameter and optimizer offload) and accumulation give stage 0's losses on a BERT classifier.
    @Test func zeroStagesAndOffloadMatchStageZeroOnABertClassifier() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try write(rows(8, label: true), "rows.jsonl", in: dir)
        func run(_ zero: String, precision: String = "") throws -> [Int: Double] {
            let cfg = try write(#"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 2, "zero_optimization": \#(zero), \#(precision) "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#,
                                "ds.json", in: dir)
            let r = try swiftspeed(["train", "--model", Self.fixtures.appendingPathComponent("tiny-bert-cls").path, "--config", cfg,
                                    "--data", data, "--no-shuffle", "--steps", "3", "--json"])
            #expect(r.status == 0, "\(zero): \(r.stderr)")
            return try losses(r.stdout)
        }
        let reference = try run(#"{"stage": 0}"#)
        #expect(reference.count == 3)
        for zero in [#"{"stage": 1}"#, #"{"stage": 2, "offload_optimizer": {"device": "cpu"}}"#,
                     #"{"stage": 3, "offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "cpu"}, "stage3_param_persistence_threshold": 0}"#] {
            let got = try run(zero)
            for (step, loss) in reference {
                #expect(abs((got[step] ?? .nan) - loss) <= 1e-5 * abs(loss), "\(zero) step \(step): \(got[step] ?? .nan) vs \(loss)")
            }
        }
        // 16-bit training (bf16 with fp32 masters; fp16 with loss scaling) at stage 2 stays within 16-bit rounding.
        for precision in [#""bf16": {"enabled": true},"#, #""fp16": {"enabled": true, "initial_scale_power": 8},"#] {
            let got = try run(#"{"stage": 2}"#, precision: precision)
            for (step, loss) in reference {
                #expect(abs((got[step] ?? .nan) - loss) <= 2e-2 * abs(loss), "\(precision) step \(step): \(got[step] ?? .nan) vs \(loss)")
            }
        }
    }

    /// HF's gradient_checkpointing (`--checkpoint-activations`): every block recomputed in backward, same losses.
    @Test(arguments: ["tiny-gpt2", "tiny-bert-cls", "tiny-roberta-cls", "tiny-distilbert-cls"])
    func checkpointedBlocksGiveTheSameLosses(model: String) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = try write(#"{"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#, "ds.json", in: dir)
        let data = try write(rows(6, label: model.contains("bert") || model.contains("roberta")), "rows.jsonl", in: dir)
        let args = ["train", "--model", Self.fixtures.appendingPathComponent(model).path, "--config", cfg, "--data", data,
                    "--no-shuffle", "--steps", "3", "--json"]
        let plain = try swiftspeed(args), checkpointed = try swiftspeed(args + ["--checkpoint-activations"])
        #expect(plain.status == 0 && checkpointed.status == 0, "\(plain.stderr)\(checkpointed.stderr)")
        let (a, b) = (try losses(plain.stdout), try losses(checkpointed.stdout))
        #expect(a.count == 3 && a == b, "plain \(a) vs checkpointed \(b)")
    }

    @Test func badRowsAreErrorsNamingTheLine() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = try write(#"{"train_micro_batch_size_per_gpu": 1, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#, "ds.json", in: dir)
        for (text, message) in [("{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 5000]}\n", "rows.jsonl:2: input_ids holds 5000"),
                                ("{\"input_ids\": [1, 2]}\nnot json\n", "rows.jsonl:2: not a JSON object"),
                                ("{\"ids\": [1]}\n", "rows.jsonl:1: no \"input_ids\" list")] {
            let data = try write(text, "rows.jsonl", in: dir)
            let r = try swiftspeed(["train", "--model", Self.fixtures.appendingPathComponent("tiny-gpt2").path, "--config", cfg,
                                    "--data", data, "--steps", "1", "--json"])
            #expect(r.status != 0)
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
    }

    @Test(.needsMPI, arguments: ["tiny-bert-cls", "tiny-llama"])
    func twoRanksMatchOneProcess(model name: String) throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = try write(#"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 2}, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#, "ds.json", in: dir)
        let one = try write(#"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#, "one.json", in: dir)
        let data = try write(rows(8, label: name.contains("bert")), "rows.jsonl", in: dir)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        // Training applies the config's dropouts, whose masks depend on how rows fall on ranks: compare without them.
        let model = try withoutDropout(Self.fixtures.appendingPathComponent(name), in: dir).path
        let args = ["train", "--model", model, "--data", data, "--no-shuffle", "--steps", "3", "--json", "--threads", "1"]
        let single = try swiftspeed(args + ["--config", one])
        #expect(single.status == 0, "\(single.stderr)")
        let reference = try losses(single.stdout)
        let two = try swiftspeed(["launch", "--num_procs", "2", "--", exe] + args + ["--config", cfg])
        #expect(two.status == 0, "\(two.stderr)")
        var got: [Int: Double] = [:]
        for line in two.stdout.split(separator: "\n") where line.hasPrefix("[1,0]<stdout>:{") {
            let object = try JSONSerialization.jsonObject(with: Data(line.dropFirst("[1,0]<stdout>:".count).utf8)) as! [String: Any]
            got[object["step"] as! Int] = object["loss"] as? Double
        }
        #expect(got.count == 3, "\(two.stdout)")
        for (step, loss) in reference {
            #expect(abs((got[step] ?? .nan) - loss) <= 1e-5 * abs(loss), "step \(step): 2 ranks \(got[step] ?? .nan) vs 1 rank \(loss)")
        }
    }
}

extension PretrainedTrainTests {
    /// `train --model DIR` with `"tensor_parallel": {"autotp_size": 2}`: a Llama folder with grouped K/V heads sharded
    /// by its AutoTP rules over TP 2 (2 ranks) and TP 2 × DP 2 at ZeRO 1 (4 ranks) prints one process's losses and
    /// clipped global norms, and `--save-pretrained` gathers the shards into the folder one process saves.
    @Test(.needsMPI) func aLlamaFolderUnderTensorParallelismMatchesOneProcess() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func config(_ stage: Int, tp: Int?) throws -> String {
            try write(#"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 2, "gradient_clipping": 0.5, "zero_optimization": {"stage": \#(stage)}, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}"#
                      + (tp.map { #", "tensor_parallel": {"autotp_size": \#($0)}"# } ?? "") + "}", "ds-\(stage)-\(tp ?? 0).json", in: dir)
        }
        func stepRecords(_ stdout: String, prefix: String) throws -> [Int: [String: Any]] {
            var out: [Int: [String: Any]] = [:]
            for line in stdout.split(separator: "\n") where line.hasPrefix(prefix + "{") {
                let object = try JSONSerialization.jsonObject(with: Data(line.dropFirst(prefix.count).utf8)) as! [String: Any]
                out[object["step"] as! Int] = object
            }
            return out
        }
        let data = try write(rows(8), "rows.jsonl", in: dir)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        let model = Self.fixtures.appendingPathComponent("tiny-llama").path
        let args = ["train", "--model", model, "--data", data, "--no-shuffle", "--steps", "3", "--json", "--threads", "1"]
        let oneOut = dir.appendingPathComponent("one"), tpOut = dir.appendingPathComponent("tp")
        let single = try swiftspeed(args + ["--config", try config(0, tp: nil), "--save-pretrained", oneOut.path])
        #expect(single.status == 0, "\(single.stderr)")
        let reference = try stepRecords(single.stdout, prefix: "")
        #expect(reference.count == 3 && reference.values.allSatisfy { ($0["grad_norm"] as! Double) > 0.5 }, "clipping must be active: \(reference)")
        for (procs, stage) in [(2, 0), (4, 1)] {
            let save = procs == 2 ? ["--save-pretrained", tpOut.path] : []
            let r = try swiftspeed(["launch", "--num_procs", "\(procs)", "--", exe] + args + ["--config", try config(stage, tp: 2)] + save)
            #expect(r.status == 0, "TP 2 on \(procs) ranks: \(r.stderr)")
            let got = try stepRecords(r.stdout, prefix: "[1,0]<stdout>:")
            #expect(got.count == 3, "\(r.stdout)")
            for (step, ref) in reference {
                for key in ["loss", "grad_norm"] {
                    let (a, b) = ((got[step]?[key] as? Double) ?? .nan, ref[key] as! Double)
                    #expect(abs(a - b) <= 1e-5 * abs(b), "TP 2 on \(procs) ranks, step \(step) \(key): \(a) vs one process \(b)")
                }
            }
        }
        let one = try LlamaForCausalLM.fromPretrained(oneOut).stateDict(), tp = try LlamaForCausalLM.fromPretrained(tpOut).stateDict()
        #expect(Set(one.keys) == Set(tp.keys))
        // Three Adam steps of lr 1e-2 move the weights by ~3e-2; the TP run's other summation order shows as up to
        // ~1e-5 after Adam normalises small gradients (1.15e-5 on k_proj in a debug build), so 5e-5 still tells a
        // wrong shard (an lr-sized step) apart.
        for (name, w) in one {
            let diff = zip(w.scalars, tp[name]?.scalars ?? []).map { abs($0 - $1) }.max() ?? .nan
            #expect(tp[name]?.shape == w.shape && diff <= 5e-5, "\(name): the TP run saved \(tp[name]?.shape ?? []) differing by \(diff)")
        }
    }
}

/// A GPT-2 folder with a real (small, byte-level BPE) tokenizer: random weights sized to the tokenizer's vocabulary.
@Suite struct PretrainedTextTests {
    static let tokenizerFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SpeedTokenizersTests/Fixtures/bpe-small/tokenizer.json")

    func folder(in dir: URL) throws -> URL {
        let out = dir.appendingPathComponent("gpt2-bpe")
        let model = try GPT2LMHeadModel(GPT2Config(vocabSize: 400, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 2), seed: 3)
        try model.savePretrained(out)
        try FileManager.default.copyItem(at: Self.tokenizerFile, to: out.appendingPathComponent("tokenizer.json"))
        return out
    }

    @Test func generateGreedilyContinuesThePromptAsTheLibraryDoes() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try folder(in: dir)
        let r = try swiftspeed(["generate", "--model", path.path, "--prompt", "hello world", "--max-new-tokens", "6", "--temperature", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        let tokenizer = try Tokenizer(contentsOf: path)
        let model = try GPT2LMHeadModel.fromPretrained(path)
        let new = model.generate(tokenizer.encode("hello world").ids.map { Int32($0) }, maxNewTokens: 6, temperature: 0)
        #expect(r.stdout == "hello world" + tokenizer.decode(new.map { Int($0) }) + "\n")
    }

    @Test func textRowsAndPlainTextTrainLikeTheirTokenIDs() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try folder(in: dir)
        let tokenizer = try Tokenizer(contentsOf: path)
        let lines = ["the quick brown fox", "jumps over", "the lazy dog again", "and again"]
        let cfg = dir.appendingPathComponent("ds.json")
        try #"{"train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}"#.write(to: cfg, atomically: true, encoding: .utf8)
        let texts = dir.appendingPathComponent("text.jsonl"), plain = dir.appendingPathComponent("plain.txt"),
            ids = dir.appendingPathComponent("ids.jsonl")
        try lines.map { #"{"text": "\#($0)"}"# }.joined(separator: "\n").write(to: texts, atomically: true, encoding: .utf8)
        try lines.joined(separator: "\n").write(to: plain, atomically: true, encoding: .utf8)
        try lines.map { #"{"input_ids": \#(tokenizer.encode($0).ids)}"# }.joined(separator: "\n").write(to: ids, atomically: true, encoding: .utf8)
        var results: [[Int: Double]] = []
        for data in [ids, texts, plain] {
            let r = try swiftspeed(["train", "--model", path.path, "--config", cfg.path, "--data", data.path, "--no-shuffle",
                                    "--steps", "3", "--json"])
            #expect(r.status == 0, "\(data.lastPathComponent): \(r.stderr)")
            results.append(try losses(r.stdout))
        }
        #expect(results[0].count == 3 && results[1] == results[0] && results[2] == results[0], "\(results)")
    }
}
