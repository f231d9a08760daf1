// Stage-0 data parallelism end to end: `swiftspeed train` under mpirun on 2 and 4 ranks prints the same
// losses as one process with the same global batch (gradient accumulation standing in for ranks).
import Foundation
import Testing

@Suite(.serialized) struct DataParallelTests {
    @Test func twoAndFourRanksMatchOneProcessWithTheSameGlobalBatch() throws {
        guard let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { return }   // OpenMPI missing: scripts/setup.sh installs it
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
