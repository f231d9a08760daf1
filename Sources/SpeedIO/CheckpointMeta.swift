// The metadata SpeedIO reads from a checkpoint's files, and the error every checkpoint failure throws.
// Invariant: these types decode the files `Engine.saveCheckpoint` writes; the runtime's richer model-state
// metadata is a superset of `ModelStateSummary`, so either side reads the same JSON.

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
