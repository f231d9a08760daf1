// Differentiable shape ops: reshape (a view), permute/transpose, expand, slice, concat, split.
// Invariant: results are contiguous; only reshape and outer-axis slices share storage with their input.

extension Tensor {
    /// The same elements with a new shape (one dimension may be -1). Shares storage.
    public func reshape(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let i = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(count) elements (shape \(shape))")
            resolved[i] = count / known
        }
        precondition(Shape.count(resolved) == count, "reshape: \(shape) (\(count) elements) cannot become \(newShape)")
        if resolved == shape { return self }
        let out = view(resolved)
        return Tensor.record("reshape", out, inputs: [self]) { g, _ in [g.reshape(self.shape)] }
    }

    /// Collapses all dimensions into one.
    public func flatten() -> Tensor { reshape([count]) }

    /// Reorders dimensions: `out.shape[i] == shape[dims[i]]`.
    public func permute(_ dims: [Int]) -> Tensor {
        let dims = dims.map { Shape.axis($0, rank: rank, op: "permute") }
        precondition(dims.sorted() == Array(0..<rank), "permute: \(dims) is not a permutation of 0..<\(rank)")
        if dims == Array(0..<rank) { return self }
        let strides = Shape.strides(shape)
        let outShape = dims.map { shape[$0] }
        let out = new(outShape)
        backend.copy(self, layout: Layout(shape: outShape, strides: dims.map { strides[$0] }),
                     into: out, outLayout: .contiguous(outShape), accumulate: false)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, d) in dims.enumerated() { inverse[d] = i }
        return Tensor.record("permute", out, inputs: [self]) { g, _ in [g.permute(inverse)] }
    }

    /// Swaps two dimensions (a copy).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var dims = Array(0..<rank)
        dims.swapAt(Shape.axis(a, rank: rank, op: "transposed"), Shape.axis(b, rank: rank, op: "transposed"))
        return permute(dims)
    }

    /// Broadcasts to `target` (NumPy rules), materialising the copy.
    public func expand(to target: [Int]) -> Tensor {
        if target == shape { return self }
        precondition(Shape.broadcast(shape, target) == target, "expand: \(shape) cannot broadcast to \(target)")
        let out = new(target)
        backend.copy(self, layout: Layout(shape: target, strides: Shape.broadcastStrides(shape, to: target)),
                     into: out, outLayout: .contiguous(target), accumulate: false)
        return Tensor.record("expand", out, inputs: [self]) { g, _ in [g.sumToShape(self.shape)] }
    }

    /// Elements `range` along `axis`. A view when every axis before `axis` has size 1.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = Shape.axis(axis, rank: rank, op: "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice: range \(range) is out of bounds for axis \(axis) of size \(shape[ax]) (shape \(shape))")
        var outShape = shape
        outShape[ax] = range.count
        let strides = Shape.strides(shape)
        let out: Tensor
        if shape[..<ax].allSatisfy({ $0 == 1 }) {
            out = view(outShape, offset: range.lowerBound * strides[ax])
        } else {
            out = new(outShape)
            backend.copy(self, layout: Layout(shape: outShape, strides: strides, offset: range.lowerBound * strides[ax]),
                         into: out, outLayout: .contiguous(outShape), accumulate: false)
        }
        return Tensor.record("slice", out, inputs: [self]) { g, _ in
            let gx = Tensor.zeros(self.shape, dtype: g.dtype, device: g.device)
            g.backend.copy(g, layout: .contiguous(outShape), into: gx,
                           outLayout: Layout(shape: outShape, strides: strides, offset: range.lowerBound * strides[ax]),
                           accumulate: false)
            return [gx]
        }
    }

    /// Row `index` of the first axis (a view), dropping that axis.
    public subscript(index: Int) -> Tensor {
        precondition(rank >= 1 && index >= 0 && index < shape[0], "subscript: index \(index) out of range for shape \(shape)")
        return slice(axis: 0, index..<(index + 1)).reshape(Array(shape.dropFirst()))
    }

    /// Joins tensors along `axis`; all other dimensions must match.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0]
        let ax = Shape.axis(axis, rank: first.rank, op: "concat")
        for t in tensors {
            checkCompatible(first, t, "concat")
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                         "concat: shape \(t.shape) does not match \(first.shape) off axis \(axis)")
        }
        var outShape = first.shape
        outShape[ax] = tensors.reduce(0) { $0 + $1.shape[ax] }
        let out = first.new(outShape)
        let outStrides = Shape.strides(outShape)
        var starts: [Int] = []
        var start = 0
        for t in tensors {
            starts.append(start)
            first.backend.copy(t, layout: .contiguous(t.shape), into: out,
                               outLayout: Layout(shape: t.shape, strides: outStrides, offset: start * outStrides[ax]),
                               accumulate: false)
            start += t.shape[ax]
        }
        return record("concat", out, inputs: tensors) { g, needs in
            zip(tensors, starts).enumerated().map { i, pair in
                needs[i] ? g.slice(axis: ax, pair.1..<(pair.1 + pair.0.shape[ax])) : nil
            }
        }
    }

    /// Stacks equal-shaped tensors along a new leading axis: `[n] + shape`.
    public static func stack(_ tensors: [Tensor]) -> Tensor {
        precondition(!tensors.isEmpty, "stack: no tensors")
        return concat(tensors.map { $0.reshape([1] + $0.shape) }, axis: 0)
    }

    /// Splits along `axis` into pieces of `sizes` (which must add up to the axis length).
    public func split(_ sizes: [Int], axis: Int) -> [Tensor] {
        let ax = Shape.axis(axis, rank: rank, op: "split")
        precondition(sizes.reduce(0, +) == shape[ax], "split: sizes \(sizes) do not add up to \(shape[ax]) (axis \(axis) of \(shape))")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return slice(axis: ax, start..<(start + n))
        }
    }

    /// Splits along `axis` into `parts` equal pieces.
    public func chunk(_ parts: Int, axis: Int) -> [Tensor] {
        let ax = Shape.axis(axis, rank: rank, op: "chunk")
        precondition(parts > 0 && shape[ax] % parts == 0, "chunk: axis \(axis) of size \(shape[ax]) does not split into \(parts) equal parts")
        return split([Int](repeating: shape[ax] / parts, count: parts), axis: ax)
    }
}
