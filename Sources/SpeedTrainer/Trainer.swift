// transformers' Trainer on the SwiftSpeed engine: train() over epochs or max steps with DeepSpeed's config filled from
// the arguments, logging, evaluation, checkpoints and callbacks; evaluate() and predict() in Trainer+Evaluate.swift.
// Invariant: every rank runs the same number of forward passes in the same order (eval too), so ZeRO-3's collective
// gathers line up; a step's batches depend only on (data seed, epoch, batch index), so a resumed run replays them.

import Foundation
import Logging
import SpeedComm
import SpeedCore
import SpeedData
import SpeedNN
import SpeedRuntime
import SpeedTransformers

/// A Trainer error that is the caller's input (no labels, an untokenized dataset, a missing checkpoint), with the fix.
public struct TrainerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What `train()` returns (transformers' `TrainOutput`).
public struct TrainOutput: Sendable {
    public var globalStep: Int
    public var trainingLoss: Double
    /// `train_runtime`, `train_samples_per_second`, `train_steps_per_second`, `train_loss`, `epoch`.
    public var metrics: [String: Double]
}

/// Hugging Face's `Trainer`, driving a SwiftSpeed ``Engine``.
///
/// ```swift
/// let (model, _, _) = try AutoModelForSequenceClassification.fromPretrained(modelDir, numLabels: 2)
/// var args = try TrainingArguments(outputDir: "./results")
/// args.perDeviceTrainBatchSize = 16
/// args.deepspeed = .path("ds_config.json")
/// let trainer = try Trainer(model: model, arguments: args, trainDataset: train, evalDataset: eval,
///                           dataCollator: DataCollatorWithPadding(padTokenId: 0),
///                           computeMetrics: Metrics.classification())
/// try trainer.train()
/// print(try trainer.evaluate()["eval_accuracy"]!)
/// ```
public final class Trainer {
    public let model: Module
    public let arguments: TrainingArguments
    public var trainDataset: DatasetTable?
    public var evalDataset: DatasetTable?
    public var dataCollator: any DataCollator
    public var computeMetrics: ComputeMetrics?
    public var callbacks: [any TrainerCallback]
    /// The data-parallel group (one process unless launched with `swiftspeed launch`).
    public let group: any ProcessGroup
    public internal(set) var state = TrainerState()
    /// Built at the first `train()` / `evaluate()`; its config is the DeepSpeed config with every "auto" filled.
    public internal(set) var engine: Engine?
    /// Each log and evaluation line (rank 0 only), with transformers' keys — the CLI prints them with `--json`.
    public var onLog: (([String: JSONValue]) -> Void)?
    /// Progress of `train()` (rank 0 only): optimizer steps done, total, a short note (loss, lr).
    public var onProgress: ((Int, Int, String) -> Void)?
    /// Where the model came from (a Hugging Face folder and its config.json), saved with every engine checkpoint.
    public var modelOrigin: (source: String, config: String)?
    /// Files copied into every `checkpoint-N` and the final model (the tokenizer's, as `processing_class` saves them).
    public var processingFiles: [URL] = []
    public let logger: Logger
    let modelConfig: JSONValue?
    var setup: TrainerSetup?
    var monitors: [any Monitor] = []
    /// An evaluation improved the best metric since the last save: the next checkpoint becomes the best one.
    var pendingBest = false

    /// - Parameter dataCollator: defaults to `DataCollatorWithPadding(padTokenId: 0)` (pass the tokenizer's pad id).
    /// - Throws: ``TrainerError`` when the model's config cannot be read for the DeepSpeed "auto" values.
    public init(model: Module, arguments: TrainingArguments, trainDataset: DatasetTable? = nil,
                evalDataset: DatasetTable? = nil, dataCollator: (any DataCollator)? = nil,
                computeMetrics: ComputeMetrics? = nil, callbacks: [any TrainerCallback] = [],
                processGroup: (any ProcessGroup)? = nil, logger: Logger = Logger(label: "swiftspeed.trainer")) throws {
        self.model = model
        self.arguments = arguments
        self.trainDataset = trainDataset
        self.evalDataset = evalDataset
        self.dataCollator = dataCollator ?? DataCollatorWithPadding(padTokenId: 0)
        self.computeMetrics = computeMetrics
        self.callbacks = callbacks
        self.group = processGroup ?? SingleProcessGroup()
        self.logger = logger
        if let pretrained = model as? any PretrainedModel {
            let data = try JSONSerialization.data(withJSONObject: try pretrained.configJSON(), options: [.sortedKeys])
            modelConfig = try JSONValue.parse(String(decoding: data, as: UTF8.self))
        } else {
            modelConfig = nil
        }
        for warning in arguments.warnings where group.rank == 0 { logger.warning("\(warning)") }
    }

    /// The `eval_`-prefixed name of a metric (`metric_for_best_model` may be given with or without the prefix).
    public static func metricKey(_ name: String) -> String { name.hasPrefix("eval_") ? name : "eval_\(name)" }

    /// Columns a model takes (transformers drops the others with `remove_unused_columns`).
    static let modelInputColumns: Set<String> = ["input_ids", "attention_mask", "token_type_ids", "position_ids",
                                                 "inputs_embeds", "labels", "label", "label_ids", "special_tokens_mask"]

    /// `table` with only model-input columns (when `remove_unused_columns`), refusing one with no input at all.
    func prepared(_ table: DatasetTable, what: String) throws -> DatasetTable {
        let inputs = table.columnNames.filter { Self.modelInputColumns.contains($0) }
        guard inputs.contains("input_ids") || inputs.contains("inputs_embeds") else {
            throw TrainerError("\(what) has no input_ids column (columns: \(table.columnNames.joined(separator: ", "))); tokenize it first, e.g. dataset.map { row in … tokenizer.encode(row[\"text\"]) … }")
        }
        guard arguments.removeUnusedColumns, inputs.count < table.columnNames.count else { return table }
        return try table.selectColumns(inputs)
    }

    /// Builds the engine for a run over `trainRows` rows: both "auto" passes, the Trainer's AdamW and schedule when
    /// the DeepSpeed config has none, gradient checkpointing.
    func makeEngine(trainRows: Int) throws -> Engine {
        if let engine { return engine }
        let setup = try TrainerSetup(arguments: arguments, modelConfig: modelConfig, trainRows: trainRows,
                                     worldSize: group.size)
        if arguments.activationCheckpointing ?? arguments.gradientCheckpointing ?? false {
            guard let checkpointable = model as? any ActivationCheckpointable else {
                throw TrainerError("gradient_checkpointing: \(type(of: model)) does not support activation checkpointing")
            }
            checkpointable.activationCheckpointing.enabled = true
        }
        // transformers' Trainer seeds torch with `seed` first: the dropout masks of training follow it.
        model.seedDropout(UInt64(arguments.seed))
        let opt = try setup.optimization(model: model)
        let engine = try initialize(model: model, config: setup.config, optimizer: opt.optimizer,
                                    lrScheduler: opt.scheduler, processGroup: group,
                                    parameterGroups: opt.parameterGroups, logger: logger).engine
        engine.modelOrigin = modelOrigin
        self.setup = setup
        self.engine = engine
        return engine
    }

    /// Tensor-parallel ranks per data-parallel rank (`tensor_parallel.autotp_size` once the engine sharded the model;
    /// 1 otherwise). TP groups are adjacent ranks, so data-parallel rank d is ranks d·tp ..< (d+1)·tp, which all read
    /// the same batches.
    var tensorParallelSize: Int { engine?.parallelGroups?.tensorParallelSize ?? 1 }
    var dataParallelSize: Int { group.size / tensorParallelSize }
    var dataParallelRank: Int { group.rank / tensorParallelSize }

    /// `logging_steps` / `eval_steps` / `save_steps`: a value below 1 is a ratio of the total steps (rounded up).
    static func interval(_ value: Double, totalSteps: Int) -> Int {
        value < 1 ? Swift.max(1, Int((value * Double(totalSteps)).rounded(.up))) : Int(value)
    }

    /// Trains for `num_train_epochs` or `max_steps`, logging, evaluating and saving as the strategies say.
    ///
    /// - Parameter resumeFromCheckpoint: a `checkpoint-N` folder, or "last" / "true" for the newest in `output_dir`;
    ///   nil takes `arguments.resumeFromCheckpoint`.
    /// - Throws: ``TrainerError``, ``DeepSpeedMismatchError``, `ConfigError`, `CheckpointError`, collective failures.
    @discardableResult
    public func train(resumeFromCheckpoint: String? = nil) throws -> TrainOutput {
        guard let trainDataset else { throw TrainerError("train(): the Trainer has no trainDataset; pass one to init") }
        let table = try prepared(trainDataset, what: "train_dataset")
        if let classifier = model as? any SequenceClassifier {
            if arguments.perDeviceTrainBatchSize > 1, let refusal = classifier.batchRefusal {
                throw TrainerError("\(refusal) — or set per_device_train_batch_size 1")
            }
            for column in ["labels", "label"] where table.columnNames.contains(column) {
                if let values = try? table.doubles(column), let problem = classifier.labelProblem(values) {
                    throw TrainerError("train_dataset column \(column): \(problem)")
                }
            }
        }
        let engine = try makeEngine(trainRows: table.count)
        let steps = setup!.steps
        let args = arguments
        state = TrainerState()
        state.maxSteps = steps.totalSteps
        state.numTrainEpochs = steps.epochs
        state.trainBatchSize = args.perDeviceTrainBatchSize
        state.loggingSteps = args.loggingSteps
        state.evalSteps = args.evalSteps
        state.saveSteps = args.saveSteps
        state.isWorldProcessZero = group.rank == 0
        state.isLocalProcessZero = group.rank == 0
        if let resume = resumeFromCheckpoint ?? args.resumeFromCheckpoint { try self.resume(from: resume, engine: engine) }
        if group.rank == 0, monitors.isEmpty { monitors = try makeMonitors() }
        let logEvery = Self.interval(args.loggingSteps, totalSteps: steps.totalSteps)
        let evalEvery = Self.interval(args.evalSteps ?? args.loggingSteps, totalSteps: steps.totalSteps)
        let saveEvery = Self.interval(args.saveSteps, totalSteps: steps.totalSteps)
        let microBatch = args.perDeviceTrainBatchSize, gas = args.gradientAccumulationSteps
        let sampler = DistributedSampler(count: table.count, rank: dataParallelRank, worldSize: dataParallelSize, shuffle: true,
                                         seed: UInt64(args.dataSeed ?? args.seed), dropLast: args.dataloaderDropLast)
        let startEpoch = state.globalStep / steps.updatesPerEpoch
        let skipBatches = (state.globalStep % steps.updatesPerEpoch) * gas
        let startStep = state.globalStep
        var control = TrainerControl()
        for c in callbacks { c.onTrainBegin(arguments: args, state: state, control: &control) }
        var logLoss = 0.0, logCount = 0, totalLoss = 0.0
        // Causal LMs: transformers' ForCausalLMLoss with num_items_in_batch (the step's loss is a token mean).
        let tokenMean = model is any CausalLanguageModel
        let started = Date()
        engine.train()
        training: for epoch in startEpoch..<Swift.max(startEpoch, steps.epochs) {
            let order = sampler.indices(epoch: epoch)
            func collate(_ b: Int) throws -> CollatedBatch {
                let rows = Array(order[(b * microBatch)..<Swift.min((b + 1) * microBatch, order.count)])
                return try dataCollator.collate(table, indices: rows, step: epoch * steps.batchesPerEpoch + b)
            }
            var window: [CollatedBatch] = [], windowTokens = 0.0, windowBatches = 0
            for b in 0..<steps.batchesPerEpoch where epoch > startEpoch || b >= skipBatches {
                if tokenMean, window.isEmpty {
                    // A step's micro-batches are collated first: their label tokens (all ranks) normalise the loss.
                    window = try (b..<Swift.min((b / gas + 1) * gas, steps.batchesPerEpoch)).map(collate)
                    windowTokens = try globalLabelTokens(window)
                    windowBatches = window.count
                }
                let batch = tokenMean ? window.removeFirst() : try collate(b)
                let inputs = ModuleInputs(batch)
                let out = engine(inputs)
                guard var loss = out.loss else {
                    throw TrainerError("the model returned no loss: the training batches need a labels (or label) column")
                }
                if tokenMean, let labels = inputs.labels {
                    // transformers' num_items_in_batch: sum of this batch's token losses / the step's label tokens,
                    // × GAS (the engine divides by it; DeepSpeed's scale_wrt_gas=False) × W (the engine averages the
                    // data-parallel ranks).
                    let shifted = Self.shiftedLabelTokens(labels)
                    if shifted > 0 { loss = loss * (shifted * Double(gas * dataParallelSize) / windowTokens) }
                }
                try engine.backward(loss)
                if b == steps.batchesPerEpoch - 1, (b + 1) % gas != 0 { engine.forcedAccumulationBoundary = true }
                let before = engine.globalSteps
                try engine.step()
                guard engine.globalSteps > before else { continue }
                state.globalStep += 1
                state.epoch = Double(epoch) + Double(b + 1) / Double(steps.batchesPerEpoch)
                // The engine's loss is the mean of what backward got (× GAS / batches here); transformers adds them up.
                let stepLoss = (engine.lastLoss ?? .nan) * (tokenMean ? Double(windowBatches) / Double(gas) : 1)
                logLoss += stepLoss; logCount += 1; totalLoss += stepLoss
                for c in callbacks { c.onStepEnd(arguments: args, state: state, control: &control) }
                let step = state.globalStep
                if args.loggingStrategy == .steps && (step % logEvery == 0 || (step == 1 && args.loggingFirstStep))
                    || control.shouldLog {
                    try log(["loss": logLoss / Double(logCount), "grad_norm": engine.globalGradNorm ?? .nan,
                             "learning_rate": engine.getLR()[0]], control: &control)
                    logLoss = 0; logCount = 0
                }
                if args.evalStrategy == .steps && step % evalEvery == 0 || control.shouldEvaluate {
                    try evaluateDuringTraining(control: &control)
                }
                if args.saveStrategy == .steps && step % saveEvery == 0 || control.shouldSave {
                    try saveCheckpoint(control: &control)
                }
                onProgress?(step, steps.totalSteps, String(format: "loss %.4f | lr %.3e", stepLoss, engine.getLR()[0]))
                if step >= steps.totalSteps || control.shouldTrainingStop { break training }
                control.shouldLog = false; control.shouldEvaluate = false; control.shouldSave = false
            }
            for c in callbacks { c.onEpochEnd(arguments: args, state: state, control: &control) }
            if args.loggingStrategy == .epoch, logCount > 0 {
                try log(["loss": logLoss / Double(logCount), "grad_norm": engine.globalGradNorm ?? .nan,
                         "learning_rate": engine.getLR()[0]], control: &control)
                logLoss = 0; logCount = 0
            }
            if args.evalStrategy == .epoch { try evaluateDuringTraining(control: &control) }
            if args.saveStrategy == .epoch { try saveCheckpoint(control: &control) }
            if control.shouldTrainingStop || state.globalStep >= steps.totalSteps { break }
        }
        if args.loadBestModelAtEnd, let best = state.bestModelCheckpoint {
            try engine.loadCheckpoint(best, loadModuleOnly: true)
            if group.rank == 0 { logger.info("loaded the best model from \(best) (\(args.metricForBestModel ?? "loss") \(state.bestMetric ?? .nan))") }
        }
        let seconds = Date().timeIntervalSince(started)
        let ran = state.globalStep - startStep
        let samples = Double(ran * args.perDeviceTrainBatchSize * gas * dataParallelSize)
        let metrics: [String: Double] = [
            "train_runtime": seconds, "train_samples_per_second": samples / Swift.max(seconds, 1e-9),
            "train_steps_per_second": Double(ran) / Swift.max(seconds, 1e-9),
            "train_loss": ran > 0 ? totalLoss / Double(ran) : 0, "total_flos": 0,
        ]
        try log(metrics, control: &control)
        for c in callbacks { c.onTrainEnd(arguments: args, state: state, control: &control) }
        for m in monitors { m.flush() }
        return TrainOutput(globalStep: state.globalStep, trainingLoss: metrics["train_loss"]!,
                           metrics: metrics.merging(["epoch": state.epoch]) { $1 })
    }

    /// transformers' `num_items_in_batch`: the label tokens (not -100) of a step's micro-batches, summed over the ranks
    /// (`average_tokens_across_devices`; a collective when W > 1) and divided by the tensor-parallel ranks that share
    /// each batch, as transformers does.
    func globalLabelTokens(_ batches: [CollatedBatch]) throws -> Double {
        let mine = batches.reduce(0.0) { n, batch in
            guard let labels = ModuleInputs(batch).labels else { return n }
            return n + Double(labels.cast(to: .float64).scalars(as: Double.self).filter { $0 != -100 }.count)
        }
        guard group.size > 1 else { return mine }
        let t = Tensor([mine], shape: [1], dtype: .float64)
        try group.allReduce(t, op: .sum)
        return t.item() / Double(tensorParallelSize)
    }

    /// The label tokens a causal LM's loss averages over: `labels [B, T]` shifted by one (`labels[:, 1:]`), not -100.
    static func shiftedLabelTokens(_ labels: Tensor) -> Double {
        let values = labels.cast(to: .float64).scalars(as: Double.self)
        let t = labels.shape.last ?? 0
        guard t > 1 else { return 0 }
        return Double(values.indices.filter { $0 % t != 0 && values[$0] != -100 }.count)
    }

    /// Adds `epoch` and `step` to `values`, appends it to the log history, and hands it to the monitors, `onLog` and
    /// the callbacks (transformers' `Trainer.log`).
    func log(_ values: [String: Double], control: inout TrainerControl) throws {
        var entry = values.mapValues { JSONValue.double($0) }
        entry["epoch"] = .double(state.epoch)
        entry["step"] = .int(state.globalStep)
        state.logHistory.append(entry)
        if group.rank == 0 {
            onLog?(entry)
            let events = values.filter { $0.value.isFinite }.sorted { $0.key < $1.key }.map { key, value in
                MonitorEvent(tag: key.hasPrefix("eval_") ? "eval/\(key.dropFirst(5))" : "train/\(key)", value: value,
                             step: state.globalStep)
            }
            for m in monitors { m.write(events) }
        }
        for c in callbacks { c.onLog(values, arguments: arguments, state: state, control: &control) }
    }

    /// The monitors `report_to` asks for: TensorBoard events under `output_dir/runs`, CSV files under `output_dir/csv`.
    func makeMonitors() throws -> [any Monitor] {
        try arguments.reportTo.compactMap { name -> (any Monitor)? in
            switch name {
            case "tensorboard": return try TensorBoardMonitor(outputPath: arguments.outputDir, jobName: "runs", logger: logger)
            case "csv": return try CSVMonitor(outputPath: arguments.outputDir, jobName: "csv", logger: logger)
            default:
                logger.warning("report_to \"\(name)\": not available in SwiftSpeed (tensorboard, csv); ignored")
                return nil
            }
        }
    }
}
