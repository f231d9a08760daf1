// The Trainer on 2 in-process ranks (LocalProcessGroup) at ZeRO-3 with the optimizer offloaded: the distributed sampler
// gives every rank a disjoint half of each global batch (the losses of 2 ranks × B are 1 process × 2B's), and
// evaluation is sharded (rank r runs eval batches r, r+2, …; the short rank reruns batch 0) and gathered (1 process's
// metrics). Invariant: dropout is off in the copied model, so one process and two ranks compute the same function.
import Foundation
import SpeedComm
import SpeedData
import SpeedRuntime
import SpeedTrainer
import SpeedTransformers
import Testing

/// Pads like `DataCollatorWithPadding` and records each batch's rows (their input_ids, as text).
final class RecordingCollator: DataCollator, @unchecked Sendable {
    let inner = DataCollatorWithPadding(padTokenId: 0)
    private let lock = NSLock()
    private var seen: [[String]] = []
    var batches: [[String]] { lock.withLock { seen } }

    func collate(_ rows: [DataRow], step: Int) throws -> CollatedBatch {
        lock.withLock { seen.append(rows.map { "\($0["input_ids"].map { "\($0)" } ?? "-")" }) }
        return try inner.collate(rows, step: step)
    }
}

@Suite(.serialized) struct TrainerDistributedTests {
    /// tiny-bert-cls with dropout 0, in a scratch folder.
    static func modelFolder() throws -> URL {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ss-trainer-nodrop-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: TrainerLoopTests.model, to: out)
        let file = out.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        config["hidden_dropout_prob"] = 0.0
        config["attention_probs_dropout_prob"] = 0.0
        try JSONSerialization.data(withJSONObject: config).write(to: file)
        return out
    }

    struct Run {
        var evalBatches: [[String]]; var before: [String: Double]; var metrics: [String: Double]; var losses: [Double]
        /// The ranks the model was sharded over (1: whole).
        var tensorParallel = 1
    }

    static let zero3Offload = #"{"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0, "offload_optimizer": {"device": "cpu"}}}"#

    func run(_ folder: URL, batch: Int, group: (any ProcessGroup)?, ds: String = zero3Offload, save: URL? = nil) throws -> Run {
        let args = try TrainingArguments.parse(arguments: [
            "--output_dir", folder.appendingPathComponent("out").path, "--per_device_train_batch_size", "\(batch)",
            "--per_device_eval_batch_size", "3", "--learning_rate", "1e-2", "--max_steps", "6", "--logging_steps", "1",
            "--save_strategy", "no", "--warmup_steps", "1", "--seed", "7", "--deepspeed", ds,
        ])
        let (model, _, _) = try AutoModelForSequenceClassification.fromPretrained(folder, numLabels: 3, seed: 7)
        let collator = RecordingCollator()
        let data = try TrainerLoopTests.rows()
        let trainer = try Trainer(model: model, arguments: args, trainDataset: data, evalDataset: data.select(0..<13),
                                  dataCollator: collator, computeMetrics: Metrics.classification(average: .macro),
                                  processGroup: group)
        let before = try trainer.evaluate()   // before training: the only collations so far are the evaluation's
        let evalBatches = collator.batches
        try trainer.train()
        let metrics = try trainer.evaluate()
        if let save { try trainer.saveModel(to: save) }
        let losses = trainer.state.logHistory.compactMap { e -> Double? in
            if case .double(let l)? = e["loss"] { return l }
            return nil
        }
        return Run(evalBatches: evalBatches, before: before, metrics: metrics, losses: losses,
                   tensorParallel: model.tensorParallelCommunicator()?.size ?? 1)
    }

    @Test func twoRanksAtZeRO3WithOffloadMatchOneProcessAndShardTheEvaluation() throws {
        let folder = try Self.modelFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let one = try run(folder, batch: 4, group: nil)
        let ranks = try LocalProcessGroup.run(size: 2, timeout: 120) { group in try run(folder, batch: 2, group: group) }
        #expect(one.losses.count == 6)
        // 13 eval rows in batches of 3: 5 batches; rank 0 runs 0, 2, 4, rank 1 runs 1, 3 and reruns 0 (dropped).
        let b = one.evalBatches
        #expect(b.count == 5 && b.map(\.count) == [3, 3, 3, 3, 1])
        #expect(ranks[0].evalBatches == [b[0], b[2], b[4]])
        #expect(ranks[1].evalBatches == [b[1], b[3], b[0]])
        for (r, got) in ranks.enumerated() {
            #expect(got.losses.count == 6)
            for (x, y) in zip(one.losses, got.losses) {
                #expect(abs(x - y) <= 1e-5 * abs(x), "rank \(r): losses \(got.losses) vs 1 process \(one.losses)")
            }
            for key in ["eval_loss", "eval_accuracy", "eval_f1", "eval_precision", "eval_recall"] {
                let (x, y) = (try #require(one.metrics[key]), try #require(got.metrics[key]))
                #expect(abs(x - y) <= 1e-6 * Swift.max(abs(x), 1e-3), "rank \(r) \(key): \(y) vs 1 process \(x)")
            }
        }
        // Training moved the model: the evaluation is of a trained model, not the initial one.
        #expect(one.metrics["eval_loss"]! < one.before["eval_loss"]!, "eval_loss \(one.before["eval_loss"]!) → \(one.metrics["eval_loss"]!)")
    }

    /// DeepSpeed AutoTP under the Trainer, as transformers runs it: TP 2 on 2 ranks and TP 2 × DP 2 on 4, at ZeRO 1
    /// with clipping. The tensor-parallel ranks of a data-parallel rank read the same batches, so the losses and the
    /// (sharded, gathered) evaluation equal one process's over the same global batch, and save_model writes one
    /// process's folder (the shards gathered).
    @Test(arguments: [(2, 4), (4, 2)]) func tensorParallelRanksMatchOneProcess(ranks: Int, batch: Int) throws {
        let folder = try Self.modelFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let ds = #"{"train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto", "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": 1}, "tensor_parallel": {"autotp_size": 2}}"#
        let plain = ds.replacingOccurrences(of: #", "tensor_parallel": {"autotp_size": 2}"#, with: "")
        let oneOut = folder.appendingPathComponent("saved-one"), tpOut = folder.appendingPathComponent("saved-tp")
        let one = try run(folder, batch: 4, group: nil, ds: plain, save: oneOut)
        let runs = try LocalProcessGroup.run(size: ranks, timeout: 180) { group in
            try run(folder, batch: batch, group: group, ds: ds, save: tpOut)
        }
        #expect(one.losses.count == 6)
        for (r, got) in runs.enumerated() {
            #expect(got.losses.count == 6)
            for (x, y) in zip(one.losses, got.losses) {
                #expect(abs(x - y) <= 1e-5 * abs(x), "\(ranks) ranks, rank \(r): losses \(got.losses) vs 1 process \(one.losses)")
            }
            for key in ["eval_loss", "eval_accuracy", "eval_f1"] {
                let (x, y) = (try #require(one.metrics[key]), try #require(got.metrics[key]))
                #expect(abs(x - y) <= 1e-5 * Swift.max(abs(x), 1e-3), "\(ranks) ranks, rank \(r) \(key): \(y) vs 1 process \(x)")
            }
        }
        // A tensor-parallel rank pair evaluates each batch together: rank 1 sees rank 0's batches.
        #expect(runs[1].evalBatches == runs[0].evalBatches)
        #expect(runs.allSatisfy { $0.tensorParallel == 2 } && one.tensorParallel == 1)
        let (a, _, _) = try AutoModelForSequenceClassification.fromPretrained(oneOut)
        let (b, _, _) = try AutoModelForSequenceClassification.fromPretrained(tpOut)
        let (wa, wb) = (a.stateDict(), b.stateDict())
        #expect(Set(wa.keys) == Set(wb.keys))
        for (name, w) in wa {
            let diff = zip(w.scalars, wb[name]?.scalars ?? []).map { abs($0 - $1) }.max() ?? .nan
            #expect(wb[name]?.shape == w.shape && diff <= 1e-5, "\(name): the TP run saved \(wb[name]?.shape ?? []) differing by \(diff)")
        }
    }

    /// A tensor-parallel Trainer run's `checkpoint-N` (one DeepSpeed shard set per TP rank, the gathered model folder)
    /// resumes exactly: 2 ranks at TP 2, checkpoint-3 of a 6-step run, then 3 more steps.
    @Test func tensorParallelCheckpointsResumeExactly() throws {
        let folder = try Self.modelFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let ds = #"{"train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto", "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": 1}, "tensor_parallel": {"autotp_size": 2}}"#
        func run(_ out: URL, resume: String?) throws -> [[Double]] {
            try LocalProcessGroup.run(size: 2, timeout: 180) { group in
                let args = try TrainingArguments.parse(arguments: [
                    "--output_dir", out.path, "--per_device_train_batch_size", "4", "--learning_rate", "1e-2",
                    "--max_steps", "6", "--logging_steps", "1", "--save_steps", "3", "--warmup_steps", "1", "--seed", "7",
                    "--deepspeed", ds,
                ])
                let (model, _, _) = try AutoModelForSequenceClassification.fromPretrained(folder, numLabels: 3, seed: 7)
                let trainer = try Trainer(model: model, arguments: args, trainDataset: try TrainerLoopTests.rows(),
                                          dataCollator: DataCollatorWithPadding(padTokenId: 0), processGroup: group)
                try trainer.train(resumeFromCheckpoint: resume)
                return trainer.state.logHistory.compactMap { e -> Double? in
                    if case .double(let l)? = e["loss"] { return l }
                    return nil
                }
            }
        }
        let full = folder.appendingPathComponent("full"), part = folder.appendingPathComponent("part")
        let uninterrupted = try run(full, resume: nil)
        let three = full.appendingPathComponent("checkpoint-3")
        #expect(FileManager.default.fileExists(atPath: three.appendingPathComponent("model.safetensors").path))
        let resumed = try run(part, resume: three.path)
        for r in 0..<2 {
            #expect(uninterrupted[r].count == 6 && resumed[r].count == 6, "rank \(r): \(uninterrupted[r]) / \(resumed[r])")
            for step in 3..<6 {
                #expect(abs(uninterrupted[r][step] - resumed[r][step]) <= 1e-7 * abs(uninterrupted[r][step]),
                        "rank \(r) step \(step + 1): \(uninterrupted[r][step]) vs resumed \(resumed[r][step])")
            }
        }
    }
}
