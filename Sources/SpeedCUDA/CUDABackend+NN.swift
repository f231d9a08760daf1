// Backend reductions and fused neural-network kernels on the GPU: reduce, softmax, layer/RMS norm, rotary, SwiGLU,
// embedding, cross-entropy, flash-style attention and the fused Adam step, as docs/SpeedCUDA-kernels.md prescribes.
// Invariant: scratch (reduction partials, layer-norm column partials, attention delta) comes from the caching
// allocator and is returned right after the launch; stream order keeps it alive until the kernels have read it.

import SpeedCore

extension CUDABackend {
    /// A device scratch block of `bytes`, returned to the cache after `body` has issued its launches.
    func withScratch<R>(_ bytes: Int, _ body: (UInt64) -> R) -> R {
        let p = allocate(byteCount: max(bytes, 1))
        defer { deallocate(p, byteCount: max(bytes, 1)) }
        return body(UInt64(UInt(bitPattern: p)))
    }

    /// Bytes of the accumulation type of `d` (fp64 for fp64, else fp32).
    static func accBytes(_ d: DType) -> Int { d == .float64 ? 8 : 4 }

    // MARK: Reductions

    public func reduce(_ op: ReduceOp, _ x: Tensor, outer: Int, count: Int, inner: Int, into out: Tensor) {
        precondition(outer * count * inner == x.count && outer * inner == out.count,
                     "reduce: [\(outer), \(count), \(inner)] does not match \(x.shape) -> \(out.shape)")
        Self.requireFloat(x.dtype, "reduce")
        guard out.count > 0 else { return }
        let opName = switch op { case .sum: "sum"; case .max: "max"; case .sumOfSquares: "sumsq" }
        let t = Self.suffix(x.dtype), sms = info.multiprocessorCount
        let px = address(x), po = address(out)
        if inner == 1 {
            if count <= 1024 {
                return launch(.reduce, "ss_reduce_rows_warp_\(opName)_\(t)", grid: warpRows(outer),
                              [.pointer(px), .int(outer), .int(count), .pointer(po)])
            }
            let splits = max(1, min((count + 16383) / 16384, (4 * sms + outer - 1) / outer))
            let shape = rowBlock(rows: outer * splits, n: (count + splits - 1) / splits)
            if splits == 1 {
                return launch(.reduce, "ss_reduce_rows_\(opName)_\(t)", grid: shape.grid, block: shape.block,
                              [.pointer(px), .int(outer), .int(count), .int(1), .pointer(0), .pointer(po)])
            }
            withScratch(outer * splits * Self.accBytes(x.dtype)) { partial in
                launch(.reduce, "ss_reduce_rows_\(opName)_\(t)", grid: shape.grid, block: shape.block,
                       [.pointer(px), .int(outer), .int(count), .int(splits), .pointer(partial), .pointer(po)])
                launch(.reduce, "ss_reduce_finish_\(opName)_\(t)", grid: (min(outer, 65535), 1), block: (256, 1),
                       [.pointer(partial), .int(outer), .int(splits), .pointer(po)])
            }
            return
        }
        let tiles = outer * ((inner + 31) / 32)
        let splits = tiles >= 4 * sms ? 1 : max(1, min((count + 63) / 64, (4 * sms + tiles - 1) / tiles))
        let grid = (max(1, min(tiles * splits, 65535)), 1)
        if splits == 1 {
            return launch(.reduce, "ss_reduce_cols_\(opName)_\(t)", grid: grid, block: (32, 8),
                          [.pointer(px), .int(outer), .int(count), .int(inner), .int(1), .pointer(0), .pointer(po)])
        }
        withScratch(outer * inner * splits * Self.accBytes(x.dtype)) { partial in
            launch(.reduce, "ss_reduce_cols_\(opName)_\(t)", grid: grid, block: (32, 8),
                   [.pointer(px), .int(outer), .int(count), .int(inner), .int(splits), .pointer(partial), .pointer(po)])
            launch(.reduce, "ss_reduce_finish_\(opName)_\(t)", grid: (min(outer * inner, 65535), 1), block: (256, 1),
                   [.pointer(partial), .int(outer * inner), .int(splits), .pointer(po)])
        }
    }

    /// Sets flag 0 on the device if any element of `x` is ±inf or NaN, and returns whether it was set
    /// (one host synchronisation). The engine's overflow check without the norm.
    public func hasNonFinite(_ x: Tensor) -> Bool {
        Self.requireFloat(x.dtype, "non-finite check")
        guard x.count > 0 else { return false }
        clearFlag(0)
        launch(.reduce, "ss_nonfinite_\(Self.suffix(x.dtype))", grid: flatGrid(x.count),
               [.pointer(address(x)), .int(x.count), .pointer(flags)])
        return takeFlag(0) != 0
    }

    // MARK: Softmax and layer norm

    public func softmax(_ x: Tensor, log: Bool, into y: Tensor) {
        Self.requireFloat(x.dtype, "softmax")
        let n = x.shape.last ?? 1, rows = x.count / max(n, 1)
        guard rows > 0, n > 0 else { return }
        let shape = rowBlock(rows: rows, n: n)
        launch(.nn, "ss_softmax_\(Self.suffix(x.dtype))", grid: shape.grid, block: shape.block,
               [.pointer(address(x)), .pointer(address(y)), .int(rows), .int(n), .flag(log)])
    }

    public func softmaxBackward(y: Tensor, gradOut: Tensor, log: Bool, into gradIn: Tensor) {
        let n = y.shape.last ?? 1, rows = y.count / max(n, 1)
        guard rows > 0, n > 0 else { return }
        let shape = rowBlock(rows: rows, n: n)
        launch(.nn, "ss_softmax_bwd_\(Self.suffix(y.dtype))", grid: shape.grid, block: shape.block,
               [.pointer(address(y)), .pointer(address(gradOut)), .pointer(address(gradIn)), .int(rows), .int(n), .flag(log)])
    }

    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double,
                          into y: Tensor, mean: Tensor, rstd: Tensor) {
        Self.requireFloat(x.dtype, "layerNorm")
        let c = x.shape.last ?? 1, rows = x.count / max(c, 1)
        guard rows > 0 else { return }
        let shape = rowBlock(rows: rows, n: c)
        launch(.nn, "ss_layernorm_\(Self.suffix(x.dtype))", grid: shape.grid, block: shape.block,
               [.pointer(address(x)), .pointer(address(weight)), .pointer(address(bias)), .pointer(address(y)),
                .pointer(address(mean)), .pointer(address(rstd)), .int(rows), .int(c), .f64(eps)])
    }

    public func layerNormBackward(x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor, gradOut: Tensor,
                                  into gradIn: Tensor, gradWeight: Tensor?, gradBias: Tensor?) {
        let c = x.shape.last ?? 1, rows = x.count / max(c, 1)
        guard rows > 0 else { return }
        var shape = rowBlock(rows: rows, n: c)
        // fp64 needs 68 registers per thread: at most 896 threads fit a block, so cap it at 512.
        if x.dtype == .float64 { shape.block.0 = min(shape.block.0, 512) }
        let blocks = max(1, min(rows, 2 * info.multiprocessorCount))
        let dx = gradIn.count == x.count ? address(gradIn) : 0
        let acc = Self.accBytes(x.dtype)
        let wsBytes = blocks * c * acc
        withScratch(gradWeight == nil ? 0 : wsBytes) { wsW in
            withScratch(gradBias == nil ? 0 : wsBytes) { wsB in
                let w = gradWeight == nil ? 0 : wsW, b = gradBias == nil ? 0 : wsB
                launch(.nn, "ss_layernorm_bwd_\(Self.suffix(x.dtype))", grid: (blocks, 1), block: shape.block,
                       [.pointer(address(x)), .pointer(address(weight)), .pointer(address(mean)), .pointer(address(rstd)),
                        .pointer(address(gradOut)), .pointer(dx), .pointer(w), .pointer(b), .int(rows), .int(c)])
                if gradWeight != nil || gradBias != nil {
                    launch(.nn, "ss_layernorm_bwd_params_\(Self.suffix(x.dtype))", grid: flatGrid(c),
                           [.pointer(w), .pointer(b), .int(blocks), .int(c), .pointer(address(gradWeight)),
                            .pointer(address(gradBias))])
                }
            }
        }
    }

    // MARK: RMSNorm, rotary, SwiGLU

    public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Double, into y: Tensor, rstd: Tensor) {
        Self.requireFloat(x.dtype, "rmsNorm")
        let c = x.shape.last ?? 1, rows = x.count / max(c, 1)
        guard rows > 0 else { return }
        let shape = rowBlock(rows: rows, n: c)
        launch(.nn, "ss_rmsnorm_\(Self.suffix(x.dtype))", grid: shape.grid, block: shape.block,
               [.pointer(address(x)), .pointer(address(weight)), .pointer(address(y)), .pointer(address(rstd)),
                .int(rows), .int(c), .f64(eps)])
    }

    public func rmsNormBackward(x: Tensor, weight: Tensor?, rstd: Tensor, gradOut: Tensor, into gradIn: Tensor,
                                gradWeight: Tensor?) {
        let c = x.shape.last ?? 1, rows = x.count / max(c, 1)
        guard rows > 0 else { return }
        let shape = rowBlock(rows: rows, n: c)
        let blocks = max(1, min(rows, 2 * info.multiprocessorCount))
        let dx = gradIn.count == x.count ? address(gradIn) : 0
        withScratch(gradWeight == nil ? 0 : blocks * c * Self.accBytes(x.dtype)) { ws in
            let w = gradWeight == nil ? 0 : ws
            launch(.nn, "ss_rmsnorm_bwd_\(Self.suffix(x.dtype))", grid: (blocks, 1), block: shape.block,
                   [.pointer(address(x)), .pointer(address(weight)), .pointer(address(rstd)), .pointer(address(gradOut)),
                    .pointer(dx), .pointer(w), .int(rows), .int(c)])
            if gradWeight != nil {
                launch(.nn, "ss_layernorm_bwd_params_\(Self.suffix(x.dtype))", grid: flatGrid(c),
                       [.pointer(w), .pointer(0), .int(blocks), .int(c), .pointer(address(gradWeight)), .pointer(0)])
            }
        }
    }

    public func rotary(_ x: Tensor, cos: Tensor, sin: Tensor, inverse: Bool, into out: Tensor) {
        Self.requireFloat(x.dtype, "rotary")
        let d = x.shape.last ?? 0, heads = x.rank >= 2 ? x.shape[x.rank - 2] : 1
        precondition(d % 2 == 0 && cos.count * 2 * heads == x.count && sin.count == cos.count && out.count == x.count
                     && cos.dtype == x.statsDType && sin.dtype == x.statsDType,
                     "rotary: x \(x.shape) \(x.dtype) needs \(x.statsDType) cos/sin of \(x.count / max(2 * heads, 1)) elements, got \(cos.shape) \(cos.dtype)")
        let pairs = x.count / 2
        guard pairs > 0 else { return }
        launch(.nn, "ss_rotary_\(Self.suffix(x.dtype))", grid: flatGrid(pairs),
               [.pointer(address(x)), .pointer(address(cos)), .pointer(address(sin)), .pointer(address(out)),
                .int(pairs), .int(heads), .int(d / 2), .flag(inverse)])
    }

    public func swiglu(gate: Tensor, up: Tensor, into out: Tensor) {
        Self.requireFloat(gate.dtype, "swiglu")
        precondition(gate.count == up.count && out.count == gate.count, "swiglu: gate \(gate.shape), up \(up.shape), out \(out.shape)")
        guard gate.count > 0 else { return }
        launch(.elementwise, "ss_swiglu_\(Self.suffix(gate.dtype))", grid: flatGrid(gate.count),
               [.pointer(address(gate)), .pointer(address(up)), .pointer(address(out)), .int(gate.count)])
    }

    public func swigluBackward(gate: Tensor, up: Tensor, gradOut: Tensor, into gradGate: Tensor, gradUp: Tensor) {
        guard gate.count > 0 else { return }
        launch(.elementwise, "ss_swiglu_bwd_\(Self.suffix(gate.dtype))", grid: flatGrid(gate.count),
               [.pointer(address(gate)), .pointer(address(up)), .pointer(address(gradOut)), .pointer(address(gradGate)),
                .pointer(address(gradUp)), .int(gate.count)])
    }

    // MARK: Embedding and cross-entropy

    public func embedding(_ weight: Tensor, ids: Tensor, into out: Tensor) {
        let c = weight.shape[1], v = weight.shape[0], n = ids.count
        guard n > 0 else { return }
        precondition(ids.dtype == .int32 || ids.dtype == .int64, "embedding: ids must be int32 or int64, got \(ids.dtype)")
        launch(.nn, "ss_embedding_\(Self.suffix(weight.dtype))_\(Self.suffix(ids.dtype))", grid: warpRows(n),
               [.pointer(address(weight)), .pointer(address(ids)), .pointer(address(out)), .int(n), .int(c), .int(v),
                .pointer(flags + 4)])
    }

    public func embeddingBackward(ids: Tensor, gradOut: Tensor, into gradWeight: Tensor) {
        let c = gradWeight.shape[1], v = gradWeight.shape[0], n = ids.count
        guard n > 0 else { return }
        let name = "ss_embedding_bwd_\(Self.suffix(gradOut.dtype))_\(Self.suffix(ids.dtype))"
        if gradWeight.dtype.isHalf {
            // Atomics need the accumulation type: accumulate into an fp32 copy, then round back (the CPU's way).
            let acc = Tensor(empty: gradWeight.shape, dtype: .float32, device: gradWeight.device)
            cast(gradWeight, into: acc)
            launch(.nn, name, grid: warpRows(n),
                   [.pointer(address(ids)), .pointer(address(gradOut)), .pointer(address(acc)), .int(n), .int(c), .int(v)])
            cast(acc, into: gradWeight)
        } else {
            launch(.nn, name, grid: warpRows(n),
                   [.pointer(address(ids)), .pointer(address(gradOut)), .pointer(address(gradWeight)), .int(n), .int(c), .int(v)])
        }
    }

    public func crossEntropy(_ logits: Tensor, targets: Tensor, ignoreIndex: Int, into loss: Tensor, lse: Tensor) {
        Self.requireFloat(logits.dtype, "crossEntropy")
        let v = logits.shape.last ?? 1, rows = logits.count / max(v, 1)
        guard rows > 0 else { return }
        let shape = rowBlock(rows: rows, n: v)
        launch(.nn, "ss_cross_entropy_\(Self.suffix(logits.dtype))_\(Self.suffix(targets.dtype))", grid: shape.grid,
               block: shape.block,
               [.pointer(address(logits)), .pointer(address(targets)), .pointer(address(loss)), .pointer(address(lse)),
                .int(rows), .int(v), .int(ignoreIndex), .pointer(flags + 8)])
    }

    public func crossEntropyBackward(_ logits: Tensor, targets: Tensor, lse: Tensor, gradLoss: Tensor,
                                     ignoreIndex: Int, into gradLogits: Tensor) {
        let v = logits.shape.last ?? 1, rows = logits.count / max(v, 1)
        guard rows > 0 else { return }
        let shape = rowBlock(rows: rows, n: v)
        launch(.nn, "ss_cross_entropy_bwd_\(Self.suffix(logits.dtype))_\(Self.suffix(targets.dtype))", grid: shape.grid,
               block: shape.block,
               [.pointer(address(logits)), .pointer(address(targets)), .pointer(address(lse)), .pointer(address(gradLoss)),
                .pointer(address(gradLogits)), .int(rows), .int(v), .int(ignoreIndex)])
    }

    // MARK: Attention

    /// Tile rows × columns of each attention kernel for head width `d` (the kernels' compiled instantiations).
    struct AttentionTiles {
        var width: Int
        var fwd: (Int, Int), dkdv: (Int, Int), dq: (Int, Int)

        init(d: Int) {
            precondition(d >= 1 && d <= 128, "attention on the GPU supports head dimensions up to 128; got \(d)")
            width = d <= 32 ? 32 : d <= 64 ? 64 : 128
            switch width {
            case 32: (fwd, dkdv, dq) = ((64, 64), (64, 64), (64, 64))
            case 64: (fwd, dkdv, dq) = ((64, 64), (64, 64), (64, 64))
            default: (fwd, dkdv, dq) = ((64, 32), (32, 64), (32, 32))
            }
        }

        /// Tensor-core kernels (`flash`): 64 rows per block; forward key tile 64, backward inner tile 64 (32 for
        /// D = 128); 16-bit tiles with rows of `D + 8` elements.
        var flashInner: Int { width == 128 ? 32 : 64 }
        /// Plus one byte per key of the tile for the padding flags (forward and dQ).
        var flashFwdBytes: Int { 2 * (64 + 2 * 64) * (width + 8) + 64 }
        var flashDkdvBytes: Int { 2 * (2 * 64 + 2 * flashInner) * (width + 8) + 8 * flashInner }
        var flashDqBytes: Int { 2 * (2 * 64 + 2 * flashInner) * (width + 8) + flashInner }

        /// Dynamic shared memory in bytes (docs/SpeedCUDA-kernels.md's formulas, `LD = D + 1` floats).
        var fwdBytes: Int { let (r, c) = fwd, ld = width + 1; return 4 * (r * ld + 2 * c * ld + r * (c + 1)) }
        var dkdvBytes: Int { let (r, c) = dkdv, ld = width + 1; return 4 * (2 * c * ld + 2 * r * ld + 2 * r * (c + 1) + 2 * r) }
        var dqBytes: Int { let (r, c) = dq, ld = width + 1; return 4 * (2 * r * ld + 2 * c * ld + r * (c + 1) + 2 * r) }
    }

    /// Whether attention on `dtype` runs on the tensor cores (bf16/fp16 on compute capability 8.0+).
    func usesFlash(_ dtype: DType) -> Bool { tensorCoreAttention && (dtype == .bfloat16 || dtype == .float16) }

    /// The kernels' `SS_ATT_MASK_PARAMS` (keys, causal, window, keep) then `SS_ATT_LAYOUT_PARAMS` (heads, group, then
    /// the (batch, head, token) strides of q, k/v, out/gradOut, gradQ, gradK/gradV).
    private func maskAndLayoutArguments(_ l: AttentionLayout, _ m: AttentionMask) -> [KernelArgument] {
        [.i32(Int32(l.keyTokens)), .flag(m.causal), .i32(Int32(m.window ?? 0)), .pointer(address(m.keyPadding)),
         .int(l.heads), .int(l.group)]
            + [l.input, l.key, l.output, l.grad, l.keyGrad].flatMap { [.int($0.batch), .int($0.head), .int($0.token)] }
    }

    private func requireAttentionType(_ dtype: DType) {
        precondition(dtype != .float64 && dtype.isFloatingPoint,
                     "attention on the GPU supports fp32, bf16 and fp16 (got \(dtype)); run fp64 checks on the CPU")
    }

    public func attention(q: Tensor, k: Tensor, v: Tensor, layout l: AttentionLayout, mask: AttentionMask, scale: Double,
                          into out: Tensor, lse: Tensor) {
        requireAttentionType(q.dtype)
        l.checkOperands(inputs: [q, k, v], outputs: [out])
        mask.check(l, device: q.device)
        let (bh, t, d) = (l.batch * l.heads, l.tokens, l.headDim)
        guard bh > 0, t > 0 else { return }
        let tiles = AttentionTiles(d: d)
        let args: [KernelArgument] = [.pointer(address(q)), .pointer(address(k)), .pointer(address(v)), .pointer(address(out)),
                                      .pointer(address(lse)), .int(bh), .i32(Int32(t)), .i32(Int32(d)), .f32(Float(scale))]
            + maskAndLayoutArguments(l, mask)
        if usesFlash(q.dtype) {
            launch(.flash, "ss_flash_fwd_\(Self.suffix(q.dtype))_d\(tiles.width)", grid: ((t + 63) / 64, min(bh, 65535)),
                   block: (128, 1), sharedBytes: tiles.flashFwdBytes, args)
        } else {
            launch(.attention, "ss_attention_fwd_\(Self.suffix(q.dtype))_d\(tiles.width)",
                   grid: ((t + tiles.fwd.0 - 1) / tiles.fwd.0, min(bh, 65535)), sharedBytes: tiles.fwdBytes, args)
        }
    }

    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, gradOut: Tensor,
                                  layout l: AttentionLayout, mask: AttentionMask, scale: Double,
                                  into gradQ: Tensor, gradK: Tensor, gradV: Tensor) {
        requireAttentionType(q.dtype)
        l.checkOperands(inputs: [q, k, v], outputs: [out, gradOut], grads: [gradQ, gradK, gradV])
        mask.check(l, device: q.device)
        let (bh, t, d, tk) = (l.batch * l.heads, l.tokens, l.headDim, l.keyTokens)
        guard bh > 0, t > 0 else { return }
        let bkv = l.batch * l.kvHeads
        let tiles = AttentionTiles(d: d), ty = Self.suffix(q.dtype), maskArgs = maskAndLayoutArguments(l, mask)
        let layoutArgs = Array(maskArgs.dropFirst(4))
        withScratch(bh * t * 4) { delta in
            launch(.attention, "ss_attention_bwd_preprocess_\(ty)", grid: warpRows(bh * t),
                   [.pointer(address(out)), .pointer(address(gradOut)), .pointer(delta), .int(bh * t), .i32(Int32(t)),
                    .i32(Int32(d))] + layoutArgs)
            let common: [KernelArgument] = [.pointer(address(q)), .pointer(address(k)), .pointer(address(v)),
                                            .pointer(address(gradOut)), .pointer(address(lse)), .pointer(delta)]
            let tail: [KernelArgument] = [.int(bh), .i32(Int32(t)), .i32(Int32(d)), .f32(Float(scale))] + maskArgs
            if usesFlash(q.dtype) {
                launch(.flash, "ss_flash_bwd_dkdv_\(ty)_d\(tiles.width)", grid: ((tk + 63) / 64, min(bkv, 65535)),
                       block: (128, 1), sharedBytes: tiles.flashDkdvBytes,
                       common + [.pointer(address(gradK)), .pointer(address(gradV))] + tail)
                launch(.flash, "ss_flash_bwd_dq_\(ty)_d\(tiles.width)", grid: ((t + 63) / 64, min(bh, 65535)),
                       block: (128, 1), sharedBytes: tiles.flashDqBytes, common + [.pointer(address(gradQ))] + tail)
                return
            }
            launch(.attention, "ss_attention_bwd_dkdv_\(ty)_d\(tiles.width)",
                   grid: ((tk + tiles.dkdv.1 - 1) / tiles.dkdv.1, min(bkv, 65535)), sharedBytes: tiles.dkdvBytes,
                   common + [.pointer(address(gradK)), .pointer(address(gradV))] + tail)
            launch(.attention, "ss_attention_bwd_dq_\(ty)_d\(tiles.width)",
                   grid: ((t + tiles.dq.0 - 1) / tiles.dq.0, min(bh, 65535)), sharedBytes: tiles.dqBytes,
                   common + [.pointer(address(gradQ))] + tail)
        }
    }

    // MARK: Optimizer

    public func adamStep(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, hyper h: AdamHyper,
                         lowPrecisionCopy: Tensor?) {
        let n = param.count
        precondition(param.dtype == .float32 && expAvg.dtype == .float32 && expAvgSq.dtype == .float32,
                     "adamStep: param and moments must be fp32")
        precondition(grad.count == n && expAvg.count == n && expAvgSq.count == n && (lowPrecisionCopy?.count ?? n) == n,
                     "adamStep: counts differ (\(n), \(grad.count), \(expAvg.count), \(expAvgSq.count))")
        guard n > 0 else { return }
        let name: String
        if let copy = lowPrecisionCopy {
            precondition(copy.dtype.isHalf, "adamStep: the low-precision copy must be bf16 or fp16, got \(copy.dtype)")
            name = "ss_adam_\(Self.suffix(grad.dtype))_to_\(Self.suffix(copy.dtype))"
        } else {
            name = "ss_adam_\(Self.suffix(grad.dtype))"
        }
        let l2 = !h.decoupled && h.weightDecay != 0
        let gscale = Float(h.gradScale)
        launch(.optim, name, grid: flatGrid(n),
               [.pointer(address(param)), .pointer(address(grad)), .pointer(address(expAvg)), .pointer(address(expAvgSq)),
                .pointer(address(lowPrecisionCopy)), .int(n),
                .f32(Float(h.beta1)), .f32(Float(1 - h.beta1)), .f32(Float(h.beta2)), .f32(Float(1 - h.beta2)),
                .f32(Float(h.eps)), .f32(Float(1 / h.biasCorrection2Sqrt)), .f32(Float(h.lr / h.biasCorrection1)),
                .f32(gscale), .f32(h.decoupled ? Float(1 - h.lr * h.weightDecay) : 1), .f32(Float(h.weightDecay)),
                .flag(l2 || gscale != 1), .flag(l2)])
    }
}
