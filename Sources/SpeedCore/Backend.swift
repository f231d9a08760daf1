// The kernel contract every device implements (CPU here, CUDA in SpeedCUDA): about 32 kernels on contiguous tensors.
// Invariant: every tensor handed to a kernel is contiguous row-major; outputs are preallocated by the caller
// on the same device, and a kernel never allocates tensors the caller can see.

import RealModule

/// Elementwise maps `y = f(x)`; backward computes `dx = dy * f'(x)` from `x` and `y`.
public enum UnaryOp: Sendable, Hashable {
    case neg, exp, log, sqrt, tanh, sigmoid, relu, abs, square
    /// GELU with the tanh approximation (GPT-2's).
    case gelu
    /// GELU with the exact erf.
    case geluExact
    /// `x ^ p` for a scalar exponent.
    case pow(Double)
    /// `x * scale + shift`.
    case affine(scale: Double, shift: Double)
    /// SiLU (swish): `x · sigmoid(x)` (Llama's `hidden_act: silu`).
    case silu
}

/// Broadcasting binary maps `out = a ∘ b`.
public enum BinaryOp: Sendable, Hashable {
    case add, sub, mul, div, pow, maximum, minimum
    /// 1 where `a == b`, else 0.
    case equal
    /// 1 where `a > b`, else 0.
    case greater
}

/// Reductions over the middle axis of a `[outer, count, inner]` view.
public enum ReduceOp: Sendable, Hashable {
    case sum, max
    /// Σ x² (global gradient norms without a squared temporary).
    case sumOfSquares
}

/// One (possibly batched) matrix product `C = alpha * op(A) · op(B) + beta * C`.
///
/// `A` is `[batch, m, k]` (stored `[batch, k, m]` when `transA`), `B` is `[batch, k, n]`
/// (stored `[batch, n, k]` when `transB`), `C` is `[batch, m, n]`. A stride of 0 broadcasts
/// that operand across the batch.
public struct GemmShape: Sendable, Hashable {
    public var batch: Int, m: Int, n: Int, k: Int
    public var transA: Bool, transB: Bool
    public var strideA: Int, strideB: Int, strideC: Int
    public var alpha: Double = 1, beta: Double = 0

    public init(batch: Int, m: Int, n: Int, k: Int, transA: Bool, transB: Bool,
                strideA: Int, strideB: Int, strideC: Int, alpha: Double = 1, beta: Double = 0) {
        self.batch = batch; self.m = m; self.n = n; self.k = k
        self.transA = transA; self.transB = transB
        self.strideA = strideA; self.strideB = strideB; self.strideC = strideC
        self.alpha = alpha; self.beta = beta
    }
}

/// Where one attention operand's rows live: token `t` of head `h` in batch `b` starts
/// `b·batch + h·head + t·token` elements after the tensor's offset, and holds `headDim` contiguous values.
public struct AttentionStrides: Sendable, Hashable {
    public var batch: Int, head: Int, token: Int

    public init(batch: Int, head: Int, token: Int) {
        self.batch = batch; self.head = head; self.token = token
    }
}

/// The shape of one attention call and where its operands live: `input` for q, `key` for k and v, `output` for out
/// and gradOut, `grad` for gradQ, `keyGrad` for gradK and gradV.
///
/// Grouped-query attention: `kvHeads` divides `heads`, and query head `h` reads K/V head `h / (heads / kvHeads)`
/// (no K/V copy); gradK/gradV sum over the group. Queries may be fewer than keys (`tokens ≤ keyTokens`, a KV
/// cache): query row `i` sits at position `i + keyTokens − tokens`, key `j` at position `j`.
///
/// ```swift
/// // q, k, v: [B, H, T, D] tensors
/// let layout = AttentionLayout.headMajor(batch: 2, heads: 4, tokens: 128, headDim: 64)
/// // q, k, v packed in one [B, T, 3, H, D] tensor (a QKV projection's output, no permute), out [B, T, H, D]
/// let packed = AttentionLayout.packedTokenMajor(batch: 2, heads: 4, tokens: 128, headDim: 64)
/// // q [B, T, 8, D], k/v [B, T, 2, D] straight from their projections, out [B, T, 8, D]
/// let gqa = AttentionLayout.tokenMajor(batch: 2, heads: 8, tokens: 128, headDim: 64, kvHeads: 2)
/// ```
public struct AttentionLayout: Sendable, Hashable {
    public var batch: Int, heads: Int, tokens: Int, headDim: Int
    /// K/V heads (divides `heads`).
    public var kvHeads: Int
    /// Key/value rows (at least `tokens`).
    public var keyTokens: Int
    public var input: AttentionStrides, output: AttentionStrides, grad: AttentionStrides
    public var key: AttentionStrides, keyGrad: AttentionStrides

    /// Self-attention over one set of heads: k/v share q's strides (`input`), gradK/gradV gradQ's (`grad`).
    public init(batch: Int, heads: Int, tokens: Int, headDim: Int, input: AttentionStrides, output: AttentionStrides,
                grad: AttentionStrides) {
        self.init(batch: batch, heads: heads, tokens: tokens, headDim: headDim, kvHeads: heads, keyTokens: tokens,
                  input: input, key: input, output: output, grad: grad, keyGrad: grad)
    }

    public init(batch: Int, heads: Int, tokens: Int, headDim: Int, kvHeads: Int, keyTokens: Int,
                input: AttentionStrides, key: AttentionStrides, output: AttentionStrides, grad: AttentionStrides,
                keyGrad: AttentionStrides) {
        precondition(kvHeads >= 1 && heads % kvHeads == 0,
                     "AttentionLayout: kvHeads \(kvHeads) must divide heads \(heads)")
        precondition(keyTokens >= tokens, "AttentionLayout: \(tokens) queries need at least as many keys, got \(keyTokens)")
        self.batch = batch; self.heads = heads; self.tokens = tokens; self.headDim = headDim
        self.kvHeads = kvHeads; self.keyTokens = keyTokens
        self.input = input; self.key = key; self.output = output; self.grad = grad; self.keyGrad = keyGrad
    }

    /// Contiguous `[B, H, T, D]` q/out/gradQ and `[B, Hkv, Tk, D]` k/v/gradK/gradV.
    public static func headMajor(batch: Int, heads: Int, tokens: Int, headDim: Int, kvHeads: Int? = nil,
                                 keyTokens: Int? = nil) -> AttentionLayout {
        let (hk, tk) = (kvHeads ?? heads, keyTokens ?? tokens)
        let s = AttentionStrides(batch: heads * tokens * headDim, head: tokens * headDim, token: headDim)
        let kv = AttentionStrides(batch: hk * tk * headDim, head: tk * headDim, token: headDim)
        return AttentionLayout(batch: batch, heads: heads, tokens: tokens, headDim: headDim, kvHeads: hk, keyTokens: tk,
                               input: s, key: kv, output: s, grad: s, keyGrad: kv)
    }

    /// Contiguous `[B, T, H, D]` q/out/gradQ and `[B, Tk, Hkv, D]` k/v/gradK/gradV: projections reshaped, no permute.
    public static func tokenMajor(batch: Int, heads: Int, tokens: Int, headDim: Int, kvHeads: Int? = nil,
                                  keyTokens: Int? = nil) -> AttentionLayout {
        let (hk, tk) = (kvHeads ?? heads, keyTokens ?? tokens)
        let s = AttentionStrides(batch: tokens * heads * headDim, head: headDim, token: heads * headDim)
        let kv = AttentionStrides(batch: tk * hk * headDim, head: headDim, token: hk * headDim)
        return AttentionLayout(batch: batch, heads: heads, tokens: tokens, headDim: headDim, kvHeads: hk, keyTokens: tk,
                               input: s, key: kv, output: s, grad: s, keyGrad: kv)
    }

    /// q, k, v (and their gradients) interleaved in one `[B, T, 3, H, D]` tensor — q at offset 0, k at `H·D`,
    /// v at `2·H·D` — and out / gradOut as `[B, T, H, D]`.
    public static func packedTokenMajor(batch: Int, heads: Int, tokens: Int, headDim: Int) -> AttentionLayout {
        let c = heads * headDim
        let packed = AttentionStrides(batch: tokens * 3 * c, head: headDim, token: 3 * c)
        let out = AttentionStrides(batch: tokens * c, head: headDim, token: c)
        return AttentionLayout(batch: batch, heads: heads, tokens: tokens, headDim: headDim, input: packed, output: out,
                               grad: packed)
    }

    /// Query heads per K/V head.
    public var group: Int { heads / kvHeads }
    /// How many positions the queries sit after the first key (`keyTokens − tokens`).
    public var queryOffset: Int { keyTokens - tokens }

    /// Elements a q-side operand (q, out, gradOut, gradQ) with `strides` spans from its first to its last element.
    public func span(_ s: AttentionStrides) -> Int { span(s, heads: heads, tokens: tokens) }

    /// Elements an operand of `heads` × `tokens` rows with strides `s` spans (its view must hold that many).
    public func span(_ s: AttentionStrides, heads: Int, tokens: Int) -> Int {
        guard batch > 0, heads > 0, tokens > 0, headDim > 0 else { return 0 }
        return (batch - 1) * s.batch + (heads - 1) * s.head + (tokens - 1) * s.token + headDim
    }

    /// Stops unless every operand's view holds the rows this layout addresses (a caller bug): `inputs` are
    /// q then k, v; `outputs` out (and gradOut); `grads` gradQ then gradK, gradV.
    public func checkOperands(inputs: [Tensor], outputs: [Tensor], grads: [Tensor] = []) {
        let kv = (kvHeads, keyTokens), qs = (heads, tokens)
        var checks: [(AttentionStrides, (Int, Int), Tensor, String)] = []
        for (i, t) in inputs.enumerated() { checks.append(i == 0 ? (input, qs, t, "q") : (key, kv, t, "k/v")) }
        for t in outputs { checks.append((output, qs, t, "out/gradOut")) }
        for (i, t) in grads.enumerated() { checks.append(i == 0 ? (grad, qs, t, "gradQ") : (keyGrad, kv, t, "gradK/gradV")) }
        for (strides, (h, n), t, what) in checks {
            precondition(t.count >= span(strides, heads: h, tokens: n),
                         "attention: a \(what) tensor of \(t.count) elements is too small for \(self)")
        }
    }
}

/// Which keys each query of an attention call may see, beyond the layout's shape. Query `i` sits at position
/// `p = i + keyTokens − tokens` (see ``AttentionLayout``), key `j` at `j`:
///
/// - `causal`: keys `j ≤ p`;
/// - `window` (Mistral's `sliding_window`, needs `causal`): also `j > p − window`;
/// - `keyPadding` `[B, keyTokens]`, int32, nonzero = keep: padded keys get zero probability.
///
/// A query that sees no key at all (e.g. every key padded) gets a zero output, lse −∞ and no gradient, as
/// PyTorch's SDPA gives for a fully masked row; only such rows (padding queries) differ from transformers' eager
/// path, which spreads them uniformly over the keys.
///
/// ```swift
/// let mistral = AttentionMask(causal: true, window: 4096)
/// let bert = AttentionMask(keyPadding: attentionMask)      // [B, T], 1 = token, 0 = padding
/// ```
public struct AttentionMask {
    public var causal: Bool
    public var window: Int?
    public var keyPadding: Tensor?

    public init(causal: Bool = false, window: Int? = nil, keyPadding: Tensor? = nil) {
        precondition(window == nil || (causal && window! >= 1),
                     "AttentionMask: a sliding window needs causal attention and a size >= 1, got window \(window!) causal \(causal)")
        self.causal = causal; self.window = window; self.keyPadding = keyPadding
    }

    /// Causal, no window, no padding (GPT's).
    public static var causal: AttentionMask { AttentionMask(causal: true) }

    /// Whether query row `i` (of `layout.tokens`) may see key `j`, ignoring `keyPadding` (the kernels' rule).
    @inlinable
    public func allows(query i: Int, key j: Int, offset: Int) -> Bool {
        let p = i + offset
        if causal && j > p { return false }
        if let w = window, j <= p - w { return false }
        return true
    }

    /// The keys `[lower, upper)` query row `i` may see before padding: a contiguous range.
    @inlinable
    public func keyRange(query i: Int, offset: Int, keys: Int) -> Range<Int> {
        let p = i + offset
        let upper = causal ? Swift.min(keys, p + 1) : keys
        let lower = window.map { Swift.max(0, p - $0 + 1) } ?? 0
        return lower..<Swift.max(lower, upper)
    }

    /// Checks `keyPadding` against `layout` (a caller bug otherwise).
    public func check(_ layout: AttentionLayout, device: Device) {
        guard let m = keyPadding else { return }
        precondition(m.dtype == .int32 && m.count == layout.batch * layout.keyTokens && m.device == device,
                     "attention: keyPadding must be int32 [\(layout.batch), \(layout.keyTokens)] on \(device); got \(m.dtype) \(m.shape) on \(m.device)")
    }
}

/// A strided window over a tensor's elements, in elements: used for permute, slice, concat, expand.
public struct Layout: Sendable, Hashable {
    public var shape: [Int]
    public var strides: [Int]
    public var offset: Int

    public init(shape: [Int], strides: [Int], offset: Int = 0) {
        precondition(shape.count == strides.count, "Layout: shape \(shape) and strides \(strides) differ in rank")
        self.shape = shape; self.strides = strides; self.offset = offset
    }

    /// The row-major layout of a contiguous `shape`.
    public static func contiguous(_ shape: [Int], offset: Int = 0) -> Layout {
        Layout(shape: shape, strides: Shape.strides(shape), offset: offset)
    }
}

/// The constants of one Adam/AdamW step (DeepSpeed's and PyTorch's formula), computed once on the
/// host so a kernel does no `pow`. Per element, with `g = grad · gradScale`:
///
///     L2 mode (decoupled == false):  g += weightDecay · p
///     m = beta1·m + (1 − beta1)·g
///     v = beta2·v + (1 − beta2)·g²
///     denom = sqrt(v) / biasCorrection2Sqrt + eps
///     decoupled:                     p −= lr · weightDecay · p      (before the update)
///     p −= lr / biasCorrection1 · m / denom
///
/// ```swift
/// let hyper = AdamHyper(lr: 3e-4, weightDecay: 0.1, step: 1)   // AdamW, bias-corrected
/// hyper.biasCorrection1                                          // 1 − 0.9 = 0.1
/// ```
public struct AdamHyper: Sendable, Hashable {
    public var lr: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// AdamW's decoupled decay (true) or L2 decay added to the gradient (false).
    public var decoupled: Bool
    /// `1 − beta1^step`, or 1 without bias correction.
    public var biasCorrection1: Double
    /// `sqrt(1 − beta2^step)`, or 1 without bias correction.
    public var biasCorrection2Sqrt: Double
    /// Multiplies the gradient before use (e.g. `1 / (lossScale · clipFactor)`), so unscaling and
    /// clipping cost no extra pass over the gradients. 1 leaves them as they are.
    public var gradScale: Double

    /// - Parameter step: the 1-based optimizer step (used for the bias corrections).
    public init(lr: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                weightDecay: Double = 0, decoupled: Bool = true, step: Int, biasCorrection: Bool = true,
                gradScale: Double = 1) {
        precondition(step >= 1, "AdamHyper: step is 1-based, got \(step)")
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.decoupled = decoupled; self.gradScale = gradScale
        biasCorrection1 = biasCorrection ? 1 - Double.pow(beta1, Double(step)) : 1
        biasCorrection2Sqrt = biasCorrection ? (1 - Double.pow(beta2, Double(step))).squareRoot() : 1
    }
}

extension Backend {
    public var hostDevice: Device { .cpu }

    /// `c = alpha·op(a)·op(b) + beta·c`.
    public func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, _ shape: GemmShape) {
        gemm(a, b, into: c, shape, bias: nil)
    }

    /// Checks a gemm's bias: `[n]`, the output's dtype, batch 1 and beta 0.
    public func checkGemmBias(_ bias: Tensor, _ c: Tensor, _ s: GemmShape) {
        precondition(bias.shape == [s.n] && bias.dtype == c.dtype,
                     "gemm: bias must be [\(s.n)] in \(c.dtype); got \(bias.shape) in \(bias.dtype)")
        precondition(s.batch == 1 && s.beta == 0, "gemm: a bias needs batch 1 and beta 0 (got batch \(s.batch), beta \(s.beta))")
    }

    /// A gemm's bias without an epilogue: the bias broadcast into every row of C, then C += A·B.
    public func gemmBroadcastingBias(_ a: Tensor, _ b: Tensor, into c: Tensor, _ s: GemmShape, bias: Tensor) {
        checkGemmBias(bias, c, s)
        copy(bias, layout: Layout(shape: [s.m, s.n], strides: [0, 1]), into: c, outLayout: .contiguous([s.m, s.n]),
             accumulate: false)
        var accumulate = s
        accumulate.beta = 1
        gemm(a, b, into: c, accumulate, bias: nil)
    }
}

/// Host memory a ``CPUBackend`` can allocate from instead of `malloc` (e.g. CUDA's page-locked memory).
public struct HostMemory: Sendable {
    public var allocate: @Sendable (_ bytes: Int) -> UnsafeMutableRawPointer
    public var free: @Sendable (_ pointer: UnsafeMutableRawPointer, _ bytes: Int) -> Void

    public init(allocate: @escaping @Sendable (Int) -> UnsafeMutableRawPointer,
                free: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> Void) {
        self.allocate = allocate
        self.free = free
    }
}

/// A backend's memory use, in bytes of the blocks it handed out (sizes as the allocator rounds them).
///
/// ```swift
/// let backend = CPUBackend(threads: 1)
/// backend.resetPeakMemory()
/// let t = Tensor.zeros([1 << 20], device: Device(backend: backend, kind: "cpu"))   // 4 MiB
/// backend.memoryStats.peakAllocatedBytes >= 4 << 20     // true
/// ```
public struct MemoryStats: Sendable, Hashable {
    /// Bytes in live allocations.
    public var allocatedBytes: Int
    /// `allocatedBytes` plus freed blocks the allocator keeps cached for reuse.
    public var reservedBytes: Int
    /// The largest `allocatedBytes` since the backend was created or ``Backend/resetPeakMemory()``.
    public var peakAllocatedBytes: Int

    public init(allocatedBytes: Int, reservedBytes: Int, peakAllocatedBytes: Int) {
        self.allocatedBytes = allocatedBytes
        self.reservedBytes = reservedBytes
        self.peakAllocatedBytes = peakAllocatedBytes
    }
}

/// A compute device's kernels. Small on purpose: everything else is composed from these in
/// the autograd ops (`Ops+*.swift`), so a new backend implements this protocol and nothing more.
public protocol Backend: AnyObject, Sendable {
    /// Human-readable name, e.g. "cpu (2 threads, OpenBLAS)".
    var name: String { get }

    // MARK: Memory
    func allocate(byteCount: Int) -> UnsafeMutableRawPointer
    func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int)
    /// Bytes allocated now, held by the allocator's cache, and the most ever allocated at once
    /// since ``resetPeakMemory()`` (PyTorch's `memory_allocated`, `memory_reserved`,
    /// `max_memory_allocated`). Safe to read from any thread.
    var memoryStats: MemoryStats { get }
    /// Starts a new peak: `memoryStats.peakAllocatedBytes` becomes the bytes allocated now.
    func resetPeakMemory()
    /// The CPU device that state offloaded from this backend lives on (ZeRO's `offload_optimizer`): for a GPU,
    /// a CPU backend over page-locked memory, so copies to and from the device run at full bus speed.
    var hostDevice: Device { get }
    /// Copies `byteCount` bytes of `tensor`'s elements (from its offset) to host memory.
    func read(_ tensor: Tensor, into host: UnsafeMutableRawPointer)
    /// Copies host memory into `tensor`'s elements.
    func write(_ host: UnsafeRawPointer, into tensor: Tensor)

    // MARK: Creation and movement
    func fill(_ out: Tensor, value: Double)
    /// `out[i] = x[i]` converting dtype (float <-> int truncates toward zero).
    func cast(_ x: Tensor, into out: Tensor)
    /// `out[contiguous index] = x[layout]` then optionally accumulates: the general gather.
    func copy(_ x: Tensor, layout: Layout, into out: Tensor, outLayout: Layout, accumulate: Bool)
    /// `out = x * p / (1 - p)` mask drawn from `(seed, offset + i)`; zeroes where `uniform < p`.
    func dropout(_ x: Tensor, p: Double, seed: UInt64, offset: UInt64, into out: Tensor)
    /// Fills with N(mean, std) (`normal: true`) or U[low, high) drawn from `(seed, offset + i)`.
    func random(_ out: Tensor, normal: Bool, a: Double, b: Double, seed: UInt64, offset: UInt64)

    // MARK: Elementwise
    func unary(_ op: UnaryOp, _ x: Tensor, into out: Tensor)
    func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor, gradOut: Tensor, into gradIn: Tensor)
    /// Broadcasting (NumPy rules) `out = a op b`; `out` has the broadcast shape.
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, into out: Tensor)
    /// Broadcasting `out = cond != 0 ? a : b`.
    func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, into out: Tensor)

    // MARK: Reductions and products
    func reduce(_ op: ReduceOp, _ x: Tensor, outer: Int, count: Int, inner: Int, into out: Tensor)
    /// `c = alpha·op(a)·op(b) + beta·c`, plus `bias [n]` added to every row of `c [m, n]` when given (the matmul's
    /// epilogue on the GPU; batch 1 and beta 0 only).
    func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, _ shape: GemmShape, bias: Tensor?)

    // MARK: Fused neural-network kernels (last axis = features)
    func softmax(_ x: Tensor, log: Bool, into y: Tensor)
    func softmaxBackward(y: Tensor, gradOut: Tensor, log: Bool, into gradIn: Tensor)
    /// Saves per-row `mean` and `rstd` (`[rows]`, fp32; fp64 for fp64 input) for the backward pass.
    func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double,
                   into y: Tensor, mean: Tensor, rstd: Tensor)
    func layerNormBackward(x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor, gradOut: Tensor,
                           into gradIn: Tensor, gradWeight: Tensor?, gradBias: Tensor?)
    /// `out[i, :] = weight[ids[i], :]`.
    func embedding(_ weight: Tensor, ids: Tensor, into out: Tensor)
    /// `gradWeight[ids[i], :] += gradOut[i, :]` (gradWeight is not cleared first).
    func embeddingBackward(ids: Tensor, gradOut: Tensor, into gradWeight: Tensor)
    /// Per row of `logits [N, V]`: `loss[i] = lse - logits[i, t]` (0 where `t == ignoreIndex`) and `lse[i]`
    /// (both fp32, or fp64 for fp64 logits).
    func crossEntropy(_ logits: Tensor, targets: Tensor, ignoreIndex: Int, into loss: Tensor, lse: Tensor)
    /// `gradLogits[i, :] = gradLoss[i] * (softmax(logits[i]) - onehot(t))`, zero rows where ignored.
    func crossEntropyBackward(_ logits: Tensor, targets: Tensor, lse: Tensor, gradLoss: Tensor,
                              ignoreIndex: Int, into gradLogits: Tensor)
    /// `x · rsqrt(mean(x², last axis) + eps) · weight` (HF's LlamaRMSNorm) in fp32 (fp64 for fp64 input), rounded
    /// once; saves per-row `rstd` (`[rows]`, the stats dtype) for backward. `weight` (`[C]`) may be nil.
    func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Double, into y: Tensor, rstd: Tensor)
    /// `gradIn` (skipped when its count is not x's) and `gradWeight` (accumulated into: `+=`) of ``rmsNorm``.
    func rmsNormBackward(x: Tensor, weight: Tensor?, rstd: Tensor, gradOut: Tensor, into gradIn: Tensor,
                         gradWeight: Tensor?)
    /// Rotary embedding, HF's rotate-half convention, on `x [N, H, D]` with `cos`, `sin` `[N, D/2]` (the stats
    /// dtype): `out[..., j] = x_j·c_j − x_{j+D/2}·s_j`, `out[..., j+D/2] = x_{j+D/2}·c_j + x_j·s_j`. `inverse`
    /// rotates by −angle (the backward pass: the transposed rotation).
    func rotary(_ x: Tensor, cos: Tensor, sin: Tensor, inverse: Bool, into out: Tensor)
    /// `out = silu(gate) · up` (Llama's MLP), elementwise over equal shapes.
    func swiglu(gate: Tensor, up: Tensor, into out: Tensor)
    /// `gradGate = gradOut · up · silu'(gate)`, `gradUp = gradOut · silu(gate)`.
    func swigluBackward(gate: Tensor, up: Tensor, gradOut: Tensor, into gradGate: Tensor, gradUp: Tensor)
    /// Scaled dot-product attention over `layout` (e.g. `[B, H, T, D]` tensors, q/k/v packed token-major, grouped
    /// K/V heads, fewer queries than keys) under `mask`; saves `lse [B, H, T]` (fp32; fp64 for fp64 input,
    /// contiguous) for backward.
    func attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, mask: AttentionMask, scale: Double,
                   into out: Tensor, lse: Tensor)
    /// gradQ follows `layout.grad`, gradK/gradV `layout.keyGrad`, gradOut `layout.output`; every gradient element is
    /// written (gradK/gradV summed over each K/V head's group of query heads).
    func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, gradOut: Tensor,
                           layout: AttentionLayout, mask: AttentionMask, scale: Double,
                           into gradQ: Tensor, gradK: Tensor, gradV: Tensor)

    // MARK: Optimizers
    /// One fused Adam/AdamW step (formula on ``AdamHyper``) over flat slices: `param`, `expAvg` and
    /// `expAvgSq` are fp32 and updated in place; `grad` is fp32, bf16 or fp16 and only read; all
    /// have the same count. When `lowPrecisionCopy` (bf16 or fp16, same count) is given, the updated
    /// parameters are also written to it, rounded to nearest-even, in the same pass.
    func adamStep(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, hyper: AdamHyper,
                  lowPrecisionCopy: Tensor?)
}
