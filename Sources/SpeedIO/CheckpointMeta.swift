// The metadata SpeedIO reads from a checkpoint's files, its range checks, and the error every checkpoint failure throws.
// Invariant: these types decode the files `Engine.saveCheckpoint` writes; the runtime's richer model-state
// metadata is a superset of `ModelStateSummary`, so either side reads the same JSON; no counter or size outside
// `CheckpointLimits` is ever used (arithmetic on them cannot overflow).

import SpeedCore

/// Why a checkpoint could not be saved or loaded.
public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The part of a model-states file's metadata (key `swiftspeed`) that reading the weights needs; the engine
/// stores more (schedules, counters, the config) under the same key.
package struct ModelStateSummary: Codable {
    package var format: String
    package var globalSteps: Int
    package var dpWorldSize: Int
    package var zeroStage: Int
    package var dtype: String
    package var parameterNames: [String]
    package var parameterShapes: [[Int]]
    /// The model's own config.json text and source folder, when it came from a Hugging Face folder.
    package var modelConfig: String?
    package var modelSource: String?
    /// Persistent module buffers stored in the model-states file beside the weights (nil before they were).
    package var bufferNames: [String]?
    /// Set when the model was tensor-parallel sharded: which `mp_rank` file this is and how many there are (the
    /// runtime stores each sharded parameter's layout beside them).
    package var tensorParallel: TensorParallelSummary?
}

/// A model-states file's place among a tensor-parallel checkpoint's `mp_rank_XX` files.
package struct TensorParallelSummary: Codable, Equatable {
    package var rank: Int
    package var size: Int
}

/// Optimizer-partition state stored in each rank's optim-states file (key `swiftspeed`).
package struct OptimStateMeta: Codable {
    package var format = "swiftspeed-optim-1"
    package var rank: Int
    package var worldSize: Int
    package var partitionOffset: Int
    package var partitionCount: Int
    package var paddedCount: Int
    package var optimizer: String
    package var lr: Double
    package var betas: [Double]?
    package var stateNames: [String]

    package init(rank: Int, worldSize: Int, partitionOffset: Int, partitionCount: Int, paddedCount: Int,
                 optimizer: String, lr: Double, betas: [Double]?, stateNames: [String]) {
        self.rank = rank; self.worldSize = worldSize; self.partitionOffset = partitionOffset
        self.partitionCount = partitionCount; self.paddedCount = paddedCount; self.optimizer = optimizer
        self.lr = lr; self.betas = betas; self.stateNames = stateNames
    }
}

/// The ranges checkpoint metadata must stay in: far above any real run, far below where arithmetic overflows.
package enum CheckpointLimits {
    /// Steps, micro-steps and buffer elements: 2^40 (about 1.1 × 10^12).
    package static let maxCount = 1 << 40
    /// Samples (steps × batch size): 2^50.
    package static let maxSamples = 1 << 50
    /// Ranks that saved a checkpoint.
    package static let maxWorldSize = 1 << 20

    /// Throws unless `0 <= value <= max` (`min` for fields such as `last_batch_iteration` that may be -1).
    package static func check(_ field: String, _ value: Int, min: Int = 0, max: Int = maxCount, file: String) throws {
        guard value >= min, value <= max else {
            throw CheckpointError("\(file): metadata field \(field) is \(value); it must be between \(min) and \(max) — the file is corrupt or was edited; re-save the checkpoint or restore the file")
        }
    }

    /// Checks the engine counters of a model-states file: each in range, and consistent with one another
    /// (every optimizer step is taken or skipped, takes at least one micro-step and one sample).
    package static func checkCounters(globalSteps: Int, globalSamples: Int, skippedSteps: Int, microSteps: Int,
                                      optimizerSteps: Int, file: String) throws {
        try check("globalSteps", globalSteps, file: file)
        try check("globalSamples", globalSamples, max: maxSamples, file: file)
        try check("skippedSteps", skippedSteps, max: globalSteps, file: file)
        try check("optimizerSteps", optimizerSteps, max: globalSteps, file: file)
        try check("microSteps", microSteps, min: globalSteps, file: file)
        guard (globalSteps == 0) == (globalSamples == 0) else {
            throw CheckpointError("\(file): metadata field globalSamples is \(globalSamples) but globalSteps is \(globalSteps); each step counts at least one sample, so both are zero or neither is — the file is corrupt or was edited; re-save the checkpoint or restore the file")
        }
        try check("globalSamples", globalSamples, min: globalSteps, max: maxSamples, file: file)
    }
}
