// Module-level activation checkpointing: checkpointed calls and GPT's checkpointed blocks give the plain
// losses and gradients (dropout included) and a lower peak memory. Invariant: every comparison builds its
// two models from the same seed, and memory is measured on a backend no other test uses.
import Foundation
import Testing
import SpeedCore
import SpeedNN

/// Every parameter's gradient, by name.
private func gradients(_ m: Module) -> [String: [Float]] {
    Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.0, $0.1.grad?.scalars ?? []) })
}

/// Same names; each gradient within `rtol` of the reference, normwise per tensor.
private func expectSameGradients(_ a: Module, _ b: Module, rtol: Float = 0,
                                 sourceLocation: SourceLocation = #_sourceLocation) {
    let (ga, gb) = (gradients(a), gradients(b))
    #expect(Set(ga.keys) == Set(gb.keys), sourceLocation: sourceLocation)
    for (name, x) in ga {
        let y = gb[name] ?? []
        #expect(x.count == y.count && !x.isEmpty, "\(name): no gradient", sourceLocation: sourceLocation)
        let scale = y.map(Swift.abs).max() ?? 0
        let err = zip(x, y).map { Swift.abs($0 - $1) }.max() ?? 0
        #expect(err <= rtol * scale, "\(name): max difference \(err) (scale \(scale))", sourceLocation: sourceLocation)
    }
}

private func tinyGPT(layers: Int = 3, dropout: Double = 0.1, checkpoint: Bool, device: Device = .cpu,
                     contextLength: Int = 16, seed: UInt64 = 3) -> GPT {
    var rng = RandomStream(seed: seed)
    let config = GPTConfig(vocabSize: 64, contextLength: contextLength, layers: layers, heads: 2, embedDim: 32,
                           dropout: dropout, checkpointActivations: checkpoint)
    return GPT(config, device: device, rng: &rng)
}

private func tokens(_ b: Int, _ t: Int, salt: Int, device: Device = .cpu) -> Tensor {
    Tensor((0..<(b * t)).map { ($0 * 7 + salt * 13 + 3) % 64 }, shape: [b, t], device: device)
}

@Suite struct ModuleCheckpointTests {
    @Test func checkpointedCallWithDropoutMatchesThePlainCallOverSeveralSteps() {
        func make() -> Sequential {
            var rng = RandomStream(seed: 11)
            return Sequential(Linear(16, 32, rng: &rng), GELU(), Dropout(0.3, rng: &rng), Linear(32, 16, rng: &rng),
                              Dropout(0.2, rng: &rng))
        }
        let (plain, ckpt) = (make(), make())
        var rng = RandomStream(seed: 12)
        let data = Tensor.randn([8, 16], rng: &rng)
        for step in 0..<3 {
            let (x1, x2) = (data.copy(), data.copy())
            x1.requiresGrad = true; x2.requiresGrad = true
            let l1 = plain(x1).square().sum(), l2 = ckpt.checkpointed(x2).square().sum()
            #expect(l1.item() == l2.item(), "step \(step) loss")
            l1.backward(); l2.backward()
            #expect(x1.grad!.scalars == x2.grad!.scalars, "step \(step) input gradient")
            expectSameGradients(plain, ckpt)
            // Dropout streams advance exactly as in the plain run, so the next step's masks match too.
            let streams = { (m: Module) in m.namedModules().compactMap { ($0.1 as? Dropout)?.rng } }
            #expect(streams(plain) == streams(ckpt))
            sgdStep(plain, lr: 0.1); sgdStep(ckpt, lr: 0.1)
        }
    }

    @Test func gptWithCheckpointedBlocksGivesThePlainLossAndGradients() {
        let plain = tinyGPT(checkpoint: false), ckpt = tinyGPT(checkpoint: true)
        #expect(ckpt.activationCheckpointing == ActivationCheckpointing(enabled: true))
        #expect(plain.namedParameters().map(\.0) == ckpt.namedParameters().map(\.0))
        #expect(Set(plain.stateDict().keys) == Set(ckpt.stateDict().keys))
        for step in 0..<2 {
            let (ids, targets) = (tokens(2, 16, salt: step), tokens(2, 16, salt: step + 1))
            let l1 = plain.loss(ids, targets: targets), l2 = ckpt.loss(ids, targets: targets)
            #expect(l1.item() == l2.item(), "step \(step) loss")
            l1.backward(); l2.backward()
            expectSameGradients(plain, ckpt, rtol: 1e-6)
            sgdStep(plain, lr: 0.5); sgdStep(ckpt, lr: 0.5)
        }
    }

    @Test func cpuCheckpointingGivesThePlainLossAndGradients() {
        let device = Device.cpu(threads: 1)
        let plain = tinyGPT(checkpoint: false, device: device), ckpt = tinyGPT(checkpoint: true, device: device)
        ckpt.activationCheckpointing.cpuCheckpointing = true
        #expect(ckpt.activationCheckpointing.saveInputsOn == .cpu)
        let (ids, targets) = (tokens(2, 16, salt: 5, device: device), tokens(2, 16, salt: 6, device: device))
        let l1 = plain.loss(ids, targets: targets), l2 = ckpt.loss(ids, targets: targets)
        #expect(l1.item() == l2.item())
        l1.backward(); l2.backward()
        expectSameGradients(plain, ckpt, rtol: 1e-6)
    }

    @Test func checkpointingSwitchesAtRuntimeThroughTheProtocol() {
        let gpt = tinyGPT(layers: 2, dropout: 0, checkpoint: false)
        let ids = tokens(1, 8, salt: 1), targets = tokens(1, 8, salt: 2)
        gpt.loss(ids, targets: targets).backward()
        let reference = gradients(gpt)
        gpt.zeroGrad()
        let module: Module = gpt
        (module as? any ActivationCheckpointable)?.activationCheckpointing.enabled = true
        #expect(gpt.activationCheckpointing.enabled)
        let loss = gpt.loss(ids, targets: targets)
        loss.backward()
        for (name, g) in gradients(gpt) {
            let r = reference[name]!, scale = r.map(Swift.abs).max()!
            #expect(zip(g, r).allSatisfy { Swift.abs($0 - $1) <= 1e-6 * scale }, "\(name)")
        }
        // Evaluation under noGrad is unaffected (no graph, no checkpoint op).
        #expect(noGrad { gpt(ids) }.gradFnName == nil)
    }

    @Test func checkpointedBlocksAtLeastHalveThePeakMemory() {
        // Six blocks whose activations (B·T = 512 rows of width C = 32) outweigh their weights, as in
        // real training: plain keeps ~20 activations per block, checkpointing keeps one per block.
        // Measured: 11.6 MB plain, 4.2 MB checkpointed.
        let backend = CPUBackend(threads: 1)
        let device = Device(backend: backend, kind: "cpu")
        let gpt = tinyGPT(layers: 6, dropout: 0.1, checkpoint: false, device: device, contextLength: 64)
        let (ids, targets) = (tokens(8, 64, salt: 1, device: device), tokens(8, 64, salt: 2, device: device))
        func peak() -> (Int, Double) {
            gpt.zeroGrad()
            backend.resetPeakMemory()
            let loss = gpt.loss(ids, targets: targets)
            let value = loss.item()
            loss.backward()
            return (backend.memoryStats.peakAllocatedBytes, value)
        }
        let (plain, plainLoss) = peak()
        gpt.activationCheckpointing.enabled = true
        let (saved, savedLoss) = peak()
        #expect(Double(saved) <= 0.5 * Double(plain), "checkpointed peak \(saved) B vs plain \(plain) B")
        #expect(plainLoss.isFinite && savedLoss.isFinite)
        let weights = gpt.parameters().reduce(0) { $0 + $1.byteCount }
        #expect(saved > 2 * weights, "the peak includes weights and gradients")
    }

    /// docs/SpeedNN.md, "Activation checkpointing".
    @Test func theGuideExampleHolds() {
        var crng = RandomStream(seed: 5)
        let mlp = Sequential(Linear(32, 128, rng: &crng), GELU(), Dropout(0.1, rng: &crng), Linear(128, 32, rng: &crng))
        let h = Tensor.randn([4, 32], rng: &crng); h.requiresGrad = true
        let out = mlp.checkpointed(h)
        out.square().mean().backward()
        #expect(h.grad != nil && mlp.parameters().allSatisfy { $0.grad != nil })
        _ = mlp.checkpointed(h, saveInputsOn: .cpu)
        let checkpointed = GPT(GPTConfig(vocabSize: 64, contextLength: 16, layers: 2, heads: 2, embedDim: 32,
                                         checkpointActivations: true), rng: &crng)
        #expect("\(checkpointed.activationCheckpointing)" == "ActivationCheckpointing(enabled: true, cpuCheckpointing: false)")
        checkpointed.activationCheckpointing.enabled = false
        #expect(checkpointed.activationCheckpointing == .off)
    }

    @Test func gptConfigDecodesWithoutTheCheckpointKey() throws {
        let json = #"{"vocabSize":64,"contextLength":16,"layers":2,"heads":2,"embedDim":32,"dropout":0,"layerNormEps":1e-5}"#
        let config = try JSONDecoder().decode(GPTConfig.self, from: Data(json.utf8))
        #expect(config.checkpointActivations == false)
        var on = config
        on.checkpointActivations = true
        let roundTrip = try JSONDecoder().decode(GPTConfig.self, from: JSONEncoder().encode(on))
        #expect(roundTrip == on)
    }
}
