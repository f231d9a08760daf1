// Differentiable reductions: sum, mean, max, variance over any set of axes.
// Invariant: reductions over adjacent axes become one [outer, count, inner] kernel call.

extension Tensor {
    private func normalizedAxes(_ axes: [Int]?, op: String) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        let normal = Set(axes.map { Shape.axis($0, rank: rank, op: op) })
        return normal.sorted()
    }

    /// Shape with the reduced axes set to 1.
    private func keptShape(_ axes: [Int]) -> [Int] {
        var s = shape
        for a in axes { s[a] = 1 }
        return s
    }

    /// Reduces `axes` (sorted, unique) with keepDims semantics, one kernel call per run of adjacent axes.
    private func rawReduce(_ op: ReduceOp, _ axes: [Int]) -> Tensor {
        var t = self
        var runs: [(Int, Int)] = []
        for a in axes {
            if let last = runs.last, last.1 == a - 1 { runs[runs.count - 1].1 = a } else { runs.append((a, a)) }
        }
        for (lo, hi) in runs.reversed() {
            let outer = Shape.count(Array(t.shape[..<lo]))
            let count = Shape.count(Array(t.shape[lo...hi]))
            let inner = Shape.count(Array(t.shape[(hi + 1)...]))
            var outShape = t.shape
            for i in lo...hi { outShape[i] = 1 }
            let out = t.new(outShape)
            t.backend.reduce(op, t, outer: outer, count: count, inner: inner, into: out)
            t = out
        }
        return t
    }

    /// Sum over `axes` (all when nil).
    ///
    /// ```swift
    /// Tensor([[1, 2], [3, 4]] as [[Float]]).sum(axes: [0]).scalars   // [4, 6]
    /// ```
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "sum")
        let kept = keptShape(ax)
        let reduced = rawReduce(.sum, ax)
        let finalShape = keepDims ? kept : shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
        let out = reduced.view(finalShape)
        return Tensor.record("sum", out, inputs: [self]) { g, _ in [g.reshape(kept).expand(to: self.shape)] }
    }

    /// Σ x² over all elements as a scalar, in one pass without a squared temporary (global norms).
    public func sumOfSquares() -> Tensor {
        let out = new([])
        backend.reduce(.sumOfSquares, self, outer: 1, count: count, inner: 1, into: out)
        return Tensor.record("sum_of_squares", out, inputs: [self]) { g, _ in [self * (g * 2)] }
    }

    /// Sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (all when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "mean")
        let n = ax.reduce(1) { $0 * shape[$1] }
        return sum(axes: ax, keepDims: keepDims) / Double(Swift.max(n, 1))
    }

    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Maximum over `axes` (all when nil); the gradient is shared equally among tied maxima.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "max")
        let kept = keptShape(ax)
        let reduced = rawReduce(.max, ax)
        let finalShape = keepDims ? kept : shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
        let out = reduced.view(finalShape)
        return Tensor.record("max", out, inputs: [self]) { g, _ in
            let mask = noGrad { self.equal(reduced) }
            let ties = noGrad { mask.sum(axes: ax, keepDims: true) }
            return [mask * g.reshape(kept) / ties]
        }
    }

    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }

    /// Variance over `axes` with `correction` (1 = unbiased, PyTorch's default; 0 = population).
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, correction: Int = 1) -> Tensor {
        let ax = normalizedAxes(axes, op: "variance")
        let n = ax.reduce(1) { $0 * shape[$1] }
        let centered = self - mean(axes: ax, keepDims: true)
        // n <= correction divides by zero: NaN (or inf), as in PyTorch.
        return centered.square().sum(axes: ax, keepDims: keepDims) / Double(n - correction)
    }
}
