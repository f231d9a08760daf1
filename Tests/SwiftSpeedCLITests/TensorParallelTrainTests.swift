// `swiftspeed launch --num_procs W -- swiftspeed train --model gpt-mini --synthetic --config CFG --json` with
// `"tensor_parallel": {"autotp_size": 2}` over MPI: global rank 0 prints one process's step records (loss, grad norm,
// lr, params) for TP = 2 and TP = 2 × DP = 2 at ZeRO 1 and 2, with its own shard's memory. Clipping is active.
import Foundation
import SpeedTestSupport
import SwiftSpeed
import Testing

@Suite(.serialized, .needsMPI) struct TensorParallelTrainTests {
    /// Rank 0's JSON objects by step, and how many ranks printed any (`[1,r]<stdout>:{…}` lines, or a plain stdout).
    func records(_ stdout: String) -> (byStep: [Int: [String: Any]], printers: Set<String>) {
        var out: [Int: [String: Any]] = [:], printers: Set<String> = []
        for line in stdout.split(separator: "\n") {
            var json = line
            if let r = line.range(of: "<stdout>:{") {
                printers.insert(String(line[..<r.lowerBound]))
                guard line.hasPrefix("[1,0]") else { continue }
                json = line[line.index(before: r.upperBound)...]
            } else if !line.hasPrefix("{") { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                  let step = object["step"] as? Int else { continue }
            out[step] = object
        }
        return (out, printers)
    }

    /// fp32 Adam bytes on TP rank 0 of gpt-mini (heads and MLP ÷ TP, 8192 / TP vocabulary rows, the rest whole), padded
    /// to a multiple of DP for ZeRO ≥ 1.
    func rankZeroBytes(tp: Int, dp: Int, stage: Int) -> (params: Int, grads: Int, optim: Int) {
        let g = GPTConfig.gptMini, c = g.embedDim
        let psi = g.layers * ((12 * c * c + 7 * c) / tp + 6 * c) + g.contextLength * c + 2 * c + g.vocabSize / tp * c
        let padded = stage == 0 ? psi : (psi + dp - 1) / dp * dp
        let slice = stage == 0 ? padded : padded / dp
        return (4 * padded, 4 * (stage == 2 ? slice : padded), 8 * slice)
    }

    @Test func rankZeroPrintsOneProcesssStepsForTwoWayTPAndTwoByTwoAtZeROOneAndTwo() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        func config(stage: Int, tp: Int?) throws -> String {
            let path = dir.appendingPathComponent("ds-\(stage)-\(tp ?? 0).json").path
            // Global batch 8 = 2 rows × GAS 4 (one data-parallel rank) or × GAS 2 (two); clipping at 0.1 is active.
            try (#"{"train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "gradient_clipping": 0.1, "zero_optimization": {"stage": \#(stage)}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.1}}"#
                + (tp.map { #", "tensor_parallel": {"autotp_size": \#($0)}"# } ?? "") + "}")
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        for (procs, stage) in [(2, 0), (4, 1), (4, 2)] {
            let train = [exe, "train", "--model", "gpt-mini", "--synthetic", "--json", "--threads", "1", "--steps", "3"]
            let single = try swiftspeed(Array(train.dropFirst()) + ["--config", try config(stage: stage, tp: nil)])
            #expect(single.status == 0, "\(single.stderr)")
            let reference = records(single.stdout).byStep
            #expect(reference.count == 3)
            let r = try swiftspeed(["launch", "--num_procs", "\(procs)", "--"] + train + ["--config", try config(stage: stage, tp: 2)])
            #expect(r.status == 0, "TP 2 on \(procs) ranks, ZeRO \(stage): \(r.stderr)")
            let (got, printers) = records(r.stdout)
            #expect(got.count == 3, "\(procs) ranks printed \(r.stdout)")
            #expect(printers == ["[1,0]"], "only global rank 0 prints: \(printers.sorted())")
            let want = rankZeroBytes(tp: 2, dp: procs / 2, stage: stage)
            for (step, ref) in reference {
                guard let rec = got[step] else { Issue.record("step \(step) missing"); continue }
                #expect((ref["grad_norm"] as! Double) > 0.1, "clipping must be active")
                for key in ["loss", "grad_norm"] {
                    let (a, b) = (rec[key] as! Double, ref[key] as! Double)
                    #expect(abs(a - b) <= 1e-5 * abs(b), "TP 2 × DP \(procs / 2) ZeRO \(stage) step \(step) \(key): \(a) vs one process \(b)")
                }
                for key in ["lr", "loss_scale"] { #expect(rec[key] as? Double == ref[key] as? Double, "\(key)") }
                for key in ["params_total", "skipped_steps"] { #expect(rec[key] as? Int == ref[key] as? Int, "\(key)") }
                #expect(rec["mem_params_bytes"] as? Int == want.params, "params \(rec["mem_params_bytes"]!) vs \(want.params)")
                #expect(rec["mem_grads_bytes"] as? Int == want.grads, "grads \(rec["mem_grads_bytes"]!) vs \(want.grads)")
                #expect(rec["mem_optim_bytes"] as? Int == want.optim, "optimizer \(rec["mem_optim_bytes"]!) vs \(want.optim)")
            }
        }
    }

    /// TP 2 × PP 2 × DP 2 on 8 ranks (oversubscribed), ZeRO 1: the same step records as one process, and rank 0
    /// (stage 0, TP rank 0) holds half of wte and of blocks 0–1's sharded layers, wpe and the replicated rest whole.
    @Test func tensorTimesPipelineTimesDataParallelOnEightRanks() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        let body = #""train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "gradient_clipping": 0.1, "zero_optimization": {"stage": 1}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.1}}"#
        let single = dir.appendingPathComponent("one.json"), sharded = dir.appendingPathComponent("tp.json")
        try "{\(body)}".write(to: single, atomically: true, encoding: .utf8)
        try "{\(body), \"tensor_parallel\": {\"autotp_size\": 2}}".write(to: sharded, atomically: true, encoding: .utf8)
        let train = [exe, "train", "--model", "gpt-mini", "--synthetic", "--json", "--threads", "1", "--steps", "3"]
        let one = try swiftspeed(Array(train.dropFirst()) + ["--config", single.path])
        #expect(one.status == 0, "\(one.stderr)")
        let reference = records(one.stdout).byStep
        let r = try swiftspeed(["launch", "--num_procs", "8", "--"] + train + ["--config", sharded.path, "--pipeline-stages", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let (got, printers) = records(r.stdout)
        #expect(got.count == 3 && printers == ["[1,0]"], "\(r.stdout)")
        let g = GPTConfig.gptMini, c = g.embedDim
        let psi = g.vocabSize / 2 * c + g.contextLength * c + 2 * ((12 * c * c + 7 * c) / 2 + 6 * c)
        let padded = (psi + 1) / 2 * 2
        for (step, ref) in reference {
            guard let rec = got[step] else { Issue.record("step \(step) missing"); continue }
            for key in ["loss", "grad_norm"] {
                let (a, b) = (rec[key] as! Double, ref[key] as! Double)
                #expect(abs(a - b) <= 1e-5 * abs(b), "TP 2 × PP 2 × DP 2 step \(step) \(key): \(a) vs one process \(b)")
            }
            #expect(rec["params_total"] as? Int == ref["params_total"] as? Int)
            #expect(rec["mem_params_bytes"] as? Int == 4 * padded, "\(rec["mem_params_bytes"]!) vs 4 × \(padded)")
            #expect(rec["mem_optim_bytes"] as? Int == 8 * padded / 2)
        }
    }

    @Test func aModelWithoutRulesIsRefusedByName() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds.json")
        try #"{"train_batch_size": 2, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}, "tensor_parallel": {"autotp_size": 2}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        let r = try swiftspeed(["launch", "--num_procs", "2", "--", exe, "train", "--model", "simple", "--synthetic",
                                "--config", cfg.path, "--steps", "1", "--threads", "1"])
        #expect(r.status != 0)
        // Both ranks refuse; mpirun may interleave their lines, so each rank's stream is read on its own.
        let ranks = perRankOutput(r.stderr)
        #expect(ranks.values.contains { $0.contains("SimpleModel has no tensor-parallel rules") }, "\(ranks)")
    }
}

@Suite struct TensorParallelTrainArgumentTests {
    @Test func aSizeThatDoesNotDivideTheRanksIsRefused() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("tp.json")
        try #"{"train_batch_size": 2, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}, "tensor_parallel": {"autotp_size": 2}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let r = try swiftspeed(["train", "--model", "gpt-mini", "--config", cfg.path, "--synthetic", "--steps", "1"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("tensor_parallel.autotp_size") && r.stderr.contains("1 processes do not split into tensor-parallel groups of 2"), "\(r.stderr)")
    }
}
