// Named inputs and outputs: a two-input toy model through plain and checkpointed calls, the defaults between
// the two forwards, and hooks over both call forms. Invariant: every plain-vs-checkpointed comparison builds
// both models from one seed and feeds them the same ids, so outputs and gradients must be equal exactly.
import Testing
import SpeedCore
import SpeedNN

/// BERT's shape in miniature: ids + token types + attention mask in; logits, hidden states and (with
/// labels) loss out. Masked positions do not reach the pooled logits.
final class PairClassifier: Module {
    @ModuleInfo(key: "word_embeddings") var words: Embedding
    @ModuleInfo(key: "token_type_embeddings") var types: Embedding
    @ModuleInfo var dense: Linear
    @ModuleInfo(key: "dropout") var drop: Dropout
    @ModuleInfo(key: "classifier") var head: Linear

    init(seed: UInt64 = 1, dropout: Double = 0.2) {
        var rng = RandomStream(seed: seed)
        super.init()
        words = Embedding(11, 8, std: 0.5, rng: &rng)
        types = Embedding(2, 8, std: 0.5, rng: &rng)
        dense = Linear(8, 8, rng: &rng)
        drop = Dropout(dropout, rng: &rng)
        head = Linear(8, 3, rng: &rng)
    }

    override func forward(_ inputs: ModuleInputs) -> ModuleOutputs {
        let ids = inputs.inputIds!
        let (b, t) = (ids.shape[0], ids.shape[1])
        var h = words(ids)
        if let tokenTypes = inputs.tokenTypeIds { h = h + types(tokenTypes) }
        h = drop(dense(h).tanh())
        let mask = (inputs.attentionMask ?? Tensor.ones([b, t], dtype: .int32)).cast(to: h.dtype).reshape([b, t, 1])
        let pooled = (h * mask).sum(axis: 1) / mask.sum(axis: 1)
        var out = ModuleOutputs()
        out.logits = head(pooled)
        out.hiddenStates = h
        if let labels = inputs.labels { out.loss = out.logits!.crossEntropy(targets: labels) }
        return out
    }
}

/// A module that only has the multi-input forward and returns one output.
final class Doubler: Module {
    override func forward(_ inputs: ModuleInputs) -> ModuleOutputs { ["doubled": inputs.tensors[0] * 2] }
}

/// A module that overrides neither forward.
final class Hollow: Module {}

/// Deterministic ids `[2, 5]` (int32), token types, a mask hiding each row's tail, and labels.
func pairBatch(salt: Int = 0) -> ModuleInputs {
    let ids = Tensor((0..<10).map { Int32(($0 * 7 + salt * 3 + 1) % 11) }, shape: [2, 5])
    let types = Tensor([0, 0, 1, 1, 1, 0, 0, 0, 1, 1] as [Int32], shape: [2, 5])
    let mask = Tensor([1, 1, 1, 1, 0, 1, 1, 1, 0, 0] as [Int32], shape: [2, 5])
    let labels = Tensor([Int32(salt % 3), Int32((salt + 1) % 3)], shape: [2])
    return ModuleInputs(inputIds: ids, attentionMask: mask, tokenTypeIds: types, labels: labels)
}

private func gradients(_ m: Module) -> [String: [Float]] {
    Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.0, $0.1.grad?.scalars ?? []) })
}

/// Whether a stopped child's stderr names `message`: precondition messages are printed in debug
/// builds only (-O traps without them), so release builds check just the exit.
func stopped(_ result: ExitTest.Result?, saying message: String) -> Bool {
    #if DEBUG
    String(decoding: result?.standardErrorContent ?? [], as: UTF8.self).contains(message)
    #else
    result != nil
    #endif
}

@Suite struct ModuleInputsTests {
    @Test func inputsAndOutputsKeepOrderAndTypedAccessorsUseHuggingFaceKeys() {
        var inputs: ModuleInputs = ["input_ids": Tensor([1, 2] as [Int32]), "attention_mask": Tensor([1, 0] as [Int32])]
        inputs.tokenTypeIds = Tensor([0, 0] as [Int32])
        inputs.positionIds = Tensor([0, 1] as [Int32])
        #expect(inputs.keys == ["input_ids", "attention_mask", "token_type_ids", "position_ids"])
        inputs.attentionMask = Tensor([1, 1] as [Int32])          // replaced in place
        inputs["position_ids"] = nil                               // removed
        #expect(inputs.keys == ["input_ids", "attention_mask", "token_type_ids"])
        #expect(inputs.attentionMask!.scalars(as: Int32.self) == [1, 1])
        #expect(inputs.map(\.key) == inputs.keys && inputs.count == 3)

        var out = ModuleOutputs()
        out.logits = Tensor([1, 2] as [Float])
        out.loss = Tensor([0.5] as [Float])
        out["extra"] = Tensor([3] as [Float])
        #expect(out.keys == ["logits", "loss", "extra"])
        #expect(out.hiddenStates == nil && out.lastHiddenState == nil)
        let y = Tensor([4] as [Float])
        #expect(ModuleOutputs(y).single === y && ModuleOutputs(y).keys == [ModuleOutputs.singleKey])
        #expect(ModuleInputs(y).keys == ["input"] && ModuleOutputs.singleKey == "output")
    }

    @Test func twoInputModelReturnsLogitsHiddenStatesAndLossAndHonoursTheMask() {
        let model = PairClassifier(dropout: 0)
        let batch = pairBatch()
        let out = model(batch)
        #expect(out.keys == ["logits", "hidden_states", "loss"])
        #expect(out.logits!.shape == [2, 3] && out.hiddenStates!.shape == [2, 5, 8] && out.loss!.shape == [])
        #expect(out.loss!.item() == out.logits!.crossEntropy(targets: batch.labels!).item())

        // A token the mask hides changes hidden states but not the logits.
        var changed = batch
        let ids = batch.inputIds!.scalars(as: Int32.self)
        changed.inputIds = Tensor([ids[0], ids[1], ids[2], ids[3], (ids[4] + 1) % 11] + ids[5...], shape: [2, 5])
        let other = model(changed)
        #expect(other.logits!.scalars == out.logits!.scalars)
        #expect(other.hiddenStates!.scalars != out.hiddenStates!.scalars)
        var unlabeled = batch
        unlabeled.labels = nil
        #expect(model(unlabeled).loss == nil)
    }

    @Test func singleTensorModulesTakeOneNamedInputAndMultiInputModulesTakeOneTensor() {
        var rng = RandomStream(seed: 3)
        let fc = Linear(3, 2, rng: &rng)
        let x = Tensor.randn([4, 3], rng: &rng)
        let out = fc(["hidden_states": x])
        #expect(out.keys == ["output"])
        #expect(out.single.scalars == fc(x).scalars)
        // The single-tensor call of a module with only the multi-input forward returns its one output.
        #expect(Doubler()(x).scalars == (x * 2).scalars)
        #expect(Doubler()(ModuleInputs(x)).keys == ["doubled"])
        // GPT and friends are unchanged: the tensor call returns the tensor forward's result.
        let seq = Sequential(Linear(3, 5, rng: &rng), ReLU(), Linear(5, 2, rng: &rng))
        #expect(seq(ModuleInputs(x)).single.scalars == seq(x).scalars)
    }

    @Test func postHooksSeeAndMayReplaceTheOutputsOfBothCallForms() {
        var rng = RandomStream(seed: 4)
        let fc = Linear(2, 2, rng: &rng)
        final class Log { var keys: [[String]] = [] }
        let log = Log()
        fc.forwardPostHooks.append { _, outputs in
            log.keys.append(outputs.keys)
            return outputs.mapTensors { $0 * 0 }
        }
        let x = Tensor.ones([1, 2])
        #expect(fc(x).scalars == [0, 0])
        #expect(fc(["input": x]).single.scalars == [0, 0])
        #expect(log.keys == [["output"], ["output"]])

        let model = PairClassifier(dropout: 0)
        model.forwardPostHooks.append { _, outputs in log.keys.append(outputs.keys); return outputs }
        _ = model(pairBatch())
        #expect(log.keys.last == ["logits", "hidden_states", "loss"])
    }

    @Test func checkpointedNamedCallMatchesThePlainCallWithDropoutOverSeveralSteps() {
        let (plain, ckpt) = (PairClassifier(seed: 9), PairClassifier(seed: 9))
        for step in 0..<3 {
            let batch = pairBatch(salt: step)
            let a = plain(batch), b = ckpt.checkpointed(batch)
            #expect(b.keys == a.keys, "step \(step) keys")
            #expect(b.loss!.gradFnName == "checkpoint_output")
            #expect(b.loss!.item() == a.loss!.item(), "step \(step) loss")
            #expect(b.logits!.scalars == a.logits!.scalars, "step \(step) logits")
            // The loss and the hidden states both carry gradient: one recompute serves both.
            (a.loss! + a.hiddenStates!.square().mean()).backward()
            (b.loss! + b.hiddenStates!.square().mean()).backward()
            let (ga, gb) = (gradients(plain), gradients(ckpt))
            #expect(ga.keys.sorted() == gb.keys.sorted())
            for (name, g) in ga {
                #expect(!g.isEmpty && g == gb[name], "step \(step) \(name)")
            }
            plain.zeroGrad(); ckpt.zeroGrad()
            #expect(plain.drop.rng == ckpt.drop.rng, "step \(step) dropout stream")
        }
    }

    @Test func checkpointedNamedCallPassesIntegerInputsWithoutGradients() {
        let model = PairClassifier(dropout: 0)
        let batch = pairBatch()
        let out = model.checkpointed(batch, saveInputsOn: .cpu)
        out.loss!.backward()
        #expect(batch.inputIds!.grad == nil && batch.attentionMask!.grad == nil)
        #expect(model.words.weight.grad != nil && model.head.weight.grad != nil)
        // Under noGrad it is a plain call.
        let eval = noGrad { model.checkpointed(batch) }
        #expect(eval.loss!.gradFnName == nil && eval.loss!.item() == out.loss!.item())
    }

    @Test func moduleOverridingNeitherForwardStopsNamingItsType() async {
        let a = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Hollow()(Tensor.zeros([1]))
        }
        let b = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Hollow()(ModuleInputs(Tensor.zeros([1])))
        }
        for result in [a, b] {
            #expect(stopped(result, saying: "Hollow overrides neither forward(_: Tensor) nor forward(_: ModuleInputs)"))
        }
    }

    @Test func singleTensorModuleGivenSeveralInputsStopsNamingTheKeys() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = RandomStream(seed: 0)
            _ = Linear(1, 1, rng: &rng)(["a": Tensor.zeros([1, 1]), "b": Tensor.zeros([1, 1])])
        }
        #expect(stopped(result, saying: "Linear does not override forward(_: ModuleInputs), so it takes exactly one input; got 2: [\"a\", \"b\"]"))
    }
}
