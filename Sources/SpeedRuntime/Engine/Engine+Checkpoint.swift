// DeepSpeed-layout checkpoints in safetensors + JSON: <dir>/<tag>/mp_rank_00_model_states.safetensors,
// <dir>/<tag>/zero_pp_rank_<r>_mp_rank_00_optim_states.safetensors and <dir>/latest.
// Invariant: a tag's files are written into a fresh folder that replaces `<tag>` only when complete,
// `latest` is written last, and a load reads and validates every file before it changes anything —
// a truncated checkpoint is refused, never half-loaded.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedOptim

/// Engine state stored in the model-states file's metadata (key `swiftspeed`).
struct ModelStateMeta: Codable {
    var format = "swiftspeed-checkpoint-1"
    var globalSteps: Int
    var globalSamples: Int
    var skippedSteps: Int
    var microSteps: Int
    var optimizerSteps: Int
    var dpWorldSize: Int
    var zeroStage: Int
    var dtype: String
    var parameterNames: [String]
    var parameterShapes: [[Int]]
    var lrScheduler: LRSchedulerState?
    var lossScaler: LossScaler?
    var dropoutStreams: [String: RandomStream]
    var clientState: [String: JSONValue]
    /// The resolved ds_config the run used (DeepSpeed stores `ds_config` in mp_rank_00_model_states.pt too).
    var config: DeepSpeedConfig?
}

extension Engine {

    /// Saves weights, optimizer state, schedules and counters under `dir/tag` and points
    /// `dir/latest` at it (DeepSpeed's `save_checkpoint`). Collective: every rank must call it.
    ///
    /// ```swift
    /// try engine.saveCheckpoint("checkpoints", clientState: ["epoch": 3])
    /// ```
    /// - Parameter tag: defaults to `global_step<N>`.
    @discardableResult
    public func saveCheckpoint(_ dir: String, tag: String? = nil, clientState: [String: JSONValue] = [:]) throws -> String {
        let tag = tag ?? "global_step\(globalSteps)"
        precondition(!tag.isEmpty && !tag.contains("/"), "saveCheckpoint: tag '\(tag)' must be a non-empty name without '/'")
        for m in monitors { m.flush() }
        let rank = group.rank
        let partitioned = partition != 0..<flat.paddedCount
        let target = URL(fileURLWithPath: dir).appendingPathComponent(tag)
        // Every rank writes into one sibling folder; it replaces `<tag>` only once all files are complete.
        let folder = URL(fileURLWithPath: dir).appendingPathComponent(".\(tag).partial")
        if rank == 0 {
            try? FileManager.default.removeItem(at: folder)
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            } catch {
                throw CheckpointError("cannot create checkpoint directory \(folder.path): \(error.localizedDescription)")
            }
        }
        try group.barrier()
        // Stage 3 gathers the full weights (collectively) so the model states are never empty.
        let weights: [(String, Tensor)] = try withGatheredParameters {
            rank == 0 ? zip(flat.names, flat.params.map { partitioner == nil ? $0.detach() : $0.copy() }).map { ($0, $1) } : []
        }
        if rank == 0 {
            let dropout = module.namedModules().compactMap { name, m in (m as? Dropout).map { (name, $0.rng) } }
            let meta = ModelStateMeta(
                globalSteps: globalSteps, globalSamples: globalSamples, skippedSteps: skippedSteps, microSteps: microSteps,
                optimizerSteps: optimizerSteps, dpWorldSize: group.size, zeroStage: config.zeroOptimization.stage,
                dtype: modelDType.rawValue, parameterNames: flat.names, parameterShapes: flat.params.map(\.shape),
                lrScheduler: scheduler?.state, lossScaler: lossScaler,
                dropoutStreams: Dictionary(uniqueKeysWithValues: dropout), clientState: clientState, config: config)
            try Safetensors.write(weights, metadata: ["swiftspeed": try Self.json(meta)],
                                  to: folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile))
        }
        if partitioned || rank == 0 {
            // A shard: this rank's slice of the fp32 weights and of every optimizer buffer.
            let optimMeta = OptimStateMeta(
                rank: partitioned ? rank : 0, worldSize: partitioned ? group.size : 1, partitionOffset: partition.lowerBound,
                partitionCount: partition.count, paddedCount: flat.paddedCount, optimizer: optimizer.typeName,
                lr: optimizer.lr, betas: optimizer.betas.map { [$0.0, $0.1] }, stateNames: optimizer.stateNames)
            var optimTensors: [(String, Tensor)] = [(ZeroCheckpoint.masterName, master ?? weightShard)]
            optimTensors += zip(optimizer.stateNames, optimizerState).map { ($0, $1) }
            try Safetensors.write(optimTensors, metadata: ["swiftspeed": try Self.json(optimMeta)],
                                  to: folder.appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: optimMeta.rank)))
        }
        try group.barrier()
        if rank == 0 {
            try Self.replace(target, with: folder)
            try AtomicFile.write(Array(tag.utf8), to: URL(fileURLWithPath: dir).appendingPathComponent("latest"))
            logger.info("[SwiftSpeed] saved checkpoint \(target.path)")
        }
        try group.barrier()
        return target.path
    }

    /// Moves the complete `fresh` folder to `target`, replacing an older copy of the same tag (the old
    /// copy is moved aside first and deleted only after the new one is in place).
    static func replace(_ target: URL, with fresh: URL) throws {
        let fm = FileManager.default
        let old = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).old-\(UInt32.random(in: 0...UInt32.max))")
        let hadOld = fm.fileExists(atPath: target.path)
        do {
            if hadOld { try fm.moveItem(at: target, to: old) }
            try fm.moveItem(at: fresh, to: target)
        } catch {
            if hadOld && !fm.fileExists(atPath: target.path) { try? fm.moveItem(at: old, to: target) }
            throw CheckpointError("cannot move the new checkpoint into \(target.path): \(error.localizedDescription)")
        }
        if hadOld { try? fm.removeItem(at: old) }
    }

    /// Loads a checkpoint saved by ``saveCheckpoint(_:tag:clientState:)`` (DeepSpeed's `load_checkpoint`).
    ///
    /// - Returns: `(path, clientState)`, or `(nil, nil)` when `dir` holds no checkpoint.
    /// - Throws: ``CheckpointError`` or `SafetensorsError` for a missing, truncated or mismatched
    ///   checkpoint; the engine is unchanged when it throws.
    @discardableResult
    public func loadCheckpoint(_ dir: String, tag: String? = nil, loadOptimizerStates: Bool = true,
                               loadLRSchedulerStates: Bool = true, loadModuleOnly: Bool = false)
        throws -> (path: String?, clientState: [String: JSONValue]?)
    {
        let root = URL(fileURLWithPath: dir)
        let resolvedTag: String
        if let tag { resolvedTag = tag } else {
            guard let data = FileManager.default.contents(atPath: root.appendingPathComponent("latest").path) else {
                logger.warning("[SwiftSpeed] no 'latest' file in \(dir); nothing loaded")
                return (nil, nil)
            }
            resolvedTag = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let folder = root.appendingPathComponent(resolvedTag)
        guard FileManager.default.fileExists(atPath: folder.path) else {
            throw CheckpointError("checkpoint \(folder.path) does not exist (tag '\(resolvedTag)')")
        }
        // 1. Read and validate everything.
        let (weights, metadata) = try Safetensors.read(folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile))
        let meta: ModelStateMeta = try ZeroCheckpoint.decode(metadata["swiftspeed"], file: ZeroCheckpoint.modelStatesFile)
        var problems: [String] = []
        for (name, p) in zip(flat.names, flat.params) {
            guard let w = weights[name] else { problems.append("missing \(name)"); continue }
            if w.shape != p.shape { problems.append("\(name): checkpoint \(w.shape), model \(p.shape)") }
        }
        let unexpected = Set(weights.keys).subtracting(flat.names)
        if !unexpected.isEmpty { problems.append("unexpected \(unexpected.sorted().joined(separator: ", "))") }
        guard problems.isEmpty else {
            throw CheckpointError("checkpoint \(folder.path) does not match the model: \(problems.joined(separator: "; "))")
        }
        let wantOptim = !loadModuleOnly && loadOptimizerStates
        // This rank's partition of the fp32 weights and optimizer buffers, read from whichever shards
        // overlap it, whatever world size and stage saved them (resume on a different W or stage).
        var optim: (tensors: [String: Tensor], meta: OptimStateMeta)?
        if wantOptim {
            let shards = try ZeroCheckpoint.Shards(folder: folder)
            guard shards.stateNames == optimizer.stateNames else {
                throw CheckpointError("checkpoint optimizer state \(shards.stateNames) (\(shards.optimizer)) does not match \(optimizer.typeName)'s \(optimizer.stateNames)")
            }
            guard shards.paddedCount >= flat.count else {
                throw CheckpointError("checkpoint \(folder.path) holds \(shards.paddedCount) optimizer elements; this model has \(flat.count)")
            }
            let tensors = try shards.flatBuffers([ZeroCheckpoint.masterName] + shards.stateNames, range: partition)
            if partition.upperBound > flat.count {
                // This run's padding stays zero, whatever the saving run had there.
                let tail = (Swift.max(flat.count, partition.lowerBound) - partition.lowerBound)..<partition.count
                for t in tensors.values { t.slice(axis: 0, tail).fill(0) }
            }
            optim = (tensors, shards.meta)
        }
        if loadLRSchedulerStates, !loadModuleOnly, let state = meta.lrScheduler, state.lastBatchIteration < -1 {
            throw CheckpointError("checkpoint \(folder.path): scheduler state last_batch_iteration \(state.lastBatchIteration) is invalid (must be >= -1)")
        }
        // 2. Apply (nothing below can fail).
        noGrad {
            // The saved weights laid out as the flat buffer; this rank keeps what it holds.
            let full = Tensor.zeros([flat.paddedCount], dtype: modelDType, device: device)   // [paddedCount]
            for (i, name) in flat.names.enumerated() { full.slice(axis: 0, flat.range(of: i)).copyData(from: weights[name]!) }
            if let values = flat.values { values.copyData(from: full) } else {
                weightShard.copyData(from: full.slice(axis: 0, partition))
                partitioner?.loadPersistent(from: full)
            }
            if let optim {
                (master ?? weightShard).copyData(from: optim.tensors[ZeroCheckpoint.masterName]!)
                for (name, buffer) in zip(optimizer.stateNames, optimizerState) { buffer.copyData(from: optim.tensors[name]!) }
            } else if let master {
                master.copyData(from: weightShard)
            }
        }
        if !loadModuleOnly {
            globalSteps = meta.globalSteps
            globalSamples = meta.globalSamples
            skippedSteps = meta.skippedSteps
            microSteps = meta.microSteps
            optimizerSteps = meta.optimizerSteps
            if lossScaler != nil, let saved = meta.lossScaler { lossScaler = saved }
            for (name, m) in module.namedModules() {
                if let d = m as? Dropout, let stream = meta.dropoutStreams[name] { d.rng = stream }
            }
            if let optim, let betas = optim.meta.betas, betas.count == 2 { optimizer.betas = (betas[0], betas[1]) }
            if let optim { optimizer.lr = optim.meta.lr }
            if loadLRSchedulerStates, let scheduler, let state = meta.lrScheduler {
                try scheduler.load(state: state)
                scheduler.apply(to: optimizer)
            }
        }
        zeroGrad()
        logger.info("[SwiftSpeed] loaded checkpoint \(folder.path) (global step \(meta.globalSteps))")
        return (folder.path, meta.clientState)
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
