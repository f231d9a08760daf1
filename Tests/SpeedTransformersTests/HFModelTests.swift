// GPT-2 and BERT against Python transformers: logits and losses of tiny random models, all-MiniLM-L6-v2 embeddings.
// Invariant: fixtures come from scripts/make_hf_fixtures.py (transformers 5.25, torch 2.15, fp32, eager attention,
// eval mode); every comparison is at 1e-4 absolute on the CPU in fp32.
//
// savePretrained check (done locally with pip transformers 5.25.0): folders written by savePretrained in
// `savedFolderRoundTripsAndTransformersLoadsIt` were loaded with `scripts/make_hf_fixtures.py --check DIR`
// (GPT2LMHeadModel, BertForSequenceClassification, BertForMaskedLM, LlamaForCausalLM, Qwen2ForCausalLM,
// MistralForCausalLM): no missing, unexpected or mismatched keys.

import Foundation
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedTestSupport
import Testing
@testable import SpeedTransformers

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// expected.json: inputs and outputs as nested arrays.
struct Expected {
    let inputs: [String: Any]
    let outputs: [String: Any]

    init(_ name: String) throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent(name).appendingPathComponent("expected.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        inputs = try #require(object["inputs"] as? [String: Any])
        outputs = try #require(object["outputs"] as? [String: Any])
    }

    /// An integer input as an int64 tensor.
    func ints(_ key: String) throws -> Tensor { try Self.tensor(inputs[key], integer: true) }
    func floats(_ key: String) throws -> Tensor { try Self.tensor(inputs[key], integer: false) }
    func output(_ key: String) throws -> [Double] { Self.flatten(try #require(outputs[key])) }

    static func flatten(_ value: Any) -> [Double] {
        if let a = value as? [Any] { return a.flatMap { flatten($0) } }
        return [(value as? NSNumber)?.doubleValue ?? .nan]
    }

    static func shape(_ value: Any) -> [Int] {
        guard let a = value as? [Any] else { return [] }
        return [a.count] + (a.first.map { shape($0) } ?? [])
    }

    static func tensor(_ value: Any?, integer: Bool) throws -> Tensor {
        let value = try #require(value)
        let flat = flatten(value), shape = shape(value)
        return integer ? Tensor(flat.map { Int($0) }, shape: shape) : Tensor(flat.map { Float($0) }, shape: shape)
    }
}

func maxAbsDiff(_ a: Tensor, _ b: [Double]) -> Double {
    let x = a.scalars(as: Double.self)
    precondition(x.count == b.count, "\(x.count) values vs \(b.count) expected")
    return zip(x, b).map { Swift.abs($0 - $1) }.max() ?? 0
}

@Suite struct HFModelTests {
    @Test func gpt2LogitsAndLossMatchTransformers() throws {
        let e = try Expected("tiny-gpt2")
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent("tiny-gpt2"))
        #expect(model is GPT2LMHeadModel)
        #expect(model.namedParameters().map(\.0).contains("transformer.h.0.attn.c_attn.weight"))
        let out = model(["input_ids": try e.ints("input_ids"), "labels": try e.ints("labels")])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("tiny-gpt2: logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
        let masked = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask")])
        let maskedDiff = maxAbsDiff(masked.logits!, try e.output("masked_logits"))
        print("tiny-gpt2 with padding mask: logits max |Δ| = \(maskedDiff)")
        #expect(maskedDiff < 1e-4)
    }

    @Test func gpt2ConfigSwitchesMatchTransformers() throws {
        // ReLU, n_inner 48, scale_attn_by_inverse_layer_idx (block i's scores ÷ (i + 1)), epsilon 1e-3, padding.
        let e = try Expected("tiny-gpt2-variant")
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent("tiny-gpt2-variant"))
        let config = try #require((model as? GPT2LMHeadModel)?.config)
        #expect(config.scaleAttnByInverseLayerIdx && config.nInner == 48 && config.activationFunction == "relu")
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "labels": try e.ints("labels")])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("tiny-gpt2-variant: logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
    }

    @Test func everyActivationNameMatchesTransformersACT2FN() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("activations.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let x = Expected.flatten(try #require(object["x"])).map { Float($0) }
        let ys = try #require(object["y"] as? [String: Any])
        #expect(Set(ys.keys) == Set(Activation.allCases.map(\.rawValue)))
        for (name, y) in ys {
            let act = try Activation.parse(name, key: "hidden_act", path: "config.json")
            let diff = maxAbsDiff(act(Tensor(x, shape: [x.count])), Expected.flatten(y))
            #expect(diff < 1e-5, "\(name): max |Δ| = \(diff)")
        }
        #expect { try Activation.parse("mish", key: "hidden_act", path: "config.json") } throws: {
            "\($0)".contains("hidden_act") && "\($0)".contains("mish") && "\($0)".contains("quick_gelu")
        }
    }

    @Test(arguments: ["tiny-bert-cls", "tiny-bert-reg", "tiny-bert-mlm"])
    func bertLogitsAndLossMatchTransformers(name: String) throws {
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        let labels = name == "tiny-bert-reg" ? try e.floats("labels") : try e.ints("labels")
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "token_type_ids": try e.ints("token_type_ids"), "labels": labels])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("\(name): logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
    }

    @Test func llamaLogitsAndLossMatchTransformers() throws {
        let e = try Expected("tiny-llama")
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent("tiny-llama"))
        #expect(model is LlamaForCausalLM)
        let names = model.namedParameters().map(\.0)
        #expect(names.contains("model.layers.1.self_attn.k_proj.weight"))
        #expect(names.contains("lm_head.weight"))
        let out = model(["input_ids": try e.ints("input_ids"), "labels": try e.ints("labels")])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("tiny-llama: logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
        let masked = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                            "labels": try e.ints("labels")])
        let maskedDiff = maxAbsDiff(masked.logits!, try e.output("masked_logits"))
        let maskedLossDiff = maxAbsDiff(masked.loss!, try e.output("masked_loss"))
        print("tiny-llama with padding mask: logits max |Δ| = \(maskedDiff), loss |Δ| = \(maskedLossDiff)")
        #expect(maskedDiff < 1e-4)
        #expect(maskedLossDiff < 1e-4)
    }

    @Test(arguments: ["tiny-llama-llama3", "tiny-llama-linear", "tiny-qwen2", "tiny-mistral", "tiny-llama-gelu",
                      "tiny-llama-dynamic", "tiny-llama-yarn", "tiny-qwen2-yarn", "tiny-llama-longrope"])
    func llamaVariantsMatchTransformers(name: String) throws {
        // llama3 / linear / dynamic / yarn / longrope rope scaling, tied embeddings, attention biases, Qwen2; offset
        // position_ids (past the dynamic and longrope contexts) and padding.
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        #expect(model is LlamaForCausalLM)
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "position_ids": try e.ints("position_ids"), "labels": try e.ints("labels")])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("\(name): logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
    }

    @Test(arguments: ["tiny-llama-dynamic", "tiny-llama-longrope"])
    func sequenceDependentRopeMatchesTransformersWithinTheContext(name: String) throws {
        // positions 0..<8, inside the context: dynamic is the plain rope there, longrope uses its short factors.
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask")])
        let diff = maxAbsDiff(out.logits!, try e.output("short_logits"))
        let long = maxAbsDiff(out.logits!, try e.output("logits"))
        print("\(name) within the context: logits max |Δ| = \(diff) (vs the long-context logits \(long))")
        #expect(diff < 1e-4)
        #expect(long > 1e-2)
    }

    @Test func ropeParametersDecodeAsTransformersReadsThem() throws {
        // A top-level original_max_position_embeddings (Phi-3's layout) wins; yarn's attention factor from mscale;
        // unknown types and partial rotation are refused by name.
        func config(_ json: String) throws -> LlamaConfig {
            try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8))
        }
        let yarn = try config(#"""
            {"hidden_size": 16, "num_attention_heads": 2, "max_position_embeddings": 64, "original_max_position_embeddings": 16,
             "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32, "mscale": 1.0,
                              "mscale_all_dim": 0.5}}
            """#)
        #expect(yarn.ropeScaling?.originalMaxPositionEmbeddings == 16)
        let (_, scale) = yarn.rotaryParameters(seqLen: 8)
        #expect(Swift.abs(scale - (0.1 * Foundation.log(4.0) + 1) / (0.05 * Foundation.log(4.0) + 1)) < 1e-12)
        let defaults = try config(#"{"hidden_size": 16, "num_attention_heads": 2, "max_position_embeddings": 64,"#
                                  + #" "rope_parameters": {"rope_type": "llama3", "factor": 8.0, "rope_theta": 500000.0}}"#)
        #expect(defaults.originalContext == 64)   // transformers 5's default
        #expect(defaults.ropeTheta == 500000)
        for (json, key) in [(#"{"rope_type": "su", "factor": 2.0}"#, "rope_parameters.rope_type"),
                            (#"{"rope_type": "default", "partial_rotary_factor": 0.5}"#, "rope_parameters.partial_rotary_factor"),
                            (#"{"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0, 2.0, 3.0, 4.0]}"#,
                             "rope_parameters.short_factor"),
                            (#"{"rope_type": "dynamic"}"#, "rope_parameters.factor")] {
            let c = try config(#"{"hidden_size": 16, "num_attention_heads": 2, "rope_parameters": "# + json + "}")
            do {
                try c.validate(path: "config.json")
                Issue.record("\(json) was accepted")
            } catch let error as PretrainedError {
                #expect("\(error)".contains(key), "\(error)")
            }
        }
    }

    @Test func mistralSlidingWindowShorterThanTheSequenceMatchesTransformers() throws {
        // sliding_window 3 over 10 tokens (eager transformers honours it), grouped K/V heads, a right-padded row.
        let e = try Expected("tiny-mistral-window")
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent("tiny-mistral-window"))
        let mistral = try #require(model as? MistralForCausalLM)
        #expect(mistral.config.slidingWindow == 3 && mistral.config.window(layer: 1) == 3)
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "labels": try e.ints("labels")])
        // Query (1, 9) sees only padding in its window: SwiftSpeed (like sdpa) gives it zero attention, eager spreads
        // it over every key; every other position matches both, and the loss (which skips it) matches.
        let eager = try e.output("logits"), vocab = 100, skipped = (1 * 10 + 9) * vocab
        let values = out.logits!.scalars(as: Double.self)
        let keptDiff = zip(values, eager).enumerated().filter { !(skipped..<(skipped + vocab)).contains($0.offset) }
            .map { Swift.abs($0.element.0 - $0.element.1) }.max()!
        let sdpaDiff = maxAbsDiff(out.logits!, try e.output("sdpa_logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        let ids = try e.ints("input_ids")
        let unpadded = model(["input_ids": ids.slice(axis: 0, 0..<1)]).logits!
        let unpaddedDiff = maxAbsDiff(unpadded, try e.output("unpadded_logits"))
        print("tiny-mistral-window: logits max |Δ| = \(keptDiff) (eager, rows seeing a token), \(sdpaDiff) (sdpa), "
              + "loss |Δ| = \(lossDiff), no mask \(unpaddedDiff)")
        #expect(keptDiff < 1e-4 && sdpaDiff < 1e-4 && lossDiff < 1e-4 && unpaddedDiff < 1e-4)
    }

    @Test func bertPaddedBatchMatchesTransformersAtEveryPosition() throws {
        // Lengths 8, 5 and 2 in one batch: the fused key-padding attention, padded positions included.
        let e = try Expected("tiny-bert-padded")
        let model = try BertModel.fromPretrained(fixtures.appendingPathComponent("tiny-bert-padded"))
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask")])
        let hiddenDiff = maxAbsDiff(out.lastHiddenState!, try e.output("last_hidden_state"))
        let poolerDiff = maxAbsDiff(out["pooler_output"]!, try e.output("pooler_output"))
        print("tiny-bert-padded: last_hidden_state max |Δ| = \(hiddenDiff), pooler |Δ| = \(poolerDiff)")
        #expect(hiddenDiff < 1e-4 && poolerDiff < 1e-4)
    }

    @Test func composedDropoutPathMatchesTheFusedKernels() throws {
        // Training with attention dropout takes the composed path (explicit mask, K/V repeated); at p = 1e-9 nothing
        // is dropped, so it must give the fused kernels' logits: GQA, a window of 3 and right padding.
        let config = LlamaConfig(vocabSize: 50, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2,
                                 numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 32,
                                 attentionDropout: 1e-9, slidingWindow: 3)
        let llama = try LlamaForCausalLM(config, seed: 3)
        let ids = Tensor((0..<16).map { ($0 * 7 + 3) % 50 }, shape: [2, 8])
        let mask = Tensor((0..<16).map { $0 >= 14 ? 0 : 1 }, shape: [2, 8])
        llama.eval()
        let fused = llama(["input_ids": ids, "attention_mask": mask]).logits!
        llama.train()
        let composed = llama(["input_ids": ids, "attention_mask": mask]).logits!
        #expect(maxAbsDiff(composed, fused.scalars(as: Double.self)) < 1e-5)
        var bertConfig = BertConfig(vocabSize: 50, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                                    intermediateSize: 64, hiddenDropoutProb: 0, attentionProbsDropoutProb: 1e-9)
        bertConfig.maxPositionEmbeddings = 16
        let bert = try BertModel(bertConfig, seed: 4)
        let bertMask = Tensor((0..<16).map { $0 >= 11 ? 0 : 1 }, shape: [2, 8])
        bert.eval()
        let bertFused = bert(["input_ids": ids, "attention_mask": bertMask]).lastHiddenState!
        bert.train()
        let bertComposed = bert(["input_ids": ids, "attention_mask": bertMask]).lastHiddenState!
        #expect(maxAbsDiff(bertComposed, bertFused.scalars(as: Double.self)) < 1e-5)
    }

    @Test func qwen2SlidingWindowLayersFollowMaxWindowLayers() throws {
        let json = #"{"num_hidden_layers": 3, "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 2}"#
        let config = try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8))
        #expect((0..<3).map { config.window(layer: $0) } == [nil, nil, 8])
        let typed = #"{"num_hidden_layers": 2, "sliding_window": 4, "layer_types": ["sliding_attention", "full_attention"]}"#
        let mistral = try JSONDecoder().decode(LlamaConfig.self, from: Data(typed.utf8))
        #expect((0..<2).map { mistral.window(layer: $0) } == [4, nil])
        let off = #"{"use_sliding_window": false, "sliding_window": 8}"#
        #expect(try JSONDecoder().decode(LlamaConfig.self, from: Data(off.utf8)).window(layer: 0) == nil)
    }

    @Test func llamaRunsInBFloat16() throws {
        // RMSNorm normalises in fp32 and casts back; rotary tables follow the activations' dtype.
        let e = try Expected("tiny-llama")
        let model = try LlamaForCausalLM.fromPretrained(fixtures.appendingPathComponent("tiny-llama"), dtype: .bfloat16)
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "labels": try e.ints("labels")])
        #expect(out.logits!.dtype == .bfloat16)
        let diff = maxAbsDiff(out.logits!.cast(to: .float32), try e.output("masked_logits"))
        print("tiny-llama bf16: logits max |Δ| vs fp32 transformers = \(diff)")
        #expect(diff < 5e-2)
    }

    @Test func llamaConfigVariantsDecode() throws {
        // transformers 4.x layout: top-level rope_theta and rope_scaling; Qwen2's biases come from model_type.
        let json = #"""
            {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 50, "hidden_size": 16,
                      "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 1,
                      "rope_theta": 500000.0, "rope_scaling": {"type": "linear", "factor": 2.0},
                      "tie_word_embeddings": true, "sliding_window": 8, "use_sliding_window": false}
            """#
        let tmp = IOTestDirectory(); let dir = tmp.url
        try Data(json.utf8).write(to: dir.appendingPathComponent("config.json"))
        let model = try Qwen2ForCausalLM(folder: PretrainedFolder(dir), dtype: .float32, device: .cpu)
        #expect(model.config.ropeTheta == 500000)
        #expect(model.config.ropeScaling?.ropeType == "linear")
        #expect(model.config.slidingWindow == nil)
        #expect(model.lmHead == nil)
        let names = Set(model.namedParameters().map(\.0))
        #expect(names.contains("model.layers.0.self_attn.q_proj.bias"))
        #expect(!names.contains("model.layers.0.self_attn.o_proj.bias"))
        let inv = model.config.rotaryParameters(seqLen: 4).inverseFrequencies
        #expect(Swift.abs(inv[0] - 0.5) < 1e-12)
        let out = model(["input_ids": Tensor([3, 4, 5, 6], shape: [1, 4]), "labels": Tensor([3, 4, 5, 6], shape: [1, 4])])
        #expect(out.logits!.shape == [1, 4, 50])
        #expect(out.loss!.scalars(as: Double.self)[0].isFinite)
        let saved = tmp.file("saved-qwen2")
        try model.savePretrained(saved)
        let again = try AutoModel.fromPretrained(saved)
        #expect(again is Qwen2ForCausalLM)
        var expected = model.config
        expected.headDim = 4   // written explicitly, as transformers 5 does
        #expect((again as! Qwen2ForCausalLM).config == expected)
        // Saved through the base class's static type, the file still names Qwen2.
        let upcast: LlamaForCausalLM = model
        let viaBase = tmp.file("saved-qwen2-base")
        try upcast.savePretrained(viaBase)
        #expect(try AutoModel.fromPretrained(viaBase) is Qwen2ForCausalLM)
    }

    @Test(arguments: ["tiny-gpt2", "tiny-bert-cls", "tiny-bert-mlm", "tiny-llama", "tiny-llama-llama3", "tiny-qwen2",
                      "tiny-roberta-cls", "tiny-roberta-mlm", "tiny-distilbert-cls", "tiny-distilbert-mlm",
                      "tiny-gpt2-cls", "tiny-qwen2-cls"])
    func lossBackpropagatesToEveryParameter(name: String) throws {
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        var inputs: ModuleInputs = ["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                                    "labels": try e.ints("labels")]
        if e.inputs["token_type_ids"] != nil { inputs.tokenTypeIds = try e.ints("token_type_ids") }
        model.train()
        model(inputs).loss!.backward()
        let without = model.namedParameters().filter { $0.1.grad == nil }.map(\.0)
        // Token-type rows and positions past the inputs get zero (not nil) gradients; every parameter is reached.
        #expect(without.isEmpty, "no gradient: \(without)")
    }

    @Test func strictLoadingListsEveryBadKey() throws {
        // A classifier folder loaded as a masked LM: the head keys on both sides are wrong, and all are named.
        let folder = try PretrainedFolder(fixtures.appendingPathComponent("tiny-bert-cls"))
        let model = try BertForMaskedLM(folder: folder, dtype: .float32, device: .cpu)
        #expect(throws: PretrainedError.self) { try model.loadWeights(from: folder) }
        do { try model.loadWeights(from: folder) } catch let error as PretrainedError {
            guard case let .weightsMismatch(_, missing, unexpected, _) = error else { Issue.record("\(error)"); return }
            #expect(missing.contains("cls.predictions.bias"))
            #expect(unexpected.contains("classifier.weight"))
            #expect("\(error)".contains("strict: false"))
        }
        let report = try model.loadWeights(from: folder, strict: false)
        #expect(report.missing.contains("cls.predictions.transform.dense.weight"))
        #expect(report.unexpected == ["classifier.bias", "classifier.weight"])
    }

    @Test(arguments: ["tiny-roberta-cls", "tiny-roberta-mlm"])
    func robertaLogitsAndLossMatchTransformers(name: String) throws {
        // A right- and a left-padded row (pad 1): RoBERTa's positions count only the real tokens, from 2.
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        #expect(model is RobertaForSequenceClassification || model is RobertaForMaskedLM)
        #expect(model.namedParameters().map(\.0).contains("roberta.embeddings.position_embeddings.weight"))
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "labels": try e.ints("labels")])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("\(name): logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
        // BERT's positions (0, 1, 2, …) give other logits: the fixture tells them apart.
        let plain = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                           "position_ids": Tensor((0..<16).map { $0 % 8 }, shape: [2, 8])])
        #expect(maxAbsDiff(plain.logits!, try e.output("logits")) > 1e-2)
    }

    @Test(arguments: ["tiny-distilbert-cls", "tiny-distilbert-mlm"])
    func distilBertLogitsAndLossMatchTransformers(name: String) throws {
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        #expect(model is DistilBertForSequenceClassification || model is DistilBertForMaskedLM)
        #expect(model.namedParameters().map(\.0).contains("distilbert.transformer.layer.1.attention.q_lin.weight"))
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "labels": try e.ints("labels")])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("\(name): logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
    }

    @Test func aDistilBertMaskedLMFolderLoadsAsAClassifierWithANewHead() throws {
        let (model, _, fresh) = try AutoModelForSequenceClassification.fromPretrained(
            fixtures.appendingPathComponent("tiny-distilbert-mlm"), numLabels: 4)
        let cls = try #require(model as? DistilBertForSequenceClassification)
        #expect(Set(fresh) == ["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"])
        #expect(cls.classifier.weight.shape == [4, 32])
        #expect(throws: PretrainedError.self) {   // the classifier folder's own head has 3 labels
            try AutoModelForSequenceClassification.fromPretrained(fixtures.appendingPathComponent("tiny-distilbert-cls"), numLabels: 4)
        }
    }

    @Test(arguments: ["tiny-gpt2-cls", "tiny-llama-reward", "tiny-qwen2-cls"])
    func decoderClassifiersPoolTheLastRealTokenAsTransformers(name: String) throws {
        // A right- and a left-padded row: the score is read at each row's rightmost non-padding token.
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        #expect(model is GPT2ForSequenceClassification || model is LlamaForSequenceClassification)
        let labels = name == "tiny-llama-reward" ? try e.floats("labels") : try e.ints("labels")
        let out = model(["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask"),
                         "labels": labels])
        let logitDiff = maxAbsDiff(out.logits!, try e.output("logits"))
        let lossDiff = maxAbsDiff(out.loss!, try e.output("loss"))
        print("\(name): logits max |Δ| = \(logitDiff), loss |Δ| = \(lossDiff)")
        #expect(logitDiff < 1e-4)
        #expect(lossDiff < 1e-4)
        // AutoModelForSequenceClassification from the causal LM's folder layout: the body loads, `score` is new.
        let tmp = IOTestDirectory(); let dir = tmp.file("\(name)-body")
        try model.savePretrained(dir)
        let (again, _, fresh) = try AutoModelForSequenceClassification.fromPretrained(dir)
        #expect(fresh.isEmpty && type(of: again) == type(of: model))
    }

    @Test func classifiersNameBadLabelsAndUnbatchableHeads() throws {
        let qwen = try #require(try AutoModel.fromPretrained(fixtures.appendingPathComponent("tiny-qwen2-cls")) as? any SequenceClassifier)
        #expect(qwen.labelProblem([0, 1, 1]) == nil)
        #expect(qwen.labelProblem([0, 2])?.contains("num_labels 2") == true)
        #expect(qwen.labelProblem([0.5])?.contains("label 0.5") == true)
        #expect(qwen.batchRefusal == nil)
        let reward = try #require(try AutoModel.fromPretrained(fixtures.appendingPathComponent("tiny-llama-reward")) as? any SequenceClassifier)
        #expect(reward.numLabels == 1 && reward.labelProblem([3.7, -2]) == nil)   // regression: any value
        let noPad = try GPT2ForSequenceClassification(GPT2Config(vocabSize: 10, nPositions: 8, nEmbd: 8, nLayer: 1, nHead: 2),
                                                      head: SequenceClassificationConfig(numLabels: 2))
        #expect(noPad.batchRefusal?.contains("pad_token_id") == true)
        // One row needs no padding token: the last position is pooled.
        #expect(noPad(["input_ids": Tensor([1, 2, 3] as [Int], shape: [1, 3])]).logits!.shape == [1, 2])
    }

    @Test func aCausalLMFolderLoadsAsARewardModelWithANewScore() throws {
        let (model, _, fresh) = try AutoModelForSequenceClassification.fromPretrained(
            fixtures.appendingPathComponent("tiny-llama"), numLabels: 1)
        let reward = try #require(model as? LlamaForSequenceClassification)
        #expect(fresh == ["score.weight"] && reward.score.weight.shape == [1, reward.config.hiddenSize])
        #expect(!(model is Qwen2ForSequenceClassification))
        let (qwen, _, _) = try AutoModelForSequenceClassification.fromPretrained(fixtures.appendingPathComponent("tiny-qwen2"),
                                                                                  numLabels: 2)
        #expect(qwen is Qwen2ForSequenceClassification)
    }

    @Test func robertaPositionsCountTheRealTokens() {
        let rows = Tensor([0, 15, 2, 1, 1, 1, 0, 7] as [Int], shape: [2, 4])
        #expect(BertEmbeddings.robertaPositions(rows, padding: 1).scalars(as: Int.self) == [2, 3, 4, 1, 1, 1, 2, 3])
    }

    @Test func aRobertaMaskedLMFolderLoadsAsAClassifierWithANewHead() throws {
        // AutoModelForSequenceClassification on a RobertaForMaskedLM folder: the encoder loads, the head is new.
        let (model, _, fresh) = try AutoModelForSequenceClassification.fromPretrained(
            fixtures.appendingPathComponent("tiny-roberta-mlm"), numLabels: 2)
        let cls = try #require(model as? RobertaForSequenceClassification)
        #expect(Set(fresh) == ["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight"])
        let mlm = try RobertaForMaskedLM.fromPretrained(fixtures.appendingPathComponent("tiny-roberta-mlm"))
        #expect(cls.roberta.embeddings.wordEmbeddings.weight.scalars == mlm.roberta.embeddings.wordEmbeddings.weight.scalars)
        #expect(cls.config.padTokenId == 1 && cls.config.robertaPositions)
    }

    @Test func bareBertFolderLoadsIntoATaskModelWithThePrefix() throws {
        // Save the classifier's encoder as a bare BertModel (no `bert.` prefix), load it back into a classifier.
        let cls = try BertForSequenceClassification.fromPretrained(fixtures.appendingPathComponent("tiny-bert-cls"))
        let tmp = IOTestDirectory(); let dir = tmp.file("bare-bert")
        try cls.bert.savePretrained(dir)
        let header = try Safetensors.header(dir.appendingPathComponent("model.safetensors"))
        #expect(header["embeddings.word_embeddings.weight"] != nil)
        let (loaded, report) = try BertForSequenceClassification.load(dir, strict: false)
        #expect(report.missing == ["classifier.bias", "classifier.weight"])
        #expect(report.unexpected.isEmpty)
        #expect(loaded.bert.embeddings.wordEmbeddings.weight.scalars == cls.bert.embeddings.wordEmbeddings.weight.scalars)
    }

    @Test(arguments: ["tiny-gpt2", "tiny-bert-cls", "tiny-bert-mlm", "tiny-llama", "tiny-llama-llama3", "tiny-qwen2",
                      "tiny-mistral", "tiny-roberta-cls", "tiny-roberta-mlm", "tiny-distilbert-cls", "tiny-distilbert-mlm",
                      "tiny-gpt2-cls", "tiny-llama-reward", "tiny-qwen2-cls"])
    func savedFolderRoundTripsAndTransformersLoadsIt(name: String) throws {
        let e = try Expected(name)
        let model = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name))
        var inputs: ModuleInputs = ["input_ids": try e.ints("input_ids"), "attention_mask": try e.ints("attention_mask")]
        if e.inputs["token_type_ids"] != nil { inputs.tokenTypeIds = try e.ints("token_type_ids") }
        let before = model(inputs).logits!.scalars(as: Double.self)
        for shard in [5_000_000_000, 20_000] {
            let tmp = IOTestDirectory(); let dir = tmp.file("save-\(name)-\(shard)")
            try model.savePretrained(dir, maxShardSize: shard)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            if shard == 20_000 {
                #expect(files.contains("model.safetensors.index.json"))
                #expect(files.contains { $0.hasPrefix("model-00001-of-") })
            } else {
                #expect(files == ["config.json", "model.safetensors"])
                let (_, metadata) = try Safetensors.read(dir.appendingPathComponent("model.safetensors"))
                #expect(metadata == ["format": "pt"])
            }
            if let keep = ProcessInfo.processInfo.environment["SWIFTSPEED_KEEP_SAVED"] {
                try? FileManager.default.copyItem(at: dir, to: URL(fileURLWithPath: keep).appendingPathComponent("\(name)-\(shard)"))
            }
            let again = try AutoModel.fromPretrained(dir)
            #expect(type(of: again) == type(of: model))
            let after = again(inputs).logits!.scalars(as: Double.self)
            #expect(before == after)
        }
    }

    @Test func halfPrecisionFilesConvertToTheTrainingDType() throws {
        let model = try GPT2LMHeadModel.fromPretrained(fixtures.appendingPathComponent("tiny-gpt2"))
        let tmp = IOTestDirectory(); let dir = tmp.file("bf16-gpt2")
        let half = try GPT2LMHeadModel(model.config, dtype: .bfloat16)
        try half.load(stateDict: model.stateDict())
        try half.savePretrained(dir)
        #expect(try Safetensors.header(dir.appendingPathComponent("model.safetensors"))["transformer.wte.weight"]?.dtype == .bf16)
        let back = try GPT2LMHeadModel.fromPretrained(dir, dtype: .float32)
        #expect(back.transformer.wte.weight.dtype == .float32)
        let diff = zip(back.transformer.wte.weight.scalars, model.transformer.wte.weight.scalars).map { Swift.abs($0 - $1) }.max()!
        #expect(diff < 1e-2)
    }

    @Test func unknownArchitectureNamesTheRegistry() throws {
        let tmp = IOTestDirectory(); let dir = tmp.url
        try Data(#"{"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}"#.utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        #expect { try AutoModel.fromPretrained(dir) } throws: { error in
            "\(error)".contains("T5ForConditionalGeneration") && "\(error)".contains("GPT2LMHeadModel")
        }
        var registry = ModelRegistry()
        registry.register(GPT2LMHeadModel.self)
        #expect(registry.type(architectures: [], modelType: "gpt2") == GPT2LMHeadModel.self)
    }
}

/// all-MiniLM-L6-v2 as scripts/setup.sh installs it.
let miniLM = URL(fileURLWithPath: ProcessInfo.processInfo.environment["SWIFTSPEED_MINILM"]
                 ?? (ProcessInfo.processInfo.environment["SWIFTSPEED_MODELS"] ?? "/opt/swiftspeed/models") + "/all-MiniLM-L6-v2")
let miniLMPresent = FileManager.default.fileExists(atPath: miniLM.appendingPathComponent("model.safetensors").path)

@Suite struct MiniLMTests {
    @Test(.enabled(if: Requirements.run(if: miniLMPresent),
                   "needs all-MiniLM-L6-v2 at /opt/swiftspeed/models/all-MiniLM-L6-v2: scripts/setup.sh installs it"))
    func meanPooledEmbeddingsMatchSentenceTransformers() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("all-MiniLM-L6-v2-expected.json"))
        let e = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try BertModel.fromPretrained(miniLM)
        let ids = try Expected.tensor(e["input_ids"], integer: true)
        let mask = try Expected.tensor(e["attention_mask"], integer: true)
        let types = try Expected.tensor(e["token_type_ids"], integer: true)
        let hidden = model(["input_ids": ids, "attention_mask": mask, "token_type_ids": types]).lastHiddenState!
        let m = mask.cast(to: .float32).reshape([mask.shape[0], mask.shape[1], 1])
        let pooled = (hidden * m).sum(axis: 1) / m.sum(axis: 1)
        let diff = maxAbsDiff(pooled, Expected.flatten(try #require(e["mean_pooled"])))
        print("all-MiniLM-L6-v2: mean-pooled embeddings max |Δ| = \(diff)")
        #expect(diff < 1e-4)
    }
}
