// `swiftspeed launch --num_procs W -- swiftspeed train --model gpt-mini --synthetic --pipeline-stages P --json` over
// MPI: rank 0 prints one process's step records (loss, grad norm, lr, scale, params) with its own stage's memory.
import Foundation
import SpeedTestSupport
import SwiftSpeed
import Testing

@Suite(.serialized, .needsMPI) struct PipelineTrainTests {
    /// Rank 0's JSON objects, by step, from launcher output (`[1,0]<stdout>:{…}` lines) or a plain run's stdout.
    func records(_ stdout: String) -> [Int: [String: Any]] {
        var out: [Int: [String: Any]] = [:]
        for line in stdout.split(separator: "\n") {
            let json: Substring
            if line.hasPrefix("{") { json = line } else if line.hasPrefix("[1,0]<stdout>:{") {
                json = line[line.range(of: "<stdout>:")!.upperBound...]
            } else { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                  let step = object["step"] as? Int else { continue }
            out[step] = object
        }
        return out
    }

    @Test func rankZeroPrintsOneProcesssStepsForTwoAndFourStagesAndTwoByTwo() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds.json")
        // Global batch 8 = 2 rows × GAS 4 (one data-parallel rank) or × GAS 2 (two); clipping at 1.0 is active.
        try #"{"train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "gradient_clipping": 1.0, "zero_optimization": {"stage": 1}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.1}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        let train = [exe, "train", "--model", "gpt-mini", "--config", cfg.path, "--synthetic", "--json", "--threads", "1", "--steps", "3"]
        let single = try swiftspeed(Array(train.dropFirst()))
        #expect(single.status == 0, "\(single.stderr)")
        let reference = records(single.stdout)
        #expect(reference.count == 3)
        for (procs, stages) in [(2, 2), (4, 4), (4, 2)] {
            let r = try swiftspeed(["launch", "--num_procs", "\(procs)", "--"] + train + ["--pipeline-stages", "\(stages)"])
            #expect(r.status == 0, "\(procs) ranks, \(stages) stages: \(r.stderr)")
            let got = records(r.stdout)
            #expect(got.count == 3, "\(procs) ranks, \(stages) stages printed \(r.stdout)")
            // Rank 0 is stage 0 (data rank 0): its memory is its stage's parameters, padded to the data-parallel size.
            let module = try GPTPipe.module(.gptMini, seed: 1234, numStages: stages)
            let stageParams = module.parameterCount(stage: 0)
            let dp = procs / stages
            let padded = (stageParams + dp - 1) / dp * dp
            for (step, ref) in reference {
                guard let rec = got[step] else { Issue.record("step \(step) missing"); continue }
                for key in ["loss", "grad_norm"] {
                    let (a, b) = (rec[key] as! Double, ref[key] as! Double)
                    #expect(abs(a - b) <= 1e-5 * abs(b), "\(procs)×\(stages) step \(step) \(key): \(a) vs one process \(b)")
                }
                for key in ["lr", "loss_scale"] { #expect(rec[key] as? Double == ref[key] as? Double, "\(key)") }
                for key in ["params_total", "skipped_steps"] { #expect(rec[key] as? Int == ref[key] as? Int, "\(key)") }
                #expect(rec["mem_params_bytes"] as? Int == 4 * padded, "\(procs)×\(stages): \(rec["mem_params_bytes"]!) vs 4 × \(padded)")
                #expect(rec["mem_grads_bytes"] as? Int == 4 * padded)
                #expect((rec["mem_params_bytes"] as! Int) < (ref["mem_params_bytes"] as! Int))
            }
        }
    }


    /// Saved by 2 stages under launch, resumed exactly by 2 stages, and consolidated by zero-to-fp32 into GPT's names.
    @Test func aPipelineCheckpointResumesAndConsolidates() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds.json")
        try #"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 1}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        let ckpt = dir.appendingPathComponent("ckpt").path
        let train = [exe, "train", "--model", "gpt-mini", "--config", cfg.path, "--synthetic", "--json", "--threads", "1",
                     "--pipeline-stages", "2"]
        let whole = try swiftspeed(["launch", "--num_procs", "2", "--"] + train + ["--steps", "3"])
        #expect(whole.status == 0, "\(whole.stderr)")
        let first = try swiftspeed(["launch", "--num_procs", "2", "--"] + train + ["--steps", "2", "--save-dir", ckpt])
        #expect(first.status == 0, "\(first.stderr)")
        let resumed = try swiftspeed(["launch", "--num_procs", "2", "--"] + train + ["--steps", "3", "--save-dir", ckpt, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let (a, b) = (records(whole.stdout), records(resumed.stdout))
        #expect(b.keys.sorted() == [3] && b[3]?["loss"] as? Double == a[3]?["loss"] as? Double, "resumed \(b) vs \(a)")
        let out = dir.appendingPathComponent("fp32").path
        let consolidated = try swiftspeed(["zero-to-fp32", ckpt, out])
        #expect(consolidated.status == 0, "\(consolidated.stderr)")
        let (tensors, _) = try Safetensors.read(URL(fileURLWithPath: out).appendingPathComponent("model.safetensors"))
        var rng = RandomStream(seed: 1)
        let gpt = GPT(.gptMini, rng: &rng)
        #expect(Set(tensors.keys) == Set(gpt.namedParameters().map(\.0)))
        try gpt.load(stateDict: tensors)
    }

    /// `train --model DIR --pipeline-stages P` splits a Hugging Face causal-LM folder (HFPipe: Llama with grouped K/V
    /// heads and an untied head; Qwen2 with q/k/v biases and tied embeddings) over 2 stages and 2 stages × 2
    /// data-parallel ranks, and rank 0 prints one unsplit process's losses on the same padded JSONL rows;
    /// `--save-pretrained` writes the folder one process saves (with --save-dir's checkpoint, or a scratch one, also
    /// from the config's pipeline.stages). A sequence classifier is refused by name.
    @Test(arguments: ["tiny-llama", "tiny-qwen2"]) func aHuggingFaceFolderSplitsIntoStages(model name: String) throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SpeedTransformersTests/Fixtures")
        let cfg = dir.appendingPathComponent("ds.json")
        try #"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 1, "gradient_clipping": 0.5, "zero_optimization": {"stage": 1}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        // Rows of 3 to 9 tokens: every micro-batch of 1 is its own length, batches of 2+ are right-padded.
        let rows = (0..<8).map { i in "{\"input_ids\": [" + (0..<(3 + i % 7)).map { String(($0 * 7 + i * 13) % 97) }.joined(separator: ", ") + "]}" }
        let data = dir.appendingPathComponent("rows.jsonl")
        try (rows.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        let model = fixtures.appendingPathComponent(name).path
        let train = [exe, "train", "--model", model, "--config", cfg.path, "--data", data.path, "--no-shuffle", "--json",
                     "--threads", "1", "--steps", "3"]
        let oneOut = dir.appendingPathComponent("one")
        let single = try swiftspeed(Array(train.dropFirst()) + ["--save-pretrained", oneOut.path])
        #expect(single.status == 0, "\(single.stderr)")
        let reference = records(single.stdout)
        #expect(reference.count == 3)
        for (procs, stages) in [(2, 2), (4, 2)] {
            let save = procs == 2 ? ["--save-pretrained", dir.appendingPathComponent("piped").path]
                                  : ["--save-pretrained", dir.appendingPathComponent("piped-dp").path,
                                     "--save-dir", dir.appendingPathComponent("ckpt").path]
            let r = try swiftspeed(["launch", "--num_procs", "\(procs)", "--"] + train + ["--pipeline-stages", "\(stages)"] + save)
            #expect(r.status == 0, "\(procs) ranks, \(stages) stages: \(r.stderr)")
            let got = records(r.stdout)
            #expect(got.count == 3, "\(procs) ranks, \(stages) stages printed \(r.stdout)")
            for (step, ref) in reference {
                let (a, b) = (got[step]?["loss"] as? Double ?? .nan, ref["loss"] as! Double)
                #expect(abs(a - b) <= 1e-5 * abs(b), "\(name) \(procs)×\(stages) step \(step): \(a) vs one process \(b)")
            }
        }
        // The saved folders are the unsplit model's, as one process saves it (the scratch checkpoint is gone).
        let one = try LlamaForCausalLM.fromPretrained(oneOut).stateDict()
        for folder in ["piped", "piped-dp"] {
            let out = dir.appendingPathComponent(folder)
            let piped = try LlamaForCausalLM.fromPretrained(out).stateDict()
            #expect(Set(one.keys) == Set(piped.keys), "\(folder): \(Set(one.keys).symmetricDifference(piped.keys))")
            for (key, w) in one {
                let diff = zip(w.scalars, piped[key]?.scalars ?? []).map { abs($0 - $1) }.max() ?? .nan
                // A key bias's gradient is zero but for rounding (softmax ignores a shift shared by all keys), and
                // Adam turns that noise into lr-sized steps: it matches only to the summation order's noise.
                let tolerance: Float = key.hasSuffix("k_proj.bias") ? 1e-3 : 1e-5
                #expect(piped[key]?.shape == w.shape && diff <= tolerance, "\(folder) \(key): differs by \(diff)")
            }
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path))
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(".pipeline-checkpoint").path))
        }
        let staged = dir.appendingPathComponent("staged.json")   // a one-stage pipeline on one process saves too
        try #"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 1, "pipeline": {"stages": 1}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}}}"#
            .write(to: staged, atomically: true, encoding: .utf8)
        let savingStaged = try swiftspeed(["train", "--model", model, "--config", staged.path, "--data", data.path, "--steps", "1",
                                           "--pipeline-stages", "1", "--save-pretrained", dir.appendingPathComponent("out").path])
        #expect(savingStaged.status == 0, "\(savingStaged.stderr)")
        #expect(try LlamaForCausalLM.fromPretrained(dir.appendingPathComponent("out")).stateDict().count == one.count)
        let classifier = try swiftspeed(["train", "--model", fixtures.appendingPathComponent("tiny-bert-cls").path, "--config", cfg.path,
                                         "--data", data.path, "--steps", "1", "--pipeline-stages", "1"])
        #expect(classifier.status != 0 && classifier.stderr.contains("causal LMs"), "\(classifier.stderr)")
    }
}

@Suite struct PipelineTrainArgumentTests {
    @Test func zeroStageTwoIsRefusedWithDeepSpeedsReason() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("z2.json")
        try #"{"train_batch_size": 2, "zero_optimization": {"stage": 2}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let r = try swiftspeed(["train", "--model", "gpt-mini", "--config", cfg.path, "--synthetic", "--steps", "1", "--pipeline-stages", "1"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism"), "\(r.stderr)")
    }
}
