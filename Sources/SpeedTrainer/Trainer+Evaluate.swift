// evaluate() and predict(): the eval set in order, batched by per_device_eval_batch_size, loss and compute_metrics;
// under W ranks batch b is evaluated by rank b mod W and the results are gathered back into batch order.
// Invariant: every rank runs the same number of forward passes (a rank without a batch in the last round reruns batch
// 0 and drops it, so ZeRO-3's gathers line up), and metrics are computed on the gathered set, so they equal one
// process's; the model is in eval mode (no dropout) and no graph is recorded.

import Foundation
import SpeedCore
import SpeedData
import SpeedNN
import SpeedRuntime
import SpeedTransformers

/// What `predict()` returns (transformers' `PredictionOutput`).
public struct PredictionOutput: Sendable {
    /// Row-major logits `[N, C]` (or values `[N]`), nil when the model returns none of that shape.
    public var predictions: [Double]?
    public var predictionShape: [Int]
    public var labelIds: [Double]?
    /// `<prefix>_loss`, `<prefix>_<metric>`, runtime and throughput.
    public var metrics: [String: Double]
}

extension Trainer {
    /// Evaluates `dataset` (default: the eval dataset): `eval_loss`, the `computeMetrics` values prefixed `eval_`,
    /// `eval_runtime`, `eval_samples_per_second`, `eval_steps_per_second`; logged and handed to the callbacks.
    ///
    /// ```swift
    /// let metrics = try trainer.evaluate()
    /// print(metrics["eval_accuracy"]!)
    /// ```
    @discardableResult
    public func evaluate(_ dataset: DatasetTable? = nil, metricKeyPrefix: String = "eval") throws -> [String: Double] {
        var control = TrainerControl()
        return try evaluate(dataset, metricKeyPrefix: metricKeyPrefix, control: &control)
    }

    func evaluate(_ dataset: DatasetTable?, metricKeyPrefix: String, control: inout TrainerControl) throws
        -> [String: Double]
    {
        guard let table = dataset ?? evalDataset else {
            throw TrainerError("evaluate(): no dataset given and the Trainer has no evalDataset")
        }
        let output = try predictionLoop(table, prefix: metricKeyPrefix)
        try log(output.metrics, control: &control)
        for c in callbacks { c.onEvaluate(output.metrics, arguments: arguments, state: state, control: &control) }
        return output.metrics
    }

    /// Predictions for `dataset` with metrics prefixed `test_` (when it has labels).
    public func predict(_ dataset: DatasetTable, metricKeyPrefix: String = "test") throws -> PredictionOutput {
        try predictionLoop(dataset, prefix: metricKeyPrefix, keepPredictions: true)
    }

    /// Runs the model over `table` in order; the loss is the batch-size-weighted mean (transformers' eval_loss). Under
    /// W ranks each evaluates every W-th batch and the per-batch results are gathered (accelerate's
    /// `gather_for_metrics`), so every rank returns the whole set's predictions and metrics.
    func predictionLoop(_ table: DatasetTable, prefix: String, keepPredictions: Bool = false) throws -> PredictionOutput {
        let table = try prepared(table, what: "\(prefix)_dataset")
        let engine = try self.engine ?? trainDataset.map { try makeEngine(trainRows: $0.count) }
        let started = Date()
        let wasTraining = model.isTraining
        engine?.eval() ?? model.eval()
        defer { if wasTraining { engine?.train() ?? model.train() } }
        let batchSize = arguments.perDeviceEvalBatchSize
        if batchSize > 1, let refusal = (model as? any SequenceClassifier)?.batchRefusal {
            throw TrainerError("\(refusal) — or set per_device_eval_batch_size 1")
        }
        // Batches are dealt to the data-parallel ranks; every tensor-parallel rank of one runs its batches together.
        let world = dataParallelSize, rank = dataParallelRank
        let batchCount = (table.count + batchSize - 1) / batchSize
        let rounds = (batchCount + world - 1) / world
        var mine: [EvalBatchResult] = []
        var collect = keepPredictions || computeMetrics != nil
        try noGrad {
            for round in 0..<rounds {
                let b = round * world + rank
                let owned = b < batchCount
                let start = (owned ? b : 0) * batchSize
                let rows = Array(start..<Swift.min(start + batchSize, table.count))
                let batch = try dataCollator.collate(table, indices: rows)
                let inputs = ModuleInputs(batch)
                let out = engine.map { $0(inputs) } ?? model(inputs)
                guard owned else { continue }   // the padding pass of the last round
                var result = EvalBatchResult(loss: out.loss?.item())
                if collect, let logits = out.logits {
                    if logits.rank <= 2 {
                        result.predictions = logits.cast(to: .float64).scalars(as: Double.self)
                        result.columns = logits.rank == 2 ? logits.shape[1] : 0
                        if let y = inputs.labels { result.labels = y.cast(to: .float64).scalars(as: Double.self) }
                    } else {
                        collect = false   // e.g. LM logits [B, T, V]: no predictions kept
                    }
                }
                mine.append(result)
            }
        }
        let results = world > 1 ? try gatherInBatchOrder(mine, batchCount: batchCount) : mine
        collect = collect && results.allSatisfy { $0.columns != nil }
        var lossSum = 0.0, lossRows = 0
        var predictions: [Double] = [], labels: [Double] = [], rowsSeen = 0, columns = 0
        for (b, r) in results.enumerated() {
            let rows = Swift.min(batchSize, table.count - b * batchSize)
            if let loss = r.loss {
                lossSum += loss * Double(rows)
                lossRows += rows
            }
            if collect {
                predictions += r.predictions
                labels += r.labels
                columns = r.columns ?? 0
                rowsSeen += rows
            }
        }
        let shape = collect && rowsSeen > 0 ? (columns > 0 ? [rowsSeen, columns] : [rowsSeen]) : []
        let seconds = Date().timeIntervalSince(started)
        var metrics: [String: Double] = [:]
        if lossRows > 0 { metrics["\(prefix)_loss"] = lossSum / Double(lossRows) }
        let havePredictions = !shape.isEmpty
        if havePredictions, let computeMetrics, labels.count == shape[0] {
            let p = shape.count == 2 ? EvalPrediction(logits: (0..<shape[0]).map { Array(predictions[($0 * shape[1])..<(($0 + 1) * shape[1])]) },
                                                      labelIds: labels.map { Int($0) })
                : EvalPrediction(values: predictions, labels: labels)
            for (k, v) in computeMetrics(p) { metrics["\(prefix)_\(k)"] = v }
        }
        metrics["\(prefix)_runtime"] = seconds
        metrics["\(prefix)_samples_per_second"] = Double(table.count) / Swift.max(seconds, 1e-9)
        metrics["\(prefix)_steps_per_second"] = Double(batchCount) / Swift.max(seconds, 1e-9)
        return PredictionOutput(predictions: havePredictions ? predictions : nil, predictionShape: shape,
                                labelIds: labels.isEmpty ? nil : labels, metrics: metrics)
    }

    /// An evaluation the strategy asked for: evaluate, then track the best `metric_for_best_model`.
    func evaluateDuringTraining(control: inout TrainerControl) throws {
        guard evalDataset != nil else { return }
        let metrics = try evaluate(nil, metricKeyPrefix: "eval", control: &control)
        guard arguments.loadBestModelAtEnd || arguments.metricForBestModel != nil else { return }
        let name = Self.metricKey(arguments.metricForBestModel ?? "loss")
        guard let value = metrics[name] else {
            throw TrainerError("metric_for_best_model \"\(arguments.metricForBestModel ?? "loss")\": the evaluation has no \(name) (it has \(metrics.keys.sorted().joined(separator: ", ")))")
        }
        let greater = arguments.greaterIsBetter ?? !name.hasSuffix("loss")
        if state.bestMetric.map({ greater ? value > $0 : value < $0 }) ?? true {
            state.bestMetric = value
            state.bestGlobalStep = state.globalStep
            pendingBest = true
        }
    }
}
