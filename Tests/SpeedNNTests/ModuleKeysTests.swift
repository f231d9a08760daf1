// Explicit keys and buffers: @ModuleInfo/@ParameterInfo give Hugging Face names, @BufferInfo tensors are
// state but not parameters, persistent ones round-trip through state dicts. Invariant: the expected names are
// written out in full, exactly as the Hugging Face checkpoints spell them.
import Testing
import SpeedCore
import SpeedNN

/// GPT-2's attention naming: `attn.c_attn`, `attn.c_proj`, and a causal-mask buffer HF keeps out of checkpoints.
final class GPT2Attention: Module {
    @ModuleInfo(key: "c_attn") var cAttn: Linear
    @ModuleInfo(key: "c_proj") var cProj: Linear
    @BufferInfo(key: "masked_bias", persistent: false) var maskedBias = Tensor.full([], -1e4)

    init(rng: inout RandomStream) {
        super.init()
        cAttn = Linear(4, 12, rng: &rng)
        cProj = Linear(4, 4, rng: &rng)
    }
}

final class GPT2Block: Module {
    @ModuleInfo(key: "ln_1") var ln1 = LayerNorm(4)
    @ModuleInfo var attn: GPT2Attention

    init(rng: inout RandomStream) {
        _attn = ModuleInfo(wrappedValue: GPT2Attention(rng: &rng))
        super.init()
    }
}

final class GPT2Body: Module {
    @ModuleInfo(key: "wte") var tokens: Embedding
    @ModuleInfo(key: "h") var blocks: [GPT2Block]
    @ModuleInfo(key: "ln_f") var lnF = LayerNorm(4)

    init(rng: inout RandomStream) {
        _tokens.wrappedValue = Embedding(10, 4, rng: &rng)
        _blocks.wrappedValue = (0..<2).map { _ in GPT2Block(rng: &rng) }
        super.init()
    }
}

final class GPT2LMHead: Module {
    @ModuleInfo var transformer: GPT2Body
    @ModuleInfo(key: "lm_head") var lmHead: Linear?

    init(head: Bool, rng: inout RandomStream) {
        super.init()
        transformer = GPT2Body(rng: &rng)
        lmHead = head ? Linear(4, 10, bias: false, rng: &rng) : nil
    }
}

/// Llama's naming: `model.layers.0.self_attn.q_proj`, an RMSNorm `weight` under another Swift name,
/// and a rotary `inv_freq` table that is a non-persistent buffer.
final class RMSNorm: Module {
    @ParameterInfo(key: "weight") var gamma: Tensor
    @ParameterInfo var offset: Tensor? = nil

    init(_ dim: Int) {
        super.init()
        gamma = Tensor.ones([dim], requiresGrad: true)
    }
}

final class LlamaAttention: Module {
    @ModuleInfo(key: "q_proj") var q: Linear
    @ModuleInfo(key: "k_proj") var k: Linear
    @ModuleInfo(key: "rotary_emb") var rotary = Rotary()

    init(rng: inout RandomStream) {
        super.init()
        q = Linear(4, 4, bias: false, rng: &rng)
        k = Linear(4, 4, bias: false, rng: &rng)
    }
}

final class Rotary: Module {
    @BufferInfo(key: "inv_freq", persistent: false) var invFreq = Tensor([1, 0.01] as [Float])
}

final class LlamaLayer: Module {
    @ModuleInfo(key: "self_attn") var selfAttn: LlamaAttention
    @ModuleInfo(key: "input_layernorm") var inputNorm = RMSNorm(4)

    init(rng: inout RandomStream) {
        _selfAttn.wrappedValue = LlamaAttention(rng: &rng)
        super.init()
    }
}

final class LlamaBody: Module {
    @ModuleInfo(key: "embed_tokens") var embed: Embedding
    @ModuleInfo var layers: [LlamaLayer]
    @BufferInfo(key: "position_ids") var positionIds = Tensor((0..<6).map { Int32($0) })

    init(rng: inout RandomStream) {
        _embed.wrappedValue = Embedding(10, 4, rng: &rng)
        _layers.wrappedValue = [LlamaLayer(rng: &rng)]
        super.init()
    }
}

final class LlamaForCausalLM: Module {
    @ModuleInfo var model: LlamaBody
    let lmHead: Linear   // a plain property keeps its Swift name

    init(rng: inout RandomStream) {
        _model.wrappedValue = LlamaBody(rng: &rng)
        lmHead = Linear(4, 10, bias: false, rng: &rng)
        super.init()
    }
}

/// Two properties under one key.
final class Clash: Module {
    @ParameterInfo(key: "weight") var a = Tensor.ones([1])
    let weight = Tensor.ones([1])
}

/// The error `load(stateDict:)` throws, nil when it loads.
private func loadError(_ m: Module, _ sd: StateDict) -> StateDictError? {
    do { try m.load(stateDict: sd); return nil } catch { return error as? StateDictError }
}

@Suite struct ModuleKeysTests {
    @Test func gpt2NamesComeOutAsHuggingFaceSpellsThem() {
        var rng = RandomStream(seed: 0)
        let m = GPT2LMHead(head: true, rng: &rng)
        var expected = ["transformer.wte.weight"]
        for i in 0..<2 {
            expected += ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                         "attn.c_proj.weight", "attn.c_proj.bias"].map { "transformer.h.\(i).\($0)" }
        }
        expected += ["transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"]
        #expect(m.namedParameters().map(\.0) == expected)
        #expect(m.namedModules().map(\.0).prefix(4) == ["", "transformer", "transformer.wte", "transformer.h.0"])
        #expect(m.transformer.blocks[1].attn.cAttn === m.namedModules().first { $0.0 == "transformer.h.1.attn.c_attn" }?.1)
        // A nil optional wrapper is simply absent.
        let headless = GPT2LMHead(head: false, rng: &rng)
        #expect(!headless.namedParameters().map(\.0).contains("lm_head.weight"))
        #expect(headless.namedParameters().count == expected.count - 1)
    }

    @Test func llamaNamesBuffersAndParameterKeysComeOutAsHuggingFaceSpellsThem() {
        var rng = RandomStream(seed: 1)
        let m = LlamaForCausalLM(rng: &rng)
        #expect(m.namedParameters().map(\.0) == [
            "model.embed_tokens.weight",
            "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
            "model.layers.0.input_layernorm.weight",
            "lmHead.weight",
        ])
        #expect(m.model.layers[0].inputNorm.gamma === m.namedParameters()[3].1)
        #expect(m.namedBuffers().map(\.0) == ["model.position_ids", "model.layers.0.self_attn.rotary_emb.inv_freq"])
        #expect(m.namedBuffers(persistentOnly: true).map(\.0) == ["model.position_ids"])
        let bufferIDs = Set(m.buffers().map(ObjectIdentifier.init))
        #expect(m.parameters().allSatisfy { !bufferIDs.contains(ObjectIdentifier($0)) })
        #expect(m.buffers().allSatisfy { !$0.requiresGrad })
        // An optional parameter that was never set is absent; once set it appears under its name.
        let norm = RMSNorm(2)
        #expect(norm.namedParameters().map(\.0) == ["weight"])
        norm.offset = Tensor.zeros([2], requiresGrad: true)
        #expect(norm.namedParameters().map(\.0) == ["weight", "offset"])
    }

    @Test func stateDictHoldsPersistentBuffersAndLoadRestoresThem() throws {
        var rng = RandomStream(seed: 2)
        let a = LlamaForCausalLM(rng: &rng), b = LlamaForCausalLM(rng: &rng)
        let saved = a.stateDict()
        #expect(Set(saved.keys) == Set(a.namedParameters().map(\.0) + ["model.position_ids"]))
        #expect(saved["model.layers.0.self_attn.rotary_emb.inv_freq"] == nil)

        a.model.positionIds.copyData(from: Tensor((0..<6).map { Int32(5 - $0) }))
        a.model.layers[0].selfAttn.rotary.invFreq.copyData(from: Tensor([7, 7] as [Float]))
        try b.load(stateDict: a.stateDict())
        #expect(b.model.positionIds.scalars(as: Int32.self) == [5, 4, 3, 2, 1, 0])
        #expect(b.model.layers[0].selfAttn.rotary.invFreq.scalars == [1, 0.01])   // not persistent: untouched
        #expect(b.lmHead.weight.scalars == a.lmHead.weight.scalars)
    }

    @Test func loadReportsAMissingPersistentBufferButNeverANonPersistentOne() {
        var rng = RandomStream(seed: 3)
        let m = LlamaForCausalLM(rng: &rng)
        var sd = m.stateDict()
        sd["model.position_ids"] = nil
        do {
            try m.load(stateDict: sd)
            Issue.record("load should have failed")
        } catch let e as StateDictError {
            #expect(e.missing == ["model.position_ids"] && e.unexpected.isEmpty)
        } catch { Issue.record("unexpected error \(error)") }

        // A non-persistent buffer's key in a checkpoint is unexpected, as in PyTorch; strict: false takes it.
        var withTable = m.stateDict()
        withTable["model.layers.0.self_attn.rotary_emb.inv_freq"] = Tensor([3, 3] as [Float])
        #expect(loadError(m, withTable)?.unexpected == ["model.layers.0.self_attn.rotary_emb.inv_freq"])
        #expect(throws: Never.self) { try m.load(stateDict: withTable, strict: false) }
        #expect(m.model.layers[0].selfAttn.rotary.invFreq.scalars == [1, 0.01])

        // A buffer of the wrong shape is a mismatch like a parameter's.
        var misshaped = m.stateDict()
        misshaped["model.position_ids"] = Tensor([0, 1] as [Int32])
        #expect(loadError(m, misshaped)?.mismatched == ["model.position_ids: model [6], state dict [2]"])
    }

    @Test func toMovesBuffersWithParametersKeepingTheObjects() {
        var rng = RandomStream(seed: 4)
        let m = LlamaForCausalLM(rng: &rng)
        let before = m.buffers()
        m.to(.cpu(threads: 1))
        #expect(zip(before, m.buffers()).allSatisfy { $0 === $1 })
    }

    @Test func twoPropertiesUnderOneNameStop() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Clash().namedParameters()
        }
        #expect(stopped(result, saying: "Clash: two properties are named 'weight'"))
    }

    @Test func anUnassignedWrapperStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            final class Forgot: Module { @ModuleInfo(key: "x") var x: Linear }
            _ = Forgot().namedParameters()
        }
        #expect(stopped(result, saying: "Forgot.x: the wrapped property was never assigned"))
    }
}
