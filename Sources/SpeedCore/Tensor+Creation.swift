// Making tensors: constants, ranges, Swift arrays, seeded random draws, and reading values back.
// Invariant: random creation draws element i from counter (rng.offset + i), so results never depend on threads.

/// Scalar types that can fill or be read from a tensor.
public protocol TensorScalar: Sendable {
    static var dtype: DType { get }
    init(fromDouble value: Double)
    var doubleValue: Double { get }
}

extension Float: TensorScalar {
    public static var dtype: DType { .float32 }
    public init(fromDouble value: Double) { self = Float(value) }
    public var doubleValue: Double { Double(self) }
}
extension Double: TensorScalar {
    public static var dtype: DType { .float64 }
    public init(fromDouble value: Double) { self = value }
    public var doubleValue: Double { self }
}
extension Int32: TensorScalar {
    public static var dtype: DType { .int32 }
    public init(fromDouble value: Double) { self = Int32(value) }
    public var doubleValue: Double { Double(self) }
}
extension Int: TensorScalar {
    public static var dtype: DType { .int64 }
    public init(fromDouble value: Double) { self = Int(value) }
    public var doubleValue: Double { Double(self) }
}

extension Tensor {
    /// A tensor of `shape` filled with `value`.
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32,
                            device: Device = .cpu, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(empty: shape, dtype: dtype, device: device)
        t.backend.fill(t, value: value)
        t.requiresGrad = requiresGrad
        return t
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                             requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, dtype: dtype, device: device, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                            requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, dtype: dtype, device: device, requiresGrad: requiresGrad)
    }

    /// `[start, start + step, …)` below `end`, like `torch.arange`.
    public static func arange(_ start: Double, _ end: Double, step: Double = 1,
                              dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        precondition(step != 0, "arange: step must be non-zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        return Tensor((0..<n).map { start + Double($0) * step }, shape: [n], dtype: dtype, device: device)
    }

    /// `[0, 1, …, end)`, like `torch.arange(end)`.
    public static func arange(_ end: Double, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        arange(0, end, dtype: dtype, device: device)
    }

    /// A tensor holding `values` (row-major) with `shape` (default: 1-D).
    public convenience init<S: TensorScalar>(_ values: [S], shape: [Int]? = nil, dtype: DType? = nil,
                                             device: Device = .cpu, requiresGrad: Bool = false) {
        let shape = shape ?? [values.count]
        precondition(Shape.count(shape) == values.count,
                     "Tensor: \(values.count) values do not fill shape \(shape)")
        let dtype = dtype ?? S.dtype
        self.init(empty: shape, dtype: dtype, device: device)
        let staged = Tensor(empty: shape, dtype: S.dtype, device: .cpu)
        values.withUnsafeBytes { staged.rawPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        staged.assign(to: self)
        self.requiresGrad = requiresGrad
    }

    /// A 2-D tensor from nested rows.
    public convenience init<S: TensorScalar>(_ rows: [[S]], dtype: DType? = nil, device: Device = .cpu,
                                             requiresGrad: Bool = false) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "Tensor: rows have different lengths")
        self.init(rows.flatMap { $0 }, shape: [rows.count, cols], dtype: dtype, device: device,
                  requiresGrad: requiresGrad)
    }

    /// A scalar (rank-0) tensor.
    public convenience init(scalar: Double, dtype: DType = .float32, device: Device = .cpu) {
        self.init([scalar], shape: [], dtype: dtype, device: device)
    }

    /// Samples N(mean, std²) from `rng` (advancing it by `count`).
    public static func randn(_ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .float32,
                             device: Device = .cpu, rng: inout RandomStream) -> Tensor {
        let t = Tensor(empty: shape, dtype: dtype, device: device)
        t.backend.random(t, normal: true, a: mean, b: std, seed: rng.seed, offset: rng.advance(by: t.count))
        return t
    }

    /// Samples U[low, high) from `rng` (advancing it by `count`).
    public static func uniform(_ shape: [Int], low: Double = 0, high: Double = 1, dtype: DType = .float32,
                               device: Device = .cpu, rng: inout RandomStream) -> Tensor {
        let t = Tensor(empty: shape, dtype: dtype, device: device)
        t.backend.random(t, normal: false, a: low, b: high, seed: rng.seed, offset: rng.advance(by: t.count))
        return t
    }

    /// The tensor on `device`: `self` when it is already there, else a copy (recorded for autograd).
    public func to(_ device: Device) -> Tensor {
        if device == self.device { return self }
        let out = Tensor(empty: shape, dtype: dtype, device: device)
        if self.device.isCPU {
            out.backend.write(rawPointer, into: out)
        } else if device.isCPU {
            backend.read(self, into: out.rawPointer)
        } else {
            let host = self.to(.cpu)
            out.backend.write(host.rawPointer, into: out)
        }
        return Tensor.record("to", out, inputs: [self]) { g, _ in [g.to(self.device)] }
    }

    /// The elements as `[S]`, converting dtype as needed (copies to the CPU).
    public func scalars<S: TensorScalar>(as type: S.Type = Float.self) -> [S] {
        let host = device.isCPU ? self : to(.cpu)
        let typed = host.dtype == S.dtype ? host : host.cast(to: S.dtype)
        return Array(UnsafeBufferPointer(start: typed.pointer(as: S.self), count: count))
    }

    /// The elements as `[Float]`.
    public var scalars: [Float] { scalars(as: Float.self) }

    /// The single element of a one-element tensor, as Double.
    public func item() -> Double {
        precondition(count == 1, "item: tensor has \(count) elements (shape \(shape)), not 1")
        return scalars(as: Double.self)[0]
    }

    /// Copies `self`'s elements into `target` (same count) and returns `target`.
    @discardableResult
    package func assign(to target: Tensor) -> Tensor {
        precondition(target.count == count, "assign: \(shape) into \(target.shape)")
        if target.device == device {
            backend.cast(self, into: target)
        } else {
            let moved = noGrad { self.to(target.device) }
            target.backend.cast(moved, into: target)
        }
        return target
    }

    /// Overwrites this tensor's elements with `source`'s (same count; dtype converted), in place and
    /// outside autograd, like PyTorch's `p.data.copy_(src)`.
    public func copyData(from source: Tensor) {
        precondition(source.count == count, "copyData: source shape \(source.shape) does not match \(shape)")
        source.assign(to: self)
    }
}
