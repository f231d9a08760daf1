// The `activation_checkpointing`, `checkpoint` and `pipeline` blocks.
// Invariant: pipeline `stages: "auto"` is DeepSpeed's own value (nil here), never a Trainer placeholder.

/// `activation_checkpointing`: recompute activations in backward instead of keeping them.
///
/// ```swift
/// if config.activationCheckpointing.cpuCheckpointing { keepSavedInputsOnCPU() }
/// ```
public struct ActivationCheckpointingConfig: Codable, Sendable, Equatable {
    public var partitionActivations = false
    public var cpuCheckpointing = false
    public var contiguousMemoryOptimization = false
    /// nil = not set.
    public var numberCheckpoints: Int?
    public var synchronizeCheckpointBoundary = false
    public var profile = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case partitionActivations = "partition_activations", cpuCheckpointing = "cpu_checkpointing"
        case contiguousMemoryOptimization = "contiguous_memory_optimization"
        case numberCheckpoints = "number_checkpoints"
        case synchronizeCheckpointBoundary = "synchronize_checkpoint_boundary", profile
    }
}

/// How strictly checkpoint tags must agree across ranks (`checkpoint.tag_validation`).
public enum TagValidation: String, Codable, Sendable, CaseIterable {
    case warn = "WARN", ignore = "IGNORE", fail = "FAIL"
}

/// `checkpoint`.
///
/// ```swift
/// if config.checkpoint.tagValidation == .fail { try checkTagsAgree() }
/// ```
public struct CheckpointConfig: Codable, Sendable, Equatable {
    public var tagValidation: TagValidation = .warn
    public var loadUniversal = false
    public var useNodeLocalStorage = false
    public var parallelWrite = ParallelWrite()

    /// `checkpoint.parallel_write`.
    public struct ParallelWrite: Codable, Sendable, Equatable {
        public var pipelineStage = false

        public init(pipelineStage: Bool = false) { self.pipelineStage = pipelineStage }

        enum CodingKeys: String, CodingKey { case pipelineStage = "pipeline_stage" }
    }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case tagValidation = "tag_validation", loadUniversal = "load_universal"
        case useNodeLocalStorage = "use_node_local_storage", parallelWrite = "parallel_write"
    }
}

/// `pipeline` (pipeline-parallel engine settings).
///
/// ```swift
/// let stages = config.pipeline.stages ?? module.defaultStageCount
/// ```
public struct PipelineConfig: Codable, Sendable, Equatable {
    /// nil = "auto" (from the PipelineModule).
    public var stages: Int?
    /// DeepSpeed's default "best"; also "parameters", "uniform", "type:REGEX".
    public var partition = "best"
    public var seedLayers = false
    public var activationCheckpointInterval = 0
    public var pipePartitioned = true
    public var gradPartitioned = true

    public init() {}

    enum CodingKeys: String, CodingKey {
        case stages, partition, seedLayers = "seed_layers"
        case activationCheckpointInterval = "activation_checkpoint_interval"
        case pipePartitioned = "pipe_partitioned", gradPartitioned = "grad_partitioned"
    }
}

extension ActivationCheckpointingConfig {
    init(reading r: ConfigReader) throws {
        partitionActivations = try r.bool("partition_activations", false)
        cpuCheckpointing = try r.bool("cpu_checkpointing", false)
        contiguousMemoryOptimization = try r.bool("contiguous_memory_optimization", false)
        numberCheckpoints = try r.optionalInt("number_checkpoints", min: 1)
        synchronizeCheckpointBoundary = try r.bool("synchronize_checkpoint_boundary", false)
        profile = try r.bool("profile", false)
        r.finish()
    }
}

extension CheckpointConfig {
    init(reading r: ConfigReader) throws {
        let mode = try r.choice("tag_validation", "WARN", from: TagValidation.allCases.map(\.rawValue))!
        tagValidation = TagValidation(rawValue: mode)!
        loadUniversal = try r.bool("load_universal", false)
        useNodeLocalStorage = try r.bool("use_node_local_storage", false)
        if let pw = try r.block("parallel_write") {
            parallelWrite.pipelineStage = try pw.bool("pipeline_stage", false)
            pw.finish()
        }
        r.finish(ignored: ["checkpoint_serialization": "a torch.save option; SwiftSpeed writes safetensors; ignored",
                           "writer": "DeepSpeed's checkpoint writer options; SwiftSpeed has its own writer; ignored"])
    }
}

extension PipelineConfig {
    init(reading r: ConfigReader) throws {
        if let v = r.raw("stages"), v != .string("auto") {
            guard let n = v.intValue, n >= 1 else {
                throw ConfigError(r.keyPath("stages"), v, allowed: "\"auto\" or an integer >= 1")
            }
            stages = n
        }
        partition = try r.string("partition", "best")
        seedLayers = try r.bool("seed_layers", false)
        activationCheckpointInterval = try r.int("activation_checkpoint_interval", 0, min: 0)
        pipePartitioned = try r.bool("pipe_partitioned", true)
        gradPartitioned = try r.bool("grad_partitioned", true)
        r.finish()
    }
}
