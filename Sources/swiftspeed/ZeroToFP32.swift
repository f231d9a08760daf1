// `swiftspeed zero-to-fp32 CKPT_DIR OUT_DIR [--tag T]`: DeepSpeed's zero_to_fp32.py — full fp32 weights from a checkpoint.
// Invariant: the weights come from the optimizer shards' fp32 masters (any stage, any world size), and the
// output file is replaced atomically, so OUT_DIR/model.safetensors is the old file or the complete new one.

import ArgumentParser
import Foundation
import SwiftSpeed

/// `swiftspeed zero-to-fp32 checkpoints out [--tag global_step100]`
///
/// ```
/// $ swiftspeed zero-to-fp32 checkpoints out
/// wrote out/model.safetensors: 11 tensors, 5289472 fp32 parameters (21.2 MB) from checkpoints/global_step100 (ZeRO stage 1, 2 shards, saved in bfloat16)
/// ```
struct ZeroToFP32: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zero-to-fp32",
        abstract: "Consolidate a checkpoint's ZeRO shards into full fp32 weights (OUT_DIR/model.safetensors).",
        discussion: """
            Works for checkpoints of any ZeRO stage (0-3) saved by any number of ranks, tensor-parallel ones \
            (autotp_size, mp_rank_XX files) included: their shards are joined into the unsharded model. The \
            weights are the exact fp32 master weights from the optimizer shards (not the 16-bit model weights); \
            optimizer moments are dropped. The output has the parameter names of the model and metadata \
            format=pt, so Hugging Face's loaders read it.
            """)

    @Argument(help: "The checkpoint directory (the --save-dir / saveCheckpoint folder holding 'latest').") var checkpointDir: String
    @Argument(help: "Folder to write model.safetensors into (created if missing).") var outputDir: String
    @Option(help: "Checkpoint tag to read (default: the one in CHECKPOINT_DIR/latest).") var tag: String?
    @Flag(help: "Skip checking the shards' CRC-32C checksums (faster; corruption goes unnoticed).") var noVerify = false

    func run() throws {
        do {
            if try PipelineCheckpoint.folder(directory: checkpointDir, tag: tag) != nil { return try runPipeline() }
            let ckpt = try ZeroCheckpoint(directory: checkpointDir, tag: tag, mpRank: 0, verify: !noVerify)
            if let recovered = ckpt.note { note(recovered) }
            if !ckpt.checksummed { note("\(ckpt.folder.path) was saved without checksums (before SwiftSpeed recorded them); its data is not verified") }
            let out = try outputFolder()
            let file = out.appendingPathComponent("model.safetensors")
            let tp = ckpt.tensorParallelSize > 1 ? try TensorParallelCheckpoint(directory: checkpointDir, tag: tag, verify: !noVerify) : nil
            let count = try tp?.writeFP32(to: file, verify: !noVerify) ?? ckpt.writeFP32(to: file)
            try writeHFFiles(out, config: ckpt.modelConfig, source: ckpt.modelSource)
            let megabytes = (Double(count * 4) / 1e5).rounded() / 10
            let shards = ckpt.shards.count * ckpt.tensorParallelSize
            let layout = tp.map { "tensor-parallel \($0.size) × " } ?? ""
            print("wrote \(file.path): \(ckpt.parameterNames.count) tensors, \(count) fp32 parameters (\(megabytes) MB) "
                + "from \(ckpt.folder.path) (\(layout)ZeRO stage \(ckpt.zeroStage), \(shards) shard\(shards == 1 ? "" : "s"), "
                + "saved in \(ckpt.modelDType))")
        } catch let error as CheckpointError {
            printError("\(error)")
            throw ExitCode(1)
        } catch let error as SafetensorsError {
            printError("\(error)")
            throw ExitCode(1)
        }
    }

    func note(_ text: String) { FileHandle.standardError.write(Data("note: \(text)\n".utf8)) }

    /// OUTPUT_DIR, created if missing.
    func outputFolder() throws -> URL {
        let out = URL(fileURLWithPath: outputDir)
        do {
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError("cannot create the output folder \(out.path): \(fileErrorText(error))")
        }
        return out
    }

    /// The model came from a Hugging Face folder: its config.json and tokenizer make `out` loadable.
    func writeHFFiles(_ out: URL, config: String?, source: String?) throws {
        guard try Self.writeHFFiles(out, config: config, source: source) else { return }
        note("wrote \(out.path)/config.json: the folder loads with from_pretrained (the model came from \(source ?? "a Hugging Face folder"))")
    }

    /// Writes `config` and the tokenizer files beside it in `source` into `out`; false when there is no config.
    static func writeHFFiles(_ out: URL, config: String?, source: String?) throws -> Bool {
        guard let config else { return false }
        try AtomicFile.write(Data(config.utf8), to: out.appendingPathComponent("config.json"))
        for name in PretrainedJob.tokenizerFiles {
            guard let from = source.map({ URL(fileURLWithPath: $0).appendingPathComponent(name) }),
                  FileManager.default.fileExists(atPath: from.path) else { continue }
            let target = out.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: from, to: target)
        }
        return true
    }

    /// A pipeline checkpoint's fp32 masters, under the unpartitioned model's names, as `outputDir`/model.safetensors
    /// (+ config.json and the tokenizer when the model came from a Hugging Face folder); returns the summary line.
    static func writePipelineWeights(checkpointDir: String, tag: String?, outputDir: String, verify: Bool) throws -> String {
        let weights = try PipelineCheckpoint.fp32Weights(directory: checkpointDir, tag: tag, verify: verify)
        let out = URL(fileURLWithPath: outputDir)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let file = out.appendingPathComponent("model.safetensors")
        try Safetensors.write(weights.map { ($0.name, $0.tensor) }, metadata: ["format": "pt"], to: file)
        if let origin = try PipelineCheckpoint.modelOrigin(directory: checkpointDir, tag: tag) {
            _ = try writeHFFiles(out, config: origin.config, source: origin.source)
        }
        let count = weights.reduce(0) { $0 + $1.tensor.count }
        return "wrote \(file.path): \(weights.count) tensors, \(count) fp32 parameters (\((Double(count * 4) / 1e5).rounded() / 10) MB) from the pipeline checkpoint in \(checkpointDir)"
    }

    /// A `--pipeline-stages` checkpoint: every stage's fp32 masters under the unpartitioned model's names.
    func runPipeline() throws {
        do {
            print(try Self.writePipelineWeights(checkpointDir: checkpointDir, tag: tag, outputDir: outputDir, verify: !noVerify))
        } catch let error as PipelineError {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}
