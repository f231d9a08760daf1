// ZeRO stages 0–3 on 2 and 4 ranks against one process: the whole matrix (offload × fp32/fp16/bf16 ×
// GAS 1/3, memory formulas, checkpoints across stages and world sizes, a NaN on one rank) through
// `swiftspeed zero-check`, and gpt-mini end to end through `swiftspeed launch`.
import Foundation
import SpeedTestSupport
import Testing

@Suite(.serialized, .needsMPI) struct ZeroStageTests {
    @Test(arguments: [2, 4])
    func everyStageOffloadPrecisionAndAccumulationMatchesOneProcess(ranks: Int) throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let text = try zeroCheck(ranks: ranks, [])
        #expect(text.contains("zero-check: 48/48 cases match on \(ranks) ranks"), "\(text)")
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == 48)
    }

    /// W = 1: every stage's code path (buckets, gathers, offload) on one process, memory = formula.
    @Test func oneProcessRunsEveryStageAndMatchesTheFormulas() throws {
        let r = try swiftspeed(["zero-check", "--gas", "1"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("zero-check: 24/24 cases match on 1 rank"), "\(r.stdout)")
    }

    /// Checkpointed blocks recompute inside backward, where stage 3 gathers and stage 2 reduces.
    @Test func activationCheckpointingUnderStagesTwoAndThreeMatchesOneProcess() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let text = try zeroCheck(ranks: 2, ["--stages", "2,3", "--dtypes", "fp32,bf16", "--gas", "1", "--offload", "none",
                                            "--checkpoint-activations"])
        #expect(text.contains("zero-check: 4/4 cases match on 2 ranks"), "\(text)")
    }

    /// DeepSpeed's averaging options on real MPI: the same training as one process.
    @Test(arguments: [["--prescale"], ["--predivide", "4", "--comm-dtype", "fp16"], ["--comm-dtype", "bf16"]])
    func gradientAveragingOptionsMatchOneProcess(options: [String]) throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let text = try zeroCheck(ranks: 2, ["--stages", "0,2", "--dtypes", "fp32", "--gas", "1", "--offload", "none"] + options)
        #expect(text.contains("zero-check: 2/2 cases match on 2 ranks"), "\(text)")
    }

    private func zeroCheck(ranks: Int, _ extra: [String]) throws -> String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(Requirements.mpirun))
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", exe.path, "zero-check", "--timeout", "120"] + extra
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text)")
        return text
    }

    /// The done-when command, shortened to 2 steps: gpt-mini on 4 ranks through the launcher.
    @Test(arguments: ["zero-stage2.json", "zero-stage3-offload.json"])
    func gptMiniOnFourRanksThroughTheLauncherMatchesOneProcess(config: String) throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/\(config)").path
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
        let train = ["train", "--model", "gpt-mini", "--config", path, "--synthetic", "--steps", "2", "--json", "--threads", "1"]
        let single = try swiftspeed(train)
        #expect(single.status == 0, "\(single.stderr)")
        let four = try swiftspeed(["launch", "--num_procs", "4", "--", exe.path] + train)
        #expect(four.status == 0, "\(four.stderr)")
        let records = four.stdout.split(separator: "\n").compactMap { line -> [String: Any]? in
            guard let brace = line.firstIndex(of: "{") else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(line[brace...].utf8)) as? [String: Any]
        }
        let reference = try losses(single.stdout)
        let referenceNorms = single.stdout.split(separator: "\n").compactMap { line -> Double? in
            guard line.hasPrefix("{") else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["grad_norm"] as? Double
        }
        #expect(records.count == 2, "\(four.stdout)")
        // bf16 losses round to 1/16 near 9; the fp32 gradient norm is the sharper comparison.
        for (r, norm) in zip(records, referenceNorms) {
            let got = r["grad_norm"] as! Double
            #expect(Swift.abs(got - norm) <= 1e-2 * norm, "grad norm \(got) on 4 ranks vs \(norm) on 1")
        }
        for r in records {
            let step = r["step"] as! Int, loss = r["loss"] as! Double
            #expect(Swift.abs(loss - reference[step]!) <= 2e-2 * reference[step]!, "step \(step): 4 ranks \(loss) vs 1 rank \(reference[step]!)")
        }
        // B4: bf16 weights and gradients, fp32 master + Adam moments; persistence threshold 0.
        let r = try #require(records.first)
        let psi = r["params_total"] as! Int, padded = (psi + 3) / 4 * 4
        let stage3 = config.contains("stage3")
        #expect(r["mem_params_bytes"] as! Int == (stage3 ? 0 : 2 * padded))   // offload_param moved them to the CPU
        #expect(r["mem_grads_bytes"] as! Int == 2 * padded / 4)
        #expect(r["mem_optim_bytes"] as! Int == (stage3 ? 0 : 12 * padded / 4))
        #expect(r["mem_offload_bytes"] as? Int == (stage3 ? 14 * padded / 4 : 0))
    }
}
