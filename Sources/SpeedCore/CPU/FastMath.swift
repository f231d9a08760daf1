// Vectorised fp32 exp/tanh/GELU for the CPU hot paths (softmax, cross-entropy, GELU), ~2 ulp.
// Invariant: inputs are clamped so exp never produces a NaN from a finite input; NaN in, NaN out.

@usableFromInline typealias F8 = SIMD8<Float>

@usableFromInline
enum FastMath {
    /// e^x for 8 lanes: n = round(x·log2 e) by the 1.5·2²³ trick, r = x − n·ln 2, degree-6
    /// polynomial, scale by 2ⁿ built in the exponent bits (all lane-wise integer/float ops).
    /// Like expf it overflows to +inf above ~88.72 and underflows through the subnormals to 0.
    @inlinable @inline(__always)
    static func exp(_ x: F8) -> F8 {
        let nan = x .!= x
        var xc = x
        xc.replace(with: -104, where: x .< -104)
        xc.replace(with: 89, where: x .> 89)
        let magic = F8(repeating: 12_582_912.0)   // 1.5·2²³, bit pattern 0x4B40_0000
        let shifted = xc * 1.442_695_04 + magic
        let n = shifted - magic
        let r = xc - n * 0.693_145_75 - n * 1.428_606_8e-6
        var p = F8(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2ⁿ as 2^(n/2)·2^(n−n/2), so each factor is a normal float for every n in [-150, 128].
        let n1 = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000, half = n1 &>> 1
        let scale1 = unsafeBitCast((half &+ 127) &<< 23, to: F8.self)
        let scale2 = unsafeBitCast((n1 &- half &+ 127) &<< 23, to: F8.self)
        var result = p * scale1 * scale2
        result.replace(with: x, where: nan)
        return result
    }

    /// tanh for 8 lanes via 1 − 2/(e^{2x} + 1) (~2e-7 absolute); for |x| < 0.625, where that
    /// cancels, Cephes' tanhf polynomial (~1e-7 relative, so small inputs keep their digits).
    @inlinable @inline(__always)
    static func tanh(_ x: F8) -> F8 {
        let e = exp(2 * x)
        var result = 1 - 2 / (e + 1)
        let z = x * x
        var p: F8 = -5.704_988_727_45e-3 * z + 2.063_908_879_54e-2
        p = p * z - 5.373_971_555_31e-2
        p = p * z + 1.333_144_220_36e-1
        p = p * z - 3.333_328_194_22e-1
        result.replace(with: p * z * x + x, where: x .< 0.625 .& x .> -0.625)
        return result
    }

    @inlinable @inline(__always)
    static func exp(_ x: Float) -> Float { exp(F8(repeating: x))[0] }

    /// Applies an 8-lane map to `n` floats (tail handled with a padded vector).
    @inlinable @inline(__always)
    static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (F8) -> F8) {
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: F8.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: f(v), as: F8.self)
            i += 8
        }
        if i < n {
            var v = F8(repeating: 0)
            for j in 0..<(n - i) { v[j] = x[i + j] }
            let r = f(v)
            for j in 0..<(n - i) { y[i + j] = r[j] }
        }
    }
}
