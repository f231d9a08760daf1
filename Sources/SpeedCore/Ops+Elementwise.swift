// Differentiable elementwise ops: broadcasting arithmetic, scalar arithmetic, activations, casts.
// Invariant: a broadcast input's gradient is summed back to its own shape (sumToShape) before it is returned.

extension Tensor {
    // MARK: Checks

    package static func checkCompatible(_ a: Tensor, _ b: Tensor, _ op: String) {
        precondition(a.device == b.device, "\(op): tensors on different devices (\(a.device) and \(b.device)); move one with .to(_:)")
        precondition(a.dtype == b.dtype, "\(op): dtypes \(a.dtype) and \(b.dtype) differ; convert one with .cast(to:)")
    }

    // MARK: Broadcasting binary ops

    /// `a op b` with NumPy broadcasting, recorded for autograd.
    package static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, name: String) -> Tensor {
        checkCompatible(a, b, name)
        guard let shape = Shape.broadcast(a.shape, b.shape) else {
            preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) cannot be broadcast together")
        }
        let out = a.new(shape)
        a.backend.binary(op, a, b, into: out)
        // `unowned`: the closure lives in out.gradFn, so capturing `out` strongly would be a cycle.
        return record(name, out, inputs: [a, b]) { [unowned out] g, needs in
            switch op {
            case .add:
                return [needs[0] ? g.sumToShape(a.shape) : nil, needs[1] ? g.sumToShape(b.shape) : nil]
            case .sub:
                return [needs[0] ? g.sumToShape(a.shape) : nil, needs[1] ? (-g).sumToShape(b.shape) : nil]
            case .mul:
                return [needs[0] ? (g * b).sumToShape(a.shape) : nil, needs[1] ? (g * a).sumToShape(b.shape) : nil]
            case .div:
                return [needs[0] ? (g / b).sumToShape(a.shape) : nil,
                        needs[1] ? (-(g * out) / b).sumToShape(b.shape) : nil]
            case .pow:
                return [needs[0] ? (g * b * a.pow(b - 1)).sumToShape(a.shape) : nil,
                        needs[1] ? (g * out * a.log()).sumToShape(b.shape) : nil]
            case .maximum, .minimum:
                // Ties go to `a`.
                let bWins = op == .maximum ? b.greater(a) : a.greater(b)
                let aWins = 1 - bWins
                return [needs[0] ? (g * aWins).sumToShape(a.shape) : nil,
                        needs[1] ? (g * bWins).sumToShape(b.shape) : nil]
            case .equal, .greater:
                return [nil, nil]
            }
        }
    }

    /// Sums a broadcast gradient back down to `target` (the shape of the input that was broadcast).
    public func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        var t = self
        let extra = rank - target.count
        precondition(extra >= 0, "sumToShape: \(shape) has lower rank than \(target)")
        if extra > 0 { t = t.sum(axes: Array(0..<extra)) }
        let axes = (0..<target.count).filter { target[$0] == 1 && t.shape[$0] != 1 }
        if !axes.isEmpty { t = t.sum(axes: axes, keepDims: true) }
        precondition(t.shape == target, "sumToShape: cannot reduce \(shape) to \(target)")
        return t
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b, name: "add") }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b, name: "sub") }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b, name: "mul") }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(.div, a, b, name: "div") }

    /// Elementwise `self ^ exponent` (broadcasting).
    public func pow(_ exponent: Tensor) -> Tensor { Tensor.binary(.pow, self, exponent, name: "pow") }
    public func maximum(_ other: Tensor) -> Tensor { Tensor.binary(.maximum, self, other, name: "maximum") }
    public func minimum(_ other: Tensor) -> Tensor { Tensor.binary(.minimum, self, other, name: "minimum") }
    /// 1 where equal, else 0 (not differentiable).
    public func equal(_ other: Tensor) -> Tensor { Tensor.binary(.equal, self, other, name: "equal") }
    /// 1 where `self > other`, else 0 (not differentiable).
    public func greater(_ other: Tensor) -> Tensor { Tensor.binary(.greater, self, other, name: "greater") }

    /// `self + other` accumulated without recording (used by the autograd engine).
    package func adding(_ other: Tensor) -> Tensor {
        let out = new(Shape.broadcast(shape, other.shape) ?? shape)
        backend.binary(.add, self, other, into: out)
        return out
    }

    // MARK: Unary ops

    /// `op(self)`, recorded for autograd with the backend's fused derivative.
    package func unary(_ op: UnaryOp, name: String) -> Tensor {
        precondition(dtype.isFloatingPoint, "\(name): needs a floating-point tensor, got \(dtype)")
        let out = new(shape)
        backend.unary(op, self, into: out)
        return Tensor.record(name, out, inputs: [self]) { [unowned out] g, _ in
            let gx = g.new(g.shape)
            g.backend.unaryBackward(op, x: self, y: out, gradOut: g, into: gx)
            return [gx]
        }
    }

    public static prefix func - (x: Tensor) -> Tensor { x.unary(.neg, name: "neg") }
    public func exp() -> Tensor { unary(.exp, name: "exp") }
    public func log() -> Tensor { unary(.log, name: "log") }
    public func sqrt() -> Tensor { unary(.sqrt, name: "sqrt") }
    public func tanh() -> Tensor { unary(.tanh, name: "tanh") }
    public func sigmoid() -> Tensor { unary(.sigmoid, name: "sigmoid") }
    public func relu() -> Tensor { unary(.relu, name: "relu") }
    public func abs() -> Tensor { unary(.abs, name: "abs") }
    public func square() -> Tensor { unary(.square, name: "square") }
    /// GELU; `approximate: true` is the tanh form GPT-2 uses, `false` the exact erf form.
    public func gelu(approximate: Bool = true) -> Tensor {
        unary(approximate ? .gelu : .geluExact, name: approximate ? "gelu" : "gelu_exact")
    }
    /// SiLU (swish) `x · sigmoid(x)`, Llama's activation; ``swiglu(gate:up:)`` fuses it with the up projection.
    public func silu() -> Tensor { unary(.silu, name: "silu") }
    /// Elementwise `self ^ p` for a scalar exponent.
    public func pow(_ p: Double) -> Tensor { unary(.pow(p), name: "pow_scalar") }

    // MARK: Scalar arithmetic

    package func affine(scale: Double, shift: Double) -> Tensor {
        unary(.affine(scale: scale, shift: shift), name: "affine")
    }

    public static func + (a: Tensor, s: Double) -> Tensor { a.affine(scale: 1, shift: s) }
    public static func + (s: Double, a: Tensor) -> Tensor { a.affine(scale: 1, shift: s) }
    public static func - (a: Tensor, s: Double) -> Tensor { a.affine(scale: 1, shift: -s) }
    public static func - (s: Double, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }
    public static func * (a: Tensor, s: Double) -> Tensor { a.affine(scale: s, shift: 0) }
    public static func * (s: Double, a: Tensor) -> Tensor { a.affine(scale: s, shift: 0) }
    public static func / (a: Tensor, s: Double) -> Tensor { a.affine(scale: 1 / s, shift: 0) }
    public static func / (s: Double, a: Tensor) -> Tensor { a.pow(-1).affine(scale: s, shift: 0) }

    // MARK: Copies and casts

    /// A contiguous copy that stays in the graph (gradient flows straight through).
    public func copy() -> Tensor {
        let out = new(shape)
        backend.cast(self, into: out)
        return Tensor.record("copy", out, inputs: [self]) { g, _ in [g] }
    }

    /// Converts elements to `dtype`; the gradient is converted back.
    public func cast(to dtype: DType) -> Tensor {
        if dtype == self.dtype { return self }
        let out = new(shape, dtype: dtype)
        backend.cast(self, into: out)
        guard dtype.isFloatingPoint && self.dtype.isFloatingPoint else { return out }
        return Tensor.record("cast", out, inputs: [self]) { g, _ in [g.cast(to: self.dtype)] }
    }

    // MARK: In-place (outside autograd)

    /// `self += other` in place, not recorded (optimizers, gradient accumulation).
    public func addInPlace(_ other: Tensor, scale: Double = 1) {
        Tensor.checkCompatible(self, other, "addInPlace")
        let src = scale == 1 ? other : noGrad { other * scale }
        backend.binary(.add, self, src, into: self)
    }

    /// `self *= factor` in place, not recorded.
    public func scale(by factor: Double) {
        backend.unary(.affine(scale: factor, shift: 0), self, into: self)
    }

    /// Fills every element with `value` in place.
    public func fill(_ value: Double) { backend.fill(self, value: value) }
}
