// `swiftspeed train --pipeline-stages N`: the GPT models and Hugging Face causal-LM folders (HFPipe) through
// SpeedPipeline's PipelineEngine over the job's ranks.
// Invariant: data rank d of W asks for micro-batch (s·GAS + m)·W + d at step s, micro-step m — the TrainingLoop rule
// with the data-parallel size (ranks ÷ (stages · autotp_size)) as the world — so the global batch, and rank 0's JSON
// lines, equal one process's.

import ArgumentParser
import Foundation
import Logging
import SwiftSpeed

extension Train {
    /// The stage count from `--pipeline-stages`, else the config's integer `pipeline.stages` when above 1; nil
    /// means no pipeline.
    func pipelineStageCount() throws -> Int? {
        if let pipelineStages { return pipelineStages }
        guard GPTConfig.preset(model) != nil || PretrainedJob.isFolder(model),
              case .object(let members) = try JSONValue.parse(String(contentsOfFile: config, encoding: .utf8)),
              case .object(let pipeline)? = members["pipeline"], let n = pipeline["stages"]?.intValue, n > 1 else { return nil }
        return n
    }

    /// Trains `model` as a `stages`-stage pipeline; rank 0 prints the step records.
    func trainPipeline(_ group: any ProcessGroup, stages: Int, device: Device, logger: Logger) throws {
        let (rank, world) = (group.rank, group.size)
        guard world % stages == 0 else {
            printError("--pipeline-stages \(stages) does not divide the \(world) ranks of the job; launch a multiple of \(stages) processes")
            throw ExitCode(2)
        }
        let ds: DeepSpeedConfig
        do { ds = try DeepSpeedConfig.load(path: config, processes: world, pipelineStages: stages) } catch {
            printError(world > 1 ? "rank \(rank): \(error)" : "\(error)")
            throw ExitCode(1)
        }
        // DeepSpeed's config default "best" is not a PipelineModule method; PipelineModule's own default is "parameters".
        let method = ds.pipeline.partition == "best" ? "parameters" : ds.pipeline.partition
        let interval = checkpointActivations ? 1 : ds.pipeline.activationCheckpointInterval
        let engine: PipelineEngine
        // Micro-batch `index` of the global order, and the tokens per sample for the throughput figure.
        let batch: (Int) -> MicroBatch
        let tokensPerSample: Int
        do {
            let module: PipelineModule
            if PretrainedJob.isFolder(model) {
                let job = try pretrainedPipelineJob(microBatch: ds.trainMicroBatchSizePerGPU, device: device)
                module = try HFPipe.module(folder: job.folder, numStages: stages, partitionMethod: method,
                                           activationCheckpointInterval: interval, device: device)
                // Right-padded rows need no mask here: causal attention never looks ahead to the padding, whose
                // labels are -100 — the losses equal the masked model's.
                batch = { index in
                    let inputs = job.batch(index: index)
                    return MicroBatch(input: inputs["input_ids"]!, target: inputs["labels"]!)
                }
                tokensPerSample = 0
            } else {
                let job = try TrainingJob(model: model, dataPath: data, seed: seed, microBatch: ds.trainMicroBatchSizePerGPU,
                                          buildModel: false, device: device)
                module = try GPTPipe.module(job.gptConfig!, seed: seed, numStages: stages, partitionMethod: method,
                                            activationCheckpointInterval: interval, device: device)
                batch = { index in
                    let (x, y) = job.batch(index: index)
                    return MicroBatch(input: x, target: y)
                }
                tokensPerSample = job.tokensPerSample
            }
            engine = try PipelineEngine(module: module, config: ds, world: group, logger: logger)
            // A folder's layers are built with fixed streams: seed this stage's dropouts from --seed and the stage.
            if PretrainedJob.isFolder(model) { engine.stage.seedDropout(seed &+ UInt64(engine.stageID)) }
        } catch let error as PipelineError {
            printError("\(error)")
            throw ExitCode(1)
        }
        // Every tensor-parallel rank of a stage reads its data-parallel rank's batch.
        let dataRank = engine.grid.dataParallelID, dp = engine.grid.dataParallelSize
        let paramsTotal = engine.module.parameterCount
        var progress: ProgressBar?
        device.backend.resetPeakMemory()
        do {
            // A checkpoint of another stage count loads its weights only (DeepSpeed's load_module_only).
            if resume, let dir = saveDir, let path = try engine.loadCheckpoint(dir, verify: !noVerifyCheckpoint) {
                logger.info("resumed from \(path) at step \(engine.globalSteps)")
            }
            while engine.globalSteps < steps {
                let start = now()
                let step = engine.globalSteps, gas = engine.microBatches
                var micro = 0
                let loss = try engine.trainBatch {
                    defer { micro += 1 }
                    return batch((step * gas + micro) * dp + dataRank)
                }
                let samplesPerS = Double(ds.trainBatchSize) / (now() - start)
                let memory = engine.memoryBytes
                let record = StepRecord(step: engine.globalSteps, loss: loss, lr: engine.engine.getLR()[0],
                                        lossScale: engine.engine.lossScale, gradNorm: engine.globalGradNorm,
                                        samplesPerS: samplesPerS, tokensPerS: samplesPerS * Double(tokensPerSample),
                                        memParams: memory.params, memGrads: memory.grads, memOptim: memory.optimizer,
                                        memOffload: memory.offloaded, peakMem: device.backend.memoryStats.peakAllocatedBytes,
                                        paramsTotal: paramsTotal, skippedSteps: engine.engine.skippedSteps,
                                        consecutiveSkippedSteps: engine.engine.consecutiveSkippedSteps)
                if let dir = saveDir, let every = saveEvery, engine.globalSteps % every == 0 { try engine.saveCheckpoint(dir) }
                guard rank == 0 else { continue }
                if json { print(record.json); continue }
                if progress == nil { progress = ProgressBar(total: steps, start: record.step - 1) }
                progress?.update(record.step, record.summary)
            }
            if let dir = saveDir { try engine.saveCheckpoint(dir) }
            if let out = savePretrained { try savePipelinePretrained(engine, group: group, to: out) }
        } catch {
            // A neighbour is gone or stuck (PipelineError names it): end every rank rather than leave them waiting.
            printError("rank \(rank): \(error)")
            group.abort(code: 3)
        }
        progress?.finish()
    }

    /// `--save-pretrained OUT` of a pipeline: each stage holds only its layers, so the stages save a checkpoint
    /// (--save-dir's, else a scratch one inside OUT, shared as checkpoints are) and rank 0 joins its fp32 masters into
    /// OUT as `zero-to-fp32` does — a folder `from_pretrained` loads.
    func savePipelinePretrained(_ engine: PipelineEngine, group: any ProcessGroup, to out: String) throws {
        let scratch = saveDir == nil ? URL(fileURLWithPath: out).appendingPathComponent(".pipeline-checkpoint").path : nil
        if let scratch {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            try engine.saveCheckpoint(scratch)
        }
        try group.barrier()   // every stage's files are written before rank 0 reads them
        if group.rank == 0 {
            let summary = try ZeroToFP32.writePipelineWeights(checkpointDir: scratch ?? saveDir!, tag: nil, outputDir: out,
                                                              verify: true)
            if let scratch { try? FileManager.default.removeItem(atPath: scratch) }
            FileHandle.standardError.write(Data("\(summary)\n".utf8))
        }
        try group.barrier()
    }

    /// The JSONL rows of a Hugging Face causal-LM folder, without loading its weights (each stage reads its own).
    func pretrainedPipelineJob(microBatch: Int, device: Device) throws -> PretrainedJob {
        let architecture = try PretrainedFolder(URL(fileURLWithPath: model)).architectures.first ?? "(no architectures)"
        guard PretrainedJob.task(ofArchitecture: architecture) == .causalLM else {
            throw PipelineError.configuration("--pipeline-stages: \(model) holds a \(architecture); pipelines of Hugging Face folders train causal LMs (GPT-2, Llama, Mistral, Qwen2) — drop --pipeline-stages")
        }
        return try PretrainedJob(dir: model, dataPath: data!, microBatch: microBatch, shuffle: !noShuffle, seed: seed,
                                 device: device, loadModel: false)
    }
}
