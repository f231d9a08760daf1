// `swiftspeed zero-to-fp32` end to end: a 2-rank ZeRO checkpoint consolidates to exactly the weights the
// one-rank path gives (the same checkpoint resumed and re-saved by one process), and bad paths exit with status 1.
import Foundation
import SpeedCore
import SpeedIO
import SpeedTestSupport
import Testing

/// Runs the built `swiftspeed` under `mpirun -np ranks`; returns its exit status and stdout.
private func mpiSwiftspeed(_ mpirun: String, ranks: Int, _ args: [String]) throws -> (status: Int32, stdout: String) {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: mpirun)
    p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", exe.path] + args
    p.environment = ProcessInfo.processInfo.environment.merging(["OMPI_MCA_btl_vader_single_copy_mechanism": "none"]) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite(.serialized, .needsMPI) struct ZeroToFP32Tests {
    @Test(arguments: [(1, "bf16"), (3, "fp32")])
    func twoRankShardsConsolidateToTheOneRankWeights(stage: Int, precision: String) throws {
        let mpirun = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds.json")
        let half = precision == "bf16" ? #", "bf16": {"enabled": true}"# : ""
        try #"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": \#(stage)}, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "weight_decay": 0.1}}\#(half)}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let args = ["train", "--model", "simple", "--config", cfg.path, "--synthetic", "--json", "--threads", "1", "--steps", "2"]
        let two = dir.appendingPathComponent("two").path, one = dir.appendingPathComponent("one").path
        let run = try mpiSwiftspeed(mpirun, ranks: 2, args + ["--save-dir", two])
        #expect(run.status == 0)
        let folder = two + "/global_step2/"
        #expect(FileManager.default.fileExists(atPath: folder + "zero_pp_rank_1_mp_rank_00_optim_states.safetensors"))

        // The one-rank path: the same checkpoint resumed by one process (which rebuilds the full fp32
        // buffers from both shards) and saved again as a single shard.
        try FileManager.default.copyItem(atPath: two, toPath: one)
        let resumed = try swiftspeed(args + ["--save-dir", one, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: one + "/global_step2/zero_pp_rank_1_mp_rank_00_optim_states.safetensors"))

        let outTwo = dir.appendingPathComponent("out-two").path, outOne = dir.appendingPathComponent("out-one").path
        let a = try swiftspeed(["zero-to-fp32", two, outTwo])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout.contains("ZeRO stage \(stage), 2 shards"))
        let b = try swiftspeed(["zero-to-fp32", one, outOne, "--tag", "global_step2"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stdout.contains("1 shard,"))

        let (fromTwo, meta) = try Safetensors.read(URL(fileURLWithPath: outTwo + "/model.safetensors"))
        let (fromOne, _) = try Safetensors.read(URL(fileURLWithPath: outOne + "/model.safetensors"))
        #expect(meta["format"] == "pt")
        #expect(!fromTwo.isEmpty && Set(fromTwo.keys) == Set(fromOne.keys))
        for (name, t) in fromTwo {
            #expect(t.dtype == .float32 && t.shape == fromOne[name]!.shape, "\(name)")
            #expect(t.scalars == fromOne[name]!.scalars, "\(name)")
        }
        // The model-states weights are these fp32 masters in the model dtype.
        let (modelWeights, _) = try Safetensors.read(URL(fileURLWithPath: folder + "mp_rank_00_model_states.safetensors"))
        #expect(Set(modelWeights.keys) == Set(fromTwo.keys))
        for (name, w) in modelWeights {
            #expect(w.dtype == (precision == "bf16" ? .bfloat16 : .float32))
            #expect(fromTwo[name]!.cast(to: w.dtype).scalars == w.scalars, "\(name)")
        }
    }

    @Test func aMissingDirectoryOrTagExitsWithStatusOneAndSaysWhy() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = try swiftspeed(["zero-to-fp32", dir.path + "/nope", dir.path + "/out"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("checkpoint directory \(dir.path)/nope does not exist"))
        let noLatest = try swiftspeed(["zero-to-fp32", dir.path, dir.path + "/out"])
        #expect(noLatest.status == 1)
        #expect(noLatest.stderr.contains("no default tag"))
        let noTag = try swiftspeed(["zero-to-fp32", dir.path, dir.path + "/out", "--tag", "global_step5"])
        #expect(noTag.status == 1)
        #expect(noTag.stderr.contains("global_step5") && noTag.stderr.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/out/model.safetensors"))
    }
}
