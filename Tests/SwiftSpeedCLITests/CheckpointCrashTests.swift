// Re-saving an existing tag survives a kill -9 at every step of the save protocol (atomic exchange and the portable
// two-rename fallback): a later load reads the old or the new complete checkpoint, never a mix, never an error.
// Also end to end: `train --resume` names the tag it picked when `latest` is gone, and the verification switches.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SpeedIO
import Testing

/// Runs the built `swiftspeed` with extra environment variables; `signal` is the signal that ended it (0 if none).
private func swiftspeed(_ args: [String], environment: [String: String]) throws -> (status: Int32, signal: Int32, stderr: String) {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let err = Pipe()
    p.standardOutput = FileHandle.nullDevice
    p.standardError = err
    try p.run()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let signal = p.terminationReason == .uncaughtSignal ? p.terminationStatus : 0
    return (p.terminationReason == .exit ? p.terminationStatus : -1, signal, String(decoding: e, as: UTF8.self))
}

/// What a checkpoint folder holds: fp32 masters from the shards and the model-states weights, by name.
private struct Contents: Equatable {
    var masters: [String: [Float]]
    var weights: [String: [Float]]

    /// Reads `dir`'s checkpoint as zero-to-fp32 does (the tag in latest, or an interrupted save's copy).
    init(_ dir: String) throws {
        let ckpt = try ZeroCheckpoint(directory: dir)
        masters = Dictionary(uniqueKeysWithValues: try ckpt.fp32Parameters().map { ($0.name, $0.tensor.scalars) })
        let (tensors, _) = try Safetensors.read(ckpt.folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile))
        weights = tensors.mapValues { $0.scalars }
    }
}

@Suite(.serialized) struct CheckpointCrashTests {
    static let config = #"{"train_batch_size": 4, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}}}"#

    func train(_ dir: URL, seed: Int, _ extra: [String] = [], environment: [String: String] = [:]) throws
        -> (status: Int32, signal: Int32, stderr: String)
    {
        let cfg = dir.appendingPathComponent("ds.json")
        if !FileManager.default.fileExists(atPath: cfg.path) { try Self.config.write(to: cfg, atomically: true, encoding: .utf8) }
        return try swiftspeed(["train", "--model", "simple", "--config", cfg.path, "--synthetic", "--json", "--threads", "1",
                               "--steps", "2", "--seed", "\(seed)"] + extra, environment: environment)
    }

    static let exchangeSteps: [CheckpointSaveStep] = [.tidied, .createdPartial, .wroteModelStates, .wroteShards, .swapped, .removedOld, .wroteLatest]
    static let portableSteps: [CheckpointSaveStep] = [.tidied, .createdPartial, .wroteModelStates, .wroteShards, .movedOldAside, .movedNewIn, .removedOld, .wroteLatest]

    @Test(arguments: [false, true])
    func aKillAtEveryStepOfAReSaveLeavesTheOldOrTheNewCheckpoint(portable: Bool) throws {
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        // The old checkpoint (seed 1) and, separately, the new one (seed 2) that re-saves the same tag.
        let old = scratch.appendingPathComponent("old"), new = scratch.appendingPathComponent("new")
        for (dir, seed) in [(old, 1), (new, 2)] {
            let r = try train(scratch, seed: seed, ["--save-dir", dir.path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let (oldContents, newContents) = (try Contents(old.path), try Contents(new.path))
        #expect(oldContents != newContents)
        var seen: Set<String> = []

        let portableFlag = portable ? ["SWIFTSPEED_CHECKPOINT_PORTABLE_RENAME": "1"] : [:]
        for step in portable ? Self.portableSteps : Self.exchangeSteps {
            let dir = scratch.appendingPathComponent("crash-\(step.rawValue)")
            try FileManager.default.copyItem(at: old, to: dir)
            let crash = try train(scratch, seed: 2, ["--save-dir", dir.path],
                                  environment: portableFlag.merging(["SWIFTSPEED_CHECKPOINT_CRASH_AFTER": step.rawValue]) { $1 })
            #expect(crash.signal == SIGKILL, "\(step): the hook did not fire (status \(crash.status)): \(crash.stderr)")

            // What zero-to-fp32 reads: all of the old checkpoint or all of the new one.
            let after = try Contents(dir.path)
            #expect(after == oldContents || after == newContents, "\(step): a mix of the two saves")
            seen.insert(after == oldContents ? "old" : "new")
            // What --resume reads (the engine): it loads, and re-saving leaves the same checkpoint and a tidy folder.
            let resumed = try train(scratch, seed: 2, ["--save-dir", dir.path, "--resume"])
            #expect(resumed.status == 0 && !resumed.stderr.contains("error"), "\(step): \(resumed.stderr)")
            #expect(try Contents(dir.path) == after, "\(step): resume loaded another checkpoint")
            let listing = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            #expect(listing == ["global_step2", "latest"], "\(step): \(listing)")
        }
        #expect(seen == ["old", "new"])
    }

    @Test func resumeWithoutLatestNamesTheTagItPickedAndContinuesExactly() throws {
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let cfg = scratch.appendingPathComponent("ds.json")
        try Self.config.write(to: cfg, atomically: true, encoding: .utf8)
        let common = ["train", "--model", "simple", "--config", cfg.path, "--synthetic", "--json", "--threads", "1", "--seed", "5"]
        let full = try swiftspeed(common + ["--steps", "6"])
        let ckpt = scratch.appendingPathComponent("ckpt").path
        let first = try swiftspeed(common + ["--steps", "4", "--save-dir", ckpt, "--save-every", "2"])
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.removeItem(atPath: ckpt + "/latest")
        let second = try swiftspeed(common + ["--steps", "6", "--save-dir", ckpt, "--resume", "--no-verify-checkpoint"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("latest does not exist; using global_step4, the complete checkpoint with the highest global step (4)"), "\(second.stderr)")
        let a = try losses(full.stdout), b = try losses(first.stdout).merging(try losses(second.stdout)) { $1 }
        #expect(a.count == 6 && a == b)
        let bad = try swiftspeed(common + ["--steps", "6", "--no-verify-checkpoint"])
        #expect(bad.status != 0 && bad.stderr.contains("--no-verify-checkpoint applies to --resume"))
    }

    @Test func zeroToFP32RefusesCorruptDataUnlessToldNotToVerifyAndNeverOpensAFIFO() throws {
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let ckpt = scratch.appendingPathComponent("ckpt")
        #expect(try train(scratch, seed: 3, ["--save-dir", ckpt.path]).status == 0)
        let shard = ckpt.appendingPathComponent("global_step2").appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: 0))
        let header = try Safetensors.header(shard)
        var bytes = [UInt8](try Data(contentsOf: shard))
        bytes[header.dataStart + header[ZeroCheckpoint.masterName]!.dataOffsets.lowerBound + 2] ^= 0x40
        try Data(bytes).write(to: shard)
        let out = scratch.appendingPathComponent("out").path
        let refused = try swiftspeed(["zero-to-fp32", ckpt.path, out])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("\(shard.path): tensor \"fp32_flat_partition\": checksum mismatch"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        let unchecked = try swiftspeed(["zero-to-fp32", ckpt.path, out, "--no-verify"])
        #expect(unchecked.status == 0, "\(unchecked.stderr)")

        try FileManager.default.removeItem(at: ckpt.appendingPathComponent("latest"))
        #expect(mkfifo(ckpt.appendingPathComponent("latest").path, 0o600) == 0)
        let fifo = try swiftspeed(["zero-to-fp32", ckpt.path, out])
        #expect(fifo.status == 1 && fifo.stderr.contains("latest is a FIFO (named pipe)"), "\(fifo.stderr)")
    }
}
