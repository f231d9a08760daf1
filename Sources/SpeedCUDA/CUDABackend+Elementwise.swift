// Backend creation, movement and elementwise kernels on the GPU: fill, cast, strided copy, dropout, random,
// unary (+ backward), broadcasting binary and select.
// Invariant: broadcasting and strided layouts are collapsed on the host into one SSIndexer per launch, built from
// the same strides the CPU backend walks, so both backends visit elements in the same order.

import SpeedCore

extension CUDABackend {
    public func fill(_ out: Tensor, value: Double) {
        let n = out.count
        guard n > 0 else { return }
        let (name, bits): (String, KernelArgument)
        switch out.dtype {
        case .float32: (name, bits) = ("ss_fill_b32", .u32(Float(value).bitPattern))
        case .float64: (name, bits) = ("ss_fill_b64", .u64(value.bitPattern))
        case .bfloat16: (name, bits) = ("ss_fill_b16", .u16(BFloat16(value).bitPattern))
        case .float16: (name, bits) = ("ss_fill_b16", .u16(Float16(value).bitPattern))
        case .int32: (name, bits) = ("ss_fill_b32", .u32(UInt32(bitPattern: Int32(Self.saturating(value, Int32.self)))))
        case .int64: (name, bits) = ("ss_fill_b64", .u64(UInt64(bitPattern: Self.saturating(value, Int64.self))))
        }
        launch(.memory, name, grid: flatGrid(n), [.pointer(address(out)), .int(n), bits])
    }

    /// Truncates toward zero, saturating at the type's bounds; NaN becomes 0 (SpeedCore's rule).
    static func saturating<I: FixedWidthInteger>(_ x: Double, _: I.Type) -> Int64 {
        if x.isNaN { return 0 }
        if x <= Double(I.min) { return Int64(I.min) }
        if x >= Double(I.max) { return Int64(I.max) }
        return Int64(x.rounded(.towardZero))
    }

    public func cast(_ x: Tensor, into out: Tensor) {
        precondition(x.count == out.count, "cast: \(x.shape) into \(out.shape)")
        guard x.count > 0 else { return }
        if x.dtype == out.dtype { return copyBytes(from: address(x), to: address(out), x.byteCount) }
        launch(.memory, "ss_cast_\(Self.suffix(x.dtype))_\(Self.suffix(out.dtype))", grid: flatGrid(x.count),
               [.pointer(address(x)), .pointer(address(out)), .int(x.count)])
    }

    public func copy(_ x: Tensor, layout: Layout, into out: Tensor, outLayout: Layout, accumulate: Bool) {
        precondition(layout.shape == outLayout.shape, "copy: layouts \(layout.shape) and \(outLayout.shape) differ")
        precondition(x.dtype == out.dtype, "copy: dtypes \(x.dtype) and \(out.dtype) differ")
        let n = Shape.count(layout.shape)
        guard n > 0 else { return }
        if Indexer.collapsedRank(layout.shape, [layout.strides, outLayout.strides]) > Indexer.maxRank {
            // More axes than the kernel's indexer holds: one launch per index of the leading axis.
            for i in 0..<layout.shape[0] {
                copy(x, layout: Layout(shape: Array(layout.shape.dropFirst()), strides: Array(layout.strides.dropFirst()),
                                       offset: layout.offset + i * layout.strides[0]),
                     into: out, outLayout: Layout(shape: Array(outLayout.shape.dropFirst()), strides: Array(outLayout.strides.dropFirst()),
                                                  offset: outLayout.offset + i * outLayout.strides[0]),
                     accumulate: accumulate)
            }
            return
        }
        let ix = Indexer(shape: layout.shape, strides: [layout.strides, outLayout.strides], op: "copy")
        let src = address(x) + UInt64(layout.offset * x.dtype.byteSize)
        let dst = address(out) + UInt64(outLayout.offset * out.dtype.byteSize)
        if !accumulate && ix.shape.count == 1 && ix.strides[0][0] == 1 && ix.strides[1][0] == 1 {
            return copyBytes(from: src, to: dst, n * x.dtype.byteSize)
        }
        let name: String
        if accumulate {
            precondition(x.dtype.isFloatingPoint, "copy: accumulating \(x.dtype) tensors is not supported (floating-point gradients only)")
            name = "ss_copy_acc_\(Self.suffix(x.dtype))"
        } else {
            name = "ss_copy_b\(x.dtype.byteSize * 8)"
        }
        launch(.memory, name, grid: flatGrid(n), [.pointer(src), .pointer(dst), .int(n), .indexer(ix)])
    }

    public func dropout(_ x: Tensor, p: Double, seed: UInt64, offset: UInt64, into out: Tensor) {
        Self.requireFloat(x.dtype, "dropout")
        guard x.count > 0 else { return }
        launch(.memory, "ss_dropout_\(Self.suffix(x.dtype))", grid: flatGrid(x.count),
               [.pointer(address(x)), .pointer(address(out)), .int(x.count), .f64(p), .u64(seed), .u64(offset)])
    }

    public func random(_ out: Tensor, normal: Bool, a: Double, b: Double, seed: UInt64, offset: UInt64) {
        guard out.count > 0 else { return }
        launch(.memory, "ss_random_\(Self.suffix(out.dtype))", grid: flatGrid(out.count),
               [.pointer(address(out)), .int(out.count), .flag(normal), .f64(a), .f64(b), .u64(seed), .u64(offset)])
    }

    // MARK: Elementwise

    /// The kernel name part and the two scalar parameters of a unary op.
    static func unaryName(_ op: UnaryOp) -> (String, Double, Double) {
        switch op {
        case .neg: ("neg", 0, 0)
        case .exp: ("exp", 0, 0)
        case .log: ("log", 0, 0)
        case .sqrt: ("sqrt", 0, 0)
        case .tanh: ("tanh", 0, 0)
        case .sigmoid: ("sigmoid", 0, 0)
        case .relu: ("relu", 0, 0)
        case .abs: ("abs", 0, 0)
        case .square: ("square", 0, 0)
        case .gelu: ("gelu", 0, 0)
        case .geluExact: ("gelu_exact", 0, 0)
        case .pow(let p): ("pow", p, 0)
        case .affine(let scale, let shift): ("affine", scale, shift)
        case .silu: ("silu", 0, 0)
        }
    }

    public func unary(_ op: UnaryOp, _ x: Tensor, into out: Tensor) {
        Self.requireFloat(x.dtype, "unary \(op)")
        precondition(x.count == out.count && x.dtype == out.dtype, "unary: \(x.shape) \(x.dtype) into \(out.shape) \(out.dtype)")
        guard x.count > 0 else { return }
        let (name, p0, p1) = Self.unaryName(op)
        launch(.elementwise, "ss_unary_\(name)_\(Self.suffix(x.dtype))", grid: flatGrid(x.count),
               [.pointer(address(x)), .pointer(address(out)), .int(x.count), .f64(p0), .f64(p1)])
    }

    public func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor, gradOut: Tensor, into gradIn: Tensor) {
        Self.requireFloat(x.dtype, "unary backward \(op)")
        guard x.count > 0 else { return }
        let (name, p0, _) = Self.unaryName(op)
        launch(.elementwise, "ss_unary_bwd_\(name)_\(Self.suffix(x.dtype))", grid: flatGrid(x.count),
               [.pointer(address(x)), .pointer(address(y)), .pointer(address(gradOut)), .pointer(address(gradIn)),
                .int(x.count), .f64(p0)])
    }

    static func binaryName(_ op: BinaryOp) -> String {
        switch op {
        case .add: "add"
        case .sub: "sub"
        case .mul: "mul"
        case .div: "div"
        case .pow: "pow"
        case .maximum: "maximum"
        case .minimum: "minimum"
        case .equal: "equal"
        case .greater: "greater"
        }
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, into out: Tensor) {
        Self.requireFloat(a.dtype, "binary \(op)")
        precondition(a.dtype == b.dtype && a.dtype == out.dtype, "binary \(op): dtypes \(a.dtype), \(b.dtype), \(out.dtype) differ")
        let n = out.count
        guard n > 0 else { return }
        let ix = Indexer(shape: out.shape, strides: [Shape.broadcastStrides(a.shape, to: out.shape),
                                                     Shape.broadcastStrides(b.shape, to: out.shape),
                                                     Shape.strides(out.shape)], op: "binary \(op)")
        launch(.elementwise, "ss_binary_\(Self.binaryName(op))_\(Self.suffix(out.dtype))", grid: flatGrid(n),
               [.pointer(address(a)), .pointer(address(b)), .pointer(address(out)), .int(n), .indexer(ix)])
    }

    public func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, into out: Tensor) {
        Self.requireFloat(out.dtype, "select")
        let n = out.count
        guard n > 0 else { return }
        // The kernel reads cond, a and b through the indexer and writes `out` by linear index; out's contiguous
        // strides take part in the collapse so merged axes stay row-major for it too (only 3 are passed).
        let ix = Indexer(shape: out.shape, strides: [Shape.broadcastStrides(cond.shape, to: out.shape),
                                                     Shape.broadcastStrides(a.shape, to: out.shape),
                                                     Shape.broadcastStrides(b.shape, to: out.shape),
                                                     Shape.strides(out.shape)], op: "select")
        launch(.elementwise, "ss_select_\(Self.suffix(out.dtype))_\(Self.suffix(cond.dtype))", grid: flatGrid(n),
               [.pointer(address(cond)), .pointer(address(a)), .pointer(address(b)), .pointer(address(out)), .int(n),
                .indexer(ix)])
    }
}
