// Reading the top level of ds_config.json: blocks, scalar keys, DeepSpeed's cross-key checks, unknown-key warnings.
// Invariant: blocks are read before the top level finishes, so a misplaced key ("stage") can point at its block.

import SpeedOptim

extension DeepSpeedConfig {
    /// Validates a parsed JSON tree (see ``load(path:worldSize:auto:)``).
    ///
    /// ```swift
    /// let config = try DeepSpeedConfig(json: ["train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2],
    ///                                  worldSize: 8)   // train_batch_size 64
    /// ```
    public init(json: JSONValue, worldSize: Int = 1, auto: AutoValues = .none) throws {
        let log = ConfigLog()
        let r = try ConfigReader(path: "", value: auto.resolving(json), log: log)
        try DeepSpeedConfig.rejectRemovedKeys(r)

        let batch = try DeepSpeedConfig.resolveBatch(
            trainBatchSize: r.optionalInt("train_batch_size"),
            microBatchSizePerGPU: r.optionalInt("train_micro_batch_size_per_gpu"),
            gradientAccumulationSteps: r.optionalInt("gradient_accumulation_steps"), worldSize: worldSize)
        self.init(batch: batch, worldSize: worldSize)

        optimizer = try r.block("optimizer").map(OptimizerConfig.init(reading:))
        scheduler = try r.block("scheduler").map(SchedulerConfig.init(reading:))
        fp16 = try r.block("fp16").map(FP16Config.init(reading:)) ?? fp16
        if let b = try r.block("bf16") {
            bf16 = try BF16Config(reading: b)
            if r.contains("bfloat16") {
                log.warn("bfloat16", "ignored: \"bf16\" is also given and takes precedence (as in DeepSpeed)")
            }
        } else if let b = try r.block("bfloat16") {
            bf16 = try BF16Config(reading: b)
        }
        if fp16.enabled && bf16.enabled {
            throw ConfigError(keyPath: "bf16.enabled", value: "true", allowed: "at most one of fp16 and bf16 enabled",
                              reason: "bfloat16 and fp16 modes cannot be simultaneously enabled")
        }
        dataTypes = try r.block("data_types").map(DataTypesConfig.init(reading:)) ?? dataTypes
        zeroOptimization = try DeepSpeedConfig.readZero(r)
        try checkPrecisionAgainstZero()
        activationCheckpointing = try r.block("activation_checkpointing")
            .map(ActivationCheckpointingConfig.init(reading:)) ?? activationCheckpointing
        pipeline = try r.block("pipeline").map(PipelineConfig.init(reading:)) ?? pipeline
        tensorParallel = try r.block("tensor_parallel").map(TensorParallelConfig.init(reading:)) ?? tensorParallel
        checkpoint = try r.block("checkpoint").map(CheckpointConfig.init(reading:)) ?? checkpoint
        tensorboard = try r.block("tensorboard").map(MonitorConfig.init(reading:)) ?? tensorboard
        csvMonitor = try r.block("csv_monitor").map(MonitorConfig.init(reading:)) ?? csvMonitor
        wandb = try r.block("wandb").map(WandbConfig.init(reading:)) ?? wandb

        stepsPerPrint = try r.optionalInt("steps_per_print", min: 1)
        wallClockBreakdown = try r.bool("wall_clock_breakdown", false)
        dumpState = try r.bool("dump_state", false)
        gradientClipping = try r.double("gradient_clipping", 1.0, min: 0)
        prescaleGradients = try r.bool("prescale_gradients", false)
        gradientPredivideFactor = try r.double("gradient_predivide_factor", 1.0, min: 0, minExclusive: true)
        communicationDataType = try r.choice("communication_data_type", nil, from: ["fp32", "fp16", "bf16"])
        zeroAllowUntestedOptimizer = try r.bool("zero_allow_untested_optimizer", false)
        commTimeout = try r.optionalDouble("comm_timeout", min: 0, minExclusive: true)

        log.knownKeys.merge(DeepSpeedConfig.blockKeys) { read, _ in read }
        r.finish(ignored: DeepSpeedConfig.ignoredTopLevel)
        warnings = log.warnings
    }

    /// `zero_optimization` as a block, or DeepSpeed's deprecated boolean form (true = stage 1).
    static func readZero(_ r: ConfigReader) throws -> ZeroConfig {
        guard let v = r.raw("zero_optimization") else { return ZeroConfig() }
        if case .bool(let on) = v {
            r.log.warn("zero_optimization", "the boolean form is deprecated; use {\"stage\": \(on ? 1 : 0)}")
            var z = ZeroConfig()
            z.stage = on ? 1 : 0
            if on { z.allgatherBucketSize = try r.int("allgather_size", z.allgatherBucketSize, min: 0) }
            return z
        }
        guard let block = try r.block("zero_optimization") else { return ZeroConfig() }
        for (key, note) in DeepSpeedConfig.removedZeroKeys where block.members[key] != nil {
            throw ConfigError(keyPath: "zero_optimization.\(key)", value: block.members[key]!.rendered(),
                              allowed: "no \(key) key", reason: note)
        }
        return try ZeroConfig(reading: block)
    }

    func checkPrecisionAgainstZero() throws {
        let stage = zeroOptimization.stage
        let checks: [(Bool, String)] = [
            (fp16.fp16MasterWeightsAndGrads, "fp16.fp16_master_weights_and_grads"),
            (bf16.bf16MasterWeightsAndGrads, "bf16.bf16_master_weights_and_grads"),
        ]
        for (on, key) in checks where on && stage == 0 {
            throw ConfigError(keyPath: key, value: "true", allowed: "true only with zero_optimization.stage 1, 2 or 3",
                              reason: "\(key.split(separator: ".").last!) is only supported with ZeRO stage 1, 2 or 3 "
                                  + "(stage is 0)")
        }
    }

    static func rejectRemovedKeys(_ r: ConfigReader) throws {
        for (key, note) in removedTopLevelKeys where r.members[key] != nil {
            throw ConfigError(keyPath: key, value: r.members[key]!.rendered(), allowed: "no \(key) key", reason: note)
        }
    }

    /// Every block's keys, for pointing a misplaced top-level key at its block even when the block is absent.
    static let blockKeys: [String: Set<String>] = {
        let log = ConfigLog()
        func read(_ path: String, _ body: (ConfigReader) throws -> Void) {
            if let r = try? ConfigReader(path: path, value: .object([:]), log: log) { try? body(r) }
        }
        read("fp16") { _ = try FP16Config(reading: $0) }
        read("bf16") { _ = try BF16Config(reading: $0) }
        read("data_types") { _ = try DataTypesConfig(reading: $0) }
        read("zero_optimization") { _ = try ZeroConfig(reading: $0) }
        read("zero_optimization.offload_optimizer") { _ = try OffloadOptimizerConfig(reading: $0) }
        read("zero_optimization.offload_param") { _ = try OffloadParamConfig(reading: $0) }
        read("activation_checkpointing") { _ = try ActivationCheckpointingConfig(reading: $0) }
        read("pipeline") { _ = try PipelineConfig(reading: $0) }
        read("tensor_parallel") { _ = try TensorParallelConfig(reading: $0) }
        read("checkpoint") { _ = try CheckpointConfig(reading: $0) }
        read("tensorboard") { _ = try MonitorConfig(reading: $0) }
        read("wandb") { _ = try WandbConfig(reading: $0) }
        read("optimizer.params") { _ = try OptimizerParams(reading: $0, type: .adam) }
        read("scheduler.params") { _ = try LRScheduleParams(reading: $0, type: .warmupLR) }
        return log.knownKeys
    }()

    /// Keys DeepSpeed 0.19 rejects because the feature was removed (it raises too).
    static let removedTopLevelKeys: [String: String] = [
        "nebula": "Nebula checkpointing was removed from DeepSpeed",
        "compression_training": "DeepSpeed's compression library was removed; the model would train unquantized",
        "amp": "NVIDIA Apex AMP integration was removed; use \"fp16\" or \"bf16\"",
        "quantize_training": "Mixture-of-Quantization (quantize_training) was removed from DeepSpeed",
        "sparse_gradients": "sparse_gradients was removed from DeepSpeed",
        "eigenvalue": "eigenvalue-based MoQ was removed from DeepSpeed",
        "sparse_attention": "DeepSpeed Sparse Attention was removed",
        "elasticity": "elastic training was removed; set the batch sizes directly",
        "graph_harvesting": "graph harvesting was removed from DeepSpeed",
        "curriculum_learning": "top-level curriculum_learning was removed (DeepSpeed now has data_efficiency)",
        "progressive_layer_drop": "Progressive Layer Dropping was removed from DeepSpeed",
    ]

    static let removedZeroKeys: [String: String] = [
        "mics_shard_size": "MiCS ZeRO-3 sharding was removed from DeepSpeed",
        "mics_hierarchical_params_gather": "MiCS ZeRO-3 sharding was removed from DeepSpeed",
        "zeropp_loco_param": "LoCo-ZeRO++ was removed from DeepSpeed",
    ]

    /// Top-level keys DeepSpeed knows and SwiftSpeed does not implement: warned about, then ignored.
    static let ignoredTopLevel: [String: String] = {
        var notes: [String: String] = [:]
        for key in ["comet", "flops_profiler", "comms_logger", "autotuning", "aio", "compile", "data_efficiency",
                    "torch_autocast", "hybrid_engine", "gradient_allreduce_op", "disable_allgather",
                    "memory_breakdown", "dataloader_drop_last", "vocabulary_size",
                    "seq_parallel_communication_data_type", "zero_force_ds_cpu_optimizer",
                    "managed_gradient_accumulation", "log_level", "timers", "expert_parallel",
                    "weight_quantization", "disable_python_gc", "use_data_before_expert_parallelism", "datastates",
                    "sequence_parallel_size", "nvme_offload", "swap_tensor", "moe"] {
            notes[key] = "a DeepSpeed option SwiftSpeed does not implement; ignored"
        }
        return notes
    }()
}
