// Module reflection, modes and state dicts: names, order, errors that name every bad key.
import Testing
import SpeedCore
import SpeedNN

final class Toy: Module {
    let fc1: Linear
    let norm: LayerNorm
    let heads: [Linear]
    let maybe: Linear?
    let drop: Dropout

    init(rng: inout RandomStream) {
        fc1 = Linear(4, 8, rng: &rng)
        norm = LayerNorm(8)
        heads = [Linear(8, 2, bias: false, rng: &rng), Linear(8, 3, rng: &rng)]
        maybe = nil
        drop = Dropout(0.5, rng: &rng)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { heads[1](drop(norm(fc1(x)))) }
}

@Suite struct ModuleTests {
    @Test func parametersAreFoundWithDottedNamesInDeclarationOrder() {
        var rng = RandomStream(seed: 0)
        let m = Toy(rng: &rng)
        #expect(m.namedParameters().map(\.0) == [
            "fc1.weight", "fc1.bias", "norm.weight", "norm.bias",
            "heads.0.weight", "heads.1.weight", "heads.1.bias",
        ])
        #expect(m.parameterCount == 4 * 8 + 8 + 8 + 8 + 16 + 24 + 3)
        #expect(m.namedModules().map(\.0) == ["", "fc1", "norm", "heads.0", "heads.1", "drop"])
        #expect(m.parameters().allSatisfy { $0.requiresGrad })
    }

    @Test func trainAndEvalReachEveryDescendantAndSwitchDropout() {
        var rng = RandomStream(seed: 0)
        let m = Toy(rng: &rng)
        let x = Tensor.ones([3, 4])
        m.eval()
        #expect(m.namedModules().allSatisfy { !$0.1.isTraining })
        let a = noGrad { m(x) }.scalars, b = noGrad { m(x) }.scalars
        #expect(a == b)   // dropout off: deterministic
        m.train()
        #expect(m.drop.isTraining)
        let c = noGrad { m(x) }.scalars, d = noGrad { m(x) }.scalars
        #expect(c != d)   // dropout on: the stream advances between calls
    }

    @Test func stateDictRoundTripsIntoAFreshModel() throws {
        var rng1 = RandomStream(seed: 1), rng2 = RandomStream(seed: 2)
        let a = Toy(rng: &rng1), b = Toy(rng: &rng2)
        #expect(a.fc1.weight.scalars != b.fc1.weight.scalars)
        try b.load(stateDict: a.stateDict())
        for ((na, pa), (nb, pb)) in zip(a.namedParameters(), b.namedParameters()) {
            #expect(na == nb)
            #expect(pa.scalars == pb.scalars)
            #expect(pa !== pb)
        }
    }

    @Test func loadReportsMissingUnexpectedAndMisshapedKeysAndChangesNothing() {
        var rng = RandomStream(seed: 3)
        let m = Toy(rng: &rng)
        let before = m.fc1.weight.scalars
        var sd = m.stateDict()
        sd["fc1.weight"] = Tensor.zeros([8, 4])        // fine, but must not be applied
        sd["norm.bias"] = nil                           // missing
        sd["heads.0.weight"] = Tensor.zeros([2, 9])     // wrong shape
        sd["extra.weight"] = Tensor.zeros([1])          // unexpected
        #expect(throws: StateDictError.self) { try m.load(stateDict: sd) }
        do {
            try m.load(stateDict: sd)
        } catch let e as StateDictError {
            #expect(e.missing == ["norm.bias"])
            #expect(e.unexpected == ["extra.weight"])
            #expect(e.mismatched == ["heads.0.weight: model [2, 8], state dict [2, 9]"])
            #expect(e.description.contains("norm.bias"))
        } catch { Issue.record("unexpected error \(error)") }
        #expect(m.fc1.weight.scalars == before)
    }

    @Test func nonStrictLoadSkipsMissingAndUnexpected() throws {
        var rng = RandomStream(seed: 4)
        let m = Toy(rng: &rng)
        try m.load(stateDict: ["fc1.bias": Tensor.full([8], 7), "nope": Tensor.zeros([1])], strict: false)
        #expect(m.fc1.bias!.scalars == [Float](repeating: 7, count: 8))
    }

    @Test func sequentialChainsLayersAndNamesThemByIndex() {
        var rng = RandomStream(seed: 5)
        let s = Sequential(Linear(3, 5, rng: &rng), ReLU(), Linear(5, 2, rng: &rng))
        #expect(s.namedParameters().map(\.0) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"])
        let y = s(Tensor.ones([4, 3]))
        #expect(y.shape == [4, 2])
    }

    @Test func linearMatchesItsDefinition() {
        var rng = RandomStream(seed: 6)
        let fc = Linear(3, 2, rng: &rng)
        let x = Tensor([[1, 2, 3], [4, 5, 6]] as [[Float]])
        let y = fc(x).scalars
        let w = fc.weight.scalars, b = fc.bias!.scalars
        for r in 0..<2 {
            for o in 0..<2 {
                let expected = (0..<3).reduce(b[o]) { $0 + x.scalars[r * 3 + $1] * w[o * 3 + $1] }
                #expect(Swift.abs(y[r * 2 + o] - expected) < 1e-5)
            }
        }
    }

    @Test func forwardHooksRunAroundForward() {
        var rng = RandomStream(seed: 7)
        let fc = Linear(2, 2, rng: &rng)
        final class Log { var events: [String] = [] }
        let log = Log()
        fc.forwardPreHooks.append { _ in log.events.append("pre") }
        fc.forwardPostHooks.append { _, out in log.events.append("post"); return out }
        _ = fc(Tensor.ones([1, 2]))
        #expect(log.events == ["pre", "post"])
    }

    @Test func anEmbeddingsPaddingRowIsLookedUpButGetsNoGradient() {
        var rng = RandomStream(seed: 4)
        let embedding = Embedding(5, 3, paddingIndex: 0, rng: &rng)
        let ids = Tensor([0, 2, 0, 4] as [Int32], shape: [2, 2])
        let out = embedding(ids)
        #expect(Array(out.scalars[0..<3]) == Array(embedding.weight.scalars[0..<3]))
        (out * out).sum().backward()
        let grad = embedding.weight.grad!.scalars   // [5, 3]
        #expect(grad[0..<3].allSatisfy { $0 == 0 })
        #expect(Array(grad[6..<9]) == Array(embedding.weight.scalars[6..<9]).map { 2 * $0 })
        #expect(grad[3..<6].allSatisfy { $0 == 0 })
    }
}
