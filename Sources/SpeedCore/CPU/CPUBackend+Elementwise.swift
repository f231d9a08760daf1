// CPU elementwise kernels: unary maps and their derivatives, broadcasting binary ops, select.
// Invariant: `out` may alias an input (in-place accumulate); each element is read before it is written.

import RealModule

extension CPUBackend {
    public func unary(_ op: UnaryOp, _ x: Tensor, into out: Tensor) {
        if let (i, o) = promoted([x], [out]) { unary(op, i[0]!, into: o[0]!); return finish(o, [out]) }
        if x.dtype == .float32 {
            let xs = Unchecked(x.pointer(as: Float.self)), ys = Unchecked(out.pointer(as: Float.self))
            parallel.forEach(x.count, grain: 1 << 14) { r in
                let n = r.count, xp = xs.value + r.lowerBound, yp = ys.value + r.lowerBound
                switch op {
                case .exp: FastMath.map(xp, yp, n) { FastMath.exp($0) }
                case .tanh: FastMath.map(xp, yp, n) { FastMath.tanh($0) }
                case .sigmoid: FastMath.map(xp, yp, n) { 1 / (1 + FastMath.exp(-$0)) }
                case .silu: FastMath.map(xp, yp, n) { $0 / (1 + FastMath.exp(-$0)) }
                case .gelu: FastMath.map(xp, yp, n) { v in
                    0.5 * v * (1 + FastMath.tanh(0.797_884_6 * (v + 0.044715 * v * v * v)))
                }
                default: Self.unaryLoop(op, xp, yp, n)
                }
            }
        } else {
            let xs = Unchecked(x.pointer(as: Double.self)), ys = Unchecked(out.pointer(as: Double.self))
            parallel.forEach(x.count, grain: 1 << 14) { r in
                Self.unaryLoop(op, xs.value + r.lowerBound, ys.value + r.lowerBound, r.count)
            }
        }
    }

    @inline(__always)
    static func unaryLoop<T: CPUFloat>(_ op: UnaryOp, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int) {
        switch op {
        case .neg: for i in 0..<n { y[i] = -x[i] }
        case .exp: for i in 0..<n { y[i] = T.exp(x[i]) }
        case .log: for i in 0..<n { y[i] = T.log(x[i]) }
        case .sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
        case .tanh: for i in 0..<n { y[i] = T.tanh(x[i]) }
        case .sigmoid: for i in 0..<n { y[i] = 1 / (1 + T.exp(-x[i])) }
        case .silu: for i in 0..<n { y[i] = x[i] / (1 + T.exp(-x[i])) }
        case .relu: for i in 0..<n { y[i] = x[i] > 0 ? x[i] : 0 }
        case .abs: for i in 0..<n { y[i] = Swift.abs(x[i]) }
        case .square: for i in 0..<n { y[i] = x[i] * x[i] }
        case .gelu:
            for i in 0..<n { let v = x[i]; y[i] = v / 2 * (1 + T.tanh(T(0.7978845608028654) * (v + T(0.044715) * v * v * v))) }
        case .geluExact: for i in 0..<n { let v = x[i]; y[i] = v / 2 * (1 + T.erf(v * T(0.7071067811865476))) }
        case .pow(let p):
            let e = T(p)
            if p == 2 { for i in 0..<n { y[i] = x[i] * x[i] } } else { for i in 0..<n { y[i] = Self.power(x[i], e) } }
        case .affine(let s, let b):
            let (s, b) = (T(s), T(b))
            for i in 0..<n { y[i] = x[i] * s + b }
        }
    }

    public func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor, gradOut: Tensor, into gradIn: Tensor) {
        if let (i, o) = promoted([x, y, gradOut], [gradIn]) {
            unaryBackward(op, x: i[0]!, y: i[1]!, gradOut: i[2]!, into: o[0]!); return finish(o, [gradIn])
        }
        switch x.dtype {
        case .float32: unaryBackwardKernel(Float.self, op, x, y, gradOut, gradIn)
        default: unaryBackwardKernel(Double.self, op, x, y, gradOut, gradIn)
        }
    }

    private func unaryBackwardKernel<T: CPUFloat>(_: T.Type, _ op: UnaryOp, _ x: Tensor, _ y: Tensor,
                                                  _ g: Tensor, _ gx: Tensor) {
        let xs = Unchecked(x.pointer(as: T.self)), ys = Unchecked(y.pointer(as: T.self))
        let gs = Unchecked(g.pointer(as: T.self)), out = Unchecked(gx.pointer(as: T.self))
        parallel.forEach(x.count, grain: 1 << 13) { r in
            let x = xs.value, y = ys.value, g = gs.value, d = out.value
            switch op {
            case .neg: for i in r { d[i] = -g[i] }
            case .exp: for i in r { d[i] = g[i] * y[i] }
            case .log: for i in r { d[i] = g[i] / x[i] }
            case .sqrt: for i in r { d[i] = g[i] / (2 * y[i]) }
            case .tanh: for i in r { d[i] = g[i] * (1 - y[i] * y[i]) }
            case .sigmoid: for i in r { d[i] = g[i] * y[i] * (1 - y[i]) }
            case .silu:
                // silu' = s · (1 + x · (1 − s)), s = sigmoid(x)
                for i in r { let s = 1 / (1 + T.exp(-x[i])); d[i] = g[i] * (s * (1 + x[i] * (1 - s))) }
            case .relu: for i in r { d[i] = x[i] > 0 ? g[i] : 0 }
            case .abs: for i in r { d[i] = x[i] > 0 ? g[i] : (x[i] < 0 ? -g[i] : 0) }
            case .square: for i in r { d[i] = 2 * x[i] * g[i] }
            case .gelu:
                let k = T(0.7978845608028654), c = T(0.044715)
                if T.self == Float.self {
                    // Vectorised: tanh dominates the cost.
                    let xf = UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self)
                    let gf = UnsafeMutableRawPointer(g).assumingMemoryBound(to: Float.self)
                    let df = UnsafeMutableRawPointer(d).assumingMemoryBound(to: Float.self)
                    var i = r.lowerBound
                    while i + 8 <= r.upperBound {
                        let v = UnsafeRawPointer(xf + i).loadUnaligned(as: F8.self)
                        let gv = UnsafeRawPointer(gf + i).loadUnaligned(as: F8.self)
                        let v2: F8 = v * v
                        let inner: F8 = 0.797_884_6 * (v + 0.044715 * v2 * v)
                        let t: F8 = FastMath.tanh(inner)
                        let slope: F8 = 0.797_884_6 * (1 + 0.134145 * v2)
                        let dv: F8 = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * slope
                        UnsafeMutableRawPointer(df + i).storeBytes(of: gv * dv, as: F8.self)
                        i += 8
                    }
                    while i < r.upperBound {
                        let v = x[i], t = T.tanh(k * (v + c * v * v * v))
                        d[i] = g[i] * (T(0.5) * (1 + t) + T(0.5) * v * (1 - t * t) * k * (1 + 3 * c * v * v))
                        i += 1
                    }
                } else {
                    for i in r {
                        let v = x[i], t = T.tanh(k * (v + c * v * v * v))
                        d[i] = g[i] * (T(0.5) * (1 + t) + T(0.5) * v * (1 - t * t) * k * (1 + 3 * c * v * v))
                    }
                }
            case .geluExact:
                let invSqrt2 = T(0.7071067811865476), invSqrt2Pi = T(0.3989422804014327)
                for i in r {
                    let v = x[i]
                    d[i] = g[i] * (T(0.5) * (1 + T.erf(v * invSqrt2)) + v * invSqrt2Pi * T.exp(-v * v / 2))
                }
            case .pow(let p):
                let e = T(p)
                for i in r { d[i] = g[i] * e * Self.power(x[i], e - 1) }
            case .affine(let s, _):
                let s = T(s)
                for i in r { d[i] = g[i] * s }
            }
        }
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, into out: Tensor) {
        if let (i, o) = promoted([a, b], [out]) { binary(op, i[0]!, i[1]!, into: o[0]!); return finish(o, [out]) }
        switch a.dtype {
        case .float32: binaryKernel(Float.self, op, a, b, out)
        case .float64: binaryKernel(Double.self, op, a, b, out)
        default: preconditionFailure("binary \(op): integer tensors are not supported (dtype \(a.dtype)); cast to float first")
        }
    }

    private func binaryKernel<T: CPUFloat>(_: T.Type, _ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let target = out.shape
        let (shape, st) = StridedRows.collapse(target, [Shape.broadcastStrides(a.shape, to: target),
                                                        Shape.broadcastStrides(b.shape, to: target),
                                                        Shape.strides(target)])
        let rows = StridedRows(shape: shape, strides: st)
        let pa = Unchecked(a.pointer(as: T.self)), pb = Unchecked(b.pointer(as: T.self))
        let po = Unchecked(out.pointer(as: T.self))
        let inner = rows.inner, sa = st[0].last!, sb = st[1].last!
        parallel.forEach(rows.count, grain: Swift.max(1, 16384 / Swift.max(inner, 1))) { range in
            rows.forEach(range) { offs in
                Self.binaryRow(op, pa.value + offs[0], sa, pb.value + offs[1], sb, po.value + offs[2], inner)
            }
        }
    }

    /// One row with inner strides 0 or 1 (specialised so the common cases vectorise).
    @inline(__always)
    static func binaryRow<T: CPUFloat>(_ op: BinaryOp, _ a: UnsafeMutablePointer<T>, _ sa: Int,
                                       _ b: UnsafeMutablePointer<T>, _ sb: Int, _ o: UnsafeMutablePointer<T>, _ n: Int) {
        @inline(__always) func run(_ f: (T, T) -> T) {
            if sa == 1 && sb == 1 { for i in 0..<n { o[i] = f(a[i], b[i]) } }
            else if sa == 1 && sb == 0 { let bv = b[0]; for i in 0..<n { o[i] = f(a[i], bv) } }
            else if sa == 0 && sb == 1 { let av = a[0]; for i in 0..<n { o[i] = f(av, b[i]) } }
            else { for i in 0..<n { o[i] = f(a[i &* sa], b[i &* sb]) } }
        }
        switch op {
        case .add: run { $0 + $1 }
        case .sub: run { $0 - $1 }
        case .mul: run { $0 * $1 }
        case .div: run { $0 / $1 }
        case .pow: run { Self.power($0, $1) }
        case .maximum: run { $0 >= $1 || $0.isNaN ? $0 : $1 }
        case .minimum: run { $0 <= $1 || $0.isNaN ? $0 : $1 }
        case .equal: run { $0 == $1 ? 1 : 0 }
        case .greater: run { $0 > $1 ? 1 : 0 }
        }
    }

    /// `x^e` as C's `pow`: a negative base with an integral exponent is defined (RealModule's `pow` is NaN there).
    @inline(__always)
    static func power<T: CPUFloat>(_ x: T, _ e: T) -> T {
        if x < 0, let n = Int(exactly: e) { return T.pow(x, n) }
        return T.pow(x, e)
    }

    public func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, into out: Tensor) {
        if let (i, o) = promoted([cond, a, b], [out]) { select(i[0]!, i[1]!, i[2]!, into: o[0]!); return finish(o, [out]) }
        let c = cond.dtype == out.dtype ? cond : promoteCondition(cond, to: out.dtype)
        switch out.dtype {
        case .float32: selectKernel(Float.self, c, a, b, out)
        default: selectKernel(Double.self, c, a, b, out)
        }
    }

    private func promoteCondition(_ cond: Tensor, to dtype: DType) -> Tensor {
        let t = Tensor(empty: cond.shape, dtype: dtype, device: cond.device)
        cast(cond, into: t)
        return t
    }

    private func selectKernel<T: CPUFloat>(_: T.Type, _ c: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let target = out.shape
        let (shape, st) = StridedRows.collapse(target, [Shape.broadcastStrides(c.shape, to: target),
                                                        Shape.broadcastStrides(a.shape, to: target),
                                                        Shape.broadcastStrides(b.shape, to: target),
                                                        Shape.strides(target)])
        let rows = StridedRows(shape: shape, strides: st)
        let pc = Unchecked(c.pointer(as: T.self)), pa = Unchecked(a.pointer(as: T.self))
        let pb = Unchecked(b.pointer(as: T.self)), po = Unchecked(out.pointer(as: T.self))
        let inner = rows.inner, sc = st[0].last!, sa = st[1].last!, sb = st[2].last!
        parallel.forEach(rows.count, grain: Swift.max(1, 16384 / Swift.max(inner, 1))) { range in
            rows.forEach(range) { offs in
                let c = pc.value + offs[0], a = pa.value + offs[1], b = pb.value + offs[2], o = po.value + offs[3]
                for i in 0..<inner { o[i] = c[i &* sc] != 0 ? a[i &* sa] : b[i &* sb] }
            }
        }
    }
}
