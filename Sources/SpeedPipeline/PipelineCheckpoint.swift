// Reading a pipeline checkpoint without a pipeline: the whole model's fp32 weights from every stage's ZeRO shards,
// under the unpartitioned model's names (DeepSpeed's zero_to_fp32 for pipelines). Invariant: a tied weight comes
// from its tie's first stage only, so every model parameter appears exactly once.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SpeedCore
import SpeedIO

/// `pipe_stage_XX/names.json`: a stage's flat parameter names → the unpartitioned model's names.
struct StageParameterNames: Codable, Equatable {
    var names: [String: String] = [:]
    /// Tied copies held again on this stage (their values are the tie's first stage's).
    var duplicates: [String] = []
}

/// Pipeline checkpoints seen from outside a pipeline job.
///
/// ```swift
/// let weights = try PipelineCheckpoint.fp32Weights(directory: "checkpoints")   // [("wte.weight", …), ("wpe.weight", …), …]
/// try gpt.load(stateDict: Dictionary(uniqueKeysWithValues: weights.map { ($0.name, $0.tensor) }))
/// ```
public enum PipelineCheckpoint {
    static let namesFile = "names.json"

    /// The tag folder `directory/<tag>` (default: `latest`'s) when it holds a pipeline checkpoint, else nil.
    public static func folder(directory: String, tag: String? = nil) throws -> URL? {
        guard let choice = try CheckpointDirectory.resolve(URL(fileURLWithPath: directory), tag: tag, fallBackToNewest: false) else {
            return nil
        }
        let meta = choice.folder.appendingPathComponent("pipeline.json")
        return FileManager.default.fileExists(atPath: meta.path) ? choice.folder : nil
    }

    /// The Hugging Face folder a pipeline checkpoint's model came from (``PipelineModule/modelOrigin``), or nil.
    /// - Throws: ``PipelineError/checkpoint(_:)`` when `directory` holds no pipeline checkpoint.
    public static func modelOrigin(directory: String, tag: String? = nil) throws -> PipelineModule.ModelOrigin? {
        guard let folder = try folder(directory: directory, tag: tag) else {
            throw PipelineError.checkpoint("\(directory) holds no pipeline checkpoint (no pipeline.json in its \(tag ?? "latest") tag)")
        }
        let url = folder.appendingPathComponent("pipeline.json")
        do { return try JSONDecoder().decode(PipelineCheckpointMeta.self, from: Data(contentsOf: url)).modelOrigin } catch {
            throw PipelineError.checkpoint("\(url.path) is missing or unreadable (\(error))")
        }
    }

    /// Every model parameter's fp32 master weights (the optimizer shards', not the 16-bit copies), named as in
    /// the unpartitioned model, stage by stage in layer order.
    ///
    /// - Throws: ``PipelineError/checkpoint(_:)`` when `directory` holds no pipeline checkpoint or a stage's files
    ///   are missing; `CheckpointError` / `SafetensorsError` for corrupt shards.
    public static func fp32Weights(directory: String, tag: String? = nil, verify: Bool = true) throws -> [(name: String, tensor: Tensor)] {
        guard let folder = try folder(directory: directory, tag: tag) else {
            throw PipelineError.checkpoint("\(directory) holds no pipeline checkpoint (no pipeline.json in its \(tag ?? "latest") tag)")
        }
        let meta = try JSONDecoder().decode(PipelineCheckpointMeta.self,
                                            from: Data(contentsOf: folder.appendingPathComponent("pipeline.json")))
        var out: [(name: String, tensor: Tensor)] = []
        for s in 0..<meta.stages {
            let stage = folder.appendingPathComponent(PipelineEngine.stageFolderName(s))
            let namesURL = stage.appendingPathComponent(namesFile)
            let names: StageParameterNames
            do { names = try JSONDecoder().decode(StageParameterNames.self, from: Data(contentsOf: namesURL)) } catch {
                throw PipelineError.checkpoint("\(namesURL.path) is missing or unreadable (\(error))")
            }
            let shards = try ZeroCheckpoint(directory: stage.path, tag: "engine", verify: verify)
            for (flatName, tensor) in try shards.fp32Parameters() {
                if names.duplicates.contains(flatName) { continue }
                guard let name = names.names[flatName] else {
                    throw PipelineError.checkpoint("stage \(s): parameter \(flatName) has no model name in \(namesURL.path)")
                }
                out.append((name, tensor))
            }
        }
        return out
    }
}
