// GPT-2 and Llama-family generation: cached logits equal a full forward's (a sliding window shorter than the sequence
// included), greedy decoding with the cache gives the tokens of re-running the whole sequence, and sampling follows
// temperature / top-k / top-p deterministically by seed.
import Foundation
import SpeedCore
@testable import SpeedTransformers
import Testing

@Suite struct GenerateTests {
    func model() throws -> GPT2LMHeadModel {
        try GPT2LMHeadModel.fromPretrained(fixtures.appendingPathComponent("tiny-gpt2"))
    }

    @Test func cachedLogitsEqualTheFullForwardAtEveryPosition() throws {
        let m = try model()
        m.eval()
        let ids: [Int32] = [5, 17, 3, 88, 41, 9]
        let full = m(["input_ids": Tensor(ids, shape: [1, 6]).cast(to: .int64)]).logits!.scalars
        let cache = KVCache(layers: m.config.nLayer)
        var pieces = m.logits(Tensor(Array(ids[0..<3]), shape: [1, 3]).cast(to: .int64), cache: cache).scalars   // a chunk…
        for id in ids[3...] { pieces += m.logits(Tensor([id], shape: [1, 1]).cast(to: .int64), cache: cache).scalars }   // …then one at a time
        let diff = zip(full, pieces).map { abs($0 - $1) }.max()!
        #expect(pieces.count == full.count && diff < 1e-5, "max |Δ| \(diff)")
    }

    @Test(arguments: ["tiny-llama", "tiny-qwen2", "tiny-mistral", "tiny-mistral-window"])
    func llamaCachedLogitsEqualTheFullForward(name: String) throws {
        let m = try AutoModel.fromPretrained(fixtures.appendingPathComponent(name)) as! LlamaForCausalLM
        m.eval()
        let ids: [Int32] = [5, 17, 3, 88, 41, 9]
        let full = m(["input_ids": Tensor(ids, shape: [1, 6]).cast(to: .int64)]).logits!.scalars
        let cache = KVCache(layers: m.layerCount)
        var pieces = m.logits(Tensor(Array(ids[0..<2]), shape: [1, 2]).cast(to: .int64), cache: cache).scalars
        for id in ids[2...] { pieces += m.logits(Tensor([id], shape: [1, 1]).cast(to: .int64), cache: cache).scalars }
        let diff = zip(full, pieces).map { abs($0 - $1) }.max()!
        #expect(pieces.count == full.count && diff < 1e-5, "\(name): max |Δ| \(diff)")
    }

    @Test func greedyWithTheCacheEqualsRecomputingEachStep() throws {
        let m = try model()
        let prompt: [Int32] = [1, 2, 3]
        let cached = m.generate(prompt, maxNewTokens: 8, temperature: 0)
        var sequence = prompt
        for _ in 0..<8 {
            let logits = m(["input_ids": Tensor(sequence, shape: [1, sequence.count]).cast(to: .int64)]).logits!
            let last = logits[0][sequence.count - 1].scalars
            sequence.append(Int32(last.indices.max { last[$0] < last[$1] }!))
        }
        #expect(cached == Array(sequence[3...]))
    }

    @Test func samplingIsSeededAndRespectsTopK() throws {
        let m = try model()
        let a = m.generate([4, 5], maxNewTokens: 6, temperature: 0.8, topK: 5, topP: 0.9, seed: 7)
        let b = m.generate([4, 5], maxNewTokens: 6, temperature: 0.8, topK: 5, topP: 0.9, seed: 7)
        #expect(a == b && a.count == 6)
        var rng = RandomStream(seed: 1)
        let logits: [Float] = [0, 5, 1, 4, 2]
        for _ in 0..<50 {
            let pick = CausalLanguageModelSampling.sample(logits, temperature: 1, topK: 2, topP: nil, rng: &rng)
            #expect(pick == 1 || pick == 3)
        }
        #expect(CausalLanguageModelSampling.sample(logits, temperature: 1, topK: nil, topP: 0.01, rng: &rng) == 1)
    }
}
