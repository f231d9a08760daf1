// The self-test's cases: every Backend kernel through the autograd ops (forward and backward) or called directly,
// in every dtype it supports, on odd shapes that exercise tails, broadcasting, strided layouts and split reductions.
// Invariant: shapes stay small enough for the host emulator (scripts/cuda-emu) to run the whole list in minutes.

import Foundation
import SpeedCore

extension Runner {
    static let floats: [DType] = [.float32, .bfloat16, .float16]
    static let floatsAnd64: [DType] = [.float32, .bfloat16, .float16, .float64]

    mutating func runAllCases() {
        creationCases()
        elementwiseCases()
        matmulCases()
        reductionCases()
        shapeCases()
        nnCases()
        transformerCases()
        attentionCases()
        maskedAttentionCases()
        optimizerCases()
    }

    mutating func creationCases() {
        let all: [DType] = [.float32, .float64, .bfloat16, .float16, .int32, .int64]
        for d in all {
            direct("fill 1.7", d, [], tolerance: .exact) { dev, _ in [Tensor.full([1029], -1.7e3, dtype: d, device: dev)] }
            for to in all where to != d {
                let x = input([517], .float32, low: -300, high: 300).cast(to: d)
                direct("cast \(d)->\(to)", d, [x], tolerance: .exact) { _, xs in [xs[0].cast(to: to)] }
            }
        }
        for d in Self.floatsAnd64 {
            direct("randn", d, [], tolerance: .pointwise) { dev, _ in
                var r = RandomStream(seed: 7, offset: 3)
                return [Tensor.randn([2001], mean: 0.5, std: 2, dtype: d, device: dev, rng: &r)]
            }
            direct("uniform", d, [], tolerance: .pointwise) { dev, _ in
                var r = RandomStream(seed: 9)
                return [Tensor.uniform([2001], low: -2, high: 3, dtype: d, device: dev, rng: &r)]
            }
            let x = input([33, 65], d)
            check("dropout 0.3", [x], tolerance: .exact, gradTolerance: .exact) { xs in
                var r = RandomStream(seed: 11)
                return xs[0].dropout(0.3, rng: &r)
            }
        }
    }

    mutating func elementwiseCases() {
        let unary: [(String, (Tensor) -> Tensor, Double?)] = [
            ("neg", { -1 * $0 }, nil), ("exp", { $0.exp() }, nil), ("log", { $0.log() }, 0.1),
            ("sqrt", { $0.sqrt() }, 0.1), ("tanh", { $0.tanh() }, nil), ("sigmoid", { $0.sigmoid() }, nil),
            ("relu", { $0.relu() }, nil), ("abs", { $0.abs() }, nil), ("square", { $0.square() }, nil),
            ("gelu", { $0.gelu() }, nil), ("gelu exact", { $0.gelu(approximate: false) }, nil),
            ("pow 3", { $0.pow(3) }, nil), ("pow 0.5", { $0.pow(0.5) }, 0.1), ("affine", { $0 * 1.5 + 0.25 }, nil),
            ("silu", { $0.silu() }, nil),
        ]
        for d in Self.floatsAnd64 {
            for (name, f, low) in unary {
                let x = low.map { input([37, 53], d, low: $0, high: 3) } ?? input([37, 53], d)
                check(name, [x], tolerance: .pointwise, gradTolerance: .pointwise) { f($0[0]) }
            }
            let binary: [(String, (Tensor, Tensor) -> Tensor)] = [
                ("add", (+)), ("sub", (-)), ("mul", (*)), ("div", (/)), ("maximum", { $0.maximum($1) }),
                ("minimum", { $0.minimum($1) }),
            ]
            for (name, f) in binary {
                let a = input([4, 1, 35], d), b = input([3, 35], d)
                check("\(name) broadcast [4,1,35]x[3,35]", [a, b], tolerance: .pointwise) { f($0[0], $0[1]) }
                let c = input([129, 7], d), e = input([129, 7], d)
                check("\(name) [129,7]", [c, e], tolerance: .pointwise) { f($0[0], $0[1]) }
            }
            let base = input([3, 41], d, low: 0.2, high: 2), ex = input([41], d, low: -2, high: 2)
            check("pow tensor", [base, ex], tolerance: .pointwise) { $0[0].pow($0[1]) }
            let p = input([5, 6], d), q = input([6], d)
            check("equal/greater", [p, q], tolerance: .exact, grad: false) { $0[0].greater($0[1]) + $0[0].equal($0[0]) }
            let cond = input([5, 1], .float32).relu()
            check("where [5,1]?[5,6]:[6]", [cond, p, q], tolerance: .exact, gradTolerance: .accumulated) {
                Tensor.where($0[0], $0[1], $0[2])
            }
        }
    }

    mutating func matmulCases() {
        for d in Self.floatsAnd64 {
            let cases: [(String, [Int], [Int], Bool, Bool)] = [
                ("[33,47]x[47,29]", [33, 47], [47, 29], false, false),
                ("[47,33]ᵀx[47,29]", [47, 33], [47, 29], true, false),
                ("[33,47]x[29,47]ᵀ", [33, 47], [29, 47], false, true),
                ("[47,33]ᵀx[29,47]ᵀ", [47, 33], [29, 47], true, true),
                ("batched [3,17,19]x[3,19,23]", [3, 17, 19], [3, 19, 23], false, false),
                ("broadcast [2,3,8,16]x[16,8]", [2, 3, 8, 16], [16, 8], false, false),
                ("broadcast [5,16]x[3,16,7]", [5, 16], [3, 16, 7], false, false),
            ]
            for (name, sa, sb, ta, tb) in cases {
                let a = input(sa, d), b = input(sb, d)
                check("matmul \(name)", [a, b], tolerance: .accumulated) {
                    Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
                }
            }
            let x = input([2, 9, 24], d), w = input([40, 24], d), bias = input([40], d)
            check("linear [2,9,24]->[40] + bias", [x, w, bias], tolerance: .accumulated) {
                Tensor.linear($0[0], weight: $0[1], bias: $0[2])
            }
            // A bias one element into its buffer: not 16-byte aligned, so not cuBLASLt's epilogue but the fallback.
            check("linear [2,9,24]->[40] + unaligned bias", [x, w, input([41], d)], tolerance: .accumulated) {
                Tensor.linear($0[0], weight: $0[1], bias: $0[2].slice(axis: 0, 1..<41))
            }
        }
    }

    mutating func reductionCases() {
        for d in Self.floatsAnd64 {
            let big = input([70001], d)
            check("sum all [70001]", [big], tolerance: .accumulated) { $0[0].sum() }
            check("sumOfSquares [70001]", [big], tolerance: .accumulated, grad: false) { $0[0].sumOfSquares() }
            let m = input([37, 2100], d)
            check("sum axis 1 [37,2100]", [m], tolerance: .accumulated) { $0[0].sum(axis: 1) }
            check("sum axis 0 [37,2100]", [m], tolerance: .accumulated) { $0[0].sum(axis: 0) }
            check("max axis 1 [37,2100]", [m], tolerance: .exact, gradTolerance: .exact) { $0[0].max(axis: 1) }
            check("max axis 0 [37,2100]", [m], tolerance: .exact, gradTolerance: .exact) { $0[0].max(axis: 0) }
            let t = input([6, 300, 5], d)
            check("mean axis 1 [6,300,5]", [t], tolerance: .accumulated) { $0[0].mean(axis: 1) }
            check("variance axis 2 [6,300,5]", [t], tolerance: .accumulated) { $0[0].variance(axes: [2]) }
            let short = input([50, 40], d)
            check("sum axis 1 [50,40]", [short], tolerance: .accumulated) { $0[0].sum(axis: 1, keepDims: true) }
            let long = input([2, 40000], d)
            check("sum axis 1 [2,40000]", [long], tolerance: .accumulated) { $0[0].sum(axis: 1) }
            let cols = input([3, 5000, 4], d)
            check("sum axis 1 [3,5000,4]", [cols], tolerance: .accumulated) { $0[0].sum(axis: 1) }
        }
    }

    mutating func shapeCases() {
        for d in Self.floatsAnd64 {
            let x = input([2, 3, 4, 5], d)
            check("permute [3,0,2,1]", [x], tolerance: .exact, gradTolerance: .exact) { $0[0].permute([3, 0, 2, 1]) }
            check("transposed", [x], tolerance: .exact, gradTolerance: .exact) { $0[0].transposed(1, 3) }
            check("slice axis 2", [x], tolerance: .exact, gradTolerance: .exact) { $0[0].slice(axis: 2, 1..<3) }
            let y = input([2, 3, 2, 5], d)
            check("concat axis 2", [x, y], tolerance: .exact, gradTolerance: .exact) { Tensor.concat([$0[0], $0[1]], axis: 2) }
            let e = input([3, 1, 5], d)
            check("expand [3,1,5]->[2,3,4,5]", [e], tolerance: .exact) { $0[0].expand(to: [2, 3, 4, 5]) }
            let deep = input([2, 2, 2, 2, 2, 2, 2, 2, 3], d)
            check("permute rank 9", [deep], tolerance: .exact, gradTolerance: .exact) { $0[0].permute([8, 7, 6, 5, 4, 3, 2, 1, 0]) }
        }
    }

    mutating func nnCases() {
        for d in Self.floatsAnd64 {
            for n in [50, 1000, 5003] {
                let x = input([13, n], d)
                check("softmax [13,\(n)]", [x], tolerance: .accumulated) { $0[0].softmax() }
                check("logSoftmax [13,\(n)]", [x], tolerance: .accumulated) { $0[0].logSoftmax() }
            }
            for c in [64, 768, 5000] {
                let x = input([2, 11, c], d), w = input([c], d), b = input([c], d)
                check("layerNorm [2,11,\(c)] w+b", [x, w, b], tolerance: .accumulated) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
            }
            let x = input([9, 96], d)
            check("layerNorm [9,96] no affine", [x], tolerance: .accumulated) { $0[0].layerNorm(weight: nil, bias: nil) }
            for ids in [DType.int32, .int64] {
                let w = input([101, 48], d)
                let idx = Tensor((0..<77).map { Float(($0 * 37 + 5) % 101) }, shape: [7, 11]).cast(to: ids)
                check("embedding \(ids)", [w, idx], tolerance: .exact) { Tensor.embedding($0[0], ids: $0[1]) }
                for v in [300, 5003] {
                    let logits = input([4, 9, v], d)
                    let targets = Tensor((0..<36).map { Float($0 % 5 == 0 ? -100 : ($0 * 131) % v) }, shape: [4, 9]).cast(to: ids)
                    check("crossEntropy V=\(v) \(ids)", [logits, targets], tolerance: .accumulated) {
                        $0[0].crossEntropy(targets: $0[1])
                    }
                }
            }
            let p = input([6, 7], d), t = input([6, 7], d)
            check("mseLoss", [p, t], tolerance: .accumulated) { $0[0].mseLoss($0[1]) }
        }
    }

    mutating func attentionCases() {
        for d in Self.floats {
            for (t, hd) in [(70, 16), (33, 64), (65, 128), (1, 32)] {
                for causal in [true, false] {
                    let q = input([2, 2, t, hd], d), k = input([2, 2, t, hd], d), v = input([2, 2, t, hd], d)
                    check("attention T=\(t) D=\(hd)\(causal ? " causal" : "")", [q, k, v], tolerance: .accumulated) {
                        Tensor.attention($0[0], $0[1], $0[2], causal: causal)
                    }
                }
            }
            // q, k, v read in place from one [B, T, 3, H, D] buffer, out [B, T, H, D] (GPT's path); D = 40 leaves
            // rows unaligned for the vector loads.
            for (t, hd) in [(64, 64), (33, 64), (70, 40)] {
                check("attention packed T=\(t) D=\(hd) causal", [input([2, t, 3, 2, hd], d)], tolerance: .accumulated) {
                    Tensor.attention(packed: $0[0], causal: true)
                }
            }
        }
    }

    /// RMSNorm, rotary and SwiGLU (the decoder families' kernels), forward and backward, in every dtype.
    mutating func transformerCases() {
        for d in Self.floatsAnd64 {
            for c in [64, 768, 5000] {
                let x = input([2, 11, c], d), w = input([c], d)
                check("rmsNorm [2,11,\(c)] w", [x, w], tolerance: .accumulated) { $0[0].rmsNorm(weight: $0[1], eps: 1e-6) }
            }
            check("rmsNorm [9,96] no weight", [input([9, 96], d)], tolerance: .accumulated) { $0[0].rmsNorm(weight: nil) }
            let stats: DType = d == .float64 ? .float64 : .float32
            for (t, h, hd) in [(7, 3, 16), (33, 2, 128)] {
                let x = input([2, t, h, hd], d)
                let angles = input([2, t, hd / 2], .float32, low: -20, high: 20).scalars(as: Double.self)
                let cos = Tensor(angles.map { Foundation.cos($0) }, shape: [2, t, hd / 2]).cast(to: stats)
                let sin = Tensor(angles.map { Foundation.sin($0) }, shape: [2, t, hd / 2]).cast(to: stats)
                check("rotary [2,\(t),\(h),\(hd)]", [x], tolerance: .pointwise, gradTolerance: .pointwise) {
                    $0[0].rotary(cos: cos.to($0[0].device), sin: sin.to($0[0].device))
                }
            }
            let gate = input([37, 53], d), up = input([37, 53], d)
            check("swiglu [37,53]", [gate, up], tolerance: .pointwise, gradTolerance: .pointwise) {
                Tensor.swiglu(gate: $0[0], up: $0[1])
            }
            // An odd count and an offset view: the unaligned (scalar) path.
            let odd = input([1001], d), oddUp = input([1001], d)
            check("swiglu [1000] unaligned", [odd, oddUp], tolerance: .pointwise, gradTolerance: .pointwise) {
                Tensor.swiglu(gate: $0[0].slice(axis: 0, 1..<1001), up: $0[1].slice(axis: 0, 0..<1000))
            }
        }
    }

    /// Attention under every AttentionMask option: grouped K/V heads, key padding (left and right, so causal rows
    /// that see no key), sliding windows, fewer queries than keys (a KV cache), token-major and packed layouts.
    mutating func maskedAttentionCases() {
        /// 1 = keep; batch 1 pads its first `left` and last `right` keys.
        func padding(_ tk: Int, left: Int, right: Int) -> Tensor {
            Tensor((0..<(2 * tk)).map { $0 < tk || ($0 - tk >= left && $0 - tk < tk - right) ? Int32(1) : 0 }, shape: [2, tk])
        }
        for d in Self.floats {
            let cases: [(String, Int, Int, Int, Int, Int, AttentionMask, Bool)] = [
                // name, heads, kvHeads, queries, keys, head dim, mask, token-major
                ("GQA 4/2 T=70 D=64 causal window 20 padded", 4, 2, 70, 70, 64,
                 AttentionMask(causal: true, window: 20, keyPadding: padding(70, left: 3, right: 5)), false),
                ("MQA 4/1 T=33 D=128 padded token-major", 4, 1, 33, 33, 128,
                 AttentionMask(keyPadding: padding(33, left: 0, right: 7)), true),
                ("cached 3 of 65 keys D=32 GQA 2/1 window 40", 2, 1, 3, 65, 32,
                 AttentionMask(causal: true, window: 40, keyPadding: padding(65, left: 2, right: 0)), false),
                ("cached 17 of 80 keys D=40 causal token-major", 2, 2, 17, 80, 40, AttentionMask(causal: true), true),
                ("T=70 D=16 causal left-padded (rows see no key)", 2, 2, 70, 70, 16,
                 AttentionMask(causal: true, keyPadding: padding(70, left: 9, right: 0)), false),
            ]
            for (name, h, hk, tq, tk, hd, mask, tokenMajor) in cases {
                let qs = tokenMajor ? [2, tq, h, hd] : [2, h, tq, hd], ks = tokenMajor ? [2, tk, hk, hd] : [2, hk, tk, hd]
                check("attention \(name)", [input(qs, d), input(ks, d), input(ks, d)], tolerance: .accumulated) {
                    Tensor.attention($0[0], $0[1], $0[2], mask: mask, tokenMajor: tokenMajor)
                }
            }
            check("attention packed T=33 D=64 padded", [input([2, 33, 3, 2, 64], d)], tolerance: .accumulated) {
                Tensor.attention(packed: $0[0], mask: AttentionMask(keyPadding: padding(33, left: 0, right: 4)))
            }
        }
    }

    mutating func optimizerCases() {
        for g in Self.floats {
            for copy in [nil, DType.bfloat16, .float16] {
                for (name, hyper) in [("adamw", AdamHyper(lr: 1e-2, weightDecay: 0.1, step: 3)),
                                      ("adam l2 scaled", AdamHyper(lr: 1e-3, weightDecay: 0.01, decoupled: false, step: 1, gradScale: 0.5))] {
                    let n = 4099
                    let p = input([n], .float32), grad = input([n], g)
                    let m = input([n], .float32), v = input([n], .float32).square()
                    direct("\(name) grad \(g) copy \(copy.map(\.rawValue) ?? "none")", .float32, [p, grad, m, v],
                           tolerance: .exact) { dev, xs in
                        let low = copy.map { Tensor.zeros([n], dtype: $0, device: dev) }
                        // An offset slice checks the unaligned path as well.
                        let (pp, gg, mm, vv) = (xs[0].slice(axis: 0, 1..<n), xs[1].slice(axis: 0, 1..<n),
                                                xs[2].slice(axis: 0, 1..<n), xs[3].slice(axis: 0, 1..<n))
                        dev.backend.adamStep(param: pp, grad: gg, expAvg: mm, expAvgSq: vv, hyper: hyper,
                                             lowPrecisionCopy: low?.slice(axis: 0, 1..<n))
                        return [xs[0], xs[2], xs[3]] + (low.map { [$0] } ?? [])
                    }
                }
            }
        }
    }
}
