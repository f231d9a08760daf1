// `swiftspeed generate --model DIR --prompt TEXT`: continue a prompt with a Hugging Face causal LM, one cached position
// per new token. Invariant: with --temperature 0 the output is the greedy continuation, the same on every run.

import ArgumentParser
import Foundation
import SwiftSpeed

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a Hugging Face causal LM folder (GPT-2, Llama, Mistral, Qwen2), using a key/value cache.")

    @Option(help: "A Hugging Face model folder (config.json, safetensors, tokenizer.json).") var model: String
    @Option(help: "The text to continue.") var prompt: String
    @Option(name: .customLong("max-new-tokens"), parsing: .unconditional, help: "Tokens to generate at most.") var maxNewTokens = 50
    @Option(parsing: .unconditional, help: "Sampling temperature; 0 is greedy.") var temperature = 1.0
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Sample from the K most likely tokens.") var topK: Int?
    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Sample from the smallest set with this much probability.") var topP: Double?
    @Option(parsing: .unconditional, help: "Seed for sampling.") var seed: UInt64 = 0

    func validate() throws {
        if maxNewTokens < 0 { throw ValidationError("--max-new-tokens must be >= 0 (got \(maxNewTokens))") }
        if !(temperature >= 0) { throw ValidationError("--temperature must be >= 0 (got \(temperature))") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be >= 1 (got \(topK))") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        if !PretrainedJob.isFolder(model) { throw ValidationError("--model \(model) is not a Hugging Face folder (no config.json)") }
    }

    func run() throws {
        let dir = URL(fileURLWithPath: model)
        let loaded = try AutoModel.fromPretrained(dir)
        guard let lm = loaded as? any CausalLanguageModel else {
            throw ValidationError("\(model) holds a \(type(of: loaded).architecture), not a causal LM (GPT-2, Llama, Mistral, Qwen2)")
        }
        let tokenizer = try Tokenizer(contentsOf: dir)
        let ids = tokenizer.encode(prompt, addSpecialTokens: true).ids.map { Int32($0) }
        guard !ids.isEmpty else { throw ValidationError("the prompt encodes to no tokens; give some text") }
        let config = (try? JSONSerialization.jsonObject(with: try PretrainedFolder(dir).configData)) as? [String: Any]
        let eos = (config?["eos_token_id"] as? Int).map { Int32($0) }
        let new = lm.generate(ids, maxNewTokens: maxNewTokens, temperature: temperature, topK: topK, topP: topP, seed: seed,
                              eosTokenID: eos)
        print(prompt + tokenizer.decode(new.map { Int($0) }, skipSpecialTokens: true))
    }
}
