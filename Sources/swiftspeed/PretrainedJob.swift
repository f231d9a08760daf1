// `swiftspeed train --model DIR`: a Hugging Face folder fine-tuned on JSONL rows, batches padded as HF's collators do.
// Invariant: global sample j is row order[j mod N] of epoch j / N (file order with --no-shuffle, else a seeded
// permutation per epoch), so micro-batches are a pure function of (seed, step, micro-step, rank) and resume exactly.

import Foundation
import SwiftSpeed

/// A pretrained model with its JSONL data.
struct PretrainedJob {
    enum Task { case causalLM, sequenceClassification }

    /// One JSONL row: token ids and, for classification, a label.
    struct Row { var ids: [Int32]; var label: Double? }

    /// The loaded model; nil on the pipeline path (`loadModel: false`), whose stages build only their own layers.
    let model: (any PretrainedModel)?
    let folder: URL
    let task: Task
    let rows: [Row]
    let microBatch: Int
    let shuffle: Bool
    let seed: UInt64
    let padID: Int32
    let device: Device
    /// Single-label regression (num_labels 1): float labels and MSE.
    let isRegression: Bool

    /// The task of a config.json `architectures` name: …ForSequenceClassification, or …LMHeadModel / …ForCausalLM.
    static func task(ofArchitecture name: String) -> Task? {
        if name.hasSuffix("ForSequenceClassification") { return .sequenceClassification }
        if name.hasSuffix("LMHeadModel") || name.hasSuffix("ForCausalLM") { return .causalLM }
        return nil
    }

    /// Whether `path` is a Hugging Face model folder (holds config.json).
    static func isFolder(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent("config.json").path)
    }

    init(dir: String, dataPath: String, microBatch: Int, shuffle: Bool, seed: UInt64, device: Device,
         loadModel: Bool = true) throws {
        folder = URL(fileURLWithPath: dir)
        let name: String
        if loadModel {
            let loaded = try AutoModel.fromPretrained(folder, device: device)
            model = loaded
            name = type(of: loaded).architecture
        } else {
            model = nil
            name = try PretrainedFolder(folder).architectures.first ?? "model without config.json architectures"
        }
        if let task = Self.task(ofArchitecture: name) { self.task = task } else {
            throw TrainingJobError(description: "\(dir) holds a \(name); swiftspeed train fine-tunes causal LMs (…LMHeadModel, …ForCausalLM) and …ForSequenceClassification models")
        }
        let config = (try? JSONSerialization.jsonObject(with: try PretrainedFolder(folder).configData)) as? [String: Any] ?? [:]
        isRegression = ((config["num_labels"] as? Int) ?? (config["id2label"] as? [String: Any])?.count ?? 2) == 1
        let vocab = (config["vocab_size"] as? Int) ?? Int(Int32.max)
        // Padding is masked out and never a label; the id only has to exist (GPT-2 has no pad token: HF pads with eos).
        let pad = (config["pad_token_id"] as? Int) ?? (config["eos_token_id"] as? Int) ?? 0
        padID = Int32(pad < vocab && pad >= 0 ? pad : 0)
        let maxLength = (config["n_positions"] as? Int) ?? (config["max_position_embeddings"] as? Int) ?? Int.max
        let folder = self.folder
        rows = try Self.readRows(dataPath, task: task, maxLength: maxLength, vocabularySize: vocab,
                                 tokenizer: { try Tokenizer(contentsOf: folder) })
        if let classifier = model as? any SequenceClassifier {
            if microBatch > 1, let refusal = classifier.batchRefusal {
                throw TrainingJobError(description: "\(dir): \(refusal) — or use train_micro_batch_size_per_gpu 1")
            }
            if let problem = classifier.labelProblem(rows.map { $0.label ?? 0 }) {
                throw TrainingJobError(description: "--data \(dataPath): \(problem)")
            }
        }
        guard rows.count >= microBatch else {
            throw TrainingJobError(description: "--data \(dataPath) has \(rows.count) rows; a micro-batch takes \(microBatch): give more rows or a smaller train_micro_batch_size_per_gpu")
        }
        self.microBatch = microBatch
        self.shuffle = shuffle
        self.seed = seed
        self.device = device
    }

    /// JSONL rows — `{"input_ids": [...]}` or `{"text": "..."}` (causal LM), with `"label": k` for classification —
    /// or, for a file whose lines are not JSON objects, one row of plain text per non-empty line. Text goes through
    /// the folder's tokenizer as HF's `tokenizer(text)` does (special tokens added).
    static func readRows(_ path: String, task: Task, maxLength: Int, vocabularySize: Int,
                         tokenizer makeTokenizer: () throws -> Tokenizer) throws -> [Row] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingJobError(description: "cannot read --data \(path)")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let jsonl = lines.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }?.trimmingCharacters(in: .whitespaces).hasPrefix("{") ?? true
        var tokenizer: Tokenizer?
        func encode(_ text: String) throws -> [Any] {
            if tokenizer == nil { tokenizer = try makeTokenizer() }
            return tokenizer!.encode(text).ids
        }
        var rows: [Row] = []
        for (n, line) in lines.enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            func fail(_ what: String) -> TrainingJobError { TrainingJobError(description: "\(path):\(n + 1): \(what)") }
            let object: [String: Any]
            if jsonl {
                guard let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                    throw fail("not a JSON object (each line is one row, e.g. {\"input_ids\": [1, 2, 3]})")
                }
                object = parsed
            } else {
                object = ["text": String(line)]
            }
            let raw: [Any]
            if let ids = object["input_ids"] as? [Any] {
                raw = ids
            } else if let string = object["text"] as? String {
                do { raw = try encode(string) } catch { throw fail("\"text\" needs the folder's tokenizer: \(error)") }
            } else {
                throw fail("no \"input_ids\" list or \"text\" string")
            }
            let ids = try raw.map { value -> Int32 in
                guard let i = value as? Int, let v = Int32(exactly: i), v >= 0, i < vocabularySize else {
                    throw fail("input_ids holds \(value), not a token id of this model (0 ..< \(vocabularySize))")
                }
                return v
            }
            guard !ids.isEmpty else { throw fail("input_ids is empty") }
            guard ids.count <= maxLength else { throw fail("\(ids.count) tokens; the model takes at most \(maxLength) positions") }
            var label: Double?
            if task == .sequenceClassification {
                guard let l = object["label"] as? Double ?? (object["label"] as? Int).map(Double.init) else {
                    throw fail("a sequence-classification row needs a numeric \"label\"")
                }
                label = l
            }
            rows.append(Row(ids: ids, label: label))
        }
        return rows
    }

    /// The row order of `epoch`: file order, or a seeded permutation (Fisher–Yates on counter-based random bits).
    func order(epoch: Int) -> [Int] {
        var order = Array(0..<rows.count)
        guard shuffle else { return order }
        for i in stride(from: rows.count - 1, to: 0, by: -1) {
            let r = Int(RandomStream.bits(seed: seed ^ 0x5417_F1E5, counter: UInt64(epoch) << 32 | UInt64(i)) % UInt64(i + 1))
            order.swapAt(i, r)
        }
        return order
    }

    /// Micro-batch `index`: its rows padded on the right to the longest with the pad id and mask 0; causal-LM labels
    /// are the ids with -100 on padding.
    func batch(index: Int) -> ModuleInputs {
        // Global samples index·B ..< (index+1)·B; each epoch's order is computed once per batch.
        var orders: [Int: [Int]] = [:]
        let picked = (0..<microBatch).map { k -> Row in
            let j = index * microBatch + k, epoch = j / rows.count
            if orders[epoch] == nil { orders[epoch] = order(epoch: epoch) }
            return rows[orders[epoch]![j % rows.count]]
        }
        let t = picked.map(\.ids.count).max()!
        var ids: [Int32] = [], mask: [Int32] = [], labels: [Int32] = []
        for r in picked {
            let pad = t - r.ids.count
            ids += r.ids + Array(repeating: padID, count: pad)
            mask += Array(repeating: 1, count: r.ids.count) + Array(repeating: 0, count: pad)
            labels += r.ids + Array(repeating: -100, count: pad)
        }
        var inputs = ModuleInputs()
        inputs["input_ids"] = Tensor(ids, shape: [microBatch, t]).cast(to: .int64).to(device)
        inputs["attention_mask"] = Tensor(mask, shape: [microBatch, t]).cast(to: .int64).to(device)
        switch task {
        case .causalLM:
            inputs["labels"] = Tensor(labels, shape: [microBatch, t]).cast(to: .int64).to(device)
        case .sequenceClassification:
            let values = picked.map { $0.label! }
            let integral = values.allSatisfy { $0 == $0.rounded() }
            let t = Tensor(values.map { Float($0) }, shape: [microBatch])
            inputs["labels"] = (integral && !isRegression ? t.cast(to: .int64) : t).to(device)
        }
        return inputs
    }

    /// The files of a Hugging Face folder that belong to its tokenizer.
    static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                                 "vocab.json", "merges.txt", "added_tokens.json"]

    /// Writes the trained model as a Hugging Face folder, with the tokenizer files of the folder it came from, where
    /// `writer` is true. Tensor-parallel sharded, every rank calls it (each tensor-parallel group gathers its shards).
    func savePretrained(_ out: String, writer: Bool) throws {
        guard let model else { preconditionFailure("savePretrained needs the job's model (built with loadModel: true)") }
        let dir = URL(fileURLWithPath: out)
        if let comm = model.tensorParallelCommunicator(), comm.size > 1 {
            try model.savePretrained(dir, tensorParallelWriter: writer)
        } else if writer {
            try model.savePretrained(dir)
        }
        guard writer else { return }
        for name in Self.tokenizerFiles {
            let source = folder.appendingPathComponent(name), target = dir.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: source.path) else { continue }
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: source, to: target)
        }
    }
}
