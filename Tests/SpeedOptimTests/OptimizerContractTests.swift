// The update contract shared by every optimizer: 16-bit copies, half gradients, slices, and misuse that stops.
// Invariant: elementwise optimizers give the same result whether a buffer is updated whole or slice by slice.

import SpeedCore
import SpeedOptim
import Testing

@Suite struct OptimizerContractTests {
    static func all() -> [any Optimizer] {
        [Adam(lr: 1e-2, weightDecay: 0.1, adamWMode: false), AdamW(lr: 1e-2, weightDecay: 0.1),
         SGD(lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true), Adagrad(lr: 0.1, weightDecay: 0.01),
         Lion(lr: 1e-2, weightDecay: 0.1), Lamb(lr: 1e-2, weightDecay: 0.01)]
    }

    @Test func typeNamesAreDeepSpeeds() {
        #expect(Self.all().map(\.typeName) == ["adam", "adamw", "sgd", "adagrad", "lion", "lamb"])
    }

    /// Every optimizer writes its 16-bit copy as the rounded fp32 result, and accepts bf16 gradients.
    @Test func copiesAndHalfGradients() {
        let n = 77
        for opt in Self.all() {
            let p = tensor32(seeded(n, seed: 60)), state = opt.makeState(count: n, device: .cpu)
            let copy = Tensor.zeros([n], dtype: .bfloat16)
            let twin = tensor32(seeded(n, seed: 60)), twinState = opt.makeState(count: n, device: .cpu)
            for step in 1...2 {
                let g = tensor32(seeded(n, seed: 60 + UInt64(step))).cast(to: .bfloat16)
                opt.update(param: p, grad: g, state: state, step: step, lowPrecisionCopy: copy)
                opt.update(param: twin, grad: g.cast(to: .float32), state: twinState, step: step)
            }
            #expect(halfBits(copy) == roundedBits(p.scalars, .bfloat16), "\(opt.typeName)")
            #expect(p.scalars == twin.scalars, "\(opt.typeName): bf16 gradients differ from their fp32 widening")
        }
    }

    /// Updating two halves of a flat buffer (views) equals updating it whole, except Lamb (per-slice ratio).
    @Test func slicesOfAFlatBufferEqualTheWhole() {
        let n = 101, cut = 45
        for opt in Self.all() where opt.typeName != "lamb" {
            let whole = tensor32(seeded(n, seed: 70)), wholeState = opt.makeState(count: n, device: .cpu)
            let split = tensor32(seeded(n, seed: 70)), splitState = opt.makeState(count: n, device: .cpu)
            for step in 1...3 {
                let g = tensor32(seeded(n, seed: 70 + UInt64(step)))
                opt.update(param: whole, grad: g, state: wholeState, step: step)
                for r in [0..<cut, cut..<n] {
                    opt.update(param: split.slice(axis: 0, r), grad: g.slice(axis: 0, r),
                               state: splitState.map { $0.slice(axis: 0, r) }, step: step)
                }
            }
            #expect(whole.scalars == split.scalars, "\(opt.typeName)")
        }
    }

    @Test func mismatchedGradientCountStops() async {
        await #expect(processExitsWith: .failure) {
            let opt = AdamW()
            opt.update(param: Tensor.zeros([4]), grad: Tensor.zeros([5]), state: opt.makeState(count: 4), step: 1)
        }
    }

    @Test func missingStateStops() async {
        await #expect(processExitsWith: .failure) {
            Lamb().update(param: Tensor.zeros([4]), grad: Tensor.zeros([4]), state: [Tensor.zeros([4])], step: 1)
        }
    }

    @Test func nesterovWithoutMomentumStops() async {
        await #expect(processExitsWith: .failure) { _ = SGD(lr: 0.1, nesterov: true) }
    }
}

@Suite struct OptimizerShapeTests {
    /// Every optimizer accepts parameters of any shape (not only flat slices) with flat state.
    @Test(arguments: ["sgd", "adagrad", "lion", "lamb", "adamw"])
    func updatesAcceptNonFlatParameters(_ name: String) {
        let opt: any Optimizer = switch name {
        case "sgd": SGD(lr: 0.1, momentum: 0.9, nesterov: true)
        case "adagrad": Adagrad(lr: 0.1)
        case "lion": Lion(lr: 0.1)
        case "lamb": Lamb(lr: 0.1)
        default: AdamW(lr: 0.1)
        }
        let p = Tensor((0..<32).map { Float($0) / 32 }, shape: [4, 8])
        let g = Tensor((0..<32).map { Float($0 % 5) - 2 }, shape: [4, 8])
        let state = opt.makeState(count: p.count, device: .cpu)
        let flat = p.scalars
        opt.update(param: p, grad: g, state: state, step: 1)
        opt.update(param: p, grad: g, state: state, step: 2)
        #expect(p.shape == [4, 8])
        #expect(p.scalars != flat)
    }
}
