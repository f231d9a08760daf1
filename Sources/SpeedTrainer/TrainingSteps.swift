// The Trainer's step arithmetic (transformers' `set_initial_training_values`): batches per epoch, updates, total steps T.
// Invariant: the counts are per rank and assume transformers' sharded loader (accelerate's even batches): L = ⌈N/(MB·W)⌉,
// or ⌊N/(MB·W)⌋ with dataloader_drop_last.

/// How long a Trainer run is, from the arguments, the number of training rows and the data-parallel world size.
///
/// ```swift
/// let steps = TrainingSteps(arguments: args, trainRows: 1000, worldSize: 2)   // MB 8, GAS 1, 3 epochs
/// steps.batchesPerEpoch    // 63 = ⌈1000 / 16⌉
/// steps.totalSteps         // 189
/// args.warmupSteps(forTrainingSteps: steps.totalSteps)
/// ```
public struct TrainingSteps: Sendable, Equatable {
    /// L: micro-batches each rank sees per epoch.
    public let batchesPerEpoch: Int
    /// U = max(⌈L / GAS⌉, 1): optimizer steps per epoch (a short last accumulation still steps).
    public let updatesPerEpoch: Int
    /// T: `max_steps` when >= 0 (transformers tests `max_steps < 0` for epoch-based runs), else ⌈epochs · U⌉.
    public let totalSteps: Int
    /// The whole epochs the loop runs: ⌈epochs⌉, or ⌈T / U⌉ with `max_steps`.
    public let epochs: Int

    public init(arguments args: TrainingArguments, trainRows: Int, worldSize: Int) {
        precondition(trainRows >= 0 && worldSize >= 1, "TrainingSteps: need trainRows >= 0 and worldSize >= 1, got \(trainRows), \(worldSize)")
        let perStep = args.perDeviceTrainBatchSize * worldSize
        batchesPerEpoch = args.dataloaderDropLast ? trainRows / perStep : (trainRows + perStep - 1) / perStep
        let gas = args.gradientAccumulationSteps
        updatesPerEpoch = Swift.max((batchesPerEpoch + gas - 1) / gas, 1)
        if args.maxSteps < 0 {
            totalSteps = Int((args.numTrainEpochs * Double(updatesPerEpoch)).rounded(.up))
            epochs = Int(args.numTrainEpochs.rounded(.up))
        } else {
            totalSteps = args.maxSteps
            epochs = (args.maxSteps + updatesPerEpoch - 1) / updatesPerEpoch
        }
    }
}
