// A saved checkpoint read whole: every rank's optimizer shard stitched back into full fp32 buffers (zero_to_fp32).
// Invariant: all shard headers are checked to tile 0..<paddedCount in rank order before any data is read,
// so a consolidation is complete or refused, never partial; fp32 weights come from shards, never 16-bit copies.

import Foundation
import SpeedCore

/// A checkpoint saved by `Engine.saveCheckpoint` (any ZeRO stage, any number of ranks), opened for
/// reading as a whole, like DeepSpeed's `zero_to_fp32.py`.
///
/// Opening it reads the model-states metadata and every optimizer shard's header, and checks that
/// the shards fit together; tensor data is read only by ``flatBuffers(_:)``, ``fp32Parameters()`` and
/// ``writeFP32(to:)``. The fp32 weights come from the shards' `fp32_flat_partition` (the exact fp32
/// master weights), never from the 16-bit weights of the model-states file, so they are complete even
/// where that file holds empty placeholders (ZeRO-3).
///
/// ```swift
/// let ckpt = try ZeroCheckpoint(directory: "checkpoints")              // tag from checkpoints/latest
/// print(ckpt.tag, ckpt.zeroStage, ckpt.shards.count)                   // global_step100 1 2
/// let weights = try ckpt.fp32Parameters()                              // [(name, fp32 tensor)], saved shapes
/// try ckpt.writeFP32(to: URL(fileURLWithPath: "out/model.safetensors"))
/// ```
public struct ZeroCheckpoint {
    /// The model-states file of a tag (written by rank 0); tensor-parallel rank 0's in a tensor-parallel checkpoint.
    public static let modelStatesFile = modelStatesFile(mpRank: 0)
    /// The name of the flat fp32 master-weight slice in every optimizer shard.
    public static let masterName = "fp32_flat_partition"
    /// Rank `rank`'s optimizer-states file.
    public static func optimStatesFile(rank: Int) -> String { optimStatesFile(rank: rank, mpRank: 0) }
    /// Tensor-parallel rank `mpRank`'s model-states file (DeepSpeed's `mp_rank_XX_model_states.pt`), written by the
    /// first data-parallel rank of that tensor-parallel rank.
    public static func modelStatesFile(mpRank: Int) -> String { "mp_rank_\(twoDigits(mpRank))_model_states.safetensors" }
    /// Data-parallel rank `rank`'s optimizer shard of tensor-parallel rank `mpRank`
    /// (DeepSpeed's `zero_pp_rank_D_mp_rank_XX_optim_states.pt`).
    public static func optimStatesFile(rank: Int, mpRank: Int) -> String {
        "zero_pp_rank_\(rank)_mp_rank_\(twoDigits(mpRank))_optim_states.safetensors"
    }

    static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// The checkpoint directory (the one holding `latest`).
    public let directory: URL
    /// The tag read (`latest`'s content unless one was given).
    public let tag: String
    /// `directory/tag`.
    public let folder: URL
    /// The optimizer shards, validated and in rank order.
    public let shards: Shards
    /// The engine state saved with the model weights.
    let model: ModelStateSummary

    /// The trained parameters' names, in flat-buffer order.
    public var parameterNames: [String] { model.parameterNames }
    /// The trained parameters' shapes, in flat-buffer order.
    public var parameterShapes: [[Int]] { model.parameterShapes }
    /// Elements used by parameters (the flat buffers hold `shards.paddedCount ≥` this).
    public var parameterCount: Int { model.parameterShapes.reduce(0) { $0 + Self.elementCount($1) } }
    /// The ZeRO stage of the run that saved it.
    public var zeroStage: Int { model.zeroStage }
    /// The model's config.json text and source folder, saved when the model came from a Hugging Face folder.
    public var modelConfig: String? { model.modelConfig }
    public var modelSource: String? { model.modelSource }
    /// The data-parallel world size of the run that saved it.
    public var dpWorldSize: Int { model.dpWorldSize }
    /// The model dtype of the run (`float32`, `bfloat16`, `float16`).
    public var modelDType: String { model.dtype }
    /// Optimizer steps taken when it was saved.
    public var globalSteps: Int { model.globalSteps }
    /// The tensor-parallel degree of the run that saved it (1: not tensor-parallel) and the rank this view reads.
    public var tensorParallelSize: Int { model.tensorParallel?.size ?? 1 }
    public var tensorParallelRank: Int { model.tensorParallel?.rank ?? 0 }
    /// Why ``folder`` is not `directory/tag` when it is not: the complete copy an interrupted save left.
    public let note: String?
    /// Whether every optimizer shard records CRC-32C checksums (false for checkpoints saved before they did).
    public var checksummed: Bool { shards.checksummed }

    /// Opens `directory/tag` (or the tag in `directory/latest`) and validates the model-states
    /// metadata and every optimizer shard's header.
    ///
    /// ```swift
    /// let ckpt = try ZeroCheckpoint(directory: "checkpoints", tag: "global_step20")
    /// ```
    /// - Parameter verify: check every tensor read against the CRC-32C its file records (files saved
    ///   before checkpoints recorded checksums are read unchecked; see ``checksummed``).
    /// - Parameter mpRank: the tensor-parallel rank whose files to read (its `mp_rank_XX` model states and optimizer
    ///   shards: that rank's shard of every split parameter). nil (the default) wants the whole model and refuses a
    ///   tensor-parallel checkpoint, whose whole weights only `TensorParallelCheckpoint` (SpeedRuntime) rebuilds.
    /// - Throws: ``CheckpointError`` naming the missing or inconsistent file and what to do about it
    ///   (a missing, empty or non-file `latest` included: pass a tag); `SafetensorsError` for a file that
    ///   is not valid safetensors, not a regular file, or whose data fails its checksum.
    public init(directory: String, tag: String? = nil, mpRank: Int? = nil, verify: Bool = true) throws {
        let root = URL(fileURLWithPath: directory)
        guard CheckpointDirectory.isDirectory(root) else {
            throw CheckpointError("checkpoint directory \(root.path) does not exist (pass the folder given to saveCheckpoint / --save-dir)")
        }
        guard let choice = try CheckpointDirectory.resolve(root, tag: tag, fallBackToNewest: false) else {
            throw CheckpointError("\(root.appendingPathComponent(CheckpointDirectory.latestFile).path) does not exist, so there is no default tag; pass a tag\(CheckpointDirectory.tagList(root))")
        }
        let folder = choice.folder
        var modelURL = folder.appendingPathComponent(Self.modelStatesFile)
        guard FileManager.default.fileExists(atPath: modelURL.path) else {
            throw CheckpointError("\(modelURL.path) is missing: rank 0 writes it with the parameter names and shapes, and the checkpoint cannot be read without it; copy it from the machine that ran rank 0")
        }
        var model: ModelStateSummary = try Self.decode(Safetensors.header(modelURL).metadata["swiftspeed"], file: modelURL.path)
        try Self.validate(model, file: modelURL.path)
        let size = model.tensorParallel?.size ?? 1
        guard let mp = mpRank ?? (size == 1 ? 0 : nil) else {
            throw CheckpointError("\(folder.path) is a tensor-parallel checkpoint (autotp_size \(size)): each parameter is split over mp_rank_00 … mp_rank_\(Self.twoDigits(size - 1)); read its whole weights with TensorParallelCheckpoint (swiftspeed zero-to-fp32 does), or pass mpRank for one rank's shards")
        }
        guard (0..<size).contains(mp) else {
            throw CheckpointError("\(folder.path): tensor-parallel rank \(mp) does not exist; the checkpoint was saved by \(size) tensor-parallel rank(s)")
        }
        if mp > 0 {
            modelURL = folder.appendingPathComponent(Self.modelStatesFile(mpRank: mp))
            guard FileManager.default.fileExists(atPath: modelURL.path) else {
                throw CheckpointError("\(modelURL.path) is missing: \(Self.modelStatesFile) says \(size) tensor-parallel ranks saved this checkpoint, and the first data-parallel rank of each writes its own model states; copy it from the machine that ran tensor-parallel rank \(mp)")
            }
            model = try Self.decode(Safetensors.header(modelURL).metadata["swiftspeed"], file: modelURL.path)
            guard model.tensorParallel == TensorParallelSummary(rank: mp, size: size) else {
                throw CheckpointError("\(modelURL.path) says it is tensor-parallel rank \(model.tensorParallel?.rank ?? 0) of \(model.tensorParallel?.size ?? 1), not rank \(mp) of \(size): the folder mixes files from different saves — re-save the checkpoint")
            }
        }
        try Self.validate(model, file: modelURL.path)
        let shards = try Shards(folder: folder, mpRank: mp, verify: verify)
        let needed = model.parameterShapes.reduce(0) { $0 + Self.elementCount($1) }
        guard shards.paddedCount >= needed else {
            throw CheckpointError("\(folder.path): the optimizer shards hold \(shards.paddedCount) elements but \(Self.modelStatesFile) lists \(model.parameterNames.count) parameters of \(needed) elements; the shards and the model states come from different runs — re-save the checkpoint")
        }
        self.directory = root
        self.tag = choice.tag
        self.folder = folder
        self.note = choice.note
        self.model = model
        self.shards = shards
    }

    /// The tag in `directory/latest`, or nil when there is no such file.
    ///
    /// ```swift
    /// let tag = try ZeroCheckpoint.latestTag(in: "checkpoints")   // "global_step100"
    /// ```
    /// - Throws: ``CheckpointError`` when `latest` exists but names no tag: empty, not a regular file
    ///   (a FIFO is refused, never read), or not a folder name.
    public static func latestTag(in directory: String) throws -> String? {
        switch CheckpointDirectory.readLatest(URL(fileURLWithPath: directory)) {
        case .missing: return nil
        case .tag(let tag): return tag
        case .unusable(let reason): throw CheckpointError("\(reason); pass a tag or write the tag's name into it")
        }
    }

    /// Full flat fp32 buffers (`[shards.paddedCount]`) for `names` (`fp32_flat_partition` and/or
    /// optimizer state names such as `exp_avg`), reading each shard file once.
    ///
    /// ```swift
    /// let full = try ckpt.flatBuffers([ZeroCheckpoint.masterName, "exp_avg"])
    /// ```
    public func flatBuffers(_ names: [String]) throws -> [String: Tensor] { try shards.flatBuffers(names) }

    /// Every trained parameter as a full fp32 tensor with its saved shape, in flat-buffer order.
    /// The tensors are views into one flat buffer rebuilt from the shards' fp32 masters.
    ///
    /// ```swift
    /// for (name, w) in try ckpt.fp32Parameters() { print(name, w.shape) }
    /// ```
    public func fp32Parameters() throws -> [(name: String, tensor: Tensor)] {
        let flat = try shards.flatBuffers([Self.masterName])[Self.masterName]!
        var out: [(name: String, tensor: Tensor)] = []
        var offset = 0
        for (name, shape) in zip(model.parameterNames, model.parameterShapes) {
            let n = Self.elementCount(shape)
            out.append((name, noGrad { flat.slice(axis: 0, offset..<(offset + n)).reshape(shape) }))
            offset += n
        }
        return out
    }

    /// Writes every parameter as fp32 to a safetensors file at `url` (atomically; metadata
    /// `format: pt`, so Hugging Face's loaders accept it) and returns the parameter count written.
    ///
    /// ```swift
    /// let n = try ckpt.writeFP32(to: URL(fileURLWithPath: "out/model.safetensors"))
    /// ```
    @discardableResult
    public func writeFP32(to url: URL) throws -> Int {
        let parameters = try fp32Parameters()
        var tensors = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.tensor) })
        for (name, buffer) in try persistentBuffers() { tensors[name] = buffer }
        try Safetensors.write(tensors, metadata: ["format": "pt"], to: url)
        return parameters.reduce(0) { $0 + $1.tensor.count }
    }

    /// The module's persistent buffers (e.g. running statistics) as saved, in their own dtype; empty when the
    /// model has none or the checkpoint predates saving them. zero_to_fp32.py likewise writes buffers unchanged.
    public func persistentBuffers() throws -> [String: Tensor] {
        guard let names = model.bufferNames, !names.isEmpty else { return [:] }
        let url = folder.appendingPathComponent(Self.modelStatesFile)
        let (tensors, _) = try Safetensors.read(url, only: Set(names))
        for name in names where tensors[name] == nil {
            throw CheckpointError("\(url.path) lists buffer \(name) but does not hold it; the file is corrupt — re-save the checkpoint")
        }
        return tensors
    }

    // MARK: Shards

    /// Every optimizer shard of one tag, validated: rank `r`'s file covers `ranges[r]`, the ranges
    /// tile `0..<paddedCount`, and each file holds `fp32_flat_partition` and every state name as fp32
    /// tensors of its range's length.
    ///
    /// ```swift
    /// let shards = try ZeroCheckpoint.Shards(folder: URL(fileURLWithPath: "checkpoints/global_step10"))
    /// let full = try shards.flatBuffers([ZeroCheckpoint.masterName] + shards.stateNames)
    /// ```
    public struct Shards {
        /// One file per rank, in rank order.
        public let files: [URL]
        /// Flat-buffer elements held by each file.
        public let ranges: [Range<Int>]
        /// Length of the flat buffers (parameters plus padding to a multiple of the ranks).
        public let paddedCount: Int
        /// Rank 0's metadata (optimizer name, learning rate, betas, state names).
        package let meta: OptimStateMeta
        /// Whether reads check tensors against their files' CRC-32C checksums.
        public let verify: Bool
        /// Whether every shard file records checksums.
        public let checksummed: Bool

        /// The optimizer's state buffers in every shard (e.g. `exp_avg`, `exp_avg_sq`).
        public var stateNames: [String] { meta.stateNames }
        /// The optimizer type that saved them (`AdamW`, …).
        public var optimizer: String { meta.optimizer }
        /// The number of shard files (1 for stage 0 or a one-rank run).
        public var count: Int { files.count }

        /// Reads and checks the header of every `zero_pp_rank_<r>_mp_rank_<mpRank>_optim_states.safetensors`
        /// in `folder` (no tensor data); `verify` says whether later reads check the data's checksums.
        ///
        /// ```swift
        /// let shards = try ZeroCheckpoint.Shards(folder: URL(fileURLWithPath: "ckpt/global_step4"))
        /// shards.ranges   // [0..<1028, 1028..<2056]
        /// ```
        public init(folder: URL, mpRank: Int = 0, verify: Bool = true) throws {
            let first = folder.appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: 0, mpRank: mpRank))
            guard FileManager.default.fileExists(atPath: first.path) else {
                throw CheckpointError("\(first.path) is missing: rank 0's optimizer shard holds the fp32 master weights and says how many shards there are; without it the checkpoint's fp32 weights cannot be rebuilt (load it module-only, or copy the file from the machine that ran rank 0)")
            }
            var metas: [OptimStateMeta] = []
            var files: [URL] = []
            var ranges: [Range<Int>] = []
            var worldSize = 1
            var rank = 0
            var checksummed = true
            while rank < worldSize {
                let url = folder.appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: rank, mpRank: mpRank))
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw CheckpointError("\(url.path) is missing: shard 0 says \(worldSize) ranks saved this checkpoint, so zero_pp_rank_0 … zero_pp_rank_\(worldSize - 1) must all be present; every rank writes its own shard — copy the missing file from the machine that ran rank \(rank)")
                }
                let header = try Safetensors.header(url)
                if header.checksums == nil { checksummed = false }
                let meta: OptimStateMeta = try ZeroCheckpoint.decode(header.metadata["swiftspeed"], file: url.path)
                try CheckpointLimits.check("rank", meta.rank, max: CheckpointLimits.maxWorldSize, file: url.path)
                try CheckpointLimits.check("worldSize", meta.worldSize, min: 1, max: CheckpointLimits.maxWorldSize, file: url.path)
                try CheckpointLimits.check("partitionOffset", meta.partitionOffset, file: url.path)
                try CheckpointLimits.check("partitionCount", meta.partitionCount, file: url.path)
                try CheckpointLimits.check("paddedCount", meta.paddedCount, file: url.path)
                if rank == 0 {
                    guard meta.worldSize >= 1 else {
                        throw CheckpointError("\(url.path) says \(meta.worldSize) ranks saved the checkpoint; the file is corrupt — re-save the checkpoint")
                    }
                    worldSize = meta.worldSize
                }
                let fix = "the folder mixes files from different saves or the file was renamed — re-save the checkpoint, or restore the original file"
                guard meta.rank == rank else {
                    throw CheckpointError("\(url.path) holds rank \(meta.rank)'s shard, not rank \(rank)'s: \(fix)")
                }
                if rank > 0 {
                    let zero = metas[0]
                    guard meta.worldSize == worldSize else {
                        throw CheckpointError("\(url.path) says \(meta.worldSize) ranks saved the checkpoint, shard 0 says \(worldSize): \(fix)")
                    }
                    guard meta.paddedCount == zero.paddedCount else {
                        throw CheckpointError("\(url.path) is a slice of a \(meta.paddedCount)-element buffer, shard 0 of a \(zero.paddedCount)-element one: \(fix)")
                    }
                    guard meta.stateNames == zero.stateNames else {
                        throw CheckpointError("\(url.path) holds optimizer state \(meta.stateNames), shard 0 holds \(zero.stateNames): \(fix)")
                    }
                }
                guard meta.partitionOffset >= 0, meta.partitionCount >= 0 else {
                    throw CheckpointError("\(url.path) claims elements \(meta.partitionOffset) ..< \(meta.partitionOffset + meta.partitionCount); the file is corrupt — re-save the checkpoint")
                }
                let start = ranges.last?.upperBound ?? 0
                if meta.partitionOffset > start {
                    throw CheckpointError("\(url.path) starts at element \(meta.partitionOffset) but the shards before it end at \(start): elements \(start) ..< \(meta.partitionOffset) are in no shard (a gap); \(fix)")
                }
                if meta.partitionOffset < start {
                    throw CheckpointError("\(url.path) starts at element \(meta.partitionOffset) but the shards before it already cover up to \(start): elements \(meta.partitionOffset) ..< \(start) are in two shards (an overlap); \(fix)")
                }
                for name in [ZeroCheckpoint.masterName] + meta.stateNames {
                    guard let entry = header[name] else {
                        throw CheckpointError("\(url.path) has no tensor '\(name)' (it lists \(header.entries.map(\.name))); the file is corrupt or from another version — re-save the checkpoint")
                    }
                    let n = ZeroCheckpoint.elementCount(entry.shape)
                    guard entry.dtype == .f32, n == meta.partitionCount else {
                        throw CheckpointError("\(url.path): tensor '\(name)' is \(entry.dtype.rawValue) \(entry.shape) but the shard's metadata says \(meta.partitionCount) F32 elements; the file is corrupt — re-save the checkpoint")
                    }
                }
                metas.append(meta)
                files.append(url)
                ranges.append(meta.partitionOffset..<(meta.partitionOffset + meta.partitionCount))
                rank += 1
            }
            let end = ranges.last!.upperBound
            guard end == metas[0].paddedCount else {
                throw CheckpointError("\(folder.path): the \(worldSize) optimizer shards cover \(end) elements but their metadata says the flat buffer has \(metas[0].paddedCount) (sizes do not add up): shards are missing or truncated — re-save the checkpoint")
            }
            let extra = folder.appendingPathComponent(ZeroCheckpoint.optimStatesFile(rank: worldSize, mpRank: mpRank))
            if FileManager.default.fileExists(atPath: extra.path) {
                throw CheckpointError("\(folder.path) holds \(extra.lastPathComponent) but shard 0 says only \(worldSize) rank(s) saved the checkpoint: the folder mixes files from different saves — re-save the checkpoint, or remove the stray shard files")
            }
            self.files = files
            self.ranges = ranges
            self.paddedCount = metas[0].paddedCount
            self.meta = metas[0]
            self.verify = verify
            self.checksummed = checksummed
        }

        /// Full `[paddedCount]` fp32 buffers for `names`, each shard's slice copied into place; every
        /// file is read once (only the tensors asked for).
        ///
        /// ```swift
        /// let master = try shards.flatBuffers(["fp32_flat_partition"])["fp32_flat_partition"]!
        /// ```
        /// - Throws: ``CheckpointError`` for a name that is not a shard tensor, or a file that changed
        ///   since the shards were opened; `SafetensorsError` for a file that cannot be read.
        public func flatBuffers(_ names: [String]) throws -> [String: Tensor] {
            try flatBuffers(names, range: 0..<paddedCount)
        }

        /// Elements `range` of the flat buffers for `names` (`[range.count]` fp32 each), reading only
        /// the shard files that overlap it; elements past `paddedCount` are zero. This is how a rank
        /// resuming on another world size takes its own partition without holding the whole buffers.
        ///
        /// ```swift
        /// let mine = try shards.flatBuffers(["fp32_flat_partition", "exp_avg"], range: engine.partition)
        /// ```
        public func flatBuffers(_ names: [String], range: Range<Int>) throws -> [String: Tensor] {
            precondition(range.lowerBound >= 0, "flatBuffers: range \(range) starts before element 0")
            let known = [ZeroCheckpoint.masterName] + stateNames
            for name in names where !known.contains(name) {
                throw CheckpointError("'\(name)' is not in the optimizer shards; they hold \(known)")
            }
            var out: [String: Tensor] = [:]
            for name in names {
                out[name] = range.upperBound > paddedCount ? Tensor.zeros([range.count]) : Tensor(empty: [range.count], dtype: .float32)
            }
            for (url, held) in zip(files, ranges) where held.overlaps(range) {
                let (tensors, _) = try Safetensors.read(url, only: Set(names), verify: verify)
                let common = held.clamped(to: range)
                for name in names {
                    guard let t = tensors[name], t.dtype == .float32, t.count == held.count else {
                        throw CheckpointError("\(url.path): tensor '\(name)' changed while the checkpoint was being read; read it again")
                    }
                    noGrad {
                        let source = t.reshape([held.count]).slice(axis: 0, (common.lowerBound - held.lowerBound)..<(common.upperBound - held.lowerBound))
                        out[name]!.slice(axis: 0, (common.lowerBound - range.lowerBound)..<(common.upperBound - range.lowerBound)).copyData(from: source)
                    }
                }
            }
            return out
        }
    }

    // MARK: Helpers

    static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Checks the model-states metadata: one shape per name, unique names, shapes whose element counts
    /// are in range, and counters in range.
    static func validate(_ meta: ModelStateSummary, file: String) throws {
        try CheckpointLimits.check("globalSteps", meta.globalSteps, file: file)
        try CheckpointLimits.check("dpWorldSize", meta.dpWorldSize, min: 1, max: CheckpointLimits.maxWorldSize, file: file)
        try CheckpointLimits.check("zeroStage", meta.zeroStage, max: 3, file: file)
        if let tp = meta.tensorParallel {
            try CheckpointLimits.check("tensorParallel.size", tp.size, min: 1, max: CheckpointLimits.maxWorldSize, file: file)
            try CheckpointLimits.check("tensorParallel.rank", tp.rank, max: tp.size - 1, file: file)
        }
        guard meta.parameterNames.count == meta.parameterShapes.count else {
            throw CheckpointError("\(file) lists \(meta.parameterNames.count) parameter names but \(meta.parameterShapes.count) shapes; the file is corrupt — re-save the checkpoint")
        }
        guard Set(meta.parameterNames).count == meta.parameterNames.count else {
            throw CheckpointError("\(file) lists a parameter name twice; the file is corrupt — re-save the checkpoint")
        }
        var total = 0
        for (name, shape) in zip(meta.parameterNames, meta.parameterShapes) {
            var count = 1
            for d in shape {
                guard d >= 0, d <= CheckpointLimits.maxCount else { count = -1; break }
                count *= d
                if count > CheckpointLimits.maxCount { count = -1; break }
            }
            total += Swift.max(count, 0)
            guard count >= 0, total <= CheckpointLimits.maxCount else {
                throw CheckpointError("\(file): parameter \(name) has shape \(shape) (dimensions must be non-negative and the parameters at most \(CheckpointLimits.maxCount) elements in all); the file is corrupt — re-save the checkpoint")
            }
        }
    }

    package static func decode<T: Decodable>(_ text: String?, file: String) throws -> T {
        guard let text else {
            throw CheckpointError("\(file) has no 'swiftspeed' metadata; it was not written by SwiftSpeed's saveCheckpoint")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
            throw CheckpointError("\(file): cannot read its metadata (\(error)); the checkpoint is corrupt or from another version — re-save it")
        }
    }
}
