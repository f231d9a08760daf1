// DeepSpeed's batch-size rule: derive the missing one of (train batch, micro-batch, grad-accum), then check them.
// Invariant: the arithmetic is Python's — floor division in DeepSpeed's order — so derived sizes match DeepSpeed's exactly.

/// The three batch sizes after DeepSpeed's rule.
public struct BatchSizes: Sendable, Equatable, CustomStringConvertible {
    public var trainBatchSize: Int
    public var microBatchSizePerGPU: Int
    public var gradientAccumulationSteps: Int

    public init(trainBatchSize: Int, microBatchSizePerGPU: Int, gradientAccumulationSteps: Int) {
        self.trainBatchSize = trainBatchSize
        self.microBatchSizePerGPU = microBatchSizePerGPU
        self.gradientAccumulationSteps = gradientAccumulationSteps
    }

    public var description: String {
        "TB \(trainBatchSize), MB \(microBatchSizePerGPU), GAS \(gradientAccumulationSteps)"
    }
}

/// Python's `a // b` (rounds toward −∞).
func floorDiv(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

extension DeepSpeedConfig {
    /// DeepSpeed's batch rule for data-parallel world size W (integer floor division):
    /// TB, MB, GAS given → kept; TB, MB → GAS = TB // MB // W; TB, GAS → MB = TB // W // GAS;
    /// MB, GAS → TB = MB·GAS·W; TB only → GAS = 1, MB = TB // W; MB only → GAS = 1, TB = MB·W;
    /// neither TB nor MB → error. Then all three must be > 0 and TB == MB·GAS·W.
    ///
    /// - Throws: ``ConfigError`` naming the key; the consistency error shows DeepSpeed's numbers,
    ///   e.g. `train_batch_size 24 != 3 * 2 * 2`.
    ///
    /// ```swift
    /// try DeepSpeedConfig.resolveBatch(trainBatchSize: 32, microBatchSizePerGPU: 4,
    ///                                   gradientAccumulationSteps: nil, worldSize: 2)   // GAS 4
    /// ```
    public static func resolveBatch(trainBatchSize tb: Int?, microBatchSizePerGPU mb: Int?,
                                    gradientAccumulationSteps gas: Int?, worldSize w: Int) throws -> BatchSizes {
        guard w >= 1 else {
            throw ConfigError(keyPath: "world_size", value: "\(w)", allowed: "an integer >= 1 (data-parallel ranks)")
        }
        // Divisors must be positive before deriving (DeepSpeed would divide by zero).
        for (key, value) in [("train_micro_batch_size_per_gpu", mb), ("gradient_accumulation_steps", gas),
                             ("train_batch_size", tb)] {
            if let value, value <= 0 {
                throw ConfigError(keyPath: key, value: "\(value)", allowed: "an integer > 0")
            }
        }
        var sizes: BatchSizes
        var derivation: [String: String] = [:]
        switch (tb, mb, gas) {
        case let (tb?, mb?, gas?):
            sizes = BatchSizes(trainBatchSize: tb, microBatchSizePerGPU: mb, gradientAccumulationSteps: gas)
        case let (tb?, mb?, nil):
            sizes = BatchSizes(trainBatchSize: tb, microBatchSizePerGPU: mb,
                               gradientAccumulationSteps: floorDiv(floorDiv(tb, mb), w))
            derivation["gradient_accumulation_steps"] =
                "train_batch_size \(tb) // train_micro_batch_size_per_gpu \(mb) // world size \(w)"
        case let (tb?, nil, gas?):
            sizes = BatchSizes(trainBatchSize: tb, microBatchSizePerGPU: floorDiv(floorDiv(tb, w), gas),
                               gradientAccumulationSteps: gas)
            derivation["train_micro_batch_size_per_gpu"] =
                "train_batch_size \(tb) // world size \(w) // gradient_accumulation_steps \(gas)"
        case let (nil, mb?, gas?):
            sizes = BatchSizes(trainBatchSize: try batchProduct(mb, gas, w), microBatchSizePerGPU: mb, gradientAccumulationSteps: gas)
        case let (tb?, nil, nil):
            sizes = BatchSizes(trainBatchSize: tb, microBatchSizePerGPU: floorDiv(tb, w), gradientAccumulationSteps: 1)
            derivation["train_micro_batch_size_per_gpu"] = "train_batch_size \(tb) // world size \(w)"
        case let (nil, mb?, nil):
            sizes = BatchSizes(trainBatchSize: try batchProduct(mb, 1, w), microBatchSizePerGPU: mb, gradientAccumulationSteps: 1)
        case (nil, nil, _):
            throw ConfigError(keyPath: "train_batch_size", value: "missing",
                              allowed: "train_batch_size and/or train_micro_batch_size_per_gpu (gradient_accumulation_steps optional)",
                              reason: "either train_batch_size or train_micro_batch_size_per_gpu needs to be provided")
        }
        for (key, value) in [("train_batch_size", sizes.trainBatchSize),
                             ("train_micro_batch_size_per_gpu", sizes.microBatchSizePerGPU),
                             ("gradient_accumulation_steps", sizes.gradientAccumulationSteps)] where value <= 0 {
            throw ConfigError(keyPath: key, value: "\(value)",
                              allowed: "batch sizes whose derived values are > 0 (e.g. train_batch_size >= "
                                  + "train_micro_batch_size_per_gpu * world size)",
                              reason: "\(key) \(value)" + (derivation[key].map { " (derived as \($0))" } ?? "")
                                  + " has to be greater than 0")
        }
        for (key, value) in [("train_batch_size", sizes.trainBatchSize),
                             ("train_micro_batch_size_per_gpu", sizes.microBatchSizePerGPU),
                             ("gradient_accumulation_steps", sizes.gradientAccumulationSteps)] where value > maxBatch {
            throw ConfigError(keyPath: key, value: "\(value)", allowed: "at most \(maxBatch) (2^40)",
                              reason: "\(key) \(value)" + (derivation[key].map { " (derived as \($0))" } ?? "")
                                  + " is larger than any real batch (2^40 samples); sample counters would overflow")
        }
        let product = try batchProduct(sizes.microBatchSizePerGPU, sizes.gradientAccumulationSteps, w)
        if sizes.trainBatchSize != product {
            throw ConfigError(
                keyPath: "train_batch_size", value: "\(sizes.trainBatchSize)",
                allowed: "train_batch_size == train_micro_batch_size_per_gpu * gradient_accumulation_steps * "
                    + "world size; give any two of the three and the third is derived",
                reason: "train_batch_size \(sizes.trainBatchSize) != \(sizes.microBatchSizePerGPU) * "
                    + "\(sizes.gradientAccumulationSteps) * \(w) (train_micro_batch_size_per_gpu * "
                    + "gradient_accumulation_steps * data-parallel world size = \(product))")
        }
        return sizes
    }

    /// The largest batch size accepted: far above any real one, and small enough that sample counters
    /// (`global_samples` += train_batch_size per step) cannot overflow in 2^23 steps.
    public static let maxBatch = 1 << 40

    /// `mb · gas · w`, or an error naming the overflow (Python's integers never overflow; 64-bit ones do).
    static func batchProduct(_ mb: Int, _ gas: Int, _ w: Int) throws -> Int {
        let (a, o1) = mb.multipliedReportingOverflow(by: gas)
        let (b, o2) = a.multipliedReportingOverflow(by: w)
        guard !o1 && !o2 else {
            throw ConfigError(keyPath: "train_batch_size", value: "\(mb) * \(gas) * \(w)",
                              allowed: "batch sizes whose product fits in 64 bits",
                              reason: "arithmetic overflow: train_micro_batch_size_per_gpu \(mb) * gradient_accumulation_steps "
                                  + "\(gas) * world size \(w) exceeds \(Int.max); use realistic batch sizes")
        }
        return b
    }
}
