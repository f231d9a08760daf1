// Readable printing in PyTorch's style: `tensor([[1.0000, 2.0000], …], dtype=float32)`.
// Invariant: large tensors print at most 3 leading and 3 trailing entries per axis.

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = scalars(as: Double.self)
        var out = "tensor("
        format(values, axis: 0, offset: 0, indent: 7, into: &out)
        out += ", shape=\(shape), dtype=\(dtype)"
        if !device.isCPU { out += ", device=\(device)" }
        if let name = gradFnName { out += ", grad_fn=\(name)" } else if requiresGrad { out += ", requires_grad=true" }
        return out + ")"
    }

    private func format(_ v: [Double], axis: Int, offset: Int, indent: Int, into out: inout String) {
        if rank == 0 { out += Self.formatScalar(v[0], dtype); return }
        let n = shape[axis], stride = Shape.count(Array(shape[(axis + 1)...]))
        let shown: [Int?] = n > 6 ? [0, 1, 2, nil, n - 3, n - 2, n - 1] : (0..<n).map { $0 }
        out += "["
        for (i, idx) in shown.enumerated() {
            if i > 0 { out += axis == rank - 1 ? ", " : ",\n" + String(repeating: " ", count: indent + axis + 1) }
            guard let idx else { out += "..."; continue }
            if axis == rank - 1 { out += Self.formatScalar(v[offset + idx], dtype) }
            else { format(v, axis: axis + 1, offset: offset + idx * stride, indent: indent, into: &out) }
        }
        out += "]"
    }

    private static func formatScalar(_ x: Double, _ dtype: DType) -> String {
        if !dtype.isFloatingPoint { return String(Int(x)) }
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        let magnitude = Swift.abs(x)
        if magnitude != 0 && (magnitude < 1e-4 || magnitude >= 1e6) {
            return String(format: x, exponential: true)
        }
        return String(format: x, exponential: false)
    }
}

private extension String {
    /// Four decimals (or 4 significant digits in exponent form) without Foundation.
    init(format x: Double, exponential: Bool) {
        if exponential {
            var e = 0, m = Swift.abs(x)
            while m >= 10 { m /= 10; e += 1 }
            while m < 1 { m *= 10; e -= 1 }
            if (m * 10_000).rounded() >= 100_000 { m /= 10; e += 1 }   // 9.99996 prints as 1.0000e+01
            let mantissa = String(format: (x < 0 ? -m : m), exponential: false)
            self = "\(mantissa)e\(e >= 0 ? "+" : "-")\(Swift.abs(e) < 10 ? "0" : "")\(Swift.abs(e))"
            return
        }
        let scaled = (Swift.abs(x) * 10_000).rounded()
        let whole = Int(scaled / 10_000), frac = Int(scaled.truncatingRemainder(dividingBy: 10_000))
        let digits = String(frac)
        self = (x < 0 && scaled != 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: 4 - digits.count) + digits
    }
}
