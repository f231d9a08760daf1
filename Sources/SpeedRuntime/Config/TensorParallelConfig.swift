// The `tensor_parallel` block: DeepSpeed's AutoTP training settings (TPTrainingConfig), and the data-parallel size
// the batch rule uses once tensor (and pipeline) parallelism take their share of the ranks.
// Invariant: `autotp_size` 0 and 1 both mean "no tensor parallelism" (DeepSpeed shards only above 1).

/// `tensor_parallel` (DeepSpeed's `TPTrainingConfig`, `deepspeed/runtime/tensor_parallel/config.py`): with
/// `autotp_size` N > 1, ``initialize(model:config:optimizer:modelParameters:trainingData:lrScheduler:processGroup:parameterGroups:logger:)``
/// shards the model over groups of N adjacent ranks, and ZeRO (stages 0–2) runs over the data-parallel ranks.
///
/// ```swift
/// let config = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "tensor_parallel": {"autotp_size": 2}}"#,
///                                        worldSize: 2)   // 4 processes: 2-way TP × 2-way DP
/// config.tensorParallel.size                              // 2
/// ```
public struct TensorParallelConfig: Codable, Sendable, Equatable {
    /// Ranks each sharded layer is split over; 0 (DeepSpeed's default) or 1 disables tensor parallelism.
    public var autotpSize = 0
    /// Overlap the row-parallel all-reduce with computation. Accepted; SwiftSpeed runs the collectives in order,
    /// which gives the same result.
    public var tpOverlapComm = false
    /// A built-in layout by architecture ("llama", "bloom", "chatglm", "mixtral", "deepseek_v2", "qwen2", "phi3"),
    /// kept as given; the model's own ``TensorParallelShardable`` rules decide the split.
    public var presetModel: String?
    /// DeepSpeed's custom layer rules (`use_default_specs`, `layer_specs`), kept as given (see ``presetModel``).
    public var partitionConfig: JSONValue?
    /// DeepSpeed's `keep_module_on_host` (a checkpoint-loading memory option), kept as given.
    public var keepModuleOnHost = false

    /// The tensor-parallel degree in effect: `autotp_size`, or 1 when it is 0.
    public var size: Int { Swift.max(1, autotpSize) }
    /// Whether the model is sharded (`autotp_size` > 1).
    public var isEnabled: Bool { autotpSize > 1 }

    public init(autotpSize: Int = 0) { self.autotpSize = autotpSize }

    enum CodingKeys: String, CodingKey {
        case autotpSize = "autotp_size", tpOverlapComm = "tp_overlap_comm", presetModel = "preset_model"
        case partitionConfig = "partition_config", keepModuleOnHost = "keep_module_on_host"
    }

    /// DeepSpeed's preset names (`AutoTPPresets`).
    static let presets = ["llama", "bloom", "chatglm", "mixtral", "deepseek_v2", "qwen2", "phi3"]
}

extension TensorParallelConfig {
    init(reading r: ConfigReader) throws {
        autotpSize = try r.int("autotp_size", 0, min: 0)
        tpOverlapComm = try r.bool("tp_overlap_comm", false)
        presetModel = try r.choice("preset_model", nil, from: Self.presets)
        if let v = r.raw("partition_config") {
            guard case .object = v else { throw ConfigError(r.keyPath("partition_config"), v, allowed: "an object") }
            partitionConfig = v
        }
        keepModuleOnHost = try r.bool("keep_module_on_host", false)
        if tpOverlapComm {
            r.log.warn(r.keyPath("tp_overlap_comm"), "accepted; SwiftSpeed runs the tensor-parallel all-reduces in order (same result, no overlap)")
        }
        for key in ["preset_model", "partition_config"] where r.contains(key) {
            r.log.warn(r.keyPath(key), "not applied: the model's own tensor-parallel rules (TensorParallelShardable) decide the split")
        }
        let note = "a DeepSpeed option SwiftSpeed does not implement; ignored"
        r.finish(ignored: [
            "dtype": "the model dtype comes from the fp16 / bf16 blocks; ignored",
            "tensor_parallel": "DeepSpeed's inference TP settings (tp_size, tp_grain_size, mpu, tp_group); ignored in training",
            "tp": "DeepSpeed's inference TP settings (tp_size, tp_grain_size, mpu, tp_group); ignored in training",
            "injection_policy_tuple": note, "replace_with_kernel_inject": note, "kernel_inject": note,
        ])
    }
}

extension DeepSpeedConfig {
    /// The data-parallel world size the batch rule uses for a job of `processes` ranks: processes ÷ (TP · PP), as
    /// DeepSpeed sizes its batch by the data-parallel group. `tensorParallel` is the config's `autotp_size` (0 and 1: none).
    ///
    /// - Throws: ``ConfigError`` on `tensor_parallel.autotp_size` when TP · PP does not divide `processes`.
    ///
    /// ```swift
    /// try DeepSpeedConfig.dataParallelSize(processes: 8, tensorParallel: 2, pipelineStages: 2)   // 2
    /// ```
    public static func dataParallelSize(processes: Int, tensorParallel: Int, pipelineStages: Int = 1) throws -> Int {
        let tp = Swift.max(1, tensorParallel), pp = Swift.max(1, pipelineStages)
        guard processes >= 1, processes % (tp * pp) == 0 else {
            let what = pp > 1 ? "\(tp) × \(pp) pipeline stages = \(tp * pp)" : "\(tp)"
            throw ConfigError(keyPath: "tensor_parallel.autotp_size", value: "\(tensorParallel)",
                              allowed: "a size whose product with the pipeline stages divides the \(processes) processes",
                              reason: "\(processes) processes do not split into tensor-parallel groups of \(what); launch a multiple of \(tp * pp) processes")
        }
        return processes / (tp * pp)
    }

    /// Reads and validates a `ds_config.json` for a job of `processes` ranks: the batch rule's world size is the
    /// data-parallel size processes ÷ (`tensor_parallel.autotp_size` · `pipelineStages`).
    ///
    /// ```swift
    /// let config = try DeepSpeedConfig.load(path: "ds_config.json", processes: world.size)
    /// let (engine, _, _, _) = try SwiftSpeed.initialize(model: gpt, config: config, processGroup: world)
    /// ```
    public static func load(path: String, processes: Int, pipelineStages: Int = 1,
                            auto: AutoValues = .none) throws -> DeepSpeedConfig {
        let json = try JSONValue.parse(String(decoding: read(path), as: UTF8.self))
        return try DeepSpeedConfig(json: json, processes: processes, pipelineStages: pipelineStages, auto: auto)
    }

    /// Validates a parsed JSON tree for a job of `processes` ranks (see ``load(path:processes:pipelineStages:auto:)``).
    public init(json: JSONValue, processes: Int, pipelineStages: Int = 1, auto: AutoValues = .none) throws {
        var tp = 0
        if case .object(let top) = json, case .object(let block)? = top["tensor_parallel"],
           let n = block["autotp_size"]?.intValue, n > 1 { tp = n }
        let dp = try Self.dataParallelSize(processes: processes, tensorParallel: tp, pipelineStages: pipelineStages)
        try self.init(json: json, worldSize: dp, auto: auto)
    }
}
