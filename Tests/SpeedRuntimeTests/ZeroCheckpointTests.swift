// ZeroCheckpoint (zero_to_fp32): full fp32 weights rebuilt from the optimizer shards equal the engine's masters
// exactly, for any number of shards, whatever the model-states file holds; broken shard sets are refused by name.
import Foundation
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Testing

@Suite struct ZeroCheckpointTests {
    static let precisions = ["fp32", "bf16", "fp16"]

    func makeEngine(_ precision: String = "fp32") throws -> Engine {
        var rng = RandomStream(seed: 40)
        let cfg = GPTConfig(vocabSize: 16, contextLength: 8, layers: 1, heads: 2, embedDim: 8, dropout: 0.1)
        let half = precision == "fp32" ? "" : #", "\#(precision)": {"enabled": true}"#
        let json = #"{"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "optimizer": {"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.1}}\#(half)}"#
        return try initialize(model: GPT(cfg, rng: &rng), config: try config(json)).engine
    }

    func train(_ engine: Engine, steps: Int) throws {
        for step in 0..<steps {
            let ids = (0..<16).map { Int32(($0 * 5 + step * 3) % 16) }
            try engine.backward(engine(Tensor(ids, shape: [2, 8])).crossEntropy(targets: Tensor(ids.map { ($0 + 1) % 16 }, shape: [2, 8])))
            try engine.step()
        }
    }

    /// A trained engine saved under a fresh directory (tag `t`), and the directory.
    func saved(_ precision: String = "fp32") throws -> (Engine, String) {
        let engine = try makeEngine(precision)
        try train(engine, steps: 3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-zero-\(UInt64.random(in: 0...UInt64.max))").path
        try engine.saveCheckpoint(dir, tag: "t")
        return (engine, dir)
    }

    /// The engine's fp32 master of every parameter (the flat fp32 buffer it updates), by name.
    func masters(_ engine: Engine) -> [String: [Float]] {
        let flat = engine.master ?? engine.weightShard
        #expect(flat.dtype == .float32 && engine.partition == 0..<engine.flat.paddedCount)
        var out: [String: [Float]] = [:]
        for (name, (p, offset)) in zip(engine.flat.names, zip(engine.flat.params, engine.flat.offsets)) {
            out[name] = flat.slice(axis: 0, offset..<(offset + p.count)).scalars
        }
        return out
    }

    /// Replaces the tag's optimizer shards by `w` shards of the (zero-padded) flat buffers, as `w` ranks
    /// would have saved them; `edit` may corrupt shard r's metadata. The first call keeps the engine's
    /// single shard as `.original`, later calls split that.
    func split(_ folder: String, into w: Int, edit: (inout OptimStateMeta, Int) -> Void = { _, _ in }) throws {
        let fm = FileManager.default
        let url = URL(fileURLWithPath: folder).appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: 0))
        let original = URL(fileURLWithPath: folder).appendingPathComponent(".original")
        if !fm.fileExists(atPath: original.path) { try fm.copyItem(at: url, to: original) }
        for name in try fm.contentsOfDirectory(atPath: folder) where name.hasPrefix("zero_pp_rank_") {
            try fm.removeItem(atPath: folder + "/" + name)
        }
        let (tensors, metadata) = try Safetensors.read(original)
        let meta = try JSONDecoder().decode(OptimStateMeta.self, from: Data(metadata["swiftspeed"]!.utf8))
        let padded = (meta.paddedCount + w - 1) / w * w, share = padded / w
        var full: [String: Tensor] = [:]
        for (name, t) in tensors {
            let p = Tensor.zeros([padded])
            p.slice(axis: 0, 0..<t.count).copyData(from: t)
            full[name] = p
        }
        for r in 0..<w {
            var m = meta
            m.rank = r; m.worldSize = w; m.partitionOffset = r * share; m.partitionCount = share; m.paddedCount = padded
            edit(&m, r)
            let part = full.mapValues { $0.slice(axis: 0, (r * share)..<((r + 1) * share)) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try Safetensors.write(part, metadata: ["swiftspeed": String(decoding: try encoder.encode(m), as: UTF8.self)],
                                  to: URL(fileURLWithPath: folder).appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: r)))
        }
    }

    func error(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        Issue.record("expected an error")
        return ""
    }

    @Test(arguments: precisions) func fp32WeightsAreTheEnginesMastersExactly(precision: String) throws {
        let (engine, dir) = try saved(precision)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ckpt = try ZeroCheckpoint(directory: dir)
        #expect(ckpt.tag == "t" && ckpt.shards.count == 1 && ckpt.zeroStage == 0 && ckpt.globalSteps == 3)
        #expect(ckpt.modelDType == engine.modelDType.rawValue)
        let expected = masters(engine)
        let got = try ckpt.fp32Parameters()
        #expect(got.map(\.name) == engine.flat.names)
        for ((name, tensor), p) in zip(got, engine.flat.params) {
            #expect(tensor.dtype == .float32 && tensor.shape == p.shape, "\(name)")
            #expect(tensor.scalars == expected[name], "\(name)")
        }
        if precision != "fp32" {
            // The masters carry bits the 16-bit weights do not: the tool must not have read those.
            let rounded = got.flatMap { $0.tensor.cast(to: engine.modelDType).cast(to: .float32).scalars }
            #expect(rounded != got.flatMap { $0.tensor.scalars })
        }
        // Written and read back (atomically, format pt).
        let out = URL(fileURLWithPath: dir).appendingPathComponent("out/model.safetensors")
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        #expect(try ckpt.writeFP32(to: out) == engine.flat.count)
        let (back, meta) = try Safetensors.read(out)
        #expect(meta == ["format": "pt"])
        #expect(Set(back.keys) == Set(engine.flat.names))
        for (name, p) in zip(engine.flat.names, engine.flat.params) {
            #expect(back[name]!.shape == p.shape && back[name]!.scalars == expected[name])
        }
    }

    @Test(arguments: [2, 3, 5]) func anyNumberOfShardsRebuildsTheSameBuffers(shards w: Int) throws {
        let (engine, dir) = try saved("bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try split(dir + "/t", into: w)
        let ckpt = try ZeroCheckpoint(directory: dir, tag: "t")
        #expect(ckpt.shards.count == w && ckpt.shards.paddedCount % w == 0)
        #expect(ckpt.shards.ranges.map(\.count) == Array(repeating: ckpt.shards.paddedCount / w, count: w))
        let expected = masters(engine)
        for (name, tensor) in try ckpt.fp32Parameters() { #expect(tensor.scalars == expected[name]) }
        // Optimizer state too (Engine.loadCheckpoint's need).
        let full = try ckpt.flatBuffers(ckpt.shards.stateNames)
        for (name, state) in zip(engine.optimizer.stateNames, engine.optimizerState) {
            #expect(full[name]!.slice(axis: 0, 0..<state.count).scalars == state.scalars)
        }
        // One partition of another world size (resuming on 2 ranks), reading only the files it overlaps;
        // elements past the saved buffer are zero.
        let padded = ckpt.shards.paddedCount, name = ckpt.shards.stateNames[0]
        for range in [0..<(padded / 2), (padded / 2)..<(padded + 3), 5..<6, 3..<3] {
            let part = try ckpt.shards.flatBuffers([name], range: range)[name]!
            let inside = range.clamped(to: 0..<padded)
            #expect(part.count == range.count)
            #expect(Array(part.scalars.prefix(inside.count)) == full[name]!.slice(axis: 0, inside).scalars)
            #expect(part.scalars.dropFirst(inside.count).allSatisfy { $0 == 0 })
        }
    }

    /// ZeRO-3 safety: empty or missing 16-bit weights in the model-states file do not matter.
    @Test func emptyOrMissingModelStateWeightsStillGiveFullWeights() throws {
        let (engine, dir) = try saved("bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = URL(fileURLWithPath: dir + "/t/" + ZeroCheckpoint.modelStatesFile)
        let (saved, metadata) = try Safetensors.read(url)
        var weights = saved
        let names = engine.flat.names
        for name in names.dropLast() { weights[name] = Tensor.zeros([0], dtype: .bfloat16) }
        weights[names.last!] = nil
        // As a saver that went wrong would write it: its own checksums for the tensors it holds.
        try Safetensors.write(weights, metadata: metadata, checksums: true, to: url)
        let expected = masters(engine)
        let got = try ZeroCheckpoint(directory: dir).fp32Parameters()
        #expect(got.count == names.count)
        for ((name, tensor), p) in zip(got, engine.flat.params) {
            #expect(tensor.shape == p.shape && tensor.scalars == expected[name])
        }
    }

    @Test func missingDirectoryLatestOrTagIsRefusedWithTheChoices() throws {
        let (_, dir) = try saved()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(error { _ = try ZeroCheckpoint(directory: dir + "/nope") }.contains("does not exist"))
        let tag = error { _ = try ZeroCheckpoint(directory: dir, tag: "global_step9") }
        #expect(tag.contains("global_step9") && tag.contains("tags in \(dir): t"))
        try FileManager.default.removeItem(atPath: dir + "/latest")
        #expect(error { _ = try ZeroCheckpoint(directory: dir) }.contains("no default tag; pass a tag; tags in \(dir): t"))
        #expect(try ZeroCheckpoint.latestTag(in: dir) == nil)
        try FileManager.default.removeItem(atPath: dir + "/t/" + ZeroCheckpoint.modelStatesFile)
        #expect(error { _ = try ZeroCheckpoint(directory: dir, tag: "t") }.contains("mp_rank_00_model_states.safetensors is missing"))
    }

    @Test func brokenShardSetsAreRefusedNamingTheFile() throws {
        let (_, dir) = try saved()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = dir + "/t"
        let shard = { (r: Int) in folder + "/" + ZeroCheckpoint.optimStatesFile(rank: r) }
        func open() -> String { error { _ = try ZeroCheckpoint(directory: dir).fp32Parameters() } }

        // A missing shard.
        try split(folder, into: 3)
        try FileManager.default.removeItem(atPath: shard(1))
        var e = open()
        #expect(e.contains(shard(1)) && e.contains("is missing") && e.contains("shard 0 says 3 ranks"))
        // A stray shard beyond the world size.
        try split(folder, into: 2)
        try FileManager.default.copyItem(atPath: shard(0), toPath: shard(2))
        #expect(open().contains("shard 0 says only 2 rank(s)"))
        try FileManager.default.removeItem(atPath: shard(2))
        // A file holding another rank's shard.
        try split(folder, into: 3) { m, r in if r == 2 { m.rank = 1 } }
        e = open()
        #expect(e.contains(shard(2)) && e.contains("holds rank 1's shard, not rank 2's"))
        // A gap and an overlap in the offsets.
        try split(folder, into: 3) { m, r in if r == 1 { m.partitionOffset += 1 } }
        e = open()
        #expect(e.contains(shard(1)) && e.contains("(a gap)"))
        try split(folder, into: 3) { m, r in if r == 2 { m.partitionOffset -= 1 } }
        e = open()
        #expect(e.contains(shard(2)) && e.contains("(an overlap)"))
        // Sizes that do not add up (the metadata's buffer is longer than the shards), and a slice count
        // that disagrees with the tensor.
        try split(folder, into: 2) { m, _ in m.paddedCount += 2 }
        #expect(open().contains("sizes do not add up"))
        try split(folder, into: 2) { m, r in if r == 1 { m.worldSize = 3 } }
        #expect(open().contains("says 3 ranks saved the checkpoint, shard 0 says 2"))
        try split(folder, into: 2) { m, r in if r == 1 { m.partitionCount -= 1 } }
        #expect(open().contains("metadata says"))
        // A truncated shard file (the safetensors reader names it).
        try split(folder, into: 2)
        let data = try Data(contentsOf: URL(fileURLWithPath: shard(1)))
        try data.prefix(data.count - 8).write(to: URL(fileURLWithPath: shard(1)))
        #expect(open().contains(shard(1)))
        // Rank 0's shard missing entirely.
        try FileManager.default.removeItem(atPath: shard(0))
        #expect(open().contains("\(shard(0)) is missing"))
    }
}
