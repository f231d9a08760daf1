// Stage-0 data parallelism end to end: `swiftspeed train` under mpirun on 2 and 4 ranks prints the same
// losses as one process with the same global batch (gradient accumulation standing in for ranks).
import Foundation
import SpeedTestSupport
import Testing

@Suite(.serialized, .needsMPI) struct DataParallelTests {
    @Test func twoAndFourRanksMatchOneProcessWithTheSameGlobalBatch() throws {
        let mpirun = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds.json")
        // train_batch_size 8, micro-batch 2: GAS 4 on 1 rank, 2 on 2 ranks, 1 on 4 ranks.
        try #"{"train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 0, "reduce_bucket_size": 100000}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.1}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let args = ["train", "--model", "simple", "--config", cfg.path, "--synthetic", "--steps", "3", "--json", "--threads", "1"]
        let single = try swiftspeed(args)
        #expect(single.status == 0, "\(single.stderr)")
        let reference = try losses(single.stdout)
        #expect(reference.count == 3)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
        for ranks in [2, 4] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: mpirun)
            p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", exe.path] + args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let got = try losses(String(decoding: data, as: UTF8.self))
            #expect(got.count == 3, "\(ranks) ranks printed \(got)")
            for (step, loss) in reference {
                let other = try #require(got[step])
                #expect(Swift.abs(other - loss) <= 1e-5 * Swift.abs(loss), "step \(step): \(ranks) ranks \(other) vs 1 rank \(loss)")
            }
        }
    }
}

@Suite(.serialized, .needsMPI) struct ZeroStageOneTests {
    /// ZeRO-1 on 2 ranks: the same losses as one process, optimizer state per rank halved
    /// (fp32 Adam: 4Ψ params + 4Ψ grads + 8Ψ/W), and a checkpoint saved by 2 ranks resumes on 1.
    @Test func stageOneOnTwoRanksMatchesOneProcessHalvesOptimizerStateAndResumesOnOneRank() throws {
        let mpirun = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("z1.json")
        try #"{"train_batch_size": 8, "train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 1}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.1}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let args = ["train", "--model", "simple", "--config", cfg.path, "--synthetic", "--json", "--threads", "1"]
        let single = try swiftspeed(args + ["--steps", "4"])
        #expect(single.status == 0, "\(single.stderr)")
        let reference = try losses(single.stdout)

        let ckpt = dir.appendingPathComponent("ckpt").path
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", exe.path] + args + ["--steps", "2", "--save-dir", ckpt]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let text = String(decoding: data, as: UTF8.self)
        let two = try losses(text)
        for step in 1...2 {
            #expect(Swift.abs(two[step]! - reference[step]!) <= 1e-5 * reference[step]!)
        }
        let first = try #require(text.split(separator: "\n").first { $0.hasPrefix("{") })
        let record = try JSONSerialization.jsonObject(with: Data(first.utf8)) as! [String: Any]
        let psi = Double(record["params_total"] as! Int)
        #expect(Double(record["mem_params_bytes"] as! Int) == 4 * psi)
        #expect(Double(record["mem_grads_bytes"] as! Int) == 4 * psi)
        #expect(Swift.abs(Double(record["mem_optim_bytes"] as! Int) - 8 * psi / 2) <= 8 * 2)   // + padding < W elements
        #expect(FileManager.default.fileExists(atPath: ckpt + "/global_step2/zero_pp_rank_1_mp_rank_00_optim_states.safetensors"))

        // Resume the 2-rank checkpoint on 1 rank (beyond DeepSpeed).
        let resumed = try swiftspeed(args + ["--steps", "4", "--save-dir", ckpt, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let tail = try losses(resumed.stdout)
        for step in 3...4 {
            #expect(Swift.abs(tail[step]! - reference[step]!) <= 1e-5 * reference[step]!)
        }
    }
}
