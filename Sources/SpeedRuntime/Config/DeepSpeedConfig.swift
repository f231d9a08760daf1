// DeepSpeedConfig: ds_config.json as one Codable value with DeepSpeed 0.19's defaults, and the ways to load it.
// Invariant: a DeepSpeedConfig that exists is valid — batch sizes resolved and consistent, no "auto" left, blocks checked.

import Foundation

/// A parsed, validated `ds_config.json`. Each block is handed whole to its consumer (the engine
/// takes `fp16`, ZeRO takes `zeroOptimization`, …); nothing here is a getter per key.
///
/// Loading accepts JSON5 and `#` comments (DeepSpeed's hjson in practice), derives the batch
/// sizes for the data-parallel world size, rejects unresolved `"auto"` (unless `auto` fills it),
/// throws ``ConfigError`` for a wrong type or an out-of-range value, and collects ``warnings``
/// for unknown keys (with a "did you mean") and ignored DeepSpeed options.
///
/// ```swift
/// let config = try DeepSpeedConfig.load(path: "ds_config.json", worldSize: 4)
/// for w in config.warnings { logger.warning("\(w)") }
/// if let block = config.optimizer { print(block.type, block.params.lr) }
/// let schedule = try config.scheduler?.makeScheduler(baseLR: optimizer.lr)
/// ```
public struct DeepSpeedConfig: Codable, Sendable, Equatable {
    // Batch (resolved by DeepSpeed's rule).
    public var trainBatchSize: Int
    public var trainMicroBatchSizePerGPU: Int
    public var gradientAccumulationSteps: Int
    /// The data-parallel world size the batch sizes were resolved for (not part of the JSON).
    public var worldSize = 1

    // Training loop.
    /// Log every N optimizer steps; nil = off.
    public var stepsPerPrint: Int?
    public var wallClockBreakdown = false
    public var dumpState = false
    /// Global L2-norm clip; 0 = off (DeepSpeed 0.19 default: 1.0).
    public var gradientClipping: Double = 1.0
    public var prescaleGradients = false
    public var gradientPredivideFactor: Double = 1.0
    /// "fp32", "fp16" or "bf16"; nil = the model's dtype.
    public var communicationDataType: String?
    public var zeroAllowUntestedOptimizer = false
    /// Seconds a collective waits for the other ranks (`comm_timeout`, a SwiftSpeed key DeepSpeed ignores;
    /// DeepSpeed's own knob is the `DEEPSPEED_TIMEOUT` environment variable, in minutes). nil: the default.
    public var commTimeout: Double?

    // Blocks.
    public var optimizer: OptimizerConfig?
    public var scheduler: SchedulerConfig?
    public var fp16 = FP16Config()
    /// Read from `bf16`, or from its old name `bfloat16`.
    public var bf16 = BF16Config()
    public var dataTypes = DataTypesConfig()
    public var zeroOptimization = ZeroConfig()
    public var activationCheckpointing = ActivationCheckpointingConfig()
    public var pipeline = PipelineConfig()
    /// AutoTP training (`tensor_parallel.autotp_size`); the batch sizes above are per data-parallel rank.
    public var tensorParallel = TensorParallelConfig()
    public var checkpoint = CheckpointConfig()
    public var tensorboard = MonitorConfig()
    public var csvMonitor = MonitorConfig()
    public var wandb = WandbConfig()

    /// Unknown, deprecated and ignored keys found while parsing (not part of the JSON).
    public var warnings: [ConfigWarning] = []

    /// A config with DeepSpeed's defaults and the given (already consistent) batch sizes.
    ///
    /// ```swift
    /// var config = DeepSpeedConfig(batch: try DeepSpeedConfig.resolveBatch(trainBatchSize: 8,
    ///     microBatchSizePerGPU: nil, gradientAccumulationSteps: nil, worldSize: 1))
    /// config.fp16.enabled = true
    /// ```
    public init(batch: BatchSizes, worldSize: Int = 1) {
        trainBatchSize = batch.trainBatchSize
        trainMicroBatchSizePerGPU = batch.microBatchSizePerGPU
        gradientAccumulationSteps = batch.gradientAccumulationSteps
        self.worldSize = worldSize
    }

    enum CodingKeys: String, CodingKey {
        case trainBatchSize = "train_batch_size", trainMicroBatchSizePerGPU = "train_micro_batch_size_per_gpu"
        case gradientAccumulationSteps = "gradient_accumulation_steps", stepsPerPrint = "steps_per_print"
        case wallClockBreakdown = "wall_clock_breakdown", dumpState = "dump_state"
        case gradientClipping = "gradient_clipping", prescaleGradients = "prescale_gradients"
        case gradientPredivideFactor = "gradient_predivide_factor", communicationDataType = "communication_data_type"
        case zeroAllowUntestedOptimizer = "zero_allow_untested_optimizer", optimizer, scheduler, fp16, bf16
        case dataTypes = "data_types", zeroOptimization = "zero_optimization"
        case activationCheckpointing = "activation_checkpointing", pipeline, checkpoint, tensorboard
        case csvMonitor = "csv_monitor", wandb, commTimeout = "comm_timeout", tensorParallel = "tensor_parallel"
    }

    // MARK: Loading

    /// Reads and validates a `ds_config.json` file.
    ///
    /// - Parameters:
    ///   - worldSize: the data-parallel world size W used by the batch rule.
    ///   - auto: fills `"auto"` values by key path (the HF Trainer's hook); by default any
    ///     `"auto"` is an error naming its key path.
    /// - Throws: ``ConfigError`` (unreadable file, syntax error, wrong type, out-of-range value,
    ///   inconsistent batch sizes, unresolved `"auto"`).
    ///
    /// ```swift
    /// let config = try DeepSpeedConfig.load(path: "ds_config.json", worldSize: 2,
    ///                                       auto: ["train_micro_batch_size_per_gpu": 4])
    /// ```
    public static func load(path: String, worldSize: Int = 1, auto: AutoValues = .none) throws -> DeepSpeedConfig {
        try parse(data: read(path), worldSize: worldSize, auto: auto)
    }

    /// The `comm_timeout` a config file sets, read before the process group exists (the full load needs
    /// the world size); nil when the file does not set it. Errors in the rest of the file surface in ``load(path:worldSize:auto:)``.
    public static func commTimeout(path: String) throws -> Double? {
        guard case .object(let members) = try JSONValue.parse(String(decoding: read(path), as: UTF8.self)),
              let value = members["comm_timeout"] else { return nil }
        guard let seconds = value.doubleValue, seconds.isFinite, seconds > 0 else {
            throw ConfigError(keyPath: "comm_timeout", value: value.rendered(), allowed: "a number of seconds > 0")
        }
        return seconds
    }

    /// The bytes of a config file: a regular file (not a directory, FIFO or device) of at most 16 MiB.
    static func read(_ path: String) throws -> Data {
        func refuse(_ reason: String) -> ConfigError {
            ConfigError(keyPath: "(file)", value: path, allowed: "a readable ds_config.json file", reason: reason)
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw refuse("\(path) does not exist or cannot be read; check the path")
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            let kind = [FileAttributeType.typeDirectory: "a directory", .typeCharacterSpecial: "a device",
                        .typeBlockSpecial: "a device", .typeSocket: "a socket"][attributes[.type] as? FileAttributeType ?? .typeUnknown]
                ?? "a FIFO or special file"
            throw refuse("\(path) is \(kind), not a regular file; give a JSON file")
        }
        guard let size = attributes[.size] as? Int, size <= 16 << 20 else {
            throw refuse("\(path) is larger than 16 MiB; a ds_config.json is a few kilobytes")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw refuse("cannot open \(path) for reading (check its permissions)")
        }
        defer { try? handle.close() }
        let data = (try? handle.readToEnd()) ?? Data()
        guard !data.isEmpty else { throw refuse("\(path) is empty; a ds_config.json holds one JSON object") }
        return data
    }

    /// Parses config text (JSON5, plus `#` comments; see ``JSONValue/parse(_:)``).
    ///
    /// ```swift
    /// let config = try DeepSpeedConfig.parse(#"{"train_batch_size": 16, "fp16": {"enabled": true}}"#)
    /// ```
    public static func parse(_ text: String, worldSize: Int = 1, auto: AutoValues = .none) throws -> DeepSpeedConfig {
        try DeepSpeedConfig(json: JSONValue.parse(text), worldSize: worldSize, auto: auto)
    }

    /// Parses config bytes (UTF-8).
    public static func parse(data: Data, worldSize: Int = 1, auto: AutoValues = .none) throws -> DeepSpeedConfig {
        try parse(String(decoding: data, as: UTF8.self), worldSize: worldSize, auto: auto)
    }

    /// Parses an in-memory dictionary, as DeepSpeed's `config=dict`.
    ///
    /// ```swift
    /// let config = try DeepSpeedConfig.parse(dictionary: ["train_batch_size": 8, "bf16": ["enabled": true]])
    /// ```
    public static func parse(dictionary: [String: Any], worldSize: Int = 1,
                             auto: AutoValues = .none) throws -> DeepSpeedConfig {
        try DeepSpeedConfig(json: JSONValue(any: dictionary), worldSize: worldSize, auto: auto)
    }

    /// The config as JSON (every key with its resolved value), e.g. to store in a checkpoint.
    public var json: JSONValue {
        // Encoding plain structs of numbers, strings and booleans cannot fail.
        let data = try! JSONEncoder().encode(self)
        return try! JSONValue.parse(String(decoding: data, as: UTF8.self))
    }
}
