// A tensor-parallel checkpoint read whole: every `mp_rank_XX` file's shards joined by the layouts saved beside them,
// for a load at another tensor-parallel size (cut again) and for zero-to-fp32 (one fp32 file of the unsharded model).
// Invariant: only a parameter with a saved layout is joined (shards in mp-rank order, their shapes checked against the
// layout first); every other parameter is replicated and read from mp rank 0; every mp rank lists the same names.

import Foundation
import SpeedCore
import SpeedIO
import SpeedNN

/// The tensor-parallel part of a model-states file's metadata: which rank wrote it, of how many, and how each of its
/// sharded parameters is cut (parameters not listed are replicated).
struct TensorParallelMeta: Codable, Equatable {
    var rank: Int
    var size: Int
    var layouts: [String: TensorParallelLayout]
}

/// A checkpoint saved by tensor-parallel engines (`mp_rank_00 … mp_rank_XX` model states, each with its ZeRO shards
/// `zero_pp_rank_D_mp_rank_XX_optim_states`), read as the whole model; a checkpoint saved without tensor
/// parallelism reads as one rank.
///
/// ```swift
/// let ckpt = try TensorParallelCheckpoint(directory: "checkpoints")     // tag from checkpoints/latest
/// print(ckpt.size)                                                      // 2: saved at autotp_size 2
/// try ckpt.writeFP32(to: URL(fileURLWithPath: "out/model.safetensors")) // the unsharded model's names and shapes
/// ```
public struct TensorParallelCheckpoint {
    /// The tag folder read.
    public let folder: URL
    /// Every mp rank's model-states metadata, in rank order.
    let metas: [ModelStateMeta]
    /// Why ``folder`` is not `directory/tag`, when it is not (an interrupted save's complete copy).
    public let note: String?
    /// Each sharded parameter's cut, by name (the same on every rank).
    public let layouts: [String: TensorParallelLayout]

    /// The tensor-parallel degree of the run that saved it (1: not tensor-parallel).
    public var size: Int { metas.count }
    /// The parameters in mp rank 0's flat-buffer order.
    public var parameterNames: [String] { metas[0].parameterNames }
    public var zeroStage: Int { metas[0].zeroStage }
    public var dpWorldSize: Int { metas[0].dpWorldSize }
    public var modelDType: String { metas[0].dtype }
    public var globalSteps: Int { metas[0].globalSteps }
    /// The model's config.json text and source folder, when it came from a Hugging Face folder.
    public var modelConfig: String? { metas[0].modelConfig }
    public var modelSource: String? { metas[0].modelSource }

    /// Opens `directory/tag` (or the tag in `directory/latest`), checking every mp rank's model states and every
    /// optimizer shard's header (no tensor data).
    ///
    /// ```swift
    /// let ckpt = try TensorParallelCheckpoint(directory: "checkpoints", tag: "global_step20")
    /// ```
    /// - Throws: ``CheckpointError`` naming a missing or inconsistent file; `SafetensorsError` for one that is not
    ///   valid safetensors.
    public init(directory: String, tag: String? = nil, verify: Bool = true) throws {
        let zero = try ZeroCheckpoint(directory: directory, tag: tag, mpRank: 0, verify: verify)
        for mp in 1..<Swift.max(1, zero.tensorParallelSize) {
            _ = try ZeroCheckpoint(directory: directory, tag: tag, mpRank: mp, verify: verify)
        }
        try self.init(folder: zero.folder, note: zero.note)
    }

    /// Reads every mp rank's model-states metadata in `folder` (a tag folder).
    init(folder: URL, note: String? = nil) throws {
        func meta(_ mp: Int) throws -> ModelStateMeta {
            let url = folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp))
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw CheckpointError("\(url.path) is missing: the first data-parallel rank of every tensor-parallel rank writes its own model states; copy it from the machine that ran tensor-parallel rank \(mp)")
            }
            let m: ModelStateMeta = try ZeroCheckpoint.decode(Safetensors.header(url).metadata["swiftspeed"], file: url.path)
            try m.validate(file: url.path)
            return m
        }
        let first = try meta(0)
        let size = first.tensorParallel?.size ?? 1
        try CheckpointLimits.check("tensorParallel.size", size, min: 1, max: CheckpointLimits.maxWorldSize,
                                   file: ZeroCheckpoint.modelStatesFile)
        var metas = [first]
        for mp in 1..<Swift.max(1, size) {
            let m = try meta(mp)
            let file = folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp)).path
            guard m.tensorParallel?.rank == mp, m.tensorParallel?.size == size else {
                throw CheckpointError("\(file) says it is tensor-parallel rank \(m.tensorParallel?.rank ?? 0) of \(m.tensorParallel?.size ?? 1), not rank \(mp) of \(size): the folder mixes files from different saves — re-save the checkpoint")
            }
            guard m.parameterNames == first.parameterNames, m.tensorParallel?.layouts == first.tensorParallel?.layouts else {
                throw CheckpointError("\(file) lists other parameters or layouts than \(ZeroCheckpoint.modelStatesFile): the folder mixes files from different saves — re-save the checkpoint")
            }
            metas.append(m)
        }
        let layouts = size == 1 ? [:] : first.tensorParallel?.layouts ?? [:]
        let shapes = Dictionary(zip(first.parameterNames, first.parameterShapes)) { a, _ in a }
        for (name, layout) in layouts {
            // Metadata is input: a layout must describe one of the saved parameters with sane sizes.
            let ok = shapes[name].map { layout.axis >= 0 && layout.axis < $0.count } ?? false
                && !layout.blocks.isEmpty && layout.blocks.allSatisfy { $0 > 0 && $0 <= CheckpointLimits.maxCount }
                && layout.unit >= 1 && layout.unit <= CheckpointLimits.maxCount
            guard ok else {
                throw CheckpointError("\(folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile).path): the tensor-parallel layout of \(name) (axis \(layout.axis), blocks \(layout.blocks), unit \(layout.unit)) does not fit its saved parameters; the file is corrupt or was edited — re-save the checkpoint")
            }
        }
        self.folder = folder
        self.note = note
        self.metas = metas
        self.layouts = layouts
    }

    /// Joins parameter `name`'s shards (one per mp rank, rank order), after checking they fit its layout.
    func merge(_ name: String, _ shards: [Tensor], file: String) throws -> Tensor {
        guard size > 1, let layout = layouts[name] else { return shards[0] }
        let total = layout.blocks.reduce(0, +)
        let ranges = TensorParallelSplit.ranges(total, parts: size)
        for (mp, s) in shards.enumerated() {
            let want = layout.uneven ? ranges[mp].count : total / size
            guard layout.axis < s.rank, s.shape[layout.axis] == want, s.shape.enumerated().allSatisfy({ $0.offset == layout.axis || $0.element == shards[0].shape[$0.offset] }),
                  layout.uneven || layout.blocks.allSatisfy({ $0 % size == 0 })
            else {
                throw CheckpointError("\(file): parameter \(name)'s shard on tensor-parallel rank \(mp) has shape \(s.shape), which does not fit its saved layout (axis \(layout.axis), blocks \(layout.blocks)) at \(size) ranks; the checkpoint is corrupt — re-save it")
            }
        }
        return layout.merge(shards)
    }

    /// The whole parameter shapes, in mp rank 0's order.
    public var parameterShapes: [[Int]] {
        zip(metas[0].parameterNames, metas[0].parameterShapes).map { name, shape in
            guard size > 1, let layout = layouts[name] else { return shape }
            var whole = shape
            whole[layout.axis] = layout.blocks.reduce(0, +)
            return whole
        }
    }

    /// The model-states files' weights (in the model dtype) joined whole, and the persistent buffers (from mp rank 0).
    func modelStates(verify: Bool) throws -> (weights: [String: Tensor], checksummed: Bool) {
        var files: [[String: Tensor]] = []
        var checksummed = true
        for mp in 0..<size {
            let (tensors, metadata) = try Safetensors.read(folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp)),
                                                           verify: verify)
            if metadata[Safetensors.checksumKey] == nil { checksummed = false }
            files.append(tensors)
        }
        var out = files[0]
        for name in layouts.keys where out[name] != nil {
            let shards = try (0..<size).map { mp -> Tensor in
                guard let t = files[mp][name] else {
                    throw CheckpointError("\(folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp)).path) has no \(name); the checkpoint is corrupt — re-save it")
                }
                return t
            }
            out[name] = try merge(name, shards, file: folder.path)
        }
        return (out, checksummed)
    }

    /// Whole fp32 tensors per parameter for optimizer-shard buffers `names` (`fp32_flat_partition`, `exp_avg`, …):
    /// `[buffer: [parameter: tensor]]`, each mp rank's flat buffers rebuilt from its ZeRO shards, split by its
    /// parameter shapes and joined over the mp ranks.
    func flatState(_ names: [String], verify: Bool) throws -> (state: [String: [String: Tensor]], stateNames: [String], meta: OptimStateMeta, checksummed: Bool) {
        var perRank: [[String: Tensor]] = []
        var first: ZeroCheckpoint.Shards?
        var checksummed = true
        for mp in 0..<size {
            let shards = try ZeroCheckpoint.Shards(folder: folder, mpRank: mp, verify: verify)
            if first == nil { first = shards }
            guard shards.stateNames == first!.stateNames else {
                throw CheckpointError("\(folder.path): tensor-parallel rank \(mp)'s optimizer shards hold \(shards.stateNames), rank 0's \(first!.stateNames); re-save the checkpoint")
            }
            let needed = metas[mp].parameterShapes.reduce(0) { $0 + $1.reduce(1, *) }
            guard shards.paddedCount >= needed else {
                throw CheckpointError("\(folder.path): tensor-parallel rank \(mp)'s optimizer shards hold \(shards.paddedCount) elements but its model states list \(needed); re-save the checkpoint")
            }
            checksummed = checksummed && shards.checksummed
            perRank.append(try shards.flatBuffers(names))
        }
        var out: [String: [String: Tensor]] = [:]
        for buffer in names {
            var byName: [String: Tensor] = [:]
            let pieces = (0..<size).map { mp -> [String: Tensor] in
                var offset = 0, views: [String: Tensor] = [:]
                for (name, shape) in zip(metas[mp].parameterNames, metas[mp].parameterShapes) {
                    let n = shape.reduce(1, *)
                    views[name] = noGrad { perRank[mp][buffer]!.slice(axis: 0, offset..<(offset + n)).reshape(shape) }
                    offset += n
                }
                return views
            }
            for name in parameterNames {
                byName[name] = try merge(name, pieces.map { $0[name]! }, file: folder.path)
            }
            out[buffer] = byName
        }
        return (out, first!.stateNames, first!.meta, checksummed)
    }

    /// Every trained parameter as a whole fp32 tensor (the unsharded model's shape), from the optimizer shards' fp32
    /// master weights, in mp rank 0's order.
    ///
    /// ```swift
    /// for (name, w) in try ckpt.fp32Parameters() { print(name, w.shape) }
    /// ```
    public func fp32Parameters(verify: Bool = true) throws -> [(name: String, tensor: Tensor)] {
        let master = try flatState([ZeroCheckpoint.masterName], verify: verify).state[ZeroCheckpoint.masterName]!
        return parameterNames.map { ($0, master[$0]!) }
    }

    /// Writes the whole model as fp32 safetensors at `url` (atomically; metadata `format: pt`, the unsharded model's
    /// names, so Hugging Face's loaders read it) with the persistent buffers; returns the parameter count written.
    ///
    /// ```swift
    /// let n = try ckpt.writeFP32(to: URL(fileURLWithPath: "out/model.safetensors"))
    /// ```
    @discardableResult
    public func writeFP32(to url: URL, verify: Bool = true) throws -> Int {
        let parameters = try fp32Parameters(verify: verify)
        var tensors = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.tensor) })
        if let names = metas[0].bufferNames, !names.isEmpty {
            let file = folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile)
            let (buffers, _) = try Safetensors.read(file, only: Set(names), verify: verify)
            for name in names {
                guard let b = buffers[name] else {
                    throw CheckpointError("\(file.path) lists buffer \(name) but does not hold it; the file is corrupt — re-save the checkpoint")
                }
                tensors[name] = b
            }
        }
        try Safetensors.write(tensors, metadata: ["format": "pt"], to: url)
        return parameters.reduce(0) { $0 + $1.tensor.count }
    }
}
