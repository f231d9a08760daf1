// bf16/fp16: BFloat16 rounding, casts between every pair of dtypes, and half-precision ops against fp32.
import Testing
import SpeedCore

/// Values exactly representable in every dtype (integers included).
private let exactValues: [Double] = [0, 1, -2, 3, 100, -128, 7]

@Suite struct HalfPrecisionTests {
    @Test func bfloat16RoundsToNearestEven() {
        #expect(BFloat16(1.0).bitPattern == 0x3F80)
        #expect(BFloat16(-2.0).bitPattern == 0xC000)
        #expect(BFloat16(0.0).bitPattern == 0x0000)
        #expect(BFloat16(-0.0).bitPattern == 0x8000)
        // Exactly halfway: ties go to the even mantissa.
        #expect(BFloat16(Float(bitPattern: 0x3F80_8000)).bitPattern == 0x3F80)  // 1 + 2^-8 -> 1
        #expect(BFloat16(Float(bitPattern: 0x3F81_8000)).bitPattern == 0x3F82)  // odd below -> rounds up
        #expect(BFloat16(Float(bitPattern: 0xBF81_8000)).bitPattern == 0xBF82)  // sign does not matter
        // Just off the tie: nearest.
        #expect(BFloat16(Float(bitPattern: 0x3F80_8001)).bitPattern == 0x3F81)
        #expect(BFloat16(Float(bitPattern: 0x3F80_7FFF)).bitPattern == 0x3F80)
        // A carry out of the mantissa bumps the exponent: 1.9999999 -> 2.
        #expect(BFloat16(Float(bitPattern: 0x3FFF_FFFF)).float == 2)
        #expect(BFloat16(3.140625).float == 3.140625)
        #expect(BFloat16(Float(bitPattern: 0x3F80_8000)).description == "1.0")
    }

    @Test func bfloat16SpecialValues() {
        #expect(BFloat16(Float.infinity).bitPattern == 0x7F80)
        #expect(BFloat16(-Float.infinity).bitPattern == 0xFF80)
        #expect(BFloat16(Float.infinity).float == .infinity)
        #expect(BFloat16(Float.nan).float.isNaN)
        // A NaN whose payload lives only in the low 16 bits must not truncate to infinity.
        let lowPayloadNaN = Float(bitPattern: 0x7F80_0001)
        #expect(lowPayloadNaN.isNaN)
        #expect(BFloat16(lowPayloadNaN).float.isNaN)
        #expect(BFloat16(Float(bitPattern: 0xFF80_0001)).float.isNaN)
        // The largest finite fp32 is past bf16's largest finite value plus half an ulp: it rounds to inf.
        #expect(BFloat16(Float.greatestFiniteMagnitude).float == .infinity)
        #expect(BFloat16(Float(bitPattern: 0x7F7F_0000)).float.isFinite)
        // Subnormals survive.
        #expect(BFloat16(Float(bitPattern: 0x0001_0000)).bitPattern == 0x0001)
    }

    @Test(arguments: DType.allCases)
    func castsBetweenEveryPairOfDTypes(_ from: DType) {
        let source = Tensor(exactValues, dtype: from)
        for to in DType.allCases {
            let out = source.cast(to: to)
            #expect(out.dtype == to)
            #expect(out.scalars(as: Double.self) == exactValues, "\(from) -> \(to)")
        }
    }

    @Test func castRoundingKnownValues() {
        // Float -> int truncates toward zero.
        let fractional = Tensor([2.7, -2.7, 0.5, -0.5] as [Double])
        #expect(fractional.cast(to: .int32).scalars(as: Int32.self) == [2, -2, 0, 0])
        #expect(fractional.cast(to: .int64).scalars(as: Int.self) == [2, -2, 0, 0])
        // fp32 -> bf16 and fp16 round to nearest even at ties.
        let ties = Tensor([1 + 0x1p-8, 1 + 3 * 0x1p-8] as [Float])
        #expect(ties.cast(to: .bfloat16).scalars == [1, 1 + 0x1p-6])
        let halfTies = Tensor([1 + 0x1p-11, 1 + 3 * 0x1p-11] as [Float])
        #expect(halfTies.cast(to: .float16).scalars == [1, 1 + 0x1p-9])
        // fp16 overflows to inf past 65504; bf16 keeps the fp32 range.
        let big = Tensor([65504, 70000, 1e30] as [Float])
        #expect(big.cast(to: .float16).scalars == [65504, .infinity, .infinity])
        #expect(big.cast(to: .bfloat16).scalars(as: Double.self)[2] > 9.9e29)
        // fp64 -> half rounds once: a value just above a tie must round up, not tie-break twice.
        let aboveTie = Tensor([1 + 0x1p-11 + 0x1p-40, 1 + 0x1p-8 + 0x1p-40] as [Double])
        #expect(aboveTie.cast(to: .float16).scalars(as: Double.self)[0] == 1 + 0x1p-10)
        #expect(aboveTie.cast(to: .bfloat16).scalars(as: Double.self)[1] == 1 + 0x1p-7)
        // Half <-> half goes through fp32 exactly for representable values.
        let h = Tensor([0.5, -1.25, 3] as [Float], dtype: .float16)
        #expect(h.cast(to: .bfloat16).scalars == [0.5, -1.25, 3])
        #expect(h.cast(to: .bfloat16).cast(to: .float16).scalars == [0.5, -1.25, 3])
        // NaN and inf survive float casts.
        let special = Tensor([.nan, .infinity, -.infinity] as [Float])
        for dtype in [DType.bfloat16, .float16, .float64] {
            let back = special.cast(to: dtype).scalars
            #expect(back[0].isNaN && back[1] == .infinity && back[2] == -.infinity, "\(dtype)")
        }
    }

    @Test func fillAndCreationRoundToTheDType() {
        #expect(Tensor.full([3], 1 + 0x1p-8, dtype: .bfloat16).scalars == [1, 1, 1])
        #expect(Tensor.full([2], 1 + 0x1p-7, dtype: .bfloat16).scalars == [1 + 0x1p-7, 1 + 0x1p-7])
        #expect(Tensor.full([2], 0.1, dtype: .float16).scalars(as: Double.self)[0] == Double(Float16(0.1)))
        #expect(Tensor.zeros([4], dtype: .bfloat16).byteCount == 8)
        #expect(DType.bfloat16.byteSize == 2 && DType.float16.isHalf && !DType.float32.isHalf)
        #expect(!DType.int32.isFloatingPoint && DType.bfloat16.isFloatingPoint)
    }

    /// Half ops compute in fp32 on promoted copies and round once: the result is the fp32 result of the
    /// same (rounded) inputs, rounded to the half type — within half an ulp, i.e. 2^-8 (bf16) or 2^-11 (fp16) of the value.
    @Test(arguments: [(DType.bfloat16, 0x1p-8), (DType.float16, 0x1p-11)])
    func opsAgreeWithFp32WithinHalfTolerance(_ config: (DType, Double)) {
        let (dtype, halfUlp) = config
        let a = randn32([16, 32], seed: 500).cast(to: dtype), b = randn32([32, 8], seed: 501).cast(to: dtype)
        let (a32, b32) = (a.cast(to: .float32), b.cast(to: .float32))
        let check = { (name: String, half: Tensor, full: Tensor) in
            #expect(half.dtype == dtype, "\(name) keeps \(dtype)")
            expectClose(half.scalars(as: Double.self), full.scalars(as: Double.self), rtol: halfUlp * 1.0001, atol: 1e-30,
                        "\(name) \(dtype)")
        }
        check("matmul", Tensor.matmul(a, b), Tensor.matmul(a32, b32))
        let w = randn32([32], seed: 502).cast(to: dtype), bias = randn32([32], seed: 503).cast(to: dtype)
        check("layerNorm", a.layerNorm(weight: w, bias: bias),
              a32.layerNorm(weight: w.cast(to: .float32), bias: bias.cast(to: .float32)))
        check("softmax", a.softmax(), a32.softmax())
        check("gelu", a.gelu(), a32.gelu())
        check("add", a + w, a32 + w.cast(to: .float32))
        check("sum", a.sum(axis: 1), a32.sum(axis: 1))
        let wt = b.transposed()
        check("linear", Tensor.linear(a, weight: wt, bias: nil), Tensor.matmul(a32, wt.cast(to: .float32), transposeB: true))
        let targets = Tensor((0..<16).map { $0 == 3 ? -100 : ($0 * 5) % 32 } as [Int])
        check("crossEntropy", a.crossEntropy(targets: targets), a32.crossEntropy(targets: targets))
        let q = a.reshape([2, 2, 4, 32]), q32 = a32.reshape([2, 2, 4, 32])
        check("attention", Tensor.attention(q, q, q), Tensor.attention(q32, q32, q32))
        var r1 = RandomStream(seed: 9), r2 = RandomStream(seed: 9)
        check("dropout", a.dropout(0.3, rng: &r1), a32.dropout(0.3, rng: &r2))
        let ids = Tensor([3, 0, 3, 15] as [Int32])
        check("embedding", Tensor.embedding(a, ids: ids), Tensor.embedding(a32, ids: ids))
        let lb = randn32([8], seed: 504).cast(to: dtype)
        check("linear+bias", Tensor.linear(a, weight: wt, bias: lb),
              Tensor.linear(a32, weight: wt.cast(to: .float32), bias: lb.cast(to: .float32)))
    }

    @Test(arguments: [DType.bfloat16, .float16])
    func halfGradientsFlowAndStayHalf(_ dtype: DType) {
        let x = randn32([4, 8], seed: 510).cast(to: dtype), w = randn32([8], seed: 511).cast(to: dtype)
        x.requiresGrad = true; w.requiresGrad = true
        let y = x.layerNorm(weight: w, bias: nil).gelu()
        (y * y).sum().backward()
        #expect(x.grad!.dtype == dtype && w.grad!.dtype == dtype)
        // Same computation in fp32 from the same (rounded) values.
        let x32 = x.cast(to: .float32).detach(), w32 = w.cast(to: .float32).detach()
        x32.requiresGrad = true; w32.requiresGrad = true
        let y32 = x32.layerNorm(weight: w32, bias: nil).gelu()
        (y32 * y32).sum().backward()
        // Intermediate roundings compound; 4 bf16 ulps of the largest gradient.
        let tol = dtype == .bfloat16 ? 4 * 0x1p-8 : 4 * 0x1p-11
        expectNormClose(x.grad!, x32.grad!, rtol: tol, "dx \(dtype)")
        expectNormClose(w.grad!, w32.grad!, rtol: tol, "dw \(dtype)")
    }

    @Test func printingHalfTensors() {
        let t = Tensor([1.5, -2] as [Float], dtype: .bfloat16)
        #expect(t.description == "tensor([1.5000, -2.0000], shape=[2], dtype=bfloat16)")
    }
}
