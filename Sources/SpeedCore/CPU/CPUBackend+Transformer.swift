// CPU kernels of the Hugging Face decoder families: RMSNorm, rotary embeddings (rotate-half), SwiGLU; forward and backward.
// Invariant: work is split by rows (RMSNorm, rotary) or by element ranges (SwiGLU), so no two threads write one
// element; RMSNorm's weight gradient is summed from per-chunk partials in chunk order (deterministic).

import RealModule

extension CPUBackend {
    // MARK: RMSNorm

    public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Double, into y: Tensor, rstd: Tensor) {
        if let (i, o) = promoted([x, weight], [y]) {
            rmsNorm(i[0]!, weight: i[1], eps: eps, into: o[0]!, rstd: rstd)
            return finish(o, [y])
        }
        switch x.dtype {
        case .float32: rmsNormKernel(Float.self, x, weight, eps, y, rstd)
        default: rmsNormKernel(Double.self, x, weight, eps, y, rstd)
        }
    }

    private func rmsNormKernel<T: CPUFloat>(_: T.Type, _ x: Tensor, _ w: Tensor?, _ eps: Double, _ y: Tensor,
                                            _ rstd: Tensor) {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        let xs = Unchecked(x.pointer(as: T.self)), ys = Unchecked(y.pointer(as: T.self))
        let ws = Unchecked(w?.pointer(as: T.self)), rs = Unchecked(rstd.pointer(as: T.self))
        let eps = T(eps)
        parallel.forEach(rows, grain: Swift.max(1, 4096 / Swift.max(c, 1))) { r in
            for row in r {
                let xr = xs.value + row * c, yr = ys.value + row * c
                var s: T = 0
                for j in 0..<c { s += xr[j] * xr[j] }
                let inv = 1 / (s / T(c) + eps).squareRoot()
                rs.value[row] = inv
                if let w = ws.value {
                    for j in 0..<c { yr[j] = w[j] * (xr[j] * inv) }
                } else {
                    for j in 0..<c { yr[j] = xr[j] * inv }
                }
            }
        }
    }

    public func rmsNormBackward(x: Tensor, weight: Tensor?, rstd: Tensor, gradOut: Tensor, into gradIn: Tensor,
                                gradWeight: Tensor?) {
        if let (i, o) = promoted([x, weight, gradOut], [gradIn, gradWeight]) {
            rmsNormBackward(x: i[0]!, weight: i[1], rstd: rstd, gradOut: i[2]!, into: o[0]!, gradWeight: o[1])
            return finish(o, [gradIn, gradWeight])
        }
        switch x.dtype {
        case .float32: rmsNormBackwardKernel(Float.self, x, weight, rstd, gradOut, gradIn, gradWeight)
        default: rmsNormBackwardKernel(Double.self, x, weight, rstd, gradOut, gradIn, gradWeight)
        }
    }

    /// `dx = r·(w∘g) − x·r³·mean(w∘g∘x)`, `dw += Σ_rows g∘x·r` (y = w∘x·r, r = (mean(x²) + eps)^(−1/2)).
    private func rmsNormBackwardKernel<T: CPUFloat>(_: T.Type, _ x: Tensor, _ w: Tensor?, _ rstd: Tensor, _ g: Tensor,
                                                    _ gx: Tensor, _ gw: Tensor?) {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        let xs = Unchecked(x.pointer(as: T.self)), gs = Unchecked(g.pointer(as: T.self))
        let ws = Unchecked(w?.pointer(as: T.self)), rs = Unchecked(rstd.pointer(as: T.self))
        let dxs = Unchecked(gx.count == x.count ? gx.pointer(as: T.self) : nil)
        let wantW = gw != nil
        let partials: [[T]] = parallel.map(rows, grain: Swift.max(1, 2048 / Swift.max(c, 1))) { r in
            var pw = [T](repeating: 0, count: wantW ? c : 0)
            for row in r {
                let xr = xs.value + row * c, gr = gs.value + row * c, inv = rs.value[row]
                if wantW { for j in 0..<c { pw[j] += gr[j] * (xr[j] * inv) } }
                guard let dx = dxs.value else { continue }
                var dot: T = 0
                if let w = ws.value { for j in 0..<c { dot += w[j] * gr[j] * xr[j] } } else { for j in 0..<c { dot += gr[j] * xr[j] } }
                let k = dot * inv * inv * inv / T(c), dr = dx + row * c
                if let w = ws.value {
                    for j in 0..<c { dr[j] = inv * (w[j] * gr[j]) - xr[j] * k }
                } else {
                    for j in 0..<c { dr[j] = inv * gr[j] - xr[j] * k }
                }
            }
            return pw
        }
        if let gw {
            let p = gw.pointer(as: T.self)
            for part in partials { for j in 0..<c { p[j] += part[j] } }
        }
    }

    // MARK: Rotary embedding

    public func rotary(_ x: Tensor, cos: Tensor, sin: Tensor, inverse: Bool, into out: Tensor) {
        let d = x.shape.last ?? 0, heads = x.rank >= 2 ? x.shape[x.rank - 2] : 1
        precondition(d % 2 == 0 && cos.count * 2 * heads == x.count && sin.count == cos.count && out.count == x.count,
                     "rotary: x \(x.shape) needs cos/sin of \(x.count / Swift.max(2 * heads, 1)) elements, got \(cos.shape), \(sin.shape)")
        if let (i, o) = promoted([x], [out]) {
            rotary(i[0]!, cos: cos, sin: sin, inverse: inverse, into: o[0]!)
            return finish(o, [out])
        }
        switch x.dtype {
        case .float32: rotaryKernel(Float.self, x, cos, sin, inverse, out, heads: heads)
        default: rotaryKernel(Double.self, x, cos, sin, inverse, out, heads: heads)
        }
    }

    private func rotaryKernel<T: CPUFloat>(_: T.Type, _ x: Tensor, _ cos: Tensor, _ sin: Tensor, _ inverse: Bool,
                                           _ out: Tensor, heads: Int) {
        let d = x.shape.last!, half = d / 2, rows = x.count / Swift.max(d, 1)
        precondition(cos.dtype == x.statsDType && sin.dtype == x.statsDType,
                     "rotary: cos/sin must be \(x.statsDType) for \(x.dtype) input, got \(cos.dtype), \(sin.dtype)")
        let xs = Unchecked(x.pointer(as: T.self)), ys = Unchecked(out.pointer(as: T.self))
        let cs = Unchecked(cos.pointer(as: T.self)), ss = Unchecked(sin.pointer(as: T.self))
        let sign: T = inverse ? -1 : 1
        parallel.forEach(rows, grain: Swift.max(1, 4096 / Swift.max(d, 1))) { r in
            for row in r {
                let xr = xs.value + row * d, yr = ys.value + row * d
                let table = (row / heads) * half, c = cs.value + table, s = ss.value + table
                for j in 0..<half {
                    let (a, b, sj) = (xr[j], xr[j + half], sign * s[j])
                    yr[j] = a * c[j] - b * sj
                    yr[j + half] = b * c[j] + a * sj
                }
            }
        }
    }

    // MARK: SwiGLU

    public func swiglu(gate: Tensor, up: Tensor, into out: Tensor) {
        precondition(gate.count == up.count && out.count == gate.count, "swiglu: gate \(gate.shape), up \(up.shape), out \(out.shape)")
        if let (i, o) = promoted([gate, up], [out]) { swiglu(gate: i[0]!, up: i[1]!, into: o[0]!); return finish(o, [out]) }
        if gate.dtype == .float32 {
            let gs = Unchecked(gate.pointer(as: Float.self)), us = Unchecked(up.pointer(as: Float.self))
            let ys = Unchecked(out.pointer(as: Float.self))
            parallel.forEach(gate.count, grain: 1 << 14) { r in
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let g = UnsafeRawPointer(gs.value + i).loadUnaligned(as: F8.self)
                    let u = UnsafeRawPointer(us.value + i).loadUnaligned(as: F8.self)
                    UnsafeMutableRawPointer(ys.value + i).storeBytes(of: g / (1 + FastMath.exp(-g)) * u, as: F8.self)
                    i += 8
                }
                while i < r.upperBound { let g = gs.value[i]; ys.value[i] = g / (1 + FastMath.exp(-g)) * us.value[i]; i += 1 }
            }
        } else {
            let gs = Unchecked(gate.pointer(as: Double.self)), us = Unchecked(up.pointer(as: Double.self))
            let ys = Unchecked(out.pointer(as: Double.self))
            parallel.forEach(gate.count, grain: 1 << 14) { r in
                for i in r { let g = gs.value[i]; ys.value[i] = g / (1 + Double.exp(-g)) * us.value[i] }
            }
        }
    }

    public func swigluBackward(gate: Tensor, up: Tensor, gradOut: Tensor, into gradGate: Tensor, gradUp: Tensor) {
        if let (i, o) = promoted([gate, up, gradOut], [gradGate, gradUp]) {
            swigluBackward(gate: i[0]!, up: i[1]!, gradOut: i[2]!, into: o[0]!, gradUp: o[1]!)
            return finish(o, [gradGate, gradUp])
        }
        switch gate.dtype {
        case .float32: swigluBackwardKernel(Float.self, gate, up, gradOut, gradGate, gradUp)
        default: swigluBackwardKernel(Double.self, gate, up, gradOut, gradGate, gradUp)
        }
    }

    private func swigluBackwardKernel<T: CPUFloat>(_: T.Type, _ gate: Tensor, _ up: Tensor, _ gradOut: Tensor,
                                                   _ gradGate: Tensor, _ gradUp: Tensor) {
        let gs = Unchecked(gate.pointer(as: T.self)), us = Unchecked(up.pointer(as: T.self))
        let ds = Unchecked(gradOut.pointer(as: T.self))
        let dg = Unchecked(gradGate.pointer(as: T.self)), du = Unchecked(gradUp.pointer(as: T.self))
        parallel.forEach(gate.count, grain: 1 << 13) { r in
            for i in r {
                let g = gs.value[i], s = 1 / (1 + T.exp(-g)), dy = ds.value[i]
                dg.value[i] = dy * us.value[i] * (s * (1 + g * (1 - s)))
                du.value[i] = dy * (g * s)
            }
        }
    }
}
