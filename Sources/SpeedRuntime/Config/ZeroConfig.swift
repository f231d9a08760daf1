// The `zero_optimization` block (ZeRO stages 0–3) with its `offload_optimizer` and `offload_param` sub-blocks.
// Invariant: `overlapComm` is always resolved (DeepSpeed's dynamic default: true only at stage 3).

/// Where ZeRO offloads optimizer state or parameters.
public enum OffloadDevice: String, Codable, Sendable, CaseIterable {
    case none, cpu, nvme
}

/// `zero_optimization` with DeepSpeed 0.19's defaults.
///
/// ```swift
/// switch config.zeroOptimization.stage {
/// case 0: break                                  // plain data parallel
/// case 1, 2: partitionOptimizerState(bucket: config.zeroOptimization.reduceBucketSize)
/// default: partitionParameters(config.zeroOptimization)
/// }
/// let offload = config.zeroOptimization.offloadOptimizer?.device == .cpu
/// ```
public struct ZeroConfig: Codable, Sendable, Equatable {
    /// 0 (off), 1 (optimizer state), 2 (+ gradients), 3 (+ parameters).
    public var stage = 0
    public var contiguousGradients = true
    public var reduceScatter = true
    /// Elements per gradient bucket (5e8).
    public var reduceBucketSize = 500_000_000
    public var allgatherBucketSize = 500_000_000
    public var allgatherPartitions = true
    /// Overlap gradient reduction with backward (default: true only at stage 3).
    public var overlapComm = false
    public var loadFromFP32Weights = true
    public var stage3PrefetchBucketSize = 50_000_000
    public var stage3ParamPersistenceThreshold = 100_000
    public var stage3ModelPersistenceThreshold = Int.max
    public var stage3MaxLiveParameters = 1_000_000_000
    public var stage3MaxReuseDistance = 1_000_000_000
    public var stage3Gather16BitWeightsOnModelSave = false
    public var subGroupSize = 1_000_000_000
    public var roundRobinGradients = false
    public var ignoreUnusedParameters = true
    /// nil when the block is absent.
    public var offloadOptimizer: OffloadOptimizerConfig?
    /// nil when the block is absent; used at stage 3 only.
    public var offloadParam: OffloadParamConfig?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case stage, contiguousGradients = "contiguous_gradients", reduceScatter = "reduce_scatter"
        case reduceBucketSize = "reduce_bucket_size", allgatherBucketSize = "allgather_bucket_size"
        case allgatherPartitions = "allgather_partitions", overlapComm = "overlap_comm"
        case loadFromFP32Weights = "load_from_fp32_weights"
        case stage3PrefetchBucketSize = "stage3_prefetch_bucket_size"
        case stage3ParamPersistenceThreshold = "stage3_param_persistence_threshold"
        case stage3ModelPersistenceThreshold = "stage3_model_persistence_threshold"
        case stage3MaxLiveParameters = "stage3_max_live_parameters"
        case stage3MaxReuseDistance = "stage3_max_reuse_distance"
        case stage3Gather16BitWeightsOnModelSave = "stage3_gather_16bit_weights_on_model_save"
        case subGroupSize = "sub_group_size", roundRobinGradients = "round_robin_gradients"
        case ignoreUnusedParameters = "ignore_unused_parameters"
        case offloadOptimizer = "offload_optimizer", offloadParam = "offload_param"
    }
}

/// `zero_optimization.offload_optimizer`: fp32 master weights and optimizer state in CPU memory
/// (or NVMe), updated by the CPU.
public struct OffloadOptimizerConfig: Codable, Sendable, Equatable {
    public var device: OffloadDevice = .none
    public var nvmePath: String?
    public var pinMemory = true
    public var bufferCount = 4
    public var pipelineRead = false
    public var pipelineWrite = false
    public var fastInit = false
    /// Fraction of the optimizer state offloaded (< 1 only at stage 3).
    public var ratio: Double = 1

    public init(device: OffloadDevice = .none) { self.device = device }

    enum CodingKeys: String, CodingKey {
        case device, nvmePath = "nvme_path", pinMemory = "pin_memory", bufferCount = "buffer_count"
        case pipelineRead = "pipeline_read", pipelineWrite = "pipeline_write", fastInit = "fast_init", ratio
    }
}

/// `zero_optimization.offload_param` (stage 3): parameters live in CPU memory (or NVMe).
public struct OffloadParamConfig: Codable, Sendable, Equatable {
    public var device: OffloadDevice = .none
    public var nvmePath: String?
    public var pinMemory = true
    public var bufferCount = 5
    public var bufferSize = 100_000_000
    public var maxInCPU = 1_000_000_000

    public init(device: OffloadDevice = .none) { self.device = device }

    enum CodingKeys: String, CodingKey {
        case device, nvmePath = "nvme_path", pinMemory = "pin_memory", bufferCount = "buffer_count"
        case bufferSize = "buffer_size", maxInCPU = "max_in_cpu"
    }
}

extension ZeroConfig {
    static let ignored: [String: String] = {
        var notes: [String: String] = [:]
        for key in ["use_multi_rank_bucket_allreduce", "compute_grad_norm", "elastic_checkpoint", "zenflow",
                    "stage3_module_granularity_threshold", "stage3_use_all_reduce_for_fetch_params",
                    "stage3_allgather_sequential", "legacy_stage1", "parameter_alignment", "zero_hpz_partition_size",
                    "zero_quantized_weights", "zero_quantized_nontrainable_weights", "zero_quantized_gradients",
                    "memory_efficient_linear", "pipeline_loading_checkpoint", "override_module_apply",
                    "log_trace_cache_warnings", "enable_sanity_checks", "save_muon_momentum_buffer_in_memory",
                    "leaf_module", "cpu_offload_use_pin_memory"] {
            notes[key] = "a DeepSpeed option SwiftSpeed does not implement; ignored"
        }
        return notes
    }()

    /// `stage3_x` keys may also be written without the prefix (DeepSpeed's field names).
    static func read(_ r: ConfigReader, _ key: String, _ defaultValue: Int) throws -> Int {
        let short = String(key.dropFirst("stage3_".count))
        if r.raw(key) == nil, r.raw(short) != nil { return try r.int(short, defaultValue, min: 0) }
        return try r.int(key, defaultValue, min: 0)
    }

    init(reading r: ConfigReader) throws {
        stage = try r.int("stage", 0, min: 0, max: 3)
        contiguousGradients = try r.bool("contiguous_gradients", true)
        reduceScatter = try r.bool("reduce_scatter", true)
        reduceBucketSize = try r.int("reduce_bucket_size", reduceBucketSize, min: 1)
        allgatherBucketSize = try r.int("allgather_bucket_size", allgatherBucketSize, min: 0)
        allgatherPartitions = try r.bool("allgather_partitions", true)
        overlapComm = try r.optionalBool("overlap_comm") ?? (stage == 3)
        loadFromFP32Weights = try r.bool("load_from_fp32_weights", true)
        stage3PrefetchBucketSize = try ZeroConfig.read(r, "stage3_prefetch_bucket_size", stage3PrefetchBucketSize)
        stage3ParamPersistenceThreshold = try ZeroConfig.read(r, "stage3_param_persistence_threshold",
                                                              stage3ParamPersistenceThreshold)
        stage3ModelPersistenceThreshold = try ZeroConfig.read(r, "stage3_model_persistence_threshold",
                                                              stage3ModelPersistenceThreshold)
        stage3MaxLiveParameters = try ZeroConfig.read(r, "stage3_max_live_parameters", stage3MaxLiveParameters)
        stage3MaxReuseDistance = try ZeroConfig.read(r, "stage3_max_reuse_distance", stage3MaxReuseDistance)
        if let old = try r.optionalBool("stage3_gather_fp16_weights_on_model_save") {
            r.log.warn(r.keyPath("stage3_gather_fp16_weights_on_model_save"), "deprecated; use the new name",
                       suggestion: r.keyPath("stage3_gather_16bit_weights_on_model_save"))
            stage3Gather16BitWeightsOnModelSave = old
        }
        let gatherShort = try r.optionalBool("gather_16bit_weights_on_model_save")
        stage3Gather16BitWeightsOnModelSave = try r.optionalBool("stage3_gather_16bit_weights_on_model_save")
            ?? gatherShort ?? stage3Gather16BitWeightsOnModelSave
        subGroupSize = try r.int("sub_group_size", subGroupSize, min: 0)
        roundRobinGradients = try r.bool("round_robin_gradients", false)
        ignoreUnusedParameters = try r.bool("ignore_unused_parameters", true)

        if let b = try r.block("offload_optimizer") { offloadOptimizer = try OffloadOptimizerConfig(reading: b) }
        if let b = try r.block("offload_param") { offloadParam = try OffloadParamConfig(reading: b) }
        if try r.bool("cpu_offload", false) {
            r.log.warn(r.keyPath("cpu_offload"), "deprecated; use offload_optimizer {\"device\": \"cpu\"}",
                       suggestion: r.keyPath("offload_optimizer"))
            if offloadOptimizer == nil { offloadOptimizer = OffloadOptimizerConfig(device: .cpu) }
        }
        if try r.bool("cpu_offload_param", false) {
            r.log.warn(r.keyPath("cpu_offload_param"), "deprecated; use offload_param {\"device\": \"cpu\"}",
                       suggestion: r.keyPath("offload_param"))
            if offloadParam == nil { offloadParam = OffloadParamConfig(device: .cpu) }
        }
        if let o = offloadOptimizer, o.ratio < 1, stage != 3 {
            throw ConfigError(keyPath: r.keyPath("offload_optimizer.ratio"), value: "\(o.ratio)",
                              allowed: "1.0 below ZeRO stage 3 (partial offload needs stage 3; stage is \(stage))")
        }
        if let o = offloadOptimizer, o.device != .none, stage == 0 {
            r.log.warn(r.keyPath("offload_optimizer"), "needs ZeRO stage 1, 2 or 3; ignored at stage 0")
        }
        if let p = offloadParam, p.device != .none, stage != 3 {
            r.log.warn(r.keyPath("offload_param"), "used only at ZeRO stage 3; ignored at stage \(stage)")
        }
        r.finish(ignored: ZeroConfig.ignored)
    }
}

func readOffloadDevice(_ r: ConfigReader) throws -> (OffloadDevice, String?) {
    let device = OffloadDevice(rawValue: try r.choice("device", "none", from: ["none", "cpu", "nvme"])!)!
    let nvmePath = try r.optionalString("nvme_path")
    if device == .nvme, nvmePath == nil {
        throw ConfigError(keyPath: r.keyPath("nvme_path"), value: "missing",
                          allowed: "a directory path when device is \"nvme\"")
    }
    return (device, nvmePath)
}

extension OffloadOptimizerConfig {
    init(reading r: ConfigReader) throws {
        (device, nvmePath) = try readOffloadDevice(r)
        pinMemory = try r.bool("pin_memory", true)
        bufferCount = try r.int("buffer_count", 4, min: 0)
        pipelineRead = try r.bool("pipeline_read", false)
        pipelineWrite = try r.bool("pipeline_write", false)
        fastInit = try r.bool("fast_init", false)
        ratio = try r.double("ratio", 1, min: 0, max: 1)
        r.finish(ignored: ["super_offload": "a DeepSpeed option SwiftSpeed does not implement; ignored",
                           "cpuadam_cores_perc": "a DeepSpeed option SwiftSpeed does not implement; ignored"])
    }
}

extension OffloadParamConfig {
    init(reading r: ConfigReader) throws {
        (device, nvmePath) = try readOffloadDevice(r)
        pinMemory = try r.bool("pin_memory", true)
        bufferCount = try r.int("buffer_count", 5, min: 0)
        bufferSize = try r.int("buffer_size", bufferSize, min: 0)
        maxInCPU = try r.int("max_in_cpu", maxInCPU, min: 0)
        r.finish()
    }
}
