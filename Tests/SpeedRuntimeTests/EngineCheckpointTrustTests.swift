// Checkpoint trust in the engine: corrupt data refused by checksum, older checksum-less checkpoints still loaded,
// a missing or bogus `latest` resolved to the newest complete tag, FIFOs refused, counters range-checked.
// Invariant: every refusal leaves the engine as it was (weights and counters compared before and after).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Testing

/// A checkpoint directory with a trained engine's saves, removed when released.
final class SavedRun {
    let dir: String
    let recorder = LogRecorder()

    init() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-trust-\(UInt64.random(in: 0...UInt64.max))").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func engine() throws -> Engine {
        var rng = RandomStream(seed: 30)
        let cfg = GPTConfig(vocabSize: 16, contextLength: 8, layers: 1, heads: 2, embedDim: 8, dropout: 0.1)
        return try initialize(model: GPT(cfg, rng: &rng), config: try config(EngineCheckpointTests.json),
                              logger: recorder.logger()).engine
    }

    /// Trains `steps` more steps and saves (tag `global_step<N>` unless given).
    @discardableResult
    func save(_ engine: Engine, after steps: Range<Int>, tag: String? = nil) throws -> String {
        _ = try EngineCheckpointTests().train(engine, steps: steps)
        return try engine.saveCheckpoint(dir, tag: tag)
    }

    func file(_ tag: String, _ name: String) -> URL { URL(fileURLWithPath: dir).appendingPathComponent(tag).appendingPathComponent(name) }
    var model: String { ZeroCheckpoint.modelStatesFile }
    var shard: String { ZeroCheckpoint.optimStatesFile(rank: 0) }
}

/// Asserts that loading `dir` into a fresh engine throws an error whose text contains every string of
/// `needles`, and that the engine is unchanged.
func expectRefused(_ run: SavedRun, tag: String? = nil, _ needles: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let fresh = try run.engine()
    let before = weights(fresh.module)
    do {
        try fresh.loadCheckpoint(run.dir, tag: tag)
        Issue.record("expected an error containing \(needles)", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for needle in needles { #expect(text.contains(needle), "\(text) lacks \(needle)", sourceLocation: sourceLocation) }
    }
    #expect(weights(fresh.module) == before && fresh.globalSteps == 0, sourceLocation: sourceLocation)
}

/// Rewrites a file's `swiftspeed` metadata through `edit`, keeping its tensors (checksums recorded anew).
func editMetadata(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
    let (tensors, metadata) = try Safetensors.read(url)
    var object = try JSONSerialization.jsonObject(with: Data(metadata["swiftspeed"]!.utf8)) as! [String: Any]
    edit(&object)
    var changed = metadata
    changed["swiftspeed"] = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    try Safetensors.write(tensors, metadata: changed, checksums: true, to: url)
}

/// Flips (xor) byte `index` of tensor `name`'s data in the file at `url`, or zeroes the whole tensor.
func damage(_ url: URL, tensor name: String, flipping index: Int? = nil) throws {
    let header = try Safetensors.header(url)
    let range = header[name]!.dataOffsets
    var bytes = [UInt8](try Data(contentsOf: url))
    if let index { bytes[header.dataStart + range.lowerBound + index] ^= 0x01 } else {
        for i in range { bytes[header.dataStart + i] = 0 }
    }
    try Data(bytes).write(to: url)
}

@Suite struct EngineCheckpointChecksumTests {
    @Test func bothFilesRecordAChecksumForEveryTensor() throws {
        let run = SavedRun()
        let engine = try run.engine()
        try run.save(engine, after: 0..<2)
        let model = try Safetensors.header(run.file("global_step2", run.model))
        #expect(model.checksums.map { Set($0.keys) } == Set(engine.flat.names))
        let shard = try Safetensors.header(run.file("global_step2", run.shard))
        #expect(shard.checksums.map { Set($0.keys) } == Set([ZeroCheckpoint.masterName] + engine.optimizer.stateNames))
    }

    @Test func aFlippedBitInTheWeightsIsRefusedNamingFileAndTensor() throws {
        let run = SavedRun()
        let engine = try run.engine()
        try run.save(engine, after: 0..<2)
        let name = engine.flat.names[1]
        try damage(run.file("global_step2", run.model), tensor: name, flipping: 3)
        try expectRefused(run, ["checksum mismatch", run.model, "tensor \"\(name)\"", "the file is corrupt; re-save or restore it"])
        // verify: false is the documented way past it (it loads the damaged bytes).
        let unchecked = try run.engine()
        #expect(try unchecked.loadCheckpoint(run.dir, verify: false).path != nil)
        #expect(unchecked.globalSteps == 2)
        #expect(run.recorder.all.contains { $0.contains("checksums not verified") })
    }

    @Test func zeroedOptimizerStateIsRefusedNamingTheShard() throws {
        let run = SavedRun()
        try run.save(try run.engine(), after: 0..<2)
        try damage(run.file("global_step2", run.shard), tensor: "exp_avg_sq")
        try expectRefused(run, ["checksum mismatch", run.shard, "tensor \"exp_avg_sq\""])
        // ZeroCheckpoint reads the master only; a flipped master bit is refused there too.
        try damage(run.file("global_step2", run.shard), tensor: ZeroCheckpoint.masterName, flipping: 0)
        let e = #expect(throws: SafetensorsError.self) { try ZeroCheckpoint(directory: run.dir).fp32Parameters() }
        #expect(e?.tensor == ZeroCheckpoint.masterName && e?.description.contains("checksum mismatch") == true)
        #expect(try ZeroCheckpoint(directory: run.dir, verify: false).fp32Parameters().count > 0)
    }

    @Test func aCheckpointSavedBeforeChecksumsLoadsAndResumesExactly() throws {
        let run = SavedRun()
        let uninterrupted = try EngineCheckpointTests().train(try run.engine(), steps: 0..<4)
        let first = try run.engine()
        let head = try EngineCheckpointTests().train(first, steps: 0..<2)
        try first.saveCheckpoint(run.dir)
        for name in [run.model, run.shard] {   // as the previous version wrote them: no crc32c key
            let url = run.file("global_step2", name)
            let (tensors, metadata) = try Safetensors.read(url)
            try Safetensors.write(tensors, metadata: metadata.filter { $0.key != Safetensors.checksumKey }, to: url)
            #expect(try Safetensors.header(url).checksums == nil)
        }
        let resumed = try run.engine()
        try resumed.loadCheckpoint(run.dir)
        #expect(run.recorder.all.contains { $0.contains("saved without checksums") })
        #expect(head + (try EngineCheckpointTests().train(resumed, steps: 2..<4)) == uninterrupted)
        #expect(!(try ZeroCheckpoint(directory: run.dir).checksummed))
    }
}

@Suite struct EngineCheckpointLatestTests {
    /// Saves at steps 9 and 10 (so name order and step order disagree) and an incomplete step-11 tag.
    func threeTags() throws -> SavedRun {
        let run = SavedRun()
        let engine = try run.engine()
        try run.save(engine, after: 0..<9)
        try run.save(engine, after: 9..<10)
        try run.save(engine, after: 10..<11)
        try FileManager.default.removeItem(at: run.file("global_step11", run.shard))
        return run
    }

    func expectPicksStep10(_ run: SavedRun, because reason: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let fresh = try run.engine()
        let (path, _) = try fresh.loadCheckpoint(run.dir)
        #expect(path?.hasSuffix("/global_step10") == true, sourceLocation: sourceLocation)
        #expect(fresh.globalSteps == 10, sourceLocation: sourceLocation)
        let line = run.recorder.all.first { $0.contains("using global_step10") } ?? ""
        #expect(line.contains(reason) && line.contains("highest global step (10)"), "\(run.recorder.all)", sourceLocation: sourceLocation)
        #expect(line.contains("global_step9 (step 9)") && line.contains("incomplete: global_step11"), sourceLocation: sourceLocation)
    }

    @Test func aDeletedLatestPicksTheNewestCompleteTagByGlobalStep() throws {
        let run = try threeTags()
        try FileManager.default.removeItem(atPath: run.dir + "/latest")
        try expectPicksStep10(run, because: "latest does not exist")
    }

    @Test func anEmptyLatestPicksTheNewestCompleteTag() throws {
        let run = try threeTags()
        try Data().write(to: URL(fileURLWithPath: run.dir + "/latest"))
        try expectPicksStep10(run, because: "latest is empty")
    }

    @Test func aFIFOAsLatestIsNotOpenedAndThePickIsTheSame() throws {
        let run = try threeTags()
        try FileManager.default.removeItem(atPath: run.dir + "/latest")
        #expect(mkfifo(run.dir + "/latest", 0o600) == 0)
        try expectPicksStep10(run, because: "latest is a FIFO (named pipe)")
        #expect(throws: CheckpointError.self) { try ZeroCheckpoint.latestTag(in: run.dir) }
    }

    @Test func aDirectoryAsLatestPicksTheNewestCompleteTag() throws {
        let run = try threeTags()
        try FileManager.default.removeItem(atPath: run.dir + "/latest")
        try FileManager.default.createDirectory(atPath: run.dir + "/latest", withIntermediateDirectories: false)
        try expectPicksStep10(run, because: "latest is a directory")
    }

    @Test func aLatestThatIsNoTagNamePicksTheNewestCompleteTag() throws {
        let run = try threeTags()
        try "../elsewhere/global_step99".write(toFile: run.dir + "/latest", atomically: true, encoding: .utf8)
        try expectPicksStep10(run, because: "which is not a tag name")
    }

    @Test func aBogusLatestWithNoTagsAndNoCompleteTagAreRefused() throws {
        let run = SavedRun()
        try "global_step1\n".write(toFile: run.dir + "/latest", atomically: true, encoding: .utf8)
        try expectRefused(run, ["global_step1", "does not exist", "holds no checkpoint tags"])
        try Data().write(to: URL(fileURLWithPath: run.dir + "/latest"))
        try expectRefused(run, ["latest is empty", "remove it to start from scratch"])
        try run.save(try run.engine(), after: 0..<1)
        try FileManager.default.removeItem(atPath: run.dir + "/latest")
        try FileManager.default.removeItem(at: run.file("global_step1", run.shard))
        try expectRefused(run, ["latest does not exist", "no tag in", "is a complete checkpoint", "global_step1 ("])
    }
}

@Suite struct EngineCheckpointFileKindTests {
    @Test func aFIFOInPlaceOfACheckpointFileIsRefusedNamingIt() throws {
        for name in [ZeroCheckpoint.modelStatesFile, ZeroCheckpoint.optimStatesFile(rank: 0)] {
            let run = SavedRun()
            try run.save(try run.engine(), after: 0..<1)
            let url = run.file("global_step1", name)
            try FileManager.default.removeItem(at: url)
            #expect(mkfifo(url.path, 0o600) == 0)
            try expectRefused(run, [url.path, "a FIFO (named pipe), not a regular file"])
            let e = #expect(throws: (any Error).self) { try ZeroCheckpoint(directory: run.dir).fp32Parameters() }
            #expect("\(e.map { "\($0)" } ?? "")".contains(url.path))
        }
    }
}

@Suite struct EngineCheckpointRangeTests {
    /// A one-step checkpoint whose model-states metadata `edit` changes.
    func refused(_ needles: [String], _ edit: @escaping (inout [String: Any]) -> Void) throws {
        let run = SavedRun()
        try run.save(try run.engine(), after: 0..<3, tag: "t")
        try editMetadata(run.file("t", run.model), edit)
        try expectRefused(run, needles + [run.model])
    }

    @Test func negativeGlobalStepsAreRefused() throws {
        try refused(["metadata field globalSteps is -5", "between 0 and"]) { $0["globalSteps"] = -5 }
    }

    @Test func hugeGlobalStepsAreRefused() throws {
        try refused(["metadata field globalSteps is \(1 << 62)"]) { $0["globalSteps"] = 1 << 62 }
    }

    @Test func countersThatContradictEachOtherAreRefused() throws {
        try refused(["metadata field globalSamples is 0", "globalSteps is 3"]) { $0["globalSamples"] = 0 }
        try refused(["metadata field globalSamples is 2", "between 3 and"]) { $0["globalSamples"] = 2 }
        try refused(["metadata field skippedSteps is 4", "between 0 and 3"]) { $0["skippedSteps"] = 4 }
        try refused(["metadata field optimizerSteps is -1"]) { $0["optimizerSteps"] = -1 }
        try refused(["metadata field microSteps is 2", "between 3 and"]) { $0["microSteps"] = 2 }
    }

    @Test func otherFieldsOutOfRangeAreRefused() throws {
        try refused(["metadata field dpWorldSize is 0"]) { $0["dpWorldSize"] = 0 }
        try refused(["metadata field zeroStage is 7"]) { $0["zeroStage"] = 7 }
        try refused(["metadata field lrScheduler.last_batch_iteration is -7"]) { $0["lrScheduler"] = ["last_batch_iteration": -7] }
    }

    @Test func shardOffsetsThatWouldOverflowAreRefused() throws {
        let run = SavedRun()
        try run.save(try run.engine(), after: 0..<1, tag: "t")
        try editMetadata(run.file("t", run.shard)) { $0["partitionCount"] = 1 << 62 }
        try expectRefused(run, ["metadata field partitionCount is \(1 << 62)", run.shard])
        let e = #expect(throws: CheckpointError.self) { try ZeroCheckpoint(directory: run.dir) }
        #expect(e?.description.contains("partitionCount") == true)
    }
}

@Suite struct EngineCheckpointSwapTests {
    @Test func aTagLeftOnlyAsAnOldCopyLoadsAndTheNextSavePutsItBack() throws {
        let run = SavedRun()
        try run.save(try run.engine(), after: 0..<2)
        // What the previous version's kill -9 between its two renames left: latest names a missing tag.
        try FileManager.default.moveItem(atPath: run.dir + "/global_step2", toPath: run.dir + "/.global_step2.old-12345")
        let fresh = try run.engine()
        let (path, _) = try fresh.loadCheckpoint(run.dir)
        #expect(path?.hasSuffix("/.global_step2.old-12345") == true && fresh.globalSteps == 2)
        #expect(run.recorder.all.contains { $0.contains("was interrupted while swapping folders") })
        // zero-to-fp32 reads the same copy.
        #expect(try ZeroCheckpoint(directory: run.dir).note?.contains(".global_step2.old-12345") == true)
        // An unfinished save of another tag (a kill -9 while it wrote) is removed by the next save.
        try FileManager.default.createDirectory(atPath: run.dir + "/.global_step7.partial", withIntermediateDirectories: false)
        try run.save(fresh, after: 2..<3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: run.dir).sorted() == ["global_step2", "global_step3", "latest"])
        #expect(run.recorder.all.contains { $0.contains("put back global_step2 from .global_step2.old-12345") })
        #expect(try run.engine().loadCheckpoint(run.dir, tag: "global_step2").path?.hasSuffix("/global_step2") == true)
    }

    @Test func hiddenTagNamesAreRefused() throws {
        let run = SavedRun()
        let e = #expect(throws: CheckpointError.self) { try run.engine().saveCheckpoint(run.dir, tag: ".global_step0.old") }
        #expect(e?.description.contains("does not start with '.'") == true)
    }
}
