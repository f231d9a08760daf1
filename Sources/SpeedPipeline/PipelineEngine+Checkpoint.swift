// Pipeline checkpoints: DeepSpeed's one file per layer (`layer_XX-model_states`) plus each stage's engine state,
// in one tag folder committed atomically. Invariant: layer files hold module weights only and do not depend on the
// partition, so they load at any stage count; a tied module is stored once, at its key's first layer index.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedRuntime

/// `pipeline.json` in a pipeline checkpoint's tag folder: how it was partitioned.
struct PipelineCheckpointMeta: Codable, Equatable {
    var format = "swiftspeed-pipeline-1"
    var stages: Int
    var dataParallel: Int
    var parts: [Int]
    var layerTypes: [String]
    var globalSteps: Int
    /// The Hugging Face folder the model came from (absent for other models and older checkpoints).
    var modelOrigin: PipelineModule.ModelOrigin?
}

extension PipelineEngine {
    /// `layer_XX-model_states.safetensors` (DeepSpeed's `layer_{idx:02d}-model_states`).
    public static func layerFileName(_ index: Int) -> String {
        "layer_\(index < 10 ? "0" : "")\(index)-model_states.safetensors"
    }

    /// The folder holding stage `s`'s engine checkpoint (its `mp_rank_00_model_states` and ZeRO-1 shards).
    static func stageFolderName(_ s: Int) -> String { "pipe_stage_\(s < 10 ? "0" : "")\(s)" }

    /// The layer index whose file holds layer `index`'s state: a tied layer's key's first layer, else itself.
    func storageIndex(ofLayer index: Int) -> Int {
        if case .tied(let s) = module.layers[index] { return module.tiedLayers(s.key)[0] }
        return index
    }

    /// Saves `dir/<tag>`: one `layer_XX-model_states.safetensors` per layer that has state (written by each
    /// stage's data rank 0), `pipe_stage_XX/` with each stage's engine checkpoint (counters, LR schedule, loss
    /// scale, fp32 master weights and optimizer state in ZeRO shards), `pipeline.json`; then `dir/latest`.
    /// Collective over the job.
    ///
    /// ```swift
    /// try engine.saveCheckpoint("checkpoints")          // checkpoints/global_step<N>/layer_00-model_states.safetensors, …
    /// ```
    @discardableResult
    public func saveCheckpoint(_ dir: String, tag: String? = nil) throws -> String {
        try refuseTensorParallelCheckpoint()
        let tag = tag ?? "global_step\(globalSteps)"
        guard CheckpointDirectory.isTagName(tag) else {
            throw PipelineError.checkpoint("tag '\(tag)' must be a non-empty folder name without '/' that does not start with '.'")
        }
        let world = grid.world
        let root = URL(fileURLWithPath: dir)
        let target = root.appendingPathComponent(tag)
        let folder = CheckpointDirectory.partialFolder(root, tag)
        if world.rank == 0 { _ = try CheckpointDirectory.preparePartial(root, tag: tag) }
        try world.barrier()
        if grid.dataParallelID == 0 {
            for i in stage.layerRange where storageIndex(ofLayer: i) == i {
                guard let m = stage.module(forLayer: i) else { continue }
                let state = m.stateDict().sorted { $0.key < $1.key }
                guard !state.isEmpty else { continue }
                try Safetensors.write(state, checksums: true, to: folder.appendingPathComponent(Self.layerFileName(i)))
            }
        }
        let stageFolder = folder.appendingPathComponent(Self.stageFolderName(stageID))
        try engine.saveCheckpoint(stageFolder.path, tag: "engine")
        if grid.dataParallelID == 0 {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try AtomicFile.write(try encoder.encode(modelNames()), to: stageFolder.appendingPathComponent(PipelineCheckpoint.namesFile))
        }
        if world.rank == 0 {
            let meta = PipelineCheckpointMeta(stages: numStages, dataParallel: grid.dataParallelSize, parts: module.parts,
                                              layerTypes: module.layers.map(\.typeName), globalSteps: globalSteps,
                                              modelOrigin: module.modelOrigin)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try AtomicFile.write(try encoder.encode(meta), to: folder.appendingPathComponent("pipeline.json"))
        }
        try world.barrier()
        if world.rank == 0 {
            try CheckpointDirectory.commit(folder, to: target)
            try CheckpointDirectory.writeLatest(root, tag: tag)
        }
        try world.barrier()
        return target.path
    }

    /// This stage's flat parameter names → their names in the unpartitioned model (the layer's `modelPrefix`, else
    /// `layer_XX.`, and the parameter's name in its layer); a tied copy whose tie starts on another stage is a duplicate.
    func modelNames() -> StageParameterNames {
        var byIdentity: [ObjectIdentifier: (String, Bool)] = [:]
        for i in stage.layerRange {
            guard let m = stage.module(forLayer: i) else { continue }
            let home = storageIndex(ofLayer: i)
            let prefix = module.layers[home].modelPrefix ?? "layer_\(home < 10 ? "0" : "")\(home)."
            let duplicate = !stage.layerRange.contains(home)
            for (name, p) in m.namedParameters() where byIdentity[ObjectIdentifier(p)] == nil {
                byIdentity[ObjectIdentifier(p)] = (prefix + name, duplicate)
            }
        }
        var out = StageParameterNames()
        for (flatName, p) in zip(engine.flat.names, engine.flat.params) {
            guard let (name, duplicate) = byIdentity[ObjectIdentifier(p)] else { continue }
            if duplicate { out.duplicates.append(flatName) } else { out.names[flatName] = name }
        }
        return out
    }

    /// Loads `dir/<tag>` (default: the tag `dir/latest` names) saved by ``saveCheckpoint(_:tag:)``.
    ///
    /// With the same partition (stage count and layer boundaries) every stage restores its engine completely —
    /// weights, optimizer state (resharded when the data-parallel size changed), schedule, loss scale, counters —
    /// and training continues exactly. With another partition, or with `loadModuleOnly`, every stage reads its
    /// layers' weights from the layer files (as DeepSpeed's `load_module_only`) and keeps its fresh optimizer
    /// state and counters. Every rank calls it.
    ///
    /// - Returns: the folder loaded, or nil when `dir` holds no checkpoint.
    /// - Throws: ``PipelineError/checkpoint(_:)`` when the checkpoint is of another model (layer types differ) or
    ///   a layer file is missing or does not fit its layer.
    @discardableResult
    public func loadCheckpoint(_ dir: String, tag: String? = nil, loadModuleOnly: Bool = false, verify: Bool = true) throws -> String? {
        try refuseTensorParallelCheckpoint()
        guard let choice = try CheckpointDirectory.resolve(URL(fileURLWithPath: dir), tag: tag, fallBackToNewest: false) else {
            return nil
        }
        let folder = choice.folder
        let metaURL = folder.appendingPathComponent("pipeline.json")
        let meta: PipelineCheckpointMeta
        do { meta = try JSONDecoder().decode(PipelineCheckpointMeta.self, from: Data(contentsOf: metaURL)) } catch {
            throw PipelineError.checkpoint("\(metaURL.path) is missing or unreadable (\(error)); is \(folder.path) a pipeline checkpoint?")
        }
        guard meta.layerTypes == module.layers.map(\.typeName) else {
            throw PipelineError.checkpoint("\(folder.path) holds layers \(meta.layerTypes); this module has \(module.layers.map(\.typeName))")
        }
        if meta.stages == numStages && meta.parts == module.parts && !loadModuleOnly {
            try engine.loadCheckpoint(folder.appendingPathComponent(Self.stageFolderName(stageID)).path, tag: "engine", verify: verify)
            return folder.path
        }
        if grid.world.rank == 0 {
            logger.warning("[SwiftSpeed] \(folder.path): loading layer weights only (saved with \(meta.stages) stages \(meta.parts), this run has \(numStages) \(module.parts)\(loadModuleOnly ? ", loadModuleOnly" : "")); optimizer state, LR schedule and step counters start fresh")
        }
        // Weights only, from the layer files: validate every file first, then copy.
        var loads: [(Module, StateDict)] = []
        for i in stage.layerRange {
            guard let m = stage.module(forLayer: i), !m.stateDict().isEmpty else { continue }
            let url = folder.appendingPathComponent(Self.layerFileName(storageIndex(ofLayer: i)))
            let tensors: [String: Tensor]
            do { tensors = try Safetensors.read(url, verify: verify).tensors } catch {
                throw PipelineError.checkpoint("layer \(i): cannot read \(url.path): \(error)")
            }
            let expected = m.stateDict()
            let problems = expected.keys.sorted().compactMap { name -> String? in
                guard let t = tensors[name] else { return "missing \(name)" }
                return t.shape == expected[name]!.shape ? nil : "\(name): file \(t.shape), layer \(expected[name]!.shape)"
            } + Set(tensors.keys).subtracting(expected.keys).sorted().map { "unexpected \($0)" }
            guard problems.isEmpty else {
                throw PipelineError.checkpoint("layer \(i) (\(url.lastPathComponent)) does not fit: \(problems.joined(separator: "; "))")
            }
            loads.append((m, tensors))
        }
        try noGrad {
            for (m, state) in loads { try m.load(stateDict: state) }
            // The optimizer's fp32 copy (16-bit models) follows the loaded weights.
            if let master = engine.master { master.copyData(from: engine.weightShard) }
        }
        engine.zeroGrad()
        return folder.path
    }

    /// Each rank of a tensor-parallel stage holds a shard, and the layer files hold whole layers: not written yet.
    func refuseTensorParallelCheckpoint() throws {
        if let groups = grid.parallelGroups, groups.tensorParallelSize > 1 {
            throw PipelineError.checkpoint("checkpoints of a tensor-parallel pipeline (autotp_size \(groups.tensorParallelSize)) are not supported yet; train without --save-dir / --resume, or without tensor_parallel")
        }
    }
}
