// The values docs/SpeedNN.md promises for its hooks, named-inputs, keys and buffers examples, so the guide
// stays true. Invariant: the classes here are the guide's, renamed only to avoid clashing with other tests.
import Testing
import SpeedCore
import SpeedNN

final class GuidePairClassifier: Module {
    let words: Embedding, head: Linear

    init(rng: inout RandomStream) {
        words = Embedding(11, 8, rng: &rng)
        head = Linear(8, 3, rng: &rng)
        super.init()
    }

    override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let h = words(inputs.inputIds!)
        let mask = inputs.attentionMask!.cast(to: h.dtype).reshape([h.shape[0], h.shape[1], 1])
        var out = ModuleOutputs()
        out.logits = head((h * mask).sum(axis: 1) / mask.sum(axis: 1))
        out.hiddenStates = h
        if let labels = inputs.labels { out.loss = out.logits!.crossEntropy(targets: labels) }
        return out
    }
}

final class GuideAttention: Module {
    @ModuleInfo(key: "c_attn") var cAttn: Linear
    @ModuleInfo(key: "c_proj") var cProj: Linear

    init(rng: inout RandomStream) {
        super.init()
        cAttn = Linear(8, 24, rng: &rng)
        cProj = Linear(8, 8, rng: &rng)
    }
}

final class GuideGPT2Block: Module {
    @ModuleInfo(key: "ln_1") var ln1 = LayerNorm(8)
    @ModuleInfo var attn: GuideAttention

    init(rng: inout RandomStream) {
        _attn.wrappedValue = GuideAttention(rng: &rng)
        super.init()
    }
}

final class GuideGPT2Body: Module {
    @ModuleInfo(key: "h") var blocks: [GuideGPT2Block]
    @ModuleInfo(key: "lm_head") var lmHead: Linear?

    init(rng: inout RandomStream) {
        super.init()
        blocks = (0..<2).map { _ in GuideGPT2Block(rng: &rng) }
    }
}

final class GuideRMSNorm: Module {
    @ParameterInfo(key: "weight") var gamma = Tensor.ones([8], requiresGrad: true)
}

final class GuideEmbeddings: Module {
    @ModuleInfo(key: "word_embeddings") var words: Embedding
    @BufferInfo(key: "position_ids") var positionIds = Tensor((0..<16).map { Int32($0) })
    @BufferInfo(key: "inv_freq", persistent: false) var invFreq = Tensor([1, 0.1, 0.01, 0.001] as [Float])

    init(rng: inout RandomStream) {
        super.init()
        words = Embedding(64, 8, rng: &rng)
    }
}

@Suite struct ModuleGuideTests {
    @Test func forwardHooks() {
        var rng = RandomStream(seed: 0)
        let fc = Linear(768, 2048, rng: &rng)
        final class Calls { var list: [String] = [] }
        let calls = Calls()
        fc.forwardPreHooks.append { m in calls.list.append("before \(type(of: m))") }
        fc.forwardPostHooks.append { _, outputs in calls.list.append("after \(outputs.keys)"); return outputs }
        _ = fc(Tensor.zeros([2, 768]))
        #expect(calls.list == ["before Linear", "after [\"output\"]"])
    }

    @Test func severalInputsAndOutputs() {
        var rng = RandomStream(seed: 0)
        let classifier = GuidePairClassifier(rng: &rng)
        let ids = Tensor([[1, 2, 3], [4, 5, 6]] as [[Int32]])
        let mask = Tensor([[1, 1, 0], [1, 1, 1]] as [[Int32]])
        let out = classifier(["input_ids": ids, "attention_mask": mask, "labels": Tensor([0, 2] as [Int32])])
        #expect(out.keys == ["logits", "hidden_states", "loss"])
        out.loss!.backward()
        #expect(classifier.head.weight.grad != nil)
        let inputs = ModuleInputs(inputIds: ids, attentionMask: mask)
        #expect(inputs.keys == ["input_ids", "attention_mask"])
        #expect(classifier(inputs).loss == nil)
        let fc = Linear(4, 2, rng: &rng), x = Tensor.ones([1, 4])
        #expect(fc(["hidden_states": x]).single.scalars == fc(x).scalars)

        // Activation checkpointing, named form.
        classifier.zeroGrad()
        let named = classifier.checkpointed(["input_ids": ids, "attention_mask": mask, "labels": Tensor([0, 2] as [Int32])])
        (named.loss! + named.hiddenStates!.square().mean()).backward()
        #expect(named.loss!.item() == out.loss!.item())
        #expect(classifier.words.weight.grad != nil)
    }

    @Test func huggingFaceNames() {
        var rng = RandomStream(seed: 0)
        #expect(Array(GuideGPT2Body(rng: &rng).namedParameters().map(\.0).prefix(3))
                == ["h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight"])
        #expect(GuideRMSNorm().namedParameters().map(\.0) == ["weight"])
        #expect(!GuideGPT2Body(rng: &rng).namedParameters().contains { $0.0.hasPrefix("lm_head") })
    }

    @Test func buffers() {
        var rng = RandomStream(seed: 0)
        let embeddings = GuideEmbeddings(rng: &rng)
        #expect(embeddings.namedParameters().map(\.0) == ["word_embeddings.weight"])
        #expect(embeddings.namedBuffers().map(\.0) == ["position_ids", "inv_freq"])
        #expect(embeddings.namedBuffers(persistentOnly: true).map(\.0) == ["position_ids"])
        #expect(embeddings.stateDict().keys.sorted() == ["position_ids", "word_embeddings.weight"])
    }
}
