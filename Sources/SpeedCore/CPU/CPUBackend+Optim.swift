// The CPU optimizer kernel: one fused Adam/AdamW pass over (p, g, m, v) in 8-lane SIMD, split over threads.
// Invariant: an element's result depends only on its own inputs and the step constants (the tail runs the same
// 8-lane code on a padded vector), so results are bit-identical for any thread count, slice offset or length.
//
// Codegen notes (baseline x86-64, SSE2; checked with objdump and perf): `SIMD8.squareRoot()` becomes 8
// errno-guarded scalar `sqrtf` calls on Linux, so `sqrt8` uses SSE's `sqrtps`; integer lane compares against
// a scalar compile to scalar loops and 8-lane float-compare masks go through scalar inserts, so the 16-bit
// rounding builds masks as `(a − b) >> 31` and selects with and/andnot/or. Without a copy the sweep is
// memory-bound at 2 threads (28 bytes per element); the bf16 and (more) fp16 roundings add enough SSE2
// integer work to make it partly compute-bound. F16C's `vcvtps2ph` and AVX2 are not reachable from baseline Swift,
// so on CPUs that have them the copy is converted by CSpeedShims' `ss_f32_to_f16` / `ss_f32_to_bf16`, chunk by
// chunk, right after the update (same bits as Float16(x) / BFloat16(x)).

import CSpeedShims
import Synchronization
#if arch(x86_64) && canImport(_Builtin_intrinsics)
import _Builtin_intrinsics.intel
#endif

extension CPUBackend {
    public func adamStep(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, hyper: AdamHyper,
                         lowPrecisionCopy: Tensor?) {
        let n = param.count
        precondition(param.dtype == .float32 && expAvg.dtype == .float32 && expAvgSq.dtype == .float32,
                     "adamStep: param, expAvg and expAvgSq must be float32, got \(param.dtype), \(expAvg.dtype), \(expAvgSq.dtype)")
        precondition(grad.dtype == .float32 || grad.dtype.isHalf,
                     "adamStep: grad must be float32, bfloat16 or float16, got \(grad.dtype)")
        precondition(grad.count == n && expAvg.count == n && expAvgSq.count == n,
                     "adamStep: counts differ: param \(n), grad \(grad.count), expAvg \(expAvg.count), expAvgSq \(expAvgSq.count)")
        if let copy = lowPrecisionCopy {
            precondition(copy.dtype.isHalf && copy.count == n,
                         "adamStep: lowPrecisionCopy must be bfloat16 or float16 with \(n) elements, got \(copy.dtype) with \(copy.count)")
        }
        let buffers = AdamBuffers(p: param.pointer(as: Float.self), g: UnsafeRawPointer(grad.rawPointer),
                                  m: expAvg.pointer(as: Float.self), v: expAvgSq.pointer(as: Float.self),
                                  copy: lowPrecisionCopy?.rawPointer)
        let k = AdamConstants(hyper)
        func sweep<M: AdamVariant>(_: M.Type) {
            switch (grad.dtype, lowPrecisionCopy?.dtype) {
            case (.bfloat16, .some(.bfloat16)): adamSweep(M.self, BF16Lanes.self, BF16Lanes.self, buffers, k, n)
            case (.bfloat16, .some(.float16)): adamSweep(M.self, BF16Lanes.self, FP16Lanes.self, buffers, k, n)
            case (.bfloat16, _): adamSweep(M.self, BF16Lanes.self, NoLanes.self, buffers, k, n)
            case (.float16, .some(.bfloat16)): adamSweep(M.self, FP16Lanes.self, BF16Lanes.self, buffers, k, n)
            case (.float16, .some(.float16)): adamSweep(M.self, FP16Lanes.self, FP16Lanes.self, buffers, k, n)
            case (.float16, _): adamSweep(M.self, FP16Lanes.self, NoLanes.self, buffers, k, n)
            case (_, .some(.bfloat16)): adamSweep(M.self, FP32Lanes.self, BF16Lanes.self, buffers, k, n)
            case (_, .some(.float16)): adamSweep(M.self, FP32Lanes.self, FP16Lanes.self, buffers, k, n)
            default: adamSweep(M.self, FP32Lanes.self, NoLanes.self, buffers, k, n)
            }
        }
        if k.l2 || k.gradScale != 1 { sweep(GeneralAdam.self) } else { sweep(PlainAdam.self) }
    }

    /// Elements from which the 16-bit copy is written with non-temporal stores: the sweep then touches
    /// 32 MiB or more (beyond the last-level cache), and streaming skips the copy's read-for-ownership.
    static let streamingMinimum = 1 << 21

    /// Splits `0..<n` into cache-line-aligned chunks (multiples of 16 floats), one per thread: each thread
    /// streams its own contiguous stretch of all four buffers, which the hardware prefetchers follow.
    private func adamSweep<M: AdamVariant, G: Lanes, C: Lanes>(_: M.Type, _: G.Type, _: C.Type, _ b: AdamBuffers,
                                                               _ k: AdamConstants, _ n: Int) {
        let blocks = (n + 15) / 16
        let shared = Unchecked(b), stream = n >= Self.streamingMinimum
        // 16-bit copies: F16C / AVX2 (when the CPU has them) convert each updated 1,024-element chunk while it is
        // still in L1; otherwise the lanes round in baseline SIMD as they go.
        let narrow: ((UnsafePointer<Float>, UnsafeMutablePointer<UInt16>, Int, Int32) -> Void)?
        if C.self == FP16Lanes.self && ss_has_f16c() != 0 {
            narrow = { ss_f32_to_f16($0, $1, $2, $3) }
        } else if C.self == BF16Lanes.self && ss_has_avx2() != 0 {
            narrow = { ss_f32_to_bf16($0, $1, $2, $3) }
        } else {
            narrow = nil
        }
        parallel.forEach(blocks, grain: 1 << 12) { r in
            let lo = r.lowerBound * 16, hi = Swift.min(n, r.upperBound * 16)
            if let narrow, let copy = shared.value.copy {
                var start = lo
                while start < hi {
                    let end = Swift.min(hi, start + 1024)
                    Self.adamRun(M.self, G.self, NoLanes.self, shared.value, k, start, end, stream: false)
                    let dst = (copy + 2 * start).assumingMemoryBound(to: UInt16.self)
                    narrow(shared.value.p + start, dst, end - start, stream && Int(bitPattern: dst) & 31 == 0 ? 1 : 0)
                    start = end
                }
                if stream { storeFence() }
            } else {
                Self.adamRun(M.self, G.self, C.self, shared.value, k, lo, hi, stream: stream)
            }
        }
    }

    @inline(__always)
    private static func adamRun<M: AdamVariant, G: Lanes, C: Lanes>(_: M.Type, _: G.Type, _: C.Type, _ b: AdamBuffers,
                                                                    _ k: AdamConstants, _ lo: Int, _ hi: Int,
                                                                    stream: Bool) {
        @inline(__always) func lanes(_ i: Int) -> F8 {
            var p = UnsafeRawPointer(b.p + i).loadUnaligned(as: F8.self)
            var m = UnsafeRawPointer(b.m + i).loadUnaligned(as: F8.self)
            var v = UnsafeRawPointer(b.v + i).loadUnaligned(as: F8.self)
            adamLanes(M.self, &p, G.load(b.g, i), &m, &v, k)
            UnsafeMutableRawPointer(b.p + i).storeBytes(of: p, as: F8.self)
            UnsafeMutableRawPointer(b.m + i).storeBytes(of: m, as: F8.self)
            UnsafeMutableRawPointer(b.v + i).storeBytes(of: v, as: F8.self)
            return p
        }
        var i = lo
        if let copy = b.copy {
            if stream && Int(bitPattern: copy + 2 * lo) & 15 == 0 {
                while i + 8 <= hi { C.stream(lanes(i), copy, i); i += 8 }
                storeFence()
            } else {
                while i + 8 <= hi { C.store(lanes(i), copy, i); i += 8 }
            }
        } else {
            while i + 8 <= hi { _ = lanes(i); i += 8 }
        }
        if i < hi {
            // Tail: the same lane math on a zero-padded vector, written back lane by lane.
            let t = hi - i
            var p = F8(repeating: 0), m = F8(repeating: 0), v = F8(repeating: 0), g = F8(repeating: 0)
            for j in 0..<t { p[j] = b.p[i + j]; m[j] = b.m[i + j]; v[j] = b.v[i + j]; g[j] = G.element(b.g, i + j) }
            adamLanes(M.self, &p, g, &m, &v, k)
            for j in 0..<t { b.p[i + j] = p[j]; b.m[i + j] = m[j]; b.v[i + j] = v[j] }
            if let copy = b.copy { C.storePartial(p, copy, i, t) }
        }
    }

    /// The update of 8 elements, in the order of ``AdamHyper``'s formula (no fused multiply-adds, so a
    /// scalar loop with the same operations gives the same bits).
    @inline(__always)
    static func adamLanes<M: AdamVariant>(_: M.Type, _ p: inout F8, _ g: F8, _ m: inout F8, _ v: inout F8,
                                          _ k: AdamConstants) {
        var g = g
        if M.general {
            g = g * k.gradScale
            if k.l2 { g = g + k.weightDecay * p }
        }
        m = k.beta1 * m + k.oneMinusBeta1 * g
        v = k.beta2 * v + k.oneMinusBeta2 * (g * g)
        let denom = sqrt8(v) * k.invBiasCorrection2 + k.eps
        p = p * k.decay - k.stepSize * (m / denom)
    }
}

/// Correctly rounded square root of 8 lanes with SSE's `sqrtps` (baseline x86-64).
@inline(__always)
func sqrt8(_ x: F8) -> F8 {
    #if arch(x86_64) && canImport(_Builtin_intrinsics)
    F8(lowHalf: _mm_sqrt_ps(x.lowHalf), highHalf: _mm_sqrt_ps(x.highHalf))
    #else
    x.squareRoot()
    #endif
}

/// Orders this thread's streaming stores before whatever follows (the caller's join). A sequentially
/// consistent fence is `mfence` on x86-64, which drains the write-combining buffers like `sfence`
/// (whose intrinsic is not linkable from Swift).
@inline(__always)
func storeFence() {
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}

/// Compile-time choice of the lane math: `PlainAdam` skips the gradient scale and L2 term (AdamW, and
/// Adam without decay, with unscaled gradients: the common case); `GeneralAdam` applies both.
protocol AdamVariant { static var general: Bool { get } }
enum PlainAdam: AdamVariant { static var general: Bool { false } }
enum GeneralAdam: AdamVariant { static var general: Bool { true } }

/// The four streams (and the optional 16-bit copy) of one `adamStep`, as raw pointers.
struct AdamBuffers {
    let p: UnsafeMutablePointer<Float>
    let g: UnsafeRawPointer
    let m: UnsafeMutablePointer<Float>
    let v: UnsafeMutablePointer<Float>
    let copy: UnsafeMutableRawPointer?
}

/// ``AdamHyper`` folded into the fp32 constants the lanes use.
struct AdamConstants: Sendable {
    let beta1: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float
    let eps: Float, invBiasCorrection2: Float, stepSize: Float, gradScale: Float
    /// `1 − lr·wd` in decoupled mode, else 1.
    let decay: Float
    /// L2 mode with a non-zero decay: `g += weightDecay · p`.
    let l2: Bool
    let weightDecay: Float

    init(_ h: AdamHyper) {
        beta1 = Float(h.beta1); oneMinusBeta1 = Float(1 - h.beta1)
        beta2 = Float(h.beta2); oneMinusBeta2 = Float(1 - h.beta2)
        eps = Float(h.eps)
        invBiasCorrection2 = Float(1 / h.biasCorrection2Sqrt)
        stepSize = Float(h.lr / h.biasCorrection1)
        gradScale = Float(h.gradScale)
        decay = h.decoupled ? Float(1 - h.lr * h.weightDecay) : 1
        l2 = !h.decoupled && h.weightDecay != 0
        weightDecay = Float(h.weightDecay)
    }
}

// MARK: Lane loads and stores

/// Loads and stores 8 lanes of one element type as fp32.
protocol Lanes {
    static func load(_ base: UnsafeRawPointer, _ i: Int) -> F8
    static func element(_ base: UnsafeRawPointer, _ i: Int) -> Float
    static func store(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int)
    /// A store that bypasses the caches; element `i` of `base` is 16-byte aligned.
    static func stream(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int)
    static func storePartial(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int, _ count: Int)
}

extension Lanes {
    @inline(__always) static func stream(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int) { store(x, base, i) }
}

/// Lanes whose 16-bit patterns come from an 8-lane rounding function.
protocol HalfLanes: Lanes {
    /// Each lane's 16-bit pattern, sign-extended to 32 bits (so a signed pack narrows it exactly).
    static func bits(_ x: F8) -> SIMD8<Int32>
}

extension HalfLanes {
    @inline(__always) static func narrow(_ x: F8) -> SIMD8<UInt16> {
        unsafeBitCast(SIMD8<Int16>(truncatingIfNeeded: bits(x)), to: SIMD8<UInt16>.self)
    }
    @inline(__always) static func store(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int) {
        (base + 2 * i).storeBytes(of: narrow(x), as: SIMD8<UInt16>.self)
    }
    @inline(__always) static func stream(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int) {
        #if arch(x86_64) && canImport(_Builtin_intrinsics)
        _mm_stream_si128((base + 2 * i).assumingMemoryBound(to: __m128i.self), unsafeBitCast(narrow(x), to: __m128i.self))
        #else
        store(x, base, i)
        #endif
    }
    @inline(__always) static func storePartial(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int, _ count: Int) {
        let h = narrow(x)
        for j in 0..<count { (base + 2 * (i + j)).storeBytes(of: h[j], as: UInt16.self) }
    }
}

typealias I8 = SIMD8<Int32>

/// All-ones lanes where `a < b`, for lanes whose difference cannot overflow (here: float bit patterns
/// without the sign). Float compares are avoided: their 8-lane `<8 x i1>` masks are legalised through
/// scalar inserts on SSE2, and integer compares against a scalar compile to scalar loops.
@inline(__always) func lessMask(_ a: I8, _ b: Int32) -> I8 { (a &- b) &>> 31 }

/// `mask ? a : b` per lane, with `mask` lanes all-ones or zero.
@inline(__always) func select(_ mask: I8, _ a: I8, _ b: I8) -> I8 { (a & mask) | (b & ~mask) }

enum FP32Lanes: Lanes {
    @inline(__always) static func load(_ base: UnsafeRawPointer, _ i: Int) -> F8 {
        (base + 4 * i).loadUnaligned(as: F8.self)
    }
    @inline(__always) static func element(_ base: UnsafeRawPointer, _ i: Int) -> Float {
        (base + 4 * i).loadUnaligned(as: Float.self)
    }
    @inline(__always) static func store(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int) {
        (base + 4 * i).storeBytes(of: x, as: F8.self)
    }
    @inline(__always) static func storePartial(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int, _ count: Int) {
        for j in 0..<count { (base + 4 * (i + j)).storeBytes(of: x[j], as: Float.self) }
    }
}

/// Stands in for "no copy"; never called.
enum NoLanes: Lanes {
    static func load(_ base: UnsafeRawPointer, _ i: Int) -> F8 { F8(repeating: 0) }
    static func element(_ base: UnsafeRawPointer, _ i: Int) -> Float { 0 }
    static func store(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int) {}
    static func storePartial(_ x: F8, _ base: UnsafeMutableRawPointer, _ i: Int, _ count: Int) {}
}

/// bfloat16: the top half of a fp32; rounding to nearest-even with NaN kept a quiet NaN, as ``BFloat16``.
enum BF16Lanes: HalfLanes {
    @inline(__always) static func load(_ base: UnsafeRawPointer, _ i: Int) -> F8 {
        let h = (base + 2 * i).loadUnaligned(as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: F8.self)
    }
    @inline(__always) static func element(_ base: UnsafeRawPointer, _ i: Int) -> Float {
        BFloat16(bitPattern: (base + 2 * i).loadUnaligned(as: UInt16.self)).float
    }
    /// Adds 0x7FFF plus the kept part's lowest bit, then shifts (arithmetically, for the pack); NaN
    /// lanes instead set the quiet bit and keep their top half.
    @inline(__always) static func bits(_ x: F8) -> SIMD8<Int32> {
        let u = unsafeBitCast(x, to: I8.self)
        let rounded = u &+ ((u &>> 16) & 1) &+ 0x7FFF
        let nan = ~lessMask(u & 0x7FFF_FFFF, 0x7F80_0001)
        return select(nan, u | 0x0040_0000, rounded) &>> 16
    }
}

/// IEEE binary16 by integer lane arithmetic (the build targets baseline x86-64, without F16C): exact
/// widening; narrowing rounds to nearest-even, overflows to ±inf and keeps NaN a (quiet) NaN, as `Float16(x)`.
enum FP16Lanes: HalfLanes {
    @inline(__always) static func load(_ base: UnsafeRawPointer, _ i: Int) -> F8 {
        widen((base + 2 * i).loadUnaligned(as: SIMD8<UInt16>.self))
    }
    @inline(__always) static func element(_ base: UnsafeRawPointer, _ i: Int) -> Float {
        Float((base + 2 * i).loadUnaligned(as: Float16.self))
    }
    /// Exponent/mantissa moved into fp32 position and rescaled by 2¹¹² (exact, covers subnormals);
    /// inf/NaN (which scale to 2¹⁶ or more) get the all-ones exponent.
    @inline(__always) static func widen(_ h: SIMD8<UInt16>) -> F8 {
        let w = unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h), to: SIMD8<Int32>.self)
        let sign = (w & 0x8000) &<< 16
        let scaled = unsafeBitCast((w & 0x7FFF) &<< 13, to: F8.self) * Float(bitPattern: 0x7780_0000)
        let infNaN = ~lessMask(w & 0x7FFF, 0x7C00) & 0x7F80_0000
        return unsafeBitCast(unsafeBitCast(scaled, to: I8.self) | infNaN | sign, to: F8.self)
    }
    /// F. Giesen's round-to-nearest-even narrowing: normal results rebias the exponent and round on
    /// bit 13; results below 2⁻¹⁴ let the FPU round by adding 0.5; 65520 and above become inf.
    @inline(__always) static func bits(_ x: F8) -> SIMD8<Int32> {
        let u = unsafeBitCast(x, to: I8.self)
        let a = u & 0x7FFF_FFFF
        let normal = (a &+ ((a &>> 13) & 1) &+ Int32(bitPattern: 0xC800_0FFF)) &>> 13
        let subnormal = unsafeBitCast(unsafeBitCast(a, to: F8.self) + 0.5, to: I8.self) &- 0x3F00_0000
        var r = select(lessMask(a, 0x3880_0000), subnormal, normal)            // |x| < 2⁻¹⁴
        let special = (~lessMask(a, 0x7F80_0001) & 0x0200) | 0x7C00              // NaN 0x7E00, else inf
        r = select(lessMask(a, 0x4780_0000), r, special)                        // |x| >= 65536, inf, NaN
        // The sign as bit 15, sign-extended (0xFFFF8000) so the pack keeps the pattern.
        return r | ((u &>> 16) & Int32(bitPattern: 0xFFFF_8000))
    }
}
