// The `optimizer` block: its type and one typed params struct holding the union of every optimizer's keys.
// Invariant: params hold resolved values — keys left out take the default of *this* type (Adagrad's lr is 1e-2).

/// The optimizer types DeepSpeed builds from a config (`optimizer.type`, case-insensitive).
public enum OptimizerType: String, Codable, Sendable, CaseIterable {
    case adam, adamw, sgd, lamb, adagrad, lion

    /// The `params` keys this type accepts.
    public var parameterKeys: Set<String> {
        switch self {
        case .adam, .adamw: return ["lr", "betas", "eps", "weight_decay", "bias_correction", "adam_w_mode", "amsgrad"]
        case .sgd: return ["lr", "momentum", "dampening", "weight_decay", "nesterov"]
        case .lamb: return ["lr", "betas", "eps", "weight_decay", "bias_correction", "max_coeff", "min_coeff",
                            "eps_inside_sqrt", "amsgrad"]
        case .adagrad: return ["lr", "eps", "weight_decay", "lr_decay", "initial_accumulator_value"]
        case .lion: return ["lr", "betas", "weight_decay"]
        }
    }
}

/// `optimizer: {type, params}` from ds_config.json.
///
/// ```swift
/// if let block = config.optimizer, block.type == .adam {
///     let p = block.params
///     let adam = Adam(lr: p.lr, betas: (p.betas[0], p.betas[1]), eps: p.eps, weightDecay: p.weightDecay,
///                     biasCorrection: p.biasCorrection, adamWMode: p.adamWMode)
/// }
/// ```
public struct OptimizerConfig: Codable, Sendable, Equatable {
    public var type: OptimizerType
    public var params: OptimizerParams

    public init(type: OptimizerType, params: OptimizerParams? = nil) {
        self.type = type
        self.params = params ?? OptimizerParams(defaultsFor: type)
    }

    enum CodingKeys: String, CodingKey { case type, params }

    /// Encoded as in ds_config.json, with only the keys this type takes.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(params.members.filter { type.parameterKeys.contains($0.key) }, forKey: .params)
    }

    /// Decodes `{type, params}`; keys left out take this type's defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(OptimizerType.self, forKey: .type)
        let members = try c.decodeIfPresent([String: JSONValue].self, forKey: .params) ?? [:]
        do {
            let reader = try ConfigReader(path: "optimizer.params", value: .object(members), log: ConfigLog())
            params = try OptimizerParams(reading: reader, type: type)
        } catch let e as ConfigError {
            throw DecodingError.dataCorruptedError(forKey: .params, in: c, debugDescription: e.description)
        }
    }
}

/// `optimizer.params`: every key of Adam/AdamW, SGD, Lamb, Adagrad and Lion, with the
/// chosen type's DeepSpeed 0.19 defaults where the config leaves a key out. Keys that the chosen
/// type does not take keep their defaults and are not used.
public struct OptimizerParams: Codable, Sendable, Equatable {
    /// 1e-3 (Adagrad: 1e-2).
    public var lr: Double
    /// [beta1, beta2]: [0.9, 0.999] (Adam, AdamW, Lamb, Lion).
    public var betas: [Double]
    /// 1e-8 (Adagrad: 1e-10).
    public var eps: Double
    public var weightDecay: Double = 0
    public var biasCorrection = true
    /// Adam only: decoupled weight decay (AdamW) unless false. AdamW is always decoupled.
    public var adamWMode = true
    /// SGD.
    public var momentum: Double = 0
    public var dampening: Double = 0
    public var nesterov = false
    /// Lamb: the trust ratio is clamped to [minCoeff, maxCoeff].
    public var maxCoeff: Double = 10
    public var minCoeff: Double = 0.01
    public var epsInsideSqrt = false
    /// Adagrad.
    public var lrDecay: Double = 0
    public var initialAccumulatorValue: Double = 0

    /// DeepSpeed's defaults for `type`.
    public init(defaultsFor type: OptimizerType) {
        lr = type == .adagrad ? 1e-2 : 1e-3
        betas = [0.9, 0.999]
        eps = type == .adagrad ? 1e-10 : 1e-8
    }

    /// (beta1, beta2).
    public var betaPair: (Double, Double) { (betas[0], betas[1]) }

    /// Every key with its value, as JSON.
    var members: [String: JSONValue] {
        [
            "lr": .double(lr), "betas": .array(betas.map(JSONValue.double)), "eps": .double(eps),
            "weight_decay": .double(weightDecay), "bias_correction": .bool(biasCorrection),
            "adam_w_mode": .bool(adamWMode), "momentum": .double(momentum), "dampening": .double(dampening),
            "nesterov": .bool(nesterov), "max_coeff": .double(maxCoeff), "min_coeff": .double(minCoeff),
            "eps_inside_sqrt": .bool(epsInsideSqrt), "lr_decay": .double(lrDecay),
            "initial_accumulator_value": .double(initialAccumulatorValue),
        ]
    }

    enum CodingKeys: String, CodingKey {
        case lr, betas, eps, weightDecay = "weight_decay", biasCorrection = "bias_correction"
        case adamWMode = "adam_w_mode", momentum, dampening, nesterov, maxCoeff = "max_coeff"
        case minCoeff = "min_coeff", epsInsideSqrt = "eps_inside_sqrt", lrDecay = "lr_decay"
        case initialAccumulatorValue = "initial_accumulator_value"
    }
}

extension OptimizerConfig {
    static let ignoredParams: [String: String] = [
        "torch_adam": "selects torch's Adam in DeepSpeed; SwiftSpeed has one Adam, ignored",
        "fp32_optimizer_states": "SwiftSpeed keeps optimizer states in fp32; ignored",
        "foreach": "a torch implementation switch; ignored",
        "maximize": "not supported by SwiftSpeed; ignored",
    ]

    init(reading r: ConfigReader) throws {
        let typeKey = r.keyPath("type")
        guard let typeValue = r.raw("type") else {
            throw ConfigError(keyPath: typeKey, value: "missing",
                              allowed: "one of Adam, AdamW, SGD, Lamb, Adagrad, Lion")
        }
        guard case .string(let name) = typeValue, let type = OptimizerType(rawValue: name.lowercased()) else {
            let suggestion: String
            if case .string(let name) = typeValue,
               let near = closestKey(to: name.lowercased(), in: Set(OptimizerType.allCases.map(\.rawValue))) {
                suggestion = " (did you mean \"\(near)\"?)"
            } else {
                suggestion = ""
            }
            throw ConfigError(typeKey, typeValue,
                              allowed: "one of Adam, AdamW, SGD, Lamb, Adagrad, Lion (case-insensitive)\(suggestion)")
        }
        self.type = type
        var p = OptimizerParams(defaultsFor: type)
        if let pr = try r.block("params") {
            p = try OptimizerParams(reading: pr, type: type)
        }
        params = p
        _ = r.raw("legacy_fusion")
        r.finish()
    }
}

extension OptimizerParams {
    init(reading r: ConfigReader, type: OptimizerType) throws {
        self.init(defaultsFor: type)
        if let v = r.raw("max_grad_norm") {
            throw ConfigError(keyPath: r.keyPath("max_grad_norm"), value: v.rendered(),
                              allowed: "no max_grad_norm in optimizer params; use the top-level \"gradient_clipping\"",
                              reason: "max_grad_norm is not supported as an optimizer parameter (as in DeepSpeed)")
        }
        lr = try r.double("lr", lr, min: 0)
        if let v = r.raw("betas") {
            let allowed = "an array of two numbers in [0, 1)"
            guard case .array(let items) = v, items.count == 2,
                  let b = Optional(items.compactMap(\.doubleValue)), b.count == 2,
                  b.allSatisfy({ $0 >= 0 && $0 < 1 })
            else { throw ConfigError(r.keyPath("betas"), v, allowed: allowed) }
            betas = b
        }
        eps = try r.double("eps", eps, min: 0)
        weightDecay = try r.double("weight_decay", weightDecay, min: 0)
        biasCorrection = try r.bool("bias_correction", biasCorrection)
        adamWMode = try r.bool("adam_w_mode", adamWMode)
        if try r.bool("amsgrad", false) {
            throw ConfigError(keyPath: r.keyPath("amsgrad"), value: "true", allowed: "false",
                              reason: "the AMSGrad variant is not supported (DeepSpeed's FusedAdam rejects it too)")
        }
        momentum = try r.double("momentum", momentum, min: 0)
        dampening = try r.double("dampening", dampening)
        nesterov = try r.bool("nesterov", nesterov)
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw ConfigError(keyPath: r.keyPath("nesterov"), value: "true",
                              allowed: "nesterov only with momentum > 0 and dampening 0",
                              reason: "Nesterov momentum requires a momentum and zero dampening (momentum "
                                  + "\(momentum), dampening \(dampening))")
        }
        maxCoeff = try r.double("max_coeff", maxCoeff, min: 0)
        minCoeff = try r.double("min_coeff", minCoeff, min: 0)
        if minCoeff > maxCoeff {
            throw ConfigError(keyPath: r.keyPath("min_coeff"), value: "\(minCoeff)",
                              allowed: "min_coeff <= max_coeff (\(maxCoeff))")
        }
        epsInsideSqrt = try r.bool("eps_inside_sqrt", epsInsideSqrt)
        lrDecay = try r.double("lr_decay", lrDecay, min: 0)
        initialAccumulatorValue = try r.double("initial_accumulator_value", initialAccumulatorValue, min: 0)

        let accepted = type.parameterKeys
        for key in r.members.keys.sorted() where r.queried.contains(key) && !accepted.contains(key) {
            r.log.warn(r.keyPath(key), "not a parameter of \(type.rawValue); ignored",
                       suggestion: closestKey(to: key, in: accepted).map(r.keyPath))
        }
        if type == .adamw, r.contains("adam_w_mode"), !adamWMode {
            r.log.warn(r.keyPath("adam_w_mode"), "AdamW always uses decoupled weight decay; false is ignored "
                       + "(use type \"Adam\" with adam_w_mode false for L2 decay)")
            adamWMode = true
        }
        r.finish(ignored: OptimizerConfig.ignoredParams)
    }
}
