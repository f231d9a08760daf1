// DeepSpeed-layout checkpoints in safetensors + JSON: <dir>/<tag>/mp_rank_<mp>_model_states.safetensors,
// <dir>/<tag>/zero_pp_rank_<r>_mp_rank_<mp>_optim_states.safetensors (mp: the tensor-parallel rank, 00 without
// tensor parallelism) and <dir>/latest.
// Invariant: a tag's files (each tensor with its CRC-32C) are written into `.<tag>.partial`, which replaces
// `<tag>` only when complete (CheckpointDirectory's swap), `latest` is written last, and a load reads, checksums
// and validates every file before it changes anything — a truncated or corrupt checkpoint is refused, never
// half-loaded.

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
    /// The model's own config (a Hugging Face folder's config.json) and where the model came from, so zero-to-fp32
    /// can write a folder `from_pretrained` loads.
    var modelConfig: String? = nil
    var modelSource: String? = nil
    /// The module's persistent buffers saved beside the weights (PyTorch's `state_dict` buffers, e.g. a running
    /// mean); nil in checkpoints saved before buffers were.
    var bufferNames: [String]? = nil
    /// ``Engine/accumulationPhase`` (nil before forced boundaries existed: 0).
    var accumulationPhase: Int? = nil
    /// Set by a tensor-parallel engine: this file's mp rank, the degree and each sharded parameter's cut (nil: the
    /// weights are whole).
    var tensorParallel: TensorParallelMeta? = nil

    /// Refuses counters out of range or inconsistent with one another (a resume must neither crash on
    /// `globalSteps: -5` nor train zero steps on `globalSteps: 2^62`), naming the field and `file`.
    func validate(file: String) throws {
        try CheckpointLimits.checkCounters(globalSteps: globalSteps, globalSamples: globalSamples, skippedSteps: skippedSteps,
                                           microSteps: microSteps, optimizerSteps: optimizerSteps, file: file)
        try CheckpointLimits.check("dpWorldSize", dpWorldSize, min: 1, max: CheckpointLimits.maxWorldSize, file: file)
        try CheckpointLimits.check("zeroStage", zeroStage, max: 3, file: file)
        if let state = lrScheduler {
            try CheckpointLimits.check("lrScheduler.last_batch_iteration", state.lastBatchIteration, min: -1, file: file)
        }
    }
}

extension Engine {

    /// Saves weights, optimizer state, schedules and counters under `dir/tag` and points
    /// `dir/latest` at it (DeepSpeed's `save_checkpoint`). Collective: every rank must call it.
    ///
    /// Every tensor's CRC-32C goes into its file's metadata (``Safetensors/checksumKey``). Re-saving an
    /// existing tag swaps the complete new folder in atomically (Linux `renameat2(RENAME_EXCHANGE)`), so a
    /// crash at any point leaves the old checkpoint or the new one, never a mix and never neither.
    ///
    /// ```swift
    /// try engine.saveCheckpoint("checkpoints", clientState: ["epoch": 3])
    /// ```
    /// - Parameter tag: defaults to `global_step<N>`; a folder name, not starting with `.`.
    /// - Throws: ``CheckpointError`` for a bad tag or a failed write (naming the path).
    @discardableResult
    public func saveCheckpoint(_ dir: String, tag: String? = nil, clientState: [String: JSONValue] = [:]) throws -> String {
        let tag = tag ?? "global_step\(globalSteps)"
        guard CheckpointDirectory.isTagName(tag) else {
            throw CheckpointError("saveCheckpoint: tag '\(tag)' must be a non-empty folder name without '/' that does not start with '.' (hidden names are the save's own temporary folders)")
        }
        for m in monitors { m.flush() }
        let started = now()
        let rank = group.rank
        // Tensor-parallel: each tensor-parallel rank writes its own mp_rank files (its shards), the job's first rank
        // prepares and commits the folder.
        let tp = tensorParallel
        let mp = tp?.rank ?? 0
        let leader = rank == 0 && mp == 0
        let partitioned = partition != 0..<flat.paddedCount
        let root = URL(fileURLWithPath: dir)
        let target = root.appendingPathComponent(tag)
        // Every rank writes into one sibling folder; it replaces `<tag>` only once all files are complete.
        let folder = CheckpointDirectory.partialFolder(root, tag)
        if leader {
            let (_, repairs) = try CheckpointDirectory.preparePartial(root, tag: tag)
            for repair in repairs { logger.warning("[SwiftSpeed] \(dir): \(repair)") }
        }
        try barrierAcrossTensorParallel()
        // Stage 3 gathers the full weights (collectively) so the model states are never empty.
        let weights: [(String, Tensor)] = try withGatheredParameters {
            rank == 0 ? zip(flat.names, flat.params.map { partitioner == nil ? $0.detach() : $0.copy() }).map { ($0, $1) } : []
        }
        let buffers = rank == 0 ? noGrad { module.namedBuffers(persistentOnly: true).map { ($0, $1.copy()) } } : []
        if rank == 0 {
            let dropout = module.namedModules().compactMap { name, m in (m as? Dropout).map { (name, $0.rng) } }
            let meta = ModelStateMeta(
                globalSteps: globalSteps, globalSamples: globalSamples, skippedSteps: skippedSteps, microSteps: microSteps,
                optimizerSteps: optimizerSteps, dpWorldSize: group.size, zeroStage: config.zeroOptimization.stage,
                dtype: modelDType.rawValue, parameterNames: flat.names, parameterShapes: flat.params.map(\.shape),
                lrScheduler: scheduler?.state, lossScaler: lossScaler,
                dropoutStreams: Dictionary(uniqueKeysWithValues: dropout), clientState: clientState, config: config,
                modelConfig: modelOrigin?.config, modelSource: modelOrigin?.source, bufferNames: buffers.map(\.0),
                accumulationPhase: accumulationPhase,
                tensorParallel: tp.map { tp in
                    TensorParallelMeta(rank: tp.rank, size: tp.size, layouts: tp.layouts.filter { flat.names.contains($0.key) })
                })
            try Safetensors.write(weights + buffers, metadata: ["swiftspeed": try Self.json(meta)], checksums: true,
                                  to: folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp)))
            CheckpointDirectory.crashHook(after: .wroteModelStates)
        }
        if partitioned || rank == 0 {
            // A shard: this rank's slice of the fp32 weights and of every optimizer buffer.
            let optimMeta = OptimStateMeta(
                rank: partitioned ? rank : 0, worldSize: partitioned ? group.size : 1, partitionOffset: partition.lowerBound,
                partitionCount: partition.count, paddedCount: flat.paddedCount, optimizer: optimizer.typeName,
                lr: optimizer.lr, betas: optimizer.betas.map { [$0.0, $0.1] }, stateNames: optimizer.stateNames)
            var optimTensors: [(String, Tensor)] = [(ZeroCheckpoint.masterName, master ?? weightShard)]
            optimTensors += zip(optimizer.stateNames, optimizerState).map { ($0, $1) }
            try Safetensors.write(optimTensors, metadata: ["swiftspeed": try Self.json(optimMeta)], checksums: true,
                                  to: folder.appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: optimMeta.rank, mpRank: mp)))
        }
        try barrierAcrossTensorParallel()
        CheckpointDirectory.crashHook(after: .wroteShards)
        if leader {
            try CheckpointDirectory.commit(folder, to: target)
            try CheckpointDirectory.writeLatest(root, tag: tag)
            logger.info("[SwiftSpeed] saved checkpoint \(target.path) in \(((now() - started) * 100).rounded() / 100) s")
        }
        try barrierAcrossTensorParallel()
        return target.path
    }

    /// Loads a checkpoint saved by ``saveCheckpoint(_:tag:clientState:)`` (DeepSpeed's `load_checkpoint`).
    ///
    /// Without a tag it reads the one `dir/latest` names. When `latest` is missing or names no tag (empty,
    /// a FIFO, a directory …) but tag folders exist, it loads the complete one with the highest global
    /// step in its metadata and logs a warning saying which and why — it never starts from scratch
    /// silently. When the named tag's folder is missing because a re-save of it was interrupted
    /// mid-swap, it reads the complete copy the save left (`.<tag>.old`), with a warning.
    ///
    /// - Parameter verify: check every tensor against the CRC-32C its file records (the default). A
    ///   checkpoint saved before checksums were recorded loads unchecked, with a log line saying so.
    /// - Returns: `(path, clientState)`, or `(nil, nil)` when `dir` holds no `latest` and no checkpoint.
    /// - Throws: ``CheckpointError`` or `SafetensorsError` for a missing, truncated, corrupt (checksum
    ///   mismatch), non-regular, out-of-range or mismatched checkpoint, naming the file; the engine is
    ///   unchanged when it throws.
    @discardableResult
    public func loadCheckpoint(_ dir: String, tag: String? = nil, loadOptimizerStates: Bool = true,
                               loadLRSchedulerStates: Bool = true, loadModuleOnly: Bool = false, verify: Bool = true)
        throws -> (path: String?, clientState: [String: JSONValue]?)
    {
        let started = now()
        guard let choice = try CheckpointDirectory.resolve(URL(fileURLWithPath: dir), tag: tag) else {
            logger.warning("[SwiftSpeed] no 'latest' file and no checkpoint in \(dir); nothing loaded")
            return (nil, nil)
        }
        if let note = choice.note { logger.warning("[SwiftSpeed] \(note)") }
        let folder = choice.folder
        // 1. Read and validate everything.
        var modelURL = folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile)
        var meta: ModelStateMeta = try ZeroCheckpoint.decode(Safetensors.header(modelURL).metadata["swiftspeed"], file: modelURL.path)
        try meta.validate(file: modelURL.path)
        // Saved at this tensor-parallel size with these layouts: read this rank's own mp_rank files. Otherwise
        // (TP=2 → 1 or 4, …): join every saved shard and cut this rank's (the whole model passes through memory).
        let tp = tensorParallel
        let savedTP = meta.tensorParallel.map { ($0.size, $0.layouts) } ?? (1, [:])
        let reshard: TensorParallelCheckpoint? = savedTP.0 == (tp?.size ?? 1) && (savedTP.0 == 1 || savedTP.1 == tp!.layouts.filter { flat.names.contains($0.key) })
            ? nil : try TensorParallelCheckpoint(folder: folder)
        let weights: [String: Tensor]
        var checksummed: Bool
        if let reshard {
            (weights, checksummed) = try reshardedModelStates(reshard, verify: verify)
            logger.info("[SwiftSpeed] \(folder.path) was saved at tensor-parallel size \(reshard.size); resharding it for tensor-parallel rank \(tp?.rank ?? 0) of \(tp?.size ?? 1)")
        } else {
            if let mp = tp?.rank, mp > 0 { modelURL = folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp)) }
            let (tensors, metadata) = try Safetensors.read(modelURL, verify: verify)
            meta = try ZeroCheckpoint.decode(metadata["swiftspeed"], file: modelURL.path)
            try meta.validate(file: modelURL.path)
            if let tp, meta.tensorParallel?.rank != tp.rank {
                throw CheckpointError("\(modelURL.path) says it is tensor-parallel rank \(meta.tensorParallel?.rank ?? 0), not \(tp.rank): the folder mixes files from different saves — re-save the checkpoint")
            }
            weights = tensors
            checksummed = metadata[Safetensors.checksumKey] != nil
        }
        var problems: [String] = []
        for (name, p) in zip(flat.names, flat.params) {
            guard let w = weights[name] else { problems.append("missing \(name)"); continue }
            if w.shape != p.shape { problems.append("\(name): checkpoint \(w.shape), model \(p.shape)") }
        }
        let moduleBuffers = module.namedBuffers(persistentOnly: true)
        if meta.bufferNames != nil {
            for (name, b) in moduleBuffers {
                guard let w = weights[name] else { problems.append("missing buffer \(name)"); continue }
                if w.shape != b.shape { problems.append("buffer \(name): checkpoint \(w.shape), model \(b.shape)") }
            }
        } else if !moduleBuffers.isEmpty {
            logger.warning("[SwiftSpeed] \(modelURL.path) was saved without the module's buffers (\(moduleBuffers.map(\.0).joined(separator: ", "))); they keep their current values")
        }
        let unexpected = Set(weights.keys).subtracting(flat.names).subtracting(moduleBuffers.map(\.0))
        if !unexpected.isEmpty { problems.append("unexpected \(unexpected.sorted().joined(separator: ", "))") }
        guard problems.isEmpty else {
            throw CheckpointError("checkpoint \(folder.path) does not match the model: \(problems.joined(separator: "; "))")
        }
        let wantOptim = !loadModuleOnly && loadOptimizerStates
        // This rank's partition of the fp32 weights and optimizer buffers, read from whichever shards
        // overlap it, whatever world size and stage saved them (resume on a different W or stage).
        var optim: (tensors: [String: Tensor], meta: OptimStateMeta)?
        if wantOptim, let reshard {
            let (tensors, stateNames, optimMeta, summed) = try reshardedOptimizerPartition(reshard, verify: verify)
            checksummed = checksummed && summed
            guard stateNames == optimizer.stateNames else {
                throw CheckpointError("checkpoint optimizer state \(stateNames) (\(optimMeta.optimizer)) does not match \(optimizer.typeName)'s \(optimizer.stateNames)")
            }
            optim = (tensors, optimMeta)
        } else if wantOptim {
            let shards = try ZeroCheckpoint.Shards(folder: folder, mpRank: tp?.rank ?? 0, verify: verify)
            checksummed = checksummed && shards.checksummed
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
        // 2. Apply (nothing below can fail).
        noGrad {
            // The saved weights laid out as the flat buffer; this rank keeps what it holds.
            let full = Tensor.zeros([flat.paddedCount], dtype: modelDType, device: device)   // [paddedCount]
            for (i, name) in flat.names.enumerated() { full.slice(axis: 0, flat.range(of: i)).copyData(from: weights[name]!) }
            if meta.bufferNames != nil {
                for (name, b) in moduleBuffers { b.copyData(from: weights[name]!) }
            }
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
            accumulationPhase = Swift.min(Swift.max(meta.accumulationPhase ?? 0, 0), gradientAccumulationSteps - 1)
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
        if !checksummed {
            logger.info("[SwiftSpeed] \(folder.path) was saved without checksums (before SwiftSpeed recorded them); its data was not verified")
        }
        let seconds = ((now() - started) * 100).rounded() / 100
        let verified = verify && checksummed ? "checksums verified" : "checksums not verified"
        logger.info("[SwiftSpeed] loaded checkpoint \(folder.path) (global step \(meta.globalSteps)) in \(seconds) s, \(verified)")
        return (folder.path, meta.clientState)
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
