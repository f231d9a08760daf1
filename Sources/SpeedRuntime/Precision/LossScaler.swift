// fp16 loss scaling exactly as DeepSpeed's DynamicLossScaler (and the static LossScaler).
// Invariant: `update(overflow:)` is called once per optimizer step, overflowed or not; the scale
// grows only after `window` consecutive clean steps counted from the last overflow.

/// Thrown when a dynamic scaler overflows while already at `minScale` (DeepSpeed raises too).
public struct LossScaleError: Error, CustomStringConvertible {
    public let scale: Double
    public var description: String {
        "fp16 loss scale is already at its minimum (\(scale)) and gradients still overflow — cannot decrease "
            + "the scale anymore. Lower the learning rate, check the data for inf/NaN, or use bf16."
    }
}

/// Loss scale state machine, Codable for checkpoints.
///
/// ```swift
/// var scaler = LossScaler(dynamic: true, initialScalePower: 16, window: 1000, hysteresis: 2,
///                         consecutiveHysteresis: false, minScale: 1)
/// try scaler.update(overflow: true)   // hysteresis 2 -> 1, scale unchanged
/// try scaler.update(overflow: true)   // scale 65536 -> 32768
/// ```
public struct LossScaler: Codable, Sendable, Hashable {
    public private(set) var scale: Double
    public let dynamic: Bool
    public let window: Int
    public let minScale: Double
    public let hysteresis: Int
    public let consecutiveHysteresis: Bool
    public private(set) var currentHysteresis: Int
    public private(set) var iteration = 0
    public private(set) var lastOverflowIteration = -1

    /// A dynamic scaler (`loss_scale == 0` in the config).
    public init(dynamic: Bool, initialScalePower: Int = 16, window: Int = 1000, hysteresis: Int = 2,
                consecutiveHysteresis: Bool = false, minScale: Double = 1) {
        self.scale = dynamic ? Double(1 << initialScalePower) : 1
        self.dynamic = dynamic
        self.window = window
        self.minScale = minScale
        self.hysteresis = hysteresis
        self.consecutiveHysteresis = consecutiveHysteresis
        self.currentHysteresis = hysteresis
    }

    /// A static scaler with a fixed `scale` (`loss_scale > 0`).
    public init(staticScale: Double) {
        self.init(dynamic: false)
        self.scale = staticScale
    }

    /// Advances one optimizer step.
    /// - Throws: ``LossScaleError`` when a dynamic scaler overflows at its minimum scale.
    public mutating func update(overflow: Bool) throws {
        defer { iteration += 1 }
        guard dynamic else { return }
        if overflow {
            if hysteresis == 1 || currentHysteresis == 1 {
                if scale == minScale { throw LossScaleError(scale: scale) }
                scale = Swift.max(scale / 2, minScale)
            } else {
                currentHysteresis -= 1
            }
            lastOverflowIteration = iteration
        } else {
            if consecutiveHysteresis { currentHysteresis = hysteresis }
            let stable = iteration - lastOverflowIteration - 1
            if stable > 0 && stable % window == 0 {
                if !consecutiveHysteresis { currentHysteresis = hysteresis }
                scale *= 2
            }
        }
    }
}
