// Our optimizers against values recorded from torch.optim and DeepSpeed's CPU optimizers (Fixtures/optimizers.json).
// Invariant: the fixture is regenerated only by scripts/gen_optim_fixtures.py; both sides compute in fp32 with a
// different operation order, so values agree to a few fp32 ulps (rtol 1e-5), not bit for bit.

import Foundation
import SpeedCore
import SpeedOptim
import Testing

struct OptimFixtureCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var implementation: String
    var kwargs: [String: Kwarg]
    var param: [Double]
    var grads: [[Double]]
    var paramsAfter: [[Double]]
    var state: [String: [Double]]

    var testDescription: String { name }

    enum CodingKeys: String, CodingKey {
        case name, implementation, kwargs, param, grads, paramsAfter = "params_after", state
    }

    /// A keyword argument: a number, a flag or a pair.
    enum Kwarg: Decodable, Sendable {
        case number(Double), flag(Bool), pair([Double])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else { self = .pair(try c.decode([Double].self)) }
        }
    }

    func number(_ key: String, _ fallback: Double) -> Double {
        if case .number(let x)? = kwargs[key] { return x }
        return fallback
    }

    func flag(_ key: String, _ fallback: Bool) -> Bool {
        if case .flag(let b)? = kwargs[key] { return b }
        return fallback
    }

    var betas: (Double, Double)? {
        if case .pair(let b)? = kwargs["betas"] { return (b[0], b[1]) }
        return nil
    }

    /// Our optimizer built from the recorded keyword arguments (defaults as the recorded implementation's).
    func makeOptimizer() -> (any Optimizer)? {
        let lr = number("lr", 1e-3), wd = number("weight_decay", 0)
        switch implementation {
        case "torch.optim.AdamW":
            return AdamW(lr: lr, betas: betas ?? (0.9, 0.999), eps: number("eps", 1e-8), weightDecay: wd)
        case "torch.optim.Adam":
            return Adam(lr: lr, betas: betas ?? (0.9, 0.999), eps: number("eps", 1e-8), weightDecay: wd, adamWMode: false)
        case "DeepSpeedCPUAdam":
            return Adam(lr: lr, betas: betas ?? (0.9, 0.999), eps: number("eps", 1e-8), weightDecay: wd,
                        biasCorrection: flag("bias_correction", true), adamWMode: flag("adamw_mode", true))
        case "torch.optim.SGD":
            return SGD(lr: lr, momentum: number("momentum", 0), dampening: number("dampening", 0), weightDecay: wd,
                       nesterov: flag("nesterov", false))
        case "torch.optim.Adagrad":
            return Adagrad(lr: lr, lrDecay: number("lr_decay", 0), weightDecay: wd,
                           initialAccumulatorValue: number("initial_accumulator_value", 0), eps: number("eps", 1e-10))
        case "DeepSpeedCPULion":
            return Lion(lr: lr, betas: betas ?? (0.9, 0.999), weightDecay: wd)
        default:
            return nil
        }
    }
}

struct OptimFixture: Decodable {
    var versions: [String: String]
    var cases: [OptimFixtureCase]

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/optimizers.json")

    static func load() -> [OptimFixtureCase] {
        guard let data = try? Data(contentsOf: url),
              let fixture = try? JSONDecoder().decode(OptimFixture.self, from: data) else { return [] }
        return fixture.cases
    }
}

@Suite struct ReferenceFixtureTests {
    @Test func fixtureCoversTorchAndDeepSpeed() {
        let names = OptimFixture.load().map(\.implementation)
        for impl in ["torch.optim.AdamW", "torch.optim.Adam", "torch.optim.SGD", "torch.optim.Adagrad", "DeepSpeedCPUAdam"] {
            #expect(names.contains(impl), "fixture has no \(impl) case (regenerate with scripts/gen_optim_fixtures.py)")
        }
    }

    @Test(arguments: OptimFixture.load())
    func matchesRecordedSteps(_ c: OptimFixtureCase) throws {
        let opt = try #require(c.makeOptimizer(), "no SwiftSpeed optimizer for \(c.implementation)")
        let n = c.param.count
        let p = tensor32(c.param), state = opt.makeState(count: n, device: .cpu)
        for (step, (g, expected)) in zip(c.grads, c.paramsAfter).enumerated() {
            opt.update(param: p, grad: tensor32(g), state: state, step: step + 1)
            expectAllClose(p.scalars(as: Double.self), expected, rtol: 1e-5, atol: 1e-7, "\(c.name) param, step \(step + 1)")
        }
        // DeepSpeed's CPU kernels form 1 − β₂ in fp32 from the fp32 β₂ (1 − 0.999f = 0.00099998712, 1.3e-5 low),
        // so their exp_avg_sq is 1.3e-5 (relative) below the exact formula we and torch follow.
        let stateTolerance = c.implementation.hasPrefix("DeepSpeed") ? 3e-5 : 1e-5
        for (name, s) in zip(opt.stateNames, state) {
            let expected = try #require(c.state[name], "\(c.name): fixture lacks state '\(name)'")
            expectAllClose(s.scalars(as: Double.self), expected, rtol: stateTolerance, atol: 1e-8, "\(c.name) \(name)")
        }
    }
}
