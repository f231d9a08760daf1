// savePretrained: config.json and model.safetensors (or shards + index) that transformers' from_pretrained loads.
// Invariant: the files hold exactly stateDict()'s keys (HF names and layouts; tied weights are not stored), and
// every file goes through AtomicFile, so a crash leaves old or complete files, never a torn one.

import Foundation
import SpeedCore
import SpeedIO
import SpeedNN

extension PretrainedModel {
    /// Writes `dir/config.json` and `dir/model.safetensors` (metadata `{"format": "pt"}`); above
    /// `maxShardSize` bytes, `model-0000k-of-0000n.safetensors` shards and
    /// `model.safetensors.index.json` instead. Keys not known to this model in the config it was
    /// loaded from (e.g. `id2label`, token ids) are kept.
    ///
    /// ```swift
    /// try model.savePretrained(URL(fileURLWithPath: "out/tiny-gpt2"))
    /// // Python: GPT2LMHeadModel.from_pretrained("out/tiny-gpt2")
    /// ```
    /// - Throws: ``PretrainedError`` or `SafetensorsError` naming the file that failed; `TensorParallelError` for a
    ///   tensor-parallel sharded model (its state dict is one rank's shards: use
    ///   ``savePretrained(_:maxShardSize:tensorParallelWriter:)`` on every rank).
    public func savePretrained(_ dir: URL, maxShardSize: Int = 5_000_000_000) throws {
        if let comm = tensorParallelCommunicator(), comm.size > 1 {
            throw TensorParallelError("\(type(of: self)) is tensor-parallel sharded over \(comm.size) ranks, so its state dict holds this rank's shards only: call savePretrained(_:tensorParallelWriter:) on every rank of the group (it gathers the shards; the writer saves), or save a checkpoint and consolidate it with swiftspeed zero-to-fp32")
        }
        try writePretrained(dir, entries: stateDict(), maxShardSize: maxShardSize)
    }

    /// ``savePretrained(_:maxShardSize:)`` for a tensor-parallel sharded model: gathers the unsharded weights
    /// (``Module/tensorParallelGatheredStateDict()``, collective — every rank of the group calls it) and writes them
    /// where `tensorParallelWriter` is true (one rank); the folder is the unsharded model's.
    ///
    /// ```swift
    /// try model.savePretrained(URL(fileURLWithPath: "out"), tensorParallelWriter: comm.rank == 0)
    /// ```
    public func savePretrained(_ dir: URL, maxShardSize: Int = 5_000_000_000, tensorParallelWriter: Bool) throws {
        let whole = tensorParallelGatheredStateDict()
        guard tensorParallelWriter else { return }
        try writePretrained(dir, entries: whole, maxShardSize: maxShardSize)
    }

    private func writePretrained(_ dir: URL, entries unsorted: StateDict, maxShardSize: Int) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var config = try configJSON()
        // The dynamic type: a subclass (Qwen2ForCausalLM held as LlamaForCausalLM) still names itself.
        config["architectures"] = [type(of: self).architecture]
        config["model_type"] = type(of: self).modelType
        let configURL = dir.appendingPathComponent(PretrainedFolder.configName)
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(Array(json) + [UInt8(ascii: "\n")], to: configURL)

        let entries = unsorted.sorted { $0.key < $1.key }
        // Greedy shards in name order, like transformers' split_torch_state_dict_into_shards.
        var shards: [[(String, Tensor)]] = [[]]
        var size = 0
        for (name, t) in entries {
            if size + t.byteCount > maxShardSize && !shards[shards.count - 1].isEmpty { shards.append([]); size = 0 }
            shards[shards.count - 1].append((name, t))
            size += t.byteCount
        }
        let metadata = ["format": "pt"]
        let fm = FileManager.default
        // Remove weight files a previous save left, so the folder holds one consistent set.
        for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
        where name == PretrainedFolder.weightsName || name == PretrainedFolder.indexName
            || (name.hasPrefix("model-") && name.hasSuffix(".safetensors")) {
            try? fm.removeItem(at: dir.appendingPathComponent(name))
        }
        if shards.count == 1 {
            try Safetensors.write(Dictionary(uniqueKeysWithValues: shards[0]), metadata: metadata,
                                  to: dir.appendingPathComponent(PretrainedFolder.weightsName))
            return
        }
        var weightMap: [String: String] = [:]
        for (i, shard) in shards.enumerated() {
            let file = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            try Safetensors.write(Dictionary(uniqueKeysWithValues: shard), metadata: metadata,
                                  to: dir.appendingPathComponent(file))
            for (name, _) in shard { weightMap[name] = file }
        }
        let index: [String: Any] = ["metadata": ["total_size": entries.reduce(0) { $0 + $1.1.byteCount }],
                                    "weight_map": weightMap]
        let indexJSON = try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(Array(indexJSON) + [UInt8(ascii: "\n")],
                             to: dir.appendingPathComponent(PretrainedFolder.indexName))
    }
}

/// config.json as loaded (all keys), for saving it back with the typed fields overlaid.
func rawConfig(_ folder: PretrainedFolder?) -> [String: Any] {
    guard let data = folder?.configData else { return [:] }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
}

/// `value` encoded to a JSON object.
func jsonObject<T: Encodable>(_ value: T) throws -> [String: Any] {
    let data = try JSONEncoder().encode(value)
    return (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
}
