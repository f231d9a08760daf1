// `swiftspeed train`: DeepSpeed-style training of a reference model from a ds_config.json.
// Invariant: the batch for optimizer step s and micro-step m depends only on (seed, s, m), so a run
// resumed from a checkpoint at step k replays exactly the batches of an uninterrupted run.

import ArgumentParser
import Foundation
import Logging
import SwiftSpeed

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train simple | gpt-mini | gpt2-small with a DeepSpeed config.",
        discussion: """
            Text data is tokenised byte by byte (vocabulary 256). Without --data, use --synthetic \
            for random tokens (GPT) or random vectors (simple).
            """)

    @Option(help: "simple | gpt-mini | gpt2-small, or a Hugging Face model folder (config.json + safetensors).")
    var model: String = "gpt-mini"
    @Option(help: "Path to ds_config.json.") var config: String
    @Option(help: "A UTF-8 text file to train on (e.g. \(TextCorpus.fortunesPath)).") var data: String?
    @Flag(help: "Train on random data instead of --data.") var synthetic = false
    @Option(parsing: .unconditional, help: "Optimizer steps in total (a resumed run continues up to this).") var steps: Int = 20
    @Option(parsing: .unconditional, help: "Seed for weights, data order and dropout.") var seed: UInt64 = 1234
    @Option(help: "Checkpoint directory: saved at the end (and every --save-every steps).") var saveDir: String?
    @Option(parsing: .unconditional, help: "Save a checkpoint every N optimizer steps (needs --save-dir).") var saveEvery: Int?
    @Flag(help: "Continue from the latest checkpoint in --save-dir.") var resume = false
    @Flag(help: "With --resume: skip checking the checkpoint's CRC-32C checksums (faster; corruption goes unnoticed).")
    var noVerifyCheckpoint = false
    @Option(parsing: .unconditional, help: "Worker threads (default: all cores).") var threads: Int?
    @Option(help: "cpu, cuda or cuda:N (under a launcher, cuda means each rank's local GPU).") var device: String = "cpu"
    @Option(parsing: .unconditional, help: "Characters of text to generate at the end (text data only).") var sample: Int = 200
    @Flag(help: "Print one JSON line per optimizer step.") var json = false
    @Flag(help: "Hugging Face folders: take the JSONL rows in file order (default: a seeded shuffle per epoch).")
    var noShuffle = false
    @Option(help: ArgumentHelp("Hugging Face folders: write the trained model there as a Hugging Face folder.", valueName: "dir"))
    var savePretrained: String?
    @Option(help: ArgumentHelp("Seconds a collective waits for the other ranks before the job ends with an error naming them (default: $SWIFTSPEED_COMM_TIMEOUT, DeepSpeed's $DEEPSPEED_TIMEOUT in minutes, the config's comm_timeout, else 1800).", valueName: "seconds"))
    var commTimeout: Double?
    @Flag(help: "GPT models: checkpoint every transformer block (recompute activations in backward).")
    var checkpointActivations = false
    @Option(parsing: .unconditional, help: ArgumentHelp("GPT models and Hugging Face causal-LM folders: pipeline-parallel stages (DeepSpeed's PipelineModule num_stages); the ranks form stages × data-parallel ranks, and the config's batch sizes are for the data-parallel size. Default: the config's pipeline.stages, else no pipeline.", valueName: "N"))
    var pipelineStages: Int?

    func validate() throws {
        if data == nil && !synthetic { throw ValidationError("pass --data PATH or --synthetic") }
        if data != nil && synthetic { throw ValidationError("--data and --synthetic are mutually exclusive") }
        if resume && saveDir == nil { throw ValidationError("--resume needs --save-dir") }
        if noVerifyCheckpoint && !resume { throw ValidationError("--no-verify-checkpoint applies to --resume") }
        if saveEvery != nil && saveDir == nil { throw ValidationError("--save-every needs --save-dir") }
        if let saveEvery, saveEvery < 1 { throw ValidationError("--save-every must be >= 1 (got \(saveEvery))") }
        if saveDir?.isEmpty == true { throw ValidationError("--save-dir is empty; give a directory (e.g. --save-dir checkpoints)") }
        if steps < 0 { throw ValidationError("--steps must be >= 0 (got \(steps))") }
        if let threads, threads < 1 { throw ValidationError("--threads must be >= 1 (got \(threads))") }
        if let commTimeout, !(commTimeout > 0) { throw ValidationError("--comm-timeout must be > 0 seconds (got \(commTimeout))") }
        let pretrained = PretrainedJob.isFolder(model)
        if model != "simple" && GPTConfig.preset(model) == nil && !pretrained {
            throw ValidationError("unknown model '\(model)'; use simple, gpt-mini, gpt2-small or a Hugging Face model folder (with config.json)")
        }
        if pretrained && data == nil { throw ValidationError("a Hugging Face folder trains on --data FILE.jsonl rows") }
        if !pretrained && (noShuffle || savePretrained != nil) {
            throw ValidationError("--no-shuffle and --save-pretrained apply to Hugging Face model folders")
        }
        if model == "simple" && data != nil { throw ValidationError("--model simple trains on --synthetic data only") }
        if let pipelineStages {
            if pipelineStages < 1 { throw ValidationError("--pipeline-stages must be >= 1 (got \(pipelineStages))") }
            if GPTConfig.preset(model) == nil && !pretrained {
                throw ValidationError("--pipeline-stages applies to the GPT models (gpt-mini, gpt2-small) and Hugging Face causal-LM folders, not '\(model)'")
            }
        }
        if model == "simple" && checkpointActivations {
            throw ValidationError("--checkpoint-activations applies to the GPT models, not --model simple")
        }
    }

    func run() throws {
        var logger = Logger(label: "swiftspeed")
        logger.logLevel = json ? .warning : .info
        // Under a launcher every rank runs this: rank 0 prints, every rank saves its own checkpoint shard.
        let timeout: Double
        do { timeout = try ProcessGroups.timeout(flag: commTimeout, config: try DeepSpeedConfig.commTimeout(path: config)) } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        var group = try ProcessGroups.fromEnvironment(timeout: timeout)
        let device: Device
        do { device = try trainingDevice(rank: group.rank) } catch {
            printError("train: \(error)")
            throw ExitCode(2)
        }
        // GPUs across processes talk through NCCL; without it, MPI stages through host memory.
        do { group = try ProcessGroups.accelerated(group, for: device) } catch {
            logger.warning("NCCL unavailable (\(error)); collectives go through MPI with host staging")
        }
        let (rank, world) = (group.rank, group.size)
        if rank != 0 { logger.logLevel = .error }
        if let stages = try pipelineStageCount() {
            try trainPipeline(group, stages: stages, device: device, logger: logger)
            try group.barrier()
            group.finalize()
            return
        }
        let ds: DeepSpeedConfig
        // The batch rule's world is the data-parallel size: the ranks over tensor_parallel.autotp_size.
        do { ds = try DeepSpeedConfig.load(path: config, processes: world) } catch {
            // Every failing rank says so: the file may be missing or different on one machine only.
            printError(world > 1 ? "rank \(rank): \(error)" : "\(error)")
            throw ExitCode(1)
        }
        if PretrainedJob.isFolder(model) {
            let job = try PretrainedJob(dir: model, dataPath: data!, microBatch: ds.trainMicroBatchSizePerGPU,
                                        shuffle: !noShuffle, seed: seed, device: device)
            let module = job.model!   // loaded: loadModel defaults to true
            module.seedDropout(seed)
            if checkpointActivations {   // HF's gradient_checkpointing: every block recomputed in backward
                for (_, m) in module.namedModules() {
                    if let c = m as? any ActivationCheckpointable { c.activationCheckpointing.enabled = true }
                }
            }
            let (engine, _, _, _) = try SwiftSpeed.initialize(model: module, config: ds, processGroup: group, logger: logger)
            engine.modelOrigin = (job.folder.path, String(decoding: try PretrainedFolder(job.folder).configData, as: UTF8.self))
            engine.train()   // fromPretrained leaves eval mode, as from_pretrained does; training applies the dropouts
            try train(engine, group, tokensPerSample: 0, batch: job.batch(index:)) { engine($0).loss! }
            if let out = savePretrained {
                try engine.withGatheredParameters { try job.savePretrained(out, writer: rank == 0) }
            }
        } else {
            let job = try TrainingJob(model: model, dataPath: data, seed: seed, microBatch: ds.trainMicroBatchSizePerGPU,
                                      checkpointActivations: checkpointActivations, device: device)
            let (engine, _, _, _) = try SwiftSpeed.initialize(model: job.module!, config: ds, processGroup: group, logger: logger)
            // Sharded, the built-in GPT's loss is the vocab-parallel cross-entropy (the full logits are never gathered).
            let sharded = engine.parallelGroups == nil ? nil : job.module as? GPT
            try train(engine, group, tokensPerSample: job.tokensPerSample, batch: job.batch(index:)) { batch in
                if let sharded { return sharded.loss(batch.0, targets: batch.1) }
                return job.loss(engine(batch.0), batch.1)
            }
            // A sharded model's forward is collective: every rank of a tensor-parallel group generates, rank 0 prints.
            if !json, rank == 0 || sharded != nil, let text = job.generate(characters: sample, seed: seed), rank == 0 {
                print("\n--- sample ---\n\(text)\n--------------")
            }
        }
        try group.barrier()
        group.finalize()
    }
}

extension Train {
    /// The shared loop with this command's output: a progress bar, or one JSON line per step on rank 0. A failed
    /// collective ends every rank.
    func train<Batch>(_ engine: Engine, _ group: any ProcessGroup, tokensPerSample: Int, batch: (Int) throws -> Batch,
                      loss: (Batch) throws -> Tensor) throws {
        var progress: ProgressBar?   // made at the first step, after a resume moved the start
        let loop = TrainingLoop(steps: steps, saveDir: saveDir, saveEvery: saveEvery, resume: resume,
                                tokensPerSample: tokensPerSample, verifyCheckpoint: !noVerifyCheckpoint)
        do {
            try loop.run(engine, logger: engine.logger, batch: batch, loss: loss) { record in
                guard group.rank == 0 else { return }
                if json { print(record.json); return }
                if progress == nil { progress = ProgressBar(total: steps, start: record.step - 1) }
                progress?.update(record.step, record.summary)
            }
        } catch let error as CommError {
            // A peer is gone or stuck: end every rank now rather than leave them waiting out their timeouts.
            printError("\(error)")
            group.abort(code: 3)
        }
        progress?.finish()
    }

    /// `--device`: the CPU (with `--threads`), or a GPU; plain `cuda` picks the rank's local GPU under a launcher.
    func trainingDevice(rank: Int) throws -> Device {
        if device == "cpu" { return threads.map { Device.cpu(threads: $0) } ?? .cpu }
        if device == "cuda", let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_RANK"]
            ?? ProcessInfo.processInfo.environment["LOCAL_RANK"], let i = Int(local) {
            return try Device.cuda(i)
        }
        return try Device.named(device)
    }
}

extension StepRecord {
    /// The progress bar's note.
    var summary: String {
        "loss \(fmt(loss)) | lr \(scientific(lr)) | \(Int(tokensPerS)) tok/s" + (gradNorm.map { " | grad norm \(fmt($0))" } ?? "")
    }
}

/// `x` with 3 significant digits in exponent form, e.g. `1.43e-03`.
func scientific(_ x: Double) -> String {
    guard x != 0, x.isFinite else { return "\(x)" }
    var e = Int(Foundation.log10(Swift.abs(x)).rounded(.down))
    var m = x / Foundation.pow(10, Double(e))
    m = (m * 100).rounded() / 100
    if Swift.abs(m) >= 10 { m /= 10; e += 1 }
    let digits = String(format: "%.2f", m)
    return "\(digits)e\(e < 0 ? "-" : "+")\(Swift.abs(e) < 10 ? "0" : "")\(Swift.abs(e))"
}

/// Writes `error: message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

/// A one-line progress bar on stdout (carriage-return redraw).
final class ProgressBar {
    let total: Int
    let started = now()
    let start: Int

    init(total: Int, start: Int) { self.total = total; self.start = start }

    func update(_ done: Int, _ note: String) {
        let width = 30, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let elapsed = now() - started
        let eta = done > start ? elapsed / Double(done - start) * Double(total - done) : 0
        // Unbuffered, so the bar redraws in place even when stdout is a pipe.
        FileHandle.standardOutput.write(Data("\r[\(bar)] \(done)/\(total) | \(note) | eta \(Int(eta))s".utf8))
    }

    func finish() { FileHandle.standardOutput.write(Data("\n".utf8)) }
}
