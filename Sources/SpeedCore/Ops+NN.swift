// Differentiable fused neural-network ops: softmax, layer/RMS norm, rotary, SwiGLU, embedding, dropout, where, losses,
// attention (causal, sliding window, key padding, grouped K/V heads).
// Invariant: each op saves only what its backward needs (lse, mean/rstd), never a full probability matrix.

extension Tensor {
    /// dtype of saved statistics (mean, rstd, log-sum-exp): fp32, or fp64 for fp64 inputs.
    package var statsDType: DType { dtype == .float64 ? .float64 : .float32 }

    /// Softmax over `axis` (default: last).
    public func softmax(axis: Int = -1) -> Tensor { softmaxOp(axis: axis, log: false) }

    /// Log-softmax over `axis` (default: last), computed stably.
    public func logSoftmax(axis: Int = -1) -> Tensor { softmaxOp(axis: axis, log: true) }

    private func softmaxOp(axis: Int, log: Bool) -> Tensor {
        let ax = Shape.axis(axis, rank: rank, op: log ? "logSoftmax" : "softmax")
        if ax != rank - 1 {
            return transposed(ax, -1).softmaxOp(axis: -1, log: log).transposed(ax, -1)
        }
        let out = new(shape)
        backend.softmax(self, log: log, into: out)
        return Tensor.record(log ? "log_softmax" : "softmax", out, inputs: [self]) { [unowned out] g, _ in
            let gx = g.new(g.shape)
            g.backend.softmaxBackward(y: out, gradOut: g, log: log, into: gx)
            return [gx]
        }
    }

    /// Layer normalisation over the last axis: `(x - mean) / sqrt(var + eps) * weight + bias`.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) -> Tensor {
        let c = shape.last ?? 1
        for p in [weight, bias].compactMap({ $0 }) {
            precondition(p.shape == [c], "layerNorm: parameter shape \(p.shape) must be [\(c)] for input \(shape)")
            Tensor.checkCompatible(self, p, "layerNorm")
        }
        let rows = count / Swift.max(c, 1)
        let out = new(shape)
        let mean = new([rows], dtype: statsDType), rstd = new([rows], dtype: statsDType)
        backend.layerNorm(self, weight: weight, bias: bias, eps: eps, into: out, mean: mean, rstd: rstd)
        let inputs = [self] + [weight, bias].compactMap { $0 }
        return Tensor.record("layer_norm", out, inputs: inputs) { g, needs in
            let gx = needs[0] ? g.new(self.shape) : g.new([0])
            let gw = weight.map { Tensor.zeros($0.shape, dtype: $0.dtype, device: $0.device) }
            let gb = bias.map { Tensor.zeros($0.shape, dtype: $0.dtype, device: $0.device) }
            g.backend.layerNormBackward(x: self, weight: weight, mean: mean, rstd: rstd, gradOut: g,
                                        into: gx, gradWeight: gw, gradBias: gb)
            var grads: [Tensor?] = [gx]
            if weight != nil { grads.append(gw) }
            if bias != nil { grads.append(gb) }
            return grads
        }
    }

    /// RMS normalisation over the last axis, Hugging Face's `LlamaRMSNorm`: `weight · x / sqrt(mean(x²) + eps)`,
    /// computed in fp32 (fp64 for fp64 input) and rounded once to the input's dtype.
    ///
    /// ```swift
    /// let y = x.rmsNorm(weight: norm.weight, eps: 1e-6)   // x [B, T, C], weight [C]
    /// ```
    public func rmsNorm(weight: Tensor?, eps: Double = 1e-6) -> Tensor {
        let c = shape.last ?? 1
        if let weight {
            precondition(weight.shape == [c], "rmsNorm: weight shape \(weight.shape) must be [\(c)] for input \(shape)")
            Tensor.checkCompatible(self, weight, "rmsNorm")
        }
        let rows = count / Swift.max(c, 1)
        let out = new(shape), rstd = new([rows], dtype: statsDType)
        backend.rmsNorm(self, weight: weight, eps: eps, into: out, rstd: rstd)
        return Tensor.record("rms_norm", out, inputs: [self] + [weight].compactMap { $0 }) { g, needs in
            let gx = needs[0] ? g.new(self.shape) : g.new([0])
            let gw = weight.map { Tensor.zeros($0.shape, dtype: $0.dtype, device: $0.device) }
            g.backend.rmsNormBackward(x: self, weight: weight, rstd: rstd, gradOut: g, into: gx, gradWeight: gw)
            return weight == nil ? [gx] : [gx, gw]
        }
    }

    /// Rotary position embedding in Hugging Face's rotate-half convention, `x·cos + rotate_half(x)·sin`, on
    /// `self [..., H, D]` with per-position tables `cos`, `sin` `[..., D/2]` (one row per leading index, e.g.
    /// `[B, T, D/2]` for `[B, T, H, D]`; fp32, or fp64 for fp64 input). The tables are constants (no gradient);
    /// the backward pass is the inverse rotation. Positions are whatever the tables were built for (a KV cache's
    /// offset included).
    ///
    /// ```swift
    /// let q = qProj(x).reshape([b, t, heads, d]).rotary(cos: cos, sin: sin)   // cos, sin: [B, T, D/2]
    /// ```
    public func rotary(cos: Tensor, sin: Tensor) -> Tensor {
        precondition(rank >= 2 && (shape.last ?? 1) % 2 == 0, "rotary: expected [..., heads, even head_dim], got \(shape)")
        let lead = Array(shape.dropLast(2)), half = shape.last! / 2
        precondition(cos.shape == sin.shape && cos.count == Shape.count(lead) * half && cos.shape.last == half,
                     "rotary: cos/sin must be \(lead + [half]) for x \(shape); got \(cos.shape), \(sin.shape)")
        precondition(cos.dtype == statsDType && sin.dtype == statsDType && cos.device == device && sin.device == device,
                     "rotary: cos/sin must be \(statsDType) on \(device) for \(dtype) input; got \(cos.dtype) on \(cos.device)")
        let out = new(shape)
        backend.rotary(self, cos: cos, sin: sin, inverse: false, into: out)
        return Tensor.record("rotary", out, inputs: [self]) { g, _ in
            let gx = g.new(g.shape)
            g.backend.rotary(g, cos: cos, sin: sin, inverse: true, into: gx)
            return [gx]
        }
    }

    /// Llama's gated MLP activation, fused: `silu(gate) · up` (same shapes).
    ///
    /// ```swift
    /// let h = downProj(Tensor.swiglu(gate: gateProj(x), up: upProj(x)))
    /// ```
    public static func swiglu(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) differ")
        checkCompatible(gate, up, "swiglu")
        precondition(gate.dtype.isFloatingPoint, "swiglu: needs floating-point tensors, got \(gate.dtype)")
        let out = gate.new(gate.shape)
        gate.backend.swiglu(gate: gate, up: up, into: out)
        return record("swiglu", out, inputs: [gate, up]) { g, _ in
            let gg = g.new(gate.shape), gu = g.new(up.shape)
            g.backend.swigluBackward(gate: gate, up: up, gradOut: g, into: gg, gradUp: gu)
            return [gg, gu]
        }
    }

    /// Rows of `weight [V, C]` picked by integer `ids` (any shape): `ids.shape + [C]`.
    ///
    /// `paddingIndex` is PyTorch's `padding_idx`: that row is looked up as usual but never receives a gradient.
    public static func embedding(_ weight: Tensor, ids: Tensor, paddingIndex: Int? = nil) -> Tensor {
        precondition(weight.rank == 2, "embedding: weight must be [vocab, dim], got \(weight.shape)")
        if let p = paddingIndex {
            precondition(p >= 0 && p < weight.shape[0], "embedding: paddingIndex \(p) is outside the \(weight.shape[0]) rows")
        }
        precondition(!ids.dtype.isFloatingPoint, "embedding: ids must be int32 or int64, got \(ids.dtype)")
        precondition(ids.device == weight.device, "embedding: ids on \(ids.device), weight on \(weight.device)")
        let out = weight.new(ids.shape + [weight.shape[1]])
        weight.backend.embedding(weight, ids: ids, into: out)
        return record("embedding", out, inputs: [weight]) { g, _ in
            let gw = Tensor.zeros(weight.shape, dtype: g.dtype, device: g.device)
            g.backend.embeddingBackward(ids: ids, gradOut: g, into: gw)
            if let p = paddingIndex { gw.slice(axis: 0, p..<(p + 1)).fill(0) }
            return [gw]
        }
    }

    /// Inverted dropout with probability `p`, drawing its mask from `rng` (advanced by `count`).
    /// The backward pass re-draws the same mask from the saved counter, so nothing is stored.
    public func dropout(_ p: Double, rng: inout RandomStream) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout: p must be in [0, 1), got \(p)")
        if p == 0 { return self }
        let seed = rng.seed, offset = rng.advance(by: count)
        let out = new(shape)
        backend.dropout(self, p: p, seed: seed, offset: offset, into: out)
        return Tensor.record("dropout", out, inputs: [self]) { g, _ in
            let gx = g.new(g.shape)
            g.backend.dropout(g, p: p, seed: seed, offset: offset, into: gx)
            return [gx]
        }
    }

    /// `cond != 0 ? a : b`, broadcasting all three.
    public static func `where`(_ cond: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        checkCompatible(a, b, "where")
        guard let ab = Shape.broadcast(a.shape, b.shape), let shape = Shape.broadcast(ab, cond.shape) else {
            preconditionFailure("where: shapes \(cond.shape), \(a.shape), \(b.shape) cannot be broadcast together")
        }
        let out = a.new(shape)
        a.backend.select(cond, a, b, into: out)
        return record("where", out, inputs: [a, b]) { g, needs in
            let zero = Tensor.zeros([], dtype: g.dtype, device: g.device)
            return [needs[0] ? Tensor.where(cond, g, zero).sumToShape(a.shape) : nil,
                    needs[1] ? Tensor.where(cond, zero, g).sumToShape(b.shape) : nil]
        }
    }

    /// Replaces elements where `mask != 0` with `value` (mask broadcasts).
    public func maskedFill(_ mask: Tensor, _ value: Double) -> Tensor {
        Tensor.where(mask, Tensor.full([], value, dtype: dtype, device: device), self)
    }

    /// Mean cross-entropy of `self` (logits `[..., V]`) against integer `targets` (`[...]`),
    /// skipping targets equal to `ignoreIndex`; fused and stable (log-sum-exp), like
    /// `F.cross_entropy`.
    public func crossEntropy(targets: Tensor, ignoreIndex: Int = -100) -> Tensor {
        let v = shape.last ?? 1
        precondition(Array(shape.dropLast()) == targets.shape,
                     "crossEntropy: logits \(shape) need targets of shape \(Array(shape.dropLast())), got \(targets.shape)")
        precondition(!targets.dtype.isFloatingPoint, "crossEntropy: targets must be int32 or int64, got \(targets.dtype)")
        let rows = count / Swift.max(v, 1)
        let logits = reshape([rows, v])
        let flatTargets = targets.view([rows])
        let losses = new([rows], dtype: statsDType), lse = new([rows], dtype: statsDType)
        backend.crossEntropy(logits, targets: flatTargets, ignoreIndex: ignoreIndex, into: losses, lse: lse)
        // The number of counted targets stays on the device (no host synchronisation): max(1, rows − ignored).
        let valid = noGrad {
            let ignored = flatTargets.cast(to: .float64).equal(Tensor.full([], Double(ignoreIndex), dtype: .float64, device: device)).sum()
            return (Double(rows) - ignored).maximum(Tensor.full([], 1, dtype: .float64, device: device)).cast(to: statsDType)
        }
        let out = noGrad { losses.sum() / valid }.cast(to: dtype)
        let node = Tensor.record("cross_entropy", out, inputs: [logits]) { g, _ in
            let perRow = (g.cast(to: self.statsDType) / valid).expand(to: [rows])
            let gx = g.new([rows, v])
            g.backend.crossEntropyBackward(logits, targets: flatTargets, lse: lse, gradLoss: perRow,
                                           ignoreIndex: ignoreIndex, into: gx)
            return [gx]
        }
        return node
    }

    /// Mean squared error against `target` (same shape; a target of another float dtype is
    /// converted to the prediction's, so fp32 labels work with a bf16/fp16 model).
    public func mseLoss(_ target: Tensor) -> Tensor {
        precondition(shape == target.shape, "mseLoss: prediction \(shape) and target \(target.shape) differ")
        let target = target.dtype == dtype || !target.dtype.isFloatingPoint ? target : target.cast(to: dtype)
        return (self - target).square().mean()
    }

    /// Attention on q, k, v packed token-major as `qkv: [B, T, 3, H, D]` — a fused QKV projection's output,
    /// reshaped, no permute — returning `[B, T, H, D]` (reshape it to `[B, T, H·D]` for the output projection).
    /// Same values as `attention(q, k, v)` on the permuted `[B, H, T, D]` slices, but q, k, v are read in place and
    /// the backward pass writes dq, dk, dv straight into one `[B, T, 3, H, D]` gradient: no permute copies either
    /// way, no zero-filled slice gradients to add up.
    ///
    /// ```swift
    /// let qkv = projection(x).reshape([b, t, 3, heads, d])   // [B, T, 3, H, D]
    /// let y = Tensor.attention(packed: qkv, causal: true)      // [B, T, H, D]
    /// ```
    public static func attention(packed: Tensor, causal: Bool = true, scale: Double? = nil) -> Tensor {
        attention(packed: packed, mask: AttentionMask(causal: causal), scale: scale)
    }

    /// ``attention(packed:causal:scale:)`` under any ``AttentionMask`` (key padding, sliding window).
    public static func attention(packed: Tensor, mask: AttentionMask, scale: Double? = nil) -> Tensor {
        precondition(packed.rank == 5 && packed.shape[2] == 3,
                     "attention(packed:): expected [B, T, 3, H, D]; got \(packed.shape)")
        let (b, t, h, d) = (packed.shape[0], packed.shape[1], packed.shape[3], packed.shape[4])
        let layout = AttentionLayout.packedTokenMajor(batch: b, heads: h, tokens: t, headDim: d)
        let (n, c) = (packed.count, h * d)
        let (q, k, v) = (packed.view([n]), packed.view([n - c], offset: c), packed.view([n - 2 * c], offset: 2 * c))
        let scale = scale ?? 1 / Double(d).squareRoot()
        let mask = mask.prepared(for: layout, device: packed.device)
        let out = packed.new([b, t, h, d])
        let lse = packed.new([b, h, t], dtype: packed.statsDType)
        packed.backend.attention(q: q, k: k, v: v, layout: layout, mask: mask, scale: scale, into: out, lse: lse)
        return record("attention", out, inputs: [packed]) { [unowned out] g, _ in
            let gp = g.new(packed.shape)
            g.backend.attentionBackward(q: q, k: k, v: v, out: out, lse: lse, gradOut: g, layout: layout, mask: mask,
                                        scale: scale, into: gp.view([n]), gradK: gp.view([n - c], offset: c),
                                        gradV: gp.view([n - 2 * c], offset: 2 * c))
            return [gp]
        }
    }

    /// Fused scaled dot-product attention on `q, k, v: [B, H, T, D]` (causal by default),
    /// `softmax(q·kᵀ·scale + mask)·v`, never storing the `[T, T]` probabilities for backward.
    public static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, causal: Bool = true,
                                 scale: Double? = nil) -> Tensor {
        attention(q, k, v, mask: AttentionMask(causal: causal), scale: scale)
    }

    /// Fused attention under `mask` (causal, sliding window, key padding) with grouped K/V heads and possibly
    /// fewer queries than keys (a KV cache: the queries are the last `Tq` positions).
    ///
    /// Head-major: `q [B, H, Tq, D]`, `k, v [B, Hkv, Tk, D]` → `[B, H, Tq, D]`. With `tokenMajor`, the projections'
    /// own layout: `q [B, Tq, H, D]`, `k, v [B, Tk, Hkv, D]` → `[B, Tq, H, D]`, so no permute is needed either way.
    /// `Hkv` divides `H`; query head `h` reads K/V head `h / (H / Hkv)` (no copy of K/V).
    ///
    /// ```swift
    /// let q = qProj(x).reshape([b, t, 8, 64]), k = kProj(x).reshape([b, t, 2, 64]), v = vProj(x).reshape([b, t, 2, 64])
    /// let y = Tensor.attention(q, k, v, mask: AttentionMask(causal: true, window: 4096), tokenMajor: true)  // [B, T, 8, 64]
    /// ```
    public static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: AttentionMask, scale: Double? = nil,
                                 tokenMajor: Bool = false) -> Tensor {
        precondition(q.rank == 4 && k.rank == 4 && k.shape == v.shape,
                     "attention: q must be rank 4 and k, v equal rank-4 shapes; got \(q.shape), \(k.shape), \(v.shape)")
        checkCompatible(q, k, "attention")
        checkCompatible(q, v, "attention")
        let (b, h, tq, d) = tokenMajor ? (q.shape[0], q.shape[2], q.shape[1], q.shape[3])
            : (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hk, tk) = tokenMajor ? (k.shape[2], k.shape[1]) : (k.shape[1], k.shape[2])
        precondition(k.shape[0] == b && k.shape[3] == d && hk >= 1 && h % hk == 0 && tk >= tq,
                     "attention: k/v \(k.shape) do not fit q \(q.shape) (same batch and head_dim, K/V heads dividing heads, keys >= queries)")
        let scale = scale ?? 1 / Double(d).squareRoot()
        let layout = tokenMajor ? AttentionLayout.tokenMajor(batch: b, heads: h, tokens: tq, headDim: d, kvHeads: hk, keyTokens: tk)
            : AttentionLayout.headMajor(batch: b, heads: h, tokens: tq, headDim: d, kvHeads: hk, keyTokens: tk)
        let mask = mask.prepared(for: layout, device: q.device)
        let out = q.new(q.shape)
        let lse = q.new([b, h, tq], dtype: q.statsDType)
        q.backend.attention(q: q, k: k, v: v, layout: layout, mask: mask, scale: scale, into: out, lse: lse)
        return record("attention", out, inputs: [q, k, v]) { [unowned out] g, _ in
            let gq = g.new(q.shape), gk = g.new(k.shape), gv = g.new(v.shape)
            g.backend.attentionBackward(q: q, k: k, v: v, out: out, lse: lse, gradOut: g, layout: layout, mask: mask,
                                        scale: scale, into: gq, gradK: gk, gradV: gv)
            return [gq, gk, gv]
        }
    }
}

extension AttentionMask {
    /// The mask as the kernels take it: `keyPadding` as int32 `[B, Tk]` on `device` (any integer or float 0/1
    /// tensor of `B·Tk` elements is accepted and converted).
    func prepared(for layout: AttentionLayout, device: Device) -> AttentionMask {
        guard let m = keyPadding else { return self }
        precondition(m.count == layout.batch * layout.keyTokens,
                     "attention: keyPadding must be [\(layout.batch), \(layout.keyTokens)] (batch, keys); got \(m.shape)")
        var out = self
        out.keyPadding = noGrad {
            let onDevice = m.device == device ? m : m.to(device)
            return (onDevice.dtype == .int32 ? onDevice : onDevice.cast(to: .int32)).reshape([layout.batch, layout.keyTokens])
        }
        return out
    }
}
