// `swiftspeed launch --max-restarts`: a rank killed mid-training restarts the whole job, which resumes from the
// latest checkpoint and ends with exactly the losses of an uninterrupted run (resume is bit-exact).
import Foundation
import SpeedTestSupport
import Testing

@Suite(.serialized, .needsMPI) struct LaunchRestartTests {
    /// Step → loss from rank 0's JSON lines in launcher output (later lines win: a restarted run reprints steps).
    func rankZeroLosses(_ stdout: String) -> [Int: Double] {
        var out: [Int: Double] = [:]
        for line in stdout.split(separator: "\n") where line.contains("<stdout>:{") && line.hasPrefix("[1,0]") {
            let json = line[line.range(of: "<stdout>:")!.upperBound...]
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                  let step = object["step"] as? Int, let loss = object["loss"] as? Double else { continue }
            out[step] = loss
        }
        return out
    }

    @Test func aKilledRankRestartsTheJobFromItsCheckpointWithUnchangedLosses() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds.json")
        try #"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 1}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed").path
        let train = [exe, "train", "--model", "simple", "--config", cfg.path, "--synthetic", "--json", "--threads", "1", "--steps", "8"]

        let plain = try swiftspeed(["launch", "--num_procs", "2", "--"] + train)
        #expect(plain.status == 0, "\(plain.stderr)")
        let reference = rankZeroLosses(plain.stdout)
        #expect(reference.count == 8, "\(plain.stdout)")

        // Rank 1 of the first attempt kills itself once step 3's checkpoint is complete.
        let ckpt = dir.appendingPathComponent("ckpt").path
        let resumed = (train + ["--save-dir", ckpt, "--save-every", "1", "--resume"]).map { "'\($0)'" }.joined(separator: " ")
        let script = """
            if [ "$SWIFTSPEED_RESTART" = 0 ] && [ "$RANK" = 1 ]; then
              ( while [ ! -d '\(ckpt)/global_step3' ]; do sleep 0.05; done; kill -9 $$ ) &
            fi
            exec \(resumed)
            """
        let r = try swiftspeed(["launch", "--num_procs", "2", "--max-restarts", "2", "--", "sh", "-c", script])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("restart 1/2"), "\(r.stderr)")
        let got = rankZeroLosses(r.stdout)
        #expect(got == reference, "restarted \(got.sorted { $0.key < $1.key }) vs uninterrupted \(reference.sorted { $0.key < $1.key })")
    }

    @Test func aJobThatKeepsFailingStopsAfterMaxRestarts() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let r = try swiftspeed(["launch", "--num_procs", "2", "--max-restarts", "2", "--", "sh", "-c", "exit 7"])
        #expect(r.status == 7)
        #expect(r.stderr.contains("restart 2/2") && r.stderr.contains("after 2 restart(s); giving up"), "\(r.stderr)")
    }
}
