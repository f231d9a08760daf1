// Finite-difference gradient checks of broadcasting binary ops, unary activations and scalar arithmetic (fp64).
import Testing
import SpeedCore

/// Shape pairs that exercise every broadcasting case: equal, trailing vector, outer product, scalar, rank gap.
private let broadcastPairs: [([Int], [Int])] = [
    ([3, 4], [3, 4]), ([3, 4], [4]), ([3, 1], [1, 4]), ([3, 4], []), ([], [3, 4]), ([2, 1, 4], [3, 1]), ([4], [2, 3, 4]),
]

@Suite struct ElementwiseGradientTests {
    @Test func checkerCatchesAWrongGradient() {
        // x * detach(x) has analytic gradient x but true derivative 2x: the checker must flag every element.
        let x = randn64([2, 3], seed: 1)
        let report = gradientCheck([x]) { $0[0] * $0[0].detach() }
        #expect(report.checked == 6)
        #expect(report.failures.count == 6)
        // And it passes the honest version.
        #expect(gradientCheck([x]) { $0[0] * $0[0] }.failures.isEmpty)
    }

    @Test(arguments: broadcastPairs)
    func addSubMulDivBroadcast(_ shapes: ([Int], [Int])) {
        let (sa, sb) = shapes
        let a = randn64(sa, seed: 10), b = randn64(sb, seed: 11)
        expectGradientsMatch("add \(sa)+\(sb)", [a, b]) { $0[0] + $0[1] }
        expectGradientsMatch("sub \(sa)-\(sb)", [a, b]) { $0[0] - $0[1] }
        expectGradientsMatch("mul \(sa)*\(sb)", [a, b]) { $0[0] * $0[1] }
        let d = uniform64(sb, seed: 12, low: 0.5, high: 2)
        expectGradientsMatch("div \(sa)/\(sb)", [a, d]) { $0[0] / $0[1] }
        let n = uniform64(sb, seed: 13, low: -2, high: -0.5)
        expectGradientsMatch("div by negatives \(sa)/\(sb)", [a, n]) { $0[0] / $0[1] }
    }

    @Test func powTensorExponent() {
        let base = uniform64([3, 4], seed: 20), exponent = randn64([3, 4], seed: 21)
        expectGradientsMatch("pow", [base, exponent]) { $0[0].pow($0[1]) }
        let rowExponent = randn64([4], seed: 22)
        expectGradientsMatch("pow broadcast exponent", [base, rowExponent]) { $0[0].pow($0[1]) }
        let scalarBase = uniform64([], seed: 23)
        expectGradientsMatch("pow broadcast base", [scalarBase, exponent]) { $0[0].pow($0[1]) }
    }

    @Test func maximumMinimum() {
        let a = randn64([3, 4], seed: 30), b = randn64([4], seed: 31)
        expectGradientsMatch("maximum", [a, b]) { $0[0].maximum($0[1]) }
        expectGradientsMatch("minimum", [a, b]) { $0[0].minimum($0[1]) }
    }

    @Test func smoothUnaryOps() {
        let x = randn64([3, 5], seed: 40)
        expectGradientsMatch("neg", [x]) { -$0[0] }
        expectGradientsMatch("exp", [x]) { $0[0].exp() }
        expectGradientsMatch("tanh", [x]) { $0[0].tanh() }
        expectGradientsMatch("sigmoid", [x]) { $0[0].sigmoid() }
        expectGradientsMatch("square", [x]) { $0[0].square() }
        expectGradientsMatch("gelu (tanh approximation)", [x]) { $0[0].gelu(approximate: true) }
        expectGradientsMatch("gelu (exact erf)", [x]) { $0[0].gelu(approximate: false) }
        let wide = randn64([2, 6], seed: 41, scale: 3)
        expectGradientsMatch("gelu wide inputs", [wide]) { $0[0].gelu() }
        expectGradientsMatch("gelu exact wide inputs", [wide]) { $0[0].gelu(approximate: false) }
        expectGradientsMatch("sigmoid wide inputs", [wide]) { $0[0].sigmoid() }
    }

    @Test func positiveDomainUnaryOps() {
        let x = uniform64([3, 5], seed: 50, low: 0.3, high: 3)
        expectGradientsMatch("log", [x]) { $0[0].log() }
        expectGradientsMatch("sqrt", [x]) { $0[0].sqrt() }
        for p in [2.0, 3.0, 0.5, -1.5, 1.0] {
            expectGradientsMatch("pow(\(p))", [x]) { $0[0].pow(p) }
        }
    }

    @Test func integralPowersOfNegativeBases() {
        // Like C's pow: a negative base with an integral exponent is defined; a fractional one is NaN.
        let x = Tensor([-2, 3, -0.5] as [Double])
        #expect(x.pow(3).scalars(as: Double.self) == [-8, 27, -0.125])
        #expect(x.pow(-1).scalars(as: Double.self) == [-0.5, 1.0 / 3, -2])
        #expect(x.pow(Tensor([2, 2, 3] as [Double])).scalars(as: Double.self) == [4, 9, -0.125])
        #expect(x.pow(0.5).scalars(as: Double.self)[0].isNaN)
        #expect(Tensor([-2, 4] as [Float]).pow(-2).scalars == [0.25, 0.0625])
        let mixed = awayFromZero64([3, 4], seed: 55)
        for p in [3.0, -1.0, -2.0, 4.0] {
            expectGradientsMatch("pow(\(p)) of mixed signs", [mixed]) { $0[0].pow(p) }
        }
        expectGradientsMatch("s / x with negative x", [mixed]) { 2 / $0[0] }
    }

    @Test func kinkedUnaryOpsAwayFromZero() {
        let x = awayFromZero64([4, 5], seed: 60)
        #expect(x.scalars(as: Double.self).contains { $0 < 0 } && x.scalars(as: Double.self).contains { $0 > 0 })
        expectGradientsMatch("relu", [x]) { $0[0].relu() }
        expectGradientsMatch("abs", [x]) { $0[0].abs() }
    }

    @Test func scalarArithmeticOnBothSides() {
        let x = randn64([2, 3], seed: 70)
        expectGradientsMatch("x + s", [x]) { $0[0] + 2.5 }
        expectGradientsMatch("s + x", [x]) { 2.5 + $0[0] }
        expectGradientsMatch("x - s", [x]) { $0[0] - 1.5 }
        expectGradientsMatch("s - x", [x]) { 1.5 - $0[0] }
        expectGradientsMatch("x * s", [x]) { $0[0] * 3 }
        expectGradientsMatch("s * x", [x]) { -3 * $0[0] }
        expectGradientsMatch("x / s", [x]) { $0[0] / 4 }
        let positive = uniform64([2, 3], seed: 71)
        expectGradientsMatch("s / x", [positive]) { 4 / $0[0] }
        // Chained affine ops compose: ((x * 2 - 1) / 3 + 0.5).
        expectGradientsMatch("affine chain", [x]) { (($0[0] * 2 - 1) / 3 + 0.5) * $0[0] }
    }

    @Test func scalarArithmeticValues() {
        let x = Tensor([1, -2, 4] as [Double])
        #expect((x + 2.5).scalars(as: Double.self) == [3.5, 0.5, 6.5])
        #expect((2.5 + x).scalars(as: Double.self) == [3.5, 0.5, 6.5])
        #expect((x - 1).scalars(as: Double.self) == [0, -3, 3])
        #expect((1 - x).scalars(as: Double.self) == [0, 3, -3])
        #expect((x * 3).scalars(as: Double.self) == [3, -6, 12])
        #expect((3 * x).scalars(as: Double.self) == [3, -6, 12])
        #expect((x / 4).scalars(as: Double.self) == [0.25, -0.5, 1])
        #expect((4 / x).scalars(as: Double.self) == [4, -2, 1])
    }
}
