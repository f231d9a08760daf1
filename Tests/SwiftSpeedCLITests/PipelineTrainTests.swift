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
