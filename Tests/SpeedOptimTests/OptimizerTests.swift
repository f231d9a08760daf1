// Each optimizer against its fp64 scalar reference over several steps, from identical fp32 inputs.
// Invariant: both sides start from the same fp32-representable values and see the same gradients each
// step, so differences are fp32 rounding only (rtol 2e-5 over a few steps).

import SpeedCore
import SpeedOptim
import Testing

/// Runs `steps` updates of `optimizer` and of `reference` (which gets p, g, state, step) from the same
/// inputs and compares the parameters and every state buffer after each step.
func compareWithReference(_ optimizer: any Optimizer, n: Int = 37, steps: Int = 5, seed: UInt64,
                          pScale: Double = 1, gScale: Double = 1, zeroGradients: Bool = false,
                          rtol: Double = 2e-5, atol: Double = 1e-6, _ what: String,
                          sourceLocation: SourceLocation = #_sourceLocation,
                          reference: (inout [Double], [Double], inout [[Double]], Int) -> Void) {
    var p = seeded(n, seed: seed, std: pScale)
    let param = tensor32(p)
    let state = optimizer.makeState(count: n, device: .cpu)
    var refState = state.map { $0.scalars(as: Double.self) }
    for step in 1...steps {
        let g = zeroGradients ? [Double](repeating: 0, count: n) : seeded(n, seed: seed &+ UInt64(step) * 7919, std: gScale)
        optimizer.update(param: param, grad: tensor32(g), state: state, step: step)
        reference(&p, g, &refState, step)
        expectAllClose(param.scalars(as: Double.self), p, rtol: rtol, atol: atol, "\(what) param, step \(step)",
                       sourceLocation: sourceLocation)
        for (name, (s, r)) in zip(optimizer.stateNames, zip(state, refState)) {
            expectAllClose(s.scalars(as: Double.self), r, rtol: rtol, atol: 1e-7,
                           "\(what) \(name), step \(step)", sourceLocation: sourceLocation)
        }
    }
}

/// Hands the first two state buffers to `body` as separate inout arrays (exclusive access).
func withMoments(_ s: inout [[Double]], _ body: (inout [Double], inout [Double]) -> Void) {
    var (a, b) = (s[0], s[1])
    body(&a, &b)
    s[0] = a; s[1] = b
}

@Suite struct AdamTests {
    @Test func adamWMatchesReference() {
        let opt = AdamW(lr: 1e-2, betas: (0.9, 0.999), eps: 1e-8, weightDecay: 0.1)
        compareWithReference(opt, steps: 6, seed: 1, "AdamW") { p, g, s, t in
            withMoments(&s) { m, v in
                Reference.adam(p: &p, g: g, m: &m, v: &v, step: t, lr: 1e-2, beta1: 0.9, beta2: 0.999,
                               eps: 1e-8, wd: 0.1, decoupled: true)
            }
        }
    }

    @Test func adamL2ModeMatchesReference() {
        let opt = Adam(lr: 3e-3, betas: (0.8, 0.99), eps: 1e-6, weightDecay: 0.05, adamWMode: false)
        compareWithReference(opt, steps: 6, seed: 2, "Adam L2") { p, g, s, t in
            withMoments(&s) { m, v in
                Reference.adam(p: &p, g: g, m: &m, v: &v, step: t, lr: 3e-3, beta1: 0.8, beta2: 0.99,
                               eps: 1e-6, wd: 0.05, decoupled: false)
            }
        }
    }

    @Test func adamWithoutBiasCorrectionMatchesReference() {
        let opt = Adam(lr: 1e-3, weightDecay: 0.01, biasCorrection: false)
        compareWithReference(opt, steps: 5, seed: 3, "Adam no bias correction") { p, g, s, t in
            withMoments(&s) { m, v in
                Reference.adam(p: &p, g: g, m: &m, v: &v, step: t, lr: 1e-3, beta1: 0.9, beta2: 0.999,
                               eps: 1e-8, wd: 0.01, decoupled: true, biasCorrection: false)
            }
        }
    }

    /// DeepSpeed's "Adam" is AdamW unless `adam_w_mode: false`; the two modes differ only with decay.
    @Test func adamWModeDefaultAndDifference() {
        let n = 64
        func run(_ opt: Adam) -> [Float] {
            let p = tensor32(seeded(n, seed: 4)), state = opt.makeState(count: n)
            for step in 1...3 { opt.update(param: p, grad: tensor32(seeded(n, seed: 40 + UInt64(step))), state: state, step: step) }
            return p.scalars
        }
        let defaultAdam = run(Adam(lr: 1e-2, weightDecay: 0.1))
        #expect(defaultAdam == run(AdamW(lr: 1e-2, weightDecay: 0.1)))
        let l2 = run(Adam(lr: 1e-2, weightDecay: 0.1, adamWMode: false))
        let gap = zip(defaultAdam, l2).map { Swift.abs($0 - $1) }.max()!
        #expect(gap > 1e-4, "decoupled and L2 decay should differ, max gap \(gap)")
        #expect(run(Adam(lr: 1e-2, adamWMode: true)) == run(Adam(lr: 1e-2, adamWMode: false)))
    }

    @Test func namesAndHyperparameters() {
        let adam = Adam(lr: 2e-3, adamWMode: false)
        #expect(adam.typeName == "adam" && AdamW().typeName == "adamw")
        #expect(adam.stateNames == ["exp_avg", "exp_avg_sq"])
        #expect(adam.hyperparameters["adam_w_mode"] == 0 && adam.hyperparameters["lr"] == 2e-3)
        adam.betas = (0.85, 0.99)
        #expect(adam.beta1 == 0.85 && adam.betas?.1 == 0.99)
        let h = AdamW(lr: 1e-3).hyper(step: 2)
        #expect(Swift.abs(h.biasCorrection1 - 0.19) < 1e-15)
        #expect(Swift.abs(h.biasCorrection2Sqrt - (1 - 0.999 * 0.999).squareRoot()) < 1e-15)
    }
}

@Suite struct SGDTests {
    @Test func plainSGDWithWeightDecay() {
        let opt = SGD(lr: 0.1, weightDecay: 0.01)
        #expect(opt.stateNames.isEmpty)
        compareWithReference(opt, seed: 5, "SGD") { p, g, _, t in
            var none: [Double] = []
            Reference.sgd(p: &p, g: g, buf: &none, step: t, lr: 0.1, momentum: 0, dampening: 0, wd: 0.01, nesterov: false)
        }
    }

    @Test func momentumWithDampening() {
        let opt = SGD(lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.001)
        compareWithReference(opt, steps: 6, seed: 6, "SGD momentum") { p, g, s, t in
            Reference.sgd(p: &p, g: g, buf: &s[0], step: t, lr: 0.05, momentum: 0.9, dampening: 0.1, wd: 0.001,
                          nesterov: false)
        }
    }

    @Test func nesterovWithWeightDecay() {
        let opt = SGD(lr: 0.05, momentum: 0.8, weightDecay: 0.01, nesterov: true)
        compareWithReference(opt, steps: 6, seed: 7, "SGD nesterov") { p, g, s, t in
            Reference.sgd(p: &p, g: g, buf: &s[0], step: t, lr: 0.05, momentum: 0.8, dampening: 0, wd: 0.01,
                          nesterov: true)
        }
    }

    /// PyTorch sets the buffer to the first gradient, not (1 − dampening)·g blended with zeros.
    @Test func firstStepInitialisesMomentumBufferToGradient() {
        let opt = SGD(lr: 0.1, momentum: 0.9, dampening: 0.5)
        let p = tensor32([1, 2]), state = opt.makeState(count: 2)
        opt.update(param: p, grad: tensor32([0.5, -1]), state: state, step: 1)
        #expect(state[0].scalars == [0.5, -1])
        #expect(p.scalars == [Float(1 - 0.1 * 0.5), Float(2 + 0.1)])
    }
}

@Suite struct AdagradTests {
    @Test func matchesReferenceWithDecayAndLRDecay() {
        let opt = Adagrad(lr: 0.05, lrDecay: 0.01, weightDecay: 0.02, eps: 1e-10)
        compareWithReference(opt, steps: 6, seed: 8, "Adagrad") { p, g, s, t in
            Reference.adagrad(p: &p, g: g, sum: &s[0], step: t, lr: 0.05, lrDecay: 0.01, wd: 0.02, eps: 1e-10)
        }
    }

    @Test func initialAccumulatorValueFillsState() {
        let opt = Adagrad(lr: 0.1, initialAccumulatorValue: 0.25)
        let state = opt.makeState(count: 5, device: .cpu)
        #expect(state[0].scalars == [Float](repeating: 0.25, count: 5))
        compareWithReference(opt, seed: 9, "Adagrad initial accumulator") { p, g, s, t in
            Reference.adagrad(p: &p, g: g, sum: &s[0], step: t, lr: 0.1, lrDecay: 0, wd: 0, eps: 1e-10)
        }
    }
}

@Suite struct LionTests {
    @Test func matchesReferenceWithDecoupledDecay() {
        let opt = Lion(lr: 1e-3, betas: (0.9, 0.99), weightDecay: 0.5)
        compareWithReference(opt, steps: 6, seed: 10, "Lion") { p, g, s, _ in
            Reference.lion(p: &p, g: g, m: &s[0], lr: 1e-3, beta1: 0.9, beta2: 0.99, wd: 0.5)
        }
    }

    @Test func defaultsAreDeepSpeeds() {
        let lion = Lion()
        #expect(lion.lr == 1e-3 && lion.betas! == (0.9, 0.999) && lion.weightDecay == 0)
    }

    /// sign(0) = 0: a zero blend moves the parameter only by weight decay.
    @Test func zeroBlendOnlyDecays() {
        let opt = Lion(lr: 0.1, weightDecay: 0.5)
        let p = tensor32([2, -4]), state = opt.makeState(count: 2)
        opt.update(param: p, grad: tensor32([0, 0]), state: state, step: 1)
        #expect(p.scalars == [Float(2 * 0.95), Float(-4 * 0.95)])
        opt.update(param: p, grad: tensor32([3, -3]), state: state, step: 2)
        #expect(p.scalars == [Float(Float(2 * 0.95) * 0.95) - 0.1, Float(Float(-4 * 0.95) * 0.95) + 0.1])
    }
}

@Suite struct LambTests {
    func lamb(_ opt: Lamb, seed: UInt64, pScale: Double = 1, zeroGradients: Bool = false, _ what: String,
              expectedRatio: Double? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        var ratio = 0.0
        compareWithReference(opt, n: 50, steps: 4, seed: seed, pScale: pScale, zeroGradients: zeroGradients,
                             atol: 1e-6 * Swift.max(1, pScale), what, sourceLocation: sourceLocation) { p, g, s, t in
            withMoments(&s) { m, v in
                ratio = Reference.lamb(p: &p, g: g, m: &m, v: &v, step: t, lr: opt.lr, beta1: opt.beta1,
                                       beta2: opt.beta2, eps: opt.eps, wd: opt.weightDecay,
                                       biasCorrection: opt.biasCorrection, epsInsideSqrt: opt.epsInsideSqrt,
                                       minCoeff: opt.minCoeff, maxCoeff: opt.maxCoeff)
            }
        }
        #expect(Swift.abs(opt.lastTrustRatio - ratio) <= 1e-5 * ratio, "\(what): ratio \(opt.lastTrustRatio) vs \(ratio)",
                sourceLocation: sourceLocation)
        if let expectedRatio {
            #expect(opt.lastTrustRatio == expectedRatio, "\(what)", sourceLocation: sourceLocation)
        }
    }

    @Test func matchesReferenceWithDecay() {
        lamb(Lamb(lr: 1e-2, weightDecay: 0.01), seed: 11, "Lamb")
    }

    @Test func withoutBiasCorrectionEpsInsideSqrt() {
        lamb(Lamb(lr: 1e-2, eps: 1e-6, weightDecay: 0.1, biasCorrection: false, epsInsideSqrt: true), seed: 12,
             "Lamb no bias correction, eps inside sqrt")
    }

    /// ‖p‖/‖u‖ ≈ 100 for |p| ~ 100 and |u| ~ 1: clamped to max_coeff.
    @Test func ratioClampedToMaxCoeff() {
        lamb(Lamb(lr: 1e-3), seed: 13, pScale: 100, "Lamb max clamp", expectedRatio: 10)
    }

    /// ‖p‖/‖u‖ ≈ 1e-4: clamped to min_coeff.
    @Test func ratioClampedToMinCoeff() {
        lamb(Lamb(lr: 1e-3, minCoeff: 0.01), seed: 14, pScale: 1e-4, "Lamb min clamp", expectedRatio: 0.01)
    }

    @Test func zeroParameterNormGivesRatioOne() {
        let opt = Lamb(lr: 0.1)
        let p = Tensor.zeros([8]), state = opt.makeState(count: 8)
        opt.update(param: p, grad: tensor32(seeded(8, seed: 15)), state: state, step: 1)
        #expect(opt.lastTrustRatio == 1)
        #expect(p.scalars.allSatisfy { $0 != 0 })
    }

    @Test func zeroUpdateNormGivesRatioOne() {
        lamb(Lamb(lr: 0.1), seed: 16, zeroGradients: true, "Lamb zero update", expectedRatio: 1)
    }
}
