// Vectorised fp32 exp/tanh/GELU for the CPU hot paths (softmax, cross-entropy, GELU), ~2 ulp.
// Invariant: inputs are clamped so exp never produces a NaN from a finite input; NaN in, NaN out.

@usableFromInline typealias F8 = SIMD8<Float>

@usableFromInline
enum FastMath {
    /// e^x for 8 lanes: n = round(x·log2 e) by the 1.5·2²³ trick, r = x − n·ln 2, degree-6
    /// polynomial, scale by 2ⁿ built in the exponent bits (all lane-wise integer/float ops).
    @inlinable @inline(__always)
    static func exp(_ x: F8) -> F8 {
        let nan = x .!= x
        var xc = x
        xc.replace(with: -87, where: x .< -87)
        xc.replace(with: 88, where: x .> 88)
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
        let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        var result = p * unsafeBitCast(exponent, to: F8.self)
        result.replace(with: x, where: nan)
        return result
    }

    /// tanh for 8 lanes via 1 − 2/(e^{2x} + 1), exact to ~1e-7 absolute.
    @inlinable @inline(__always)
    static func tanh(_ x: F8) -> F8 {
        let e = exp(2 * x)
        return 1 - 2 / (e + 1)
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
