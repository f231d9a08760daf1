// Differentiable matrix products with transposes as flags (no transpose copies), batched or not.
// Invariant: a rank-2 right operand folds all of the left operand's batch dims into M: one GEMM, and its
// weight gradient comes out already summed over the batch.

extension Tensor {
    /// `op(a) · op(b)` where `op` transposes the last two axes when its flag is set.
    ///
    /// `a` is `[..., M, K]`, `b` is `[..., K, N]` or `[K, N]`; batch dims must match (a rank-2
    /// operand broadcasts). A `Linear` layer is `matmul(x, weight, transposeB: true)`.
    ///
    /// ```swift
    /// let y = Tensor.matmul(x, w, transposeB: true)   // [B, T, in] x [out, in] -> [B, T, out]
    /// ```
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        checkCompatible(a, b, "matmul")
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank >= 2, got \(a.shape) and \(b.shape)")
        precondition(a.dtype.isFloatingPoint, "matmul: needs floating-point tensors, got \(a.dtype)")
        // Fold the batch of `a` into M when `b` is a plain matrix.
        if b.rank == 2 && a.rank > 2 && !transposeA {
            let k = a.shape[a.rank - 1]
            let flat = matmul(a.reshape([-1, k]), b, transposeB: transposeB)
            return flat.reshape(Array(a.shape.dropLast()) + [flat.shape[1]])
        }
        let (m, ka) = transposeA ? (a.shape[a.rank - 1], a.shape[a.rank - 2]) : (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (kb, n) = transposeB ? (b.shape[b.rank - 1], b.shape[b.rank - 2]) : (b.shape[b.rank - 2], b.shape[b.rank - 1])
        precondition(ka == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") x \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        precondition(batchA.isEmpty || batchB.isEmpty || batchA == batchB,
                     "matmul: batch dimensions \(batchA) and \(batchB) differ")
        let batchDims = batchA.isEmpty ? batchB : batchA
        let batch = Shape.count(batchDims)
        let out = a.new(batchDims + [m, n])
        let shape = GemmShape(batch: batch, m: m, n: n, k: ka, transA: transposeA, transB: transposeB,
                              strideA: batchA.isEmpty ? 0 : m * ka, strideB: batchB.isEmpty ? 0 : ka * n,
                              strideC: m * n)
        a.backend.gemm(a, b, into: out, shape)
        return record("matmul", out, inputs: [a, b]) { g, needs in
            var ga: Tensor?, gb: Tensor?
            if needs[0] {
                ga = transposeA ? matmul(b, g, transposeA: transposeB, transposeB: true)
                                : matmul(g, b, transposeB: !transposeB)
                ga = ga!.sumToShape(a.shape)
            }
            if needs[1] {
                gb = transposeB ? matmul(g, a, transposeA: true, transposeB: transposeA)
                                : matmul(a, g, transposeA: !transposeA)
                gb = gb!.sumToShape(b.shape)
            }
            return [ga, gb]
        }
    }

    /// `x · weightᵀ + bias` with PyTorch's `[out, in]` weight layout, fused: the bias is written
    /// into the output first and the GEMM accumulates onto it (beta = 1), so no extra pass.
    ///
    /// ```swift
    /// let y = Tensor.linear(x, weight: w, bias: b)   // [N, in] -> [N, out]
    /// ```
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        guard let bias else { return matmul(x, weight, transposeB: true) }
        checkCompatible(x, weight, "linear")
        checkCompatible(x, bias, "linear")
        precondition(weight.rank == 2 && x.shape.last == weight.shape[1],
                     "linear: input \(x.shape) does not match weight \(weight.shape) ([out, in])")
        precondition(bias.shape == [weight.shape[0]], "linear: bias \(bias.shape) must be [\(weight.shape[0])]")
        let (n, k, m) = (x.count / weight.shape[1], weight.shape[1], weight.shape[0])
        let out = x.new(Array(x.shape.dropLast()) + [m])
        x.backend.gemm(x, weight, into: out, GemmShape(batch: 1, m: n, n: m, k: k, transA: false, transB: true,
                                                      strideA: 0, strideB: 0, strideC: 0), bias: bias)
        return record("linear", out, inputs: [x, weight, bias]) { g, needs in
            let g2 = g.reshape([n, m]), x2 = x.reshape([n, k])
            return [needs[0] ? matmul(g2, weight).reshape(x.shape) : nil,
                    needs[1] ? matmul(g2, x2, transposeA: true) : nil,
                    needs[2] ? g2.sum(axes: [0]) : nil]
        }
    }

    /// `self · other` (see ``matmul(_:_:transposeA:transposeB:)``).
    public func matmul(_ other: Tensor) -> Tensor { Tensor.matmul(self, other) }
}
