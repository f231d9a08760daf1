// CPU fused kernels over rows: softmax, layer norm, embedding, cross-entropy (forward and backward).
// Invariant: work is split by rows (or by columns for scatter-adds), so no two threads write one element.

import RealModule

extension CPUBackend {
    // MARK: Softmax

    public func softmax(_ x: Tensor, log: Bool, into y: Tensor) {
        if let (i, o) = promoted([x], [y]) { softmax(i[0]!, log: log, into: o[0]!); return finish(o, [y]) }
        switch x.dtype {
        case .float32: softmaxKernel(Float.self, x, log, y)
        default: softmaxKernel(Double.self, x, log, y)
        }
    }

    private func softmaxKernel<T: CPUFloat>(_: T.Type, _ x: Tensor, _ log: Bool, _ y: Tensor) {
        let n = x.shape.last ?? 1, rows = x.count / Swift.max(n, 1)
        let xs = Unchecked(x.pointer(as: T.self)), ys = Unchecked(y.pointer(as: T.self))
        parallel.forEach(rows, grain: Swift.max(1, 4096 / Swift.max(n, 1))) { r in
            for row in r {
                let xr = xs.value + row * n, yr = ys.value + row * n
                let m = Self.reduceRun(.max, xr, n)
                let sum = Self.expShifted(xr, yr, n, shift: m)
                if log {
                    let lse = m + T.log(sum)
                    for j in 0..<n { yr[j] = xr[j] - lse }
                } else {
                    let inv = 1 / sum
                    for j in 0..<n { yr[j] *= inv }
                }
            }
        }
    }

    /// `y[j] = exp(x[j] - shift)`; returns the sum (vectorised for fp32).
    @inline(__always)
    static func expShifted<T: CPUFloat>(_ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int, shift: T) -> T {
        if T.self == Float.self {
            let xf = UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self)
            let yf = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
            let s = Float(shift)
            if s == -.infinity { yf.update(repeating: .nan, count: n); return T.nan }
            FastMath.map(xf, yf, n) { FastMath.exp($0 - s) }
            var acc = F8(repeating: 0), i = 0, tail: Float = 0
            while i + 8 <= n { acc += UnsafeRawPointer(yf + i).loadUnaligned(as: F8.self); i += 8 }
            while i < n { tail += yf[i]; i += 1 }
            return T(acc.sum() + tail)
        }
        var sum: T = 0
        for j in 0..<n { let e = T.exp(x[j] - shift); y[j] = e; sum += e }
        return sum
    }

    public func softmaxBackward(y: Tensor, gradOut: Tensor, log: Bool, into gradIn: Tensor) {
        if let (i, o) = promoted([y, gradOut], [gradIn]) {
            softmaxBackward(y: i[0]!, gradOut: i[1]!, log: log, into: o[0]!); return finish(o, [gradIn])
        }
        switch y.dtype {
        case .float32: softmaxBackwardKernel(Float.self, y, gradOut, log, gradIn)
        default: softmaxBackwardKernel(Double.self, y, gradOut, log, gradIn)
        }
    }

    private func softmaxBackwardKernel<T: CPUFloat>(_: T.Type, _ y: Tensor, _ g: Tensor, _ log: Bool, _ gx: Tensor) {
        let n = y.shape.last ?? 1, rows = y.count / Swift.max(n, 1)
        let ys = Unchecked(y.pointer(as: T.self)), gs = Unchecked(g.pointer(as: T.self))
        let ds = Unchecked(gx.pointer(as: T.self))
        parallel.forEach(rows, grain: Swift.max(1, 4096 / Swift.max(n, 1))) { r in
            for row in r {
                let yr = ys.value + row * n, gr = gs.value + row * n, dr = ds.value + row * n
                if log {
                    var s: T = 0
                    for j in 0..<n { s += gr[j] }
                    for j in 0..<n { dr[j] = gr[j] - T.exp(yr[j]) * s }
                } else {
                    var s: T = 0
                    for j in 0..<n { s += gr[j] * yr[j] }
                    for j in 0..<n { dr[j] = yr[j] * (gr[j] - s) }
                }
            }
        }
    }

    // MARK: Layer norm

    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double,
                          into y: Tensor, mean: Tensor, rstd: Tensor) {
        if let (i, o) = promoted([x, weight, bias], [y]) {
            layerNorm(i[0]!, weight: i[1], bias: i[2], eps: eps, into: o[0]!, mean: mean, rstd: rstd)
            return finish(o, [y])
        }
        switch x.dtype {
        case .float32: layerNormKernel(Float.self, x, weight, bias, eps, y, mean, rstd)
        default: layerNormKernel(Double.self, x, weight, bias, eps, y, mean, rstd)
        }
    }

    private func layerNormKernel<T: CPUFloat>(_: T.Type, _ x: Tensor, _ w: Tensor?, _ b: Tensor?, _ eps: Double,
                                              _ y: Tensor, _ mean: Tensor, _ rstd: Tensor) {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        let xs = Unchecked(x.pointer(as: T.self)), ys = Unchecked(y.pointer(as: T.self))
        let ws = Unchecked(w?.pointer(as: T.self)), bs = Unchecked(b?.pointer(as: T.self))
        let ms = Unchecked(mean.pointer(as: T.self)), rs = Unchecked(rstd.pointer(as: T.self))
        let eps = T(eps)
        parallel.forEach(rows, grain: Swift.max(1, 4096 / Swift.max(c, 1))) { r in
            for row in r {
                let xr = xs.value + row * c, yr = ys.value + row * c
                var s: T = 0
                for j in 0..<c { s += xr[j] }
                let mu = s / T(c)
                var v: T = 0
                for j in 0..<c { let d = xr[j] - mu; v += d * d }
                let inv = 1 / (v / T(c) + eps).squareRoot()
                ms.value[row] = mu
                rs.value[row] = inv
                switch (ws.value, bs.value) {
                case let (w?, b?): for j in 0..<c { yr[j] = (xr[j] - mu) * inv * w[j] + b[j] }
                case let (w?, nil): for j in 0..<c { yr[j] = (xr[j] - mu) * inv * w[j] }
                case let (nil, b?): for j in 0..<c { yr[j] = (xr[j] - mu) * inv + b[j] }
                case (nil, nil): for j in 0..<c { yr[j] = (xr[j] - mu) * inv }
                }
            }
        }
    }

    public func layerNormBackward(x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor, gradOut: Tensor,
                                  into gradIn: Tensor, gradWeight: Tensor?, gradBias: Tensor?) {
        if let (i, o) = promoted([x, weight, gradOut], [gradIn, gradWeight, gradBias]) {
            layerNormBackward(x: i[0]!, weight: i[1], mean: mean, rstd: rstd, gradOut: i[2]!,
                              into: o[0]!, gradWeight: o[1], gradBias: o[2])
            return finish(o, [gradIn, gradWeight, gradBias])
        }
        switch x.dtype {
        case .float32: layerNormBackwardKernel(Float.self, x, weight, mean, rstd, gradOut, gradIn, gradWeight, gradBias)
        default: layerNormBackwardKernel(Double.self, x, weight, mean, rstd, gradOut, gradIn, gradWeight, gradBias)
        }
    }

    private func layerNormBackwardKernel<T: CPUFloat>(_: T.Type, _ x: Tensor, _ w: Tensor?, _ mean: Tensor, _ rstd: Tensor,
                                                      _ g: Tensor, _ gx: Tensor, _ gw: Tensor?, _ gb: Tensor?) {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        let xs = Unchecked(x.pointer(as: T.self)), gs = Unchecked(g.pointer(as: T.self))
        let ws = Unchecked(w?.pointer(as: T.self)), ms = Unchecked(mean.pointer(as: T.self))
        let rs = Unchecked(rstd.pointer(as: T.self))
        let dxs = Unchecked(gx.count == x.count ? gx.pointer(as: T.self) : nil)
        let wantW = gw != nil, wantB = gb != nil
        // Per-chunk partial parameter gradients, summed in chunk order afterwards.
        let partials: [[T]] = parallel.map(rows, grain: Swift.max(1, 2048 / c)) { r in
            var pw = [T](repeating: 0, count: wantW ? c : 0), pb = [T](repeating: 0, count: wantB ? c : 0)
            var dxhat = [T](repeating: 0, count: c)
            for row in r {
                let xr = xs.value + row * c, gr = gs.value + row * c
                let mu = ms.value[row], inv = rs.value[row]
                var sumD: T = 0, sumDX: T = 0
                for j in 0..<c {
                    let xhat = (xr[j] - mu) * inv
                    let d = gr[j] * (ws.value?[j] ?? 1)
                    dxhat[j] = d
                    sumD += d
                    sumDX += d * xhat
                    if wantW { pw[j] += gr[j] * xhat }
                    if wantB { pb[j] += gr[j] }
                }
                if let dx = dxs.value {
                    let dr = dx + row * c, mD = sumD / T(c), mDX = sumDX / T(c)
                    for j in 0..<c { dr[j] = inv * (dxhat[j] - mD - (xr[j] - mu) * inv * mDX) }
                }
            }
            return pw + pb
        }
        for (t, off) in [(gw, 0), (gb, wantW ? c : 0)] {
            guard let t else { continue }
            let p = t.pointer(as: T.self)
            for part in partials { for j in 0..<c { p[j] += part[off + j] } }
        }
    }

    // MARK: Embedding

    public func embedding(_ weight: Tensor, ids: Tensor, into out: Tensor) {
        let c = weight.shape[1], v = weight.shape[0], n = ids.count
        let idx = indices(ids)
        let rowBytes = c * weight.dtype.byteSize
        let w = Unchecked(weight.rawPointer), o = Unchecked(out.rawPointer)
        for i in 0..<n {
            precondition(idx[i] >= 0 && idx[i] < v, "embedding: id \(idx[i]) at position \(i) is out of range for vocabulary size \(v)")
        }
        parallel.forEach(n, grain: Swift.max(1, 4096 / Swift.max(c, 1))) { r in
            for i in r { (o.value + i * rowBytes).copyMemory(from: w.value + idx[i] * rowBytes, byteCount: rowBytes) }
        }
    }

    public func embeddingBackward(ids: Tensor, gradOut: Tensor, into gradWeight: Tensor) {
        if let (i, o) = promoted([gradOut], [gradWeight]) {
            embeddingBackward(ids: ids, gradOut: i[0]!, into: o[0]!); return finish(o, [gradWeight])
        }
        switch gradOut.dtype {
        case .float32: embeddingBackwardKernel(Float.self, ids, gradOut, gradWeight)
        default: embeddingBackwardKernel(Double.self, ids, gradOut, gradWeight)
        }
    }

    private func embeddingBackwardKernel<T: CPUFloat>(_: T.Type, _ ids: Tensor, _ g: Tensor, _ gw: Tensor) {
        let c = gw.shape[1], n = ids.count
        let idx = indices(ids)
        let gs = Unchecked(g.pointer(as: T.self)), ws = Unchecked(gw.pointer(as: T.self))
        // Split by columns: each thread owns a column band of every row, so adds never race.
        parallel.forEach(c, grain: 64) { cols in
            for i in 0..<n {
                let src = gs.value + i * c, dst = ws.value + idx[i] * c
                for j in cols { dst[j] += src[j] }
            }
        }
    }

    /// Integer ids as `[Int]`.
    func indices(_ ids: Tensor) -> [Int] {
        switch ids.dtype {
        case .int32: return UnsafeBufferPointer(start: ids.pointer(as: Int32.self), count: ids.count).map { Int($0) }
        case .int64: return Array(UnsafeBufferPointer(start: ids.pointer(as: Int.self), count: ids.count))
        default: preconditionFailure("indices must be int32 or int64, got \(ids.dtype)")
        }
    }

    // MARK: Cross-entropy

    public func crossEntropy(_ logits: Tensor, targets: Tensor, ignoreIndex: Int, into loss: Tensor, lse: Tensor) {
        if let (i, _) = promoted([logits], []) {
            return crossEntropy(i[0]!, targets: targets, ignoreIndex: ignoreIndex, into: loss, lse: lse)
        }
        switch logits.dtype {
        case .float32: crossEntropyKernel(Float.self, logits, targets, ignoreIndex, loss, lse)
        default: crossEntropyKernel(Double.self, logits, targets, ignoreIndex, loss, lse)
        }
    }

    private func crossEntropyKernel<T: CPUFloat>(_: T.Type, _ logits: Tensor, _ targets: Tensor, _ ignore: Int,
                                                 _ loss: Tensor, _ lse: Tensor) {
        let v = logits.shape[1], rows = logits.shape[0]
        let t = indices(targets)
        for (i, ti) in t.enumerated() where ti != ignore {
            precondition(ti >= 0 && ti < v, "crossEntropy: target \(ti) at row \(i) is out of range for \(v) classes")
        }
        let xs = Unchecked(logits.pointer(as: T.self))
        let ls = Unchecked(loss.pointer(as: T.self)), es = Unchecked(lse.pointer(as: T.self))
        parallel.forEach(rows, grain: Swift.max(1, 8192 / v)) { r in
            var scratch = [T](repeating: 0, count: v)
            scratch.withUnsafeMutableBufferPointer { buf in
                for row in r {
                    let xr = xs.value + row * v
                    let m = Self.reduceRun(.max, xr, v)
                    let l = m + T.log(Self.expShifted(xr, buf.baseAddress!, v, shift: m))
                    es.value[row] = l
                    ls.value[row] = t[row] == ignore ? 0 : l - xr[t[row]]
                }
            }
        }
    }

    public func crossEntropyBackward(_ logits: Tensor, targets: Tensor, lse: Tensor, gradLoss: Tensor,
                                     ignoreIndex: Int, into gradLogits: Tensor) {
        if let (i, o) = promoted([logits], [gradLogits]) {
            crossEntropyBackward(i[0]!, targets: targets, lse: lse, gradLoss: gradLoss, ignoreIndex: ignoreIndex, into: o[0]!)
            return finish(o, [gradLogits])
        }
        switch logits.dtype {
        case .float32: crossEntropyBackwardKernel(Float.self, logits, targets, lse, gradLoss, ignoreIndex, gradLogits)
        default: crossEntropyBackwardKernel(Double.self, logits, targets, lse, gradLoss, ignoreIndex, gradLogits)
        }
    }

    private func crossEntropyBackwardKernel<T: CPUFloat>(_: T.Type, _ logits: Tensor, _ targets: Tensor, _ lse: Tensor,
                                                         _ gradLoss: Tensor, _ ignore: Int, _ gx: Tensor) {
        let v = logits.shape[1], rows = logits.shape[0]
        let t = indices(targets)
        let xs = Unchecked(logits.pointer(as: T.self)), ds = Unchecked(gx.pointer(as: T.self))
        let es = Unchecked(lse.pointer(as: T.self)), gl = Unchecked(gradLoss.pointer(as: T.self))
        parallel.forEach(rows, grain: Swift.max(1, 8192 / v)) { r in
            for row in r {
                let xr = xs.value + row * v, dr = ds.value + row * v
                if t[row] == ignore { dr.update(repeating: 0, count: v); continue }
                let g = gl.value[row]
                _ = Self.expShifted(xr, dr, v, shift: es.value[row])
                for j in 0..<v { dr[j] *= g }
                dr[t[row]] -= g
            }
        }
    }
}
