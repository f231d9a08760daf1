// Reference models: parameter counts and names match the specs, and they learn with plain SGD.
import Testing
import SpeedCore
import SpeedNN

/// One plain SGD step (the real optimizers live in SpeedOptim).
func sgdStep(_ model: Module, lr: Double) {
    noGrad {
        for p in model.parameters() {
            if let g = p.grad { p.addInPlace(g, scale: -lr) }
        }
    }
    model.zeroGrad()
}

@Suite struct ModelTests {
    @Test func gptMiniHasTheBenchmarkParameterCount() {
        var rng = RandomStream(seed: 0)
        let model = GPT(.gptMini, rng: &rng)
        #expect(model.parameterCount == 5_289_472)
        let names = model.namedParameters().map(\.0)
        #expect(names.first == "wte.weight")
        #expect(names.contains("blocks.3.attn.qkv.weight"))
        #expect(names.contains("blocks.0.mlp.proj.bias"))
        #expect(names.last == "lnF.bias")
    }

    @Test func gpt2SmallHasGPT2ParameterCount() {
        // 124,439,808 with the tied head (HF's count); built lazily in fp32 here is 0.5 GB, so only count.
        let c = GPTConfig.gpt2Small
        let perBlock = 4 * c.embedDim + (c.embedDim * 3 * c.embedDim + 3 * c.embedDim) + (c.embedDim * c.embedDim + c.embedDim)
            + (c.embedDim * 4 * c.embedDim + 4 * c.embedDim) + (4 * c.embedDim * c.embedDim + c.embedDim)
        let total = c.vocabSize * c.embedDim + c.contextLength * c.embedDim + c.layers * perBlock + 2 * c.embedDim
        #expect(total == 124_439_808)
    }

    @Test func gptMiniOverfitsOneBatch() {
        var rng = RandomStream(seed: 1)
        let config = GPTConfig(vocabSize: 64, contextLength: 16, layers: 2, heads: 2, embedDim: 32)
        let model = GPT(config, rng: &rng)
        let ids = Tensor((0..<32).map { ($0 * 7 + 3) % 64 }, shape: [2, 16])
        let targets = Tensor((0..<32).map { ($0 * 7 + 10) % 64 }, shape: [2, 16])
        var loss = 0.0
        for _ in 0..<150 {
            let l = model.loss(ids, targets: targets)
            loss = l.item()
            l.backward()
            sgdStep(model, lr: 0.5)
        }
        #expect(loss < 0.1)
    }
}

@Suite struct SimpleModelTests {
    /// The first seed's task: SimpleModel regressing random targets with MSE; the loss must fall
    /// (a 768-2048-768 network memorises random pairs; smaller widths keep the test fast).
    @Test func simpleModelMSEFallsOnTheSeedsRandomData() {
        var rng = RandomStream(seed: 42)
        let model = SimpleModel(inFeatures: 64, hidden: 256, rng: &rng)
        let data = Tensor.randn([32, 64], rng: &rng), labels = Tensor.randn([32, 64], rng: &rng)
        var losses: [Double] = []
        for _ in 0..<60 {
            let loss = model(data).mseLoss(labels)
            losses.append(loss.item())
            loss.backward()
            sgdStep(model, lr: 0.5)
        }
        #expect(losses.last! < 0.7 * losses.first!)
        #expect(zip(losses, losses.dropFirst()).filter { $1 > $0 }.count < 5)   // falls steadily
    }

    @Test func gptForwardShapesAndCausality() {
        var rng = RandomStream(seed: 9)
        let config = GPTConfig(vocabSize: 50, contextLength: 8, layers: 2, heads: 2, embedDim: 16)
        let model = GPT(config, rng: &rng)
        let ids = Tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10] as [Int], shape: [2, 5])
        let logits = noGrad { model(ids) }
        #expect(logits.shape == [2, 5, 50])
        // Changing a later token must not change earlier positions' logits.
        let ids2 = Tensor([1, 2, 3, 4, 49, 6, 7, 8, 9, 10] as [Int], shape: [2, 5])
        let logits2 = noGrad { model(ids2) }
        let a = logits.scalars, b = logits2.scalars
        #expect(Array(a[0..<(4 * 50)]) == Array(b[0..<(4 * 50)]))
        #expect(Array(a[(4 * 50)..<(5 * 50)]) != Array(b[(4 * 50)..<(5 * 50)]))
    }
}
