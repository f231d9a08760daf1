// Mixed-precision blocks: `fp16` (loss scaling), `bf16` (alias `bfloat16`) and `data_types.grad_accum_dtype`.
// Invariant: dtype names are stored canonically ("fp32", "fp16", "bf16") whatever alias the config used.

/// `fp16`: half-precision training with a static (`lossScale > 0`) or dynamic (`0`) loss scale.
///
/// ```swift
/// let scaler = config.fp16.lossScale > 0
///     ? LossScaler(staticScale: config.fp16.lossScale)
///     : LossScaler(dynamic: true, initialScalePower: config.fp16.initialScalePower, window: config.fp16.lossScaleWindow)
/// ```
public struct FP16Config: Codable, Sendable, Equatable {
    public var enabled = false
    public var autoCast = false
    /// 0 = dynamic loss scaling; > 0 = this static scale.
    public var lossScale: Double = 0
    /// The dynamic scale starts at 2^initialScalePower.
    public var initialScalePower = 16
    /// Overflow-free steps before the dynamic scale doubles.
    public var lossScaleWindow = 1000
    /// Overflows tolerated before the scale is halved.
    public var hysteresis = 2
    /// Refill hysteresis on every overflow-free step.
    public var consecutiveHysteresis = false
    public var minLossScale: Double = 1
    public var fp16MasterWeightsAndGrads = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case enabled, autoCast = "auto_cast", lossScale = "loss_scale", initialScalePower = "initial_scale_power"
        case lossScaleWindow = "loss_scale_window", hysteresis, consecutiveHysteresis = "consecutive_hysteresis"
        case minLossScale = "min_loss_scale", fp16MasterWeightsAndGrads = "fp16_master_weights_and_grads"
    }
}

/// `bf16` (or the old name `bfloat16`): bf16 weights and activations, fp32 master weights and
/// optimizer state, no loss scaling.
///
/// ```swift
/// let dtype: DType = config.bf16.enabled ? .bfloat16 : .float32
/// ```
public struct BF16Config: Codable, Sendable, Equatable {
    public var enabled = false
    public var immediateGradUpdate = false
    /// Skip the step when a gradient is inf/NaN (DeepSpeed 0.19 default: true).
    public var checkGradOverflow = true
    public var bf16MasterWeightsAndGrads = false
    public var bf16OptimizerStates = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case enabled, immediateGradUpdate = "immediate_grad_update", checkGradOverflow = "check_grad_overflow"
        case bf16MasterWeightsAndGrads = "bf16_master_weights_and_grads", bf16OptimizerStates = "bf16_optimizer_states"
    }
}

/// `data_types`.
///
/// ```swift
/// let accumulateInFP32 = config.dataTypes.gradAccumDType == "fp32"
/// ```
public struct DataTypesConfig: Codable, Sendable, Equatable {
    /// "fp32", "fp16" or "bf16"; nil = the model's dtype.
    public var gradAccumDType: String?

    public init(gradAccumDType: String? = nil) { self.gradAccumDType = gradAccumDType }

    enum CodingKeys: String, CodingKey { case gradAccumDType = "grad_accum_dtype" }

    /// DeepSpeed's dtype aliases → canonical name.
    static let aliases: [String: String] = [
        "fp32": "fp32", "float32": "fp32", "float": "fp32", "torch.float32": "fp32",
        "fp16": "fp16", "float16": "fp16", "half": "fp16", "torch.float16": "fp16",
        "bf16": "bf16", "bfloat16": "bf16", "torch.bfloat16": "bf16",
    ]
}

extension FP16Config {
    init(reading r: ConfigReader) throws {
        enabled = try r.bool("enabled", false)
        autoCast = try r.bool("auto_cast", false)
        // A static scale beyond fp16's largest value (65504) turns every scaled loss into inf: every step would be skipped.
        lossScale = try r.double("loss_scale", 0, min: 0, max: 65504)
        initialScalePower = try r.int("initial_scale_power", 16, min: 0, max: 62)
        lossScaleWindow = try r.int("loss_scale_window", 1000)
        hysteresis = try r.int("hysteresis", 2, min: 1)
        consecutiveHysteresis = try r.bool("consecutive_hysteresis", false)
        minLossScale = try r.double("min_loss_scale", 1)
        fp16MasterWeightsAndGrads = try r.bool("fp16_master_weights_and_grads", false)
        if enabled && lossScale == 0 {
            if lossScaleWindow <= 0 {
                throw ConfigError(keyPath: r.keyPath("loss_scale_window"), value: "\(lossScaleWindow)",
                                  allowed: "an integer > 0 when dynamic loss scaling is on (loss_scale 0)")
            }
            if minLossScale <= 0 {
                throw ConfigError(keyPath: r.keyPath("min_loss_scale"), value: "\(minLossScale)",
                                  allowed: "a number > 0 when dynamic loss scaling is on (loss_scale 0)")
            }
        }
        r.finish()
    }
}

extension BF16Config {
    init(reading r: ConfigReader) throws {
        enabled = try r.bool("enabled", false)
        immediateGradUpdate = try r.bool("immediate_grad_update", false)
        checkGradOverflow = try r.bool("check_grad_overflow", true)
        bf16MasterWeightsAndGrads = try r.bool("bf16_master_weights_and_grads", false)
        bf16OptimizerStates = try r.bool("bf16_optimizer_states", false)
        if bf16OptimizerStates && !bf16MasterWeightsAndGrads {
            throw ConfigError(keyPath: r.keyPath("bf16_optimizer_states"), value: "true",
                              allowed: "true only with bf16_master_weights_and_grads true")
        }
        r.finish()
    }
}

extension DataTypesConfig {
    init(reading r: ConfigReader) throws {
        if let v = r.raw("grad_accum_dtype") {
            guard case .string(let s) = v, let canonical = DataTypesConfig.aliases[s.lowercased()] else {
                throw ConfigError(r.keyPath("grad_accum_dtype"), v,
                                  allowed: "\"fp32\", \"fp16\" or \"bf16\" (or an alias such as \"float32\", \"bfloat16\")")
            }
            gradAccumDType = canonical
        }
        r.finish(ignored: ["param_dtype": "not used by SwiftSpeed; ignored",
                           "buffer_dtype": "not used by SwiftSpeed; ignored",
                           "keep_in_fp32_modules": "not used by SwiftSpeed; ignored"])
    }
}
