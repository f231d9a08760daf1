// Collators: rows of token ids to padded tensors, as transformers' DataCollatorWithPadding and
// DataCollatorForLanguageModeling build them (key order, dtypes, padding values, -100 labels, 80/10/10 masking).
// Invariant: MLM draws are a pure function of (seed, step, position), so a batch is reproducible and resumable.

import SpeedCore

/// Named batch tensors in order — `input_ids` `[B, T]`, `attention_mask` `[B, T]`, `labels` `[B]` or `[B, T]`, … —
/// what a Hugging Face model takes as keyword arguments. Its elements are `(String, Tensor)` pairs, so
/// `ModuleInputs(batch)` (SpeedNN) takes it whole.
///
/// ```swift
/// let batch = try collator(rows)
/// batch.keys                       // ["input_ids", "attention_mask", "labels"]
/// let out = model(ModuleInputs(batch))
/// ```
public struct CollatedBatch: Sequence {
    public private(set) var pairs: [(String, Tensor)]

    public init(_ pairs: [(String, Tensor)]) {
        var seen = Set<String>()
        for (k, _) in pairs { precondition(seen.insert(k).inserted, "CollatedBatch: key '\(k)' given twice") }
        self.pairs = pairs
    }

    public var keys: [String] { pairs.map(\.0) }
    public var count: Int { pairs.count }

    /// The tensor under `key`, or nil.
    public subscript(key: String) -> Tensor? { pairs.first { $0.0 == key }?.1 }

    public func makeIterator() -> IndexingIterator<[(String, Tensor)]> { pairs.makeIterator() }

    /// The same keys with every tensor on `device`.
    public func to(_ device: Device) -> CollatedBatch { CollatedBatch(pairs.map { ($0, $1.to(device)) }) }
}

/// Turns rows (after tokenizing) into one batch; `step` (the batch's global index) seeds any randomness.
public protocol DataCollator: Sendable {
    func collate(_ rows: [DataRow], step: Int) throws -> CollatedBatch
}

extension DataCollator {
    /// `collate(rows, step:)`.
    public func callAsFunction(_ rows: [DataRow], step: Int = 0) throws -> CollatedBatch {
        try collate(rows, step: step)
    }

    /// Rows `indices` of `table` (e.g. one rank's share of a `DistributedSampler` order) as a batch.
    public func collate(_ table: DatasetTable, indices: [Int], step: Int = 0) throws -> CollatedBatch {
        try collate(indices.map { table[$0] }, step: step)
    }
}

/// Which side padding goes on (the tokenizer's `padding_side`).
public enum PaddingSide: String, Sendable, Hashable, Codable {
    case right, left
}

/// A collated column before it becomes a tensor: int64 or float32 values, row-major.
enum CollatedColumn {
    case ints([Int], shape: [Int])
    case floats([Float], shape: [Int])

    func tensor(_ device: Device) -> Tensor {
        switch self {
        case let .ints(v, shape): Tensor(v, shape: shape, device: device)
        case let .floats(v, shape): Tensor(v, shape: shape, device: device)
        }
    }
}

/// transformers' `tokenizer.pad` over rows: the token columns padded to the longest row (rounded up to
/// `padToMultipleOf`), `attention_mask` made when missing, and any other numeric column stacked.
struct RowPadder {
    var padTokenId: Int?
    var padToMultipleOf: Int?
    var side: PaddingSide
    /// The token columns and their padding values (`input_ids` takes the pad id).
    static let padValues: [String: Int] = ["attention_mask": 0, "token_type_ids": 0, "special_tokens_mask": 1]

    func pad(_ rows: [DataRow], what: String) throws -> [(String, CollatedColumn)] {
        precondition(!rows.isEmpty, "\(what): a batch needs at least one row")
        let ids = try rows.map { row -> [Int] in
            let v = try row.required("input_ids", for: what)
            guard let ids = v.intsValue else {
                throw DatasetError(row.source, "column 'input_ids' holds \(v), not a list of token ids; tokenize the text first (table.map)")
            }
            return ids
        }
        let longest = ids.map(\.count).max()!
        var length = longest
        if let m = padToMultipleOf, m > 0, length % m != 0 { length = (length / m + 1) * m }
        let needsPadding = ids.contains { $0.count != length }
        if needsPadding && padTokenId == nil {
            throw DatasetError("\(what): rows have \(Set(ids.map(\.count)).sorted()) tokens and there is no pad token id to pad them to \(length); set padTokenId (GPT-2 pads with its eos id)")
        }
        func padded(_ values: [[Int]], _ fill: Int) -> [Int] {
            var out: [Int] = []
            out.reserveCapacity(values.count * length)
            for v in values {
                let pad = Array(repeating: fill, count: length - v.count)
                out += side == .right ? v + pad : pad + v
            }
            return out
        }
        var keys = rows[0].names
        if !keys.contains("attention_mask") { keys.append("attention_mask") }
        var out: [(String, CollatedColumn)] = []
        let b = rows.count
        for key in keys {
            if key == "input_ids" {
                out.append((key, .ints(padded(ids, padTokenId ?? 0), shape: [b, length])))
            } else if key == "attention_mask" && rows[0]["attention_mask"] == nil {
                out.append((key, .ints(padded(ids.map { Array(repeating: 1, count: $0.count) }, 0), shape: [b, length])))
            } else if let fill = Self.padValues[key] {
                let lists = try zip(rows, ids).map { row, rowIds -> [Int] in
                    let v = try row.required(key, for: what)
                    guard let list = v.intsValue, list.count == rowIds.count else {
                        throw DatasetError(row.source, "column '\(key)' holds \(v); it needs one int per token (\(rowIds.count))")
                    }
                    return list
                }
                out.append((key, .ints(padded(lists, fill), shape: [b, length])))
            } else {
                out.append((key, try Self.stack(rows.map { try $0.required(key, for: what) }, key: key, rows: rows)))
            }
        }
        return out
    }

    /// A non-token column: ints (and bools) as int64, doubles as float32; equal-length lists stack to `[B, L]`.
    static func stack(_ values: [DataValue], key: String, rows: [DataRow]) throws -> CollatedColumn {
        let b = values.count
        if values.allSatisfy({ $0.intValue != nil || $0.boolValue != nil }) {
            return .ints(values.map { $0.intValue ?? ($0.boolValue! ? 1 : 0) }, shape: [b])
        }
        if values.allSatisfy({ $0.doubleValue != nil }) {
            return .floats(values.map { Float($0.doubleValue!) }, shape: [b])
        }
        if values.allSatisfy({ $0.intsValue != nil }) || values.allSatisfy({ $0.doublesValue != nil }) {
            let n = values[0].intsValue?.count ?? values[0].doublesValue!.count
            for (row, v) in zip(rows, values) where (v.intsValue?.count ?? v.doublesValue!.count) != n {
                throw DatasetError(row.source, "column '\(key)' has lists of different lengths (\(n) and \((v.intsValue?.count ?? v.doublesValue!.count))); only input_ids, attention_mask, token_type_ids and special_tokens_mask are padded — remove the column or pad it in map")
            }
            if values.allSatisfy({ $0.intsValue != nil }) {
                return .ints(values.flatMap { $0.intsValue! }, shape: [b, n])
            }
            return .floats(values.flatMap { $0.doublesValue!.map { Float($0) } }, shape: [b, n])
        }
        let bad = zip(rows, values).first { $0.1.stringValue != nil || $0.1.stringsValue != nil } ?? (rows[0], values[0])
        throw DatasetError(bad.0.source, "column '\(key)' holds \(bad.1), which is not a tensor; remove it before collating (table.removeColumns([\"\(key)\"]), as Trainer's remove_unused_columns does)")
    }
}

/// transformers' `DataCollatorWithPadding`: pads `input_ids` with the pad id and `attention_mask` /
/// `token_type_ids` with 0 (`special_tokens_mask` with 1) to the batch's longest row, optionally rounded up to a
/// multiple; creates `attention_mask` when the rows have none; renames `label` / `label_ids` to `labels` (int64 for
/// int labels, float32 for regression) and puts it last. Other numeric columns are stacked as they are.
///
/// ```swift
/// let collator = DataCollatorWithPadding(padTokenId: 0, padToMultipleOf: 8)
/// let batch = try collator([["input_ids": [101, 2204, 102], "label": 1],
///                           ["input_ids": [101, 102], "label": 0]])
/// batch["input_ids"]!.shape        // [2, 8]
/// batch["labels"]!.dtype           // .int64
/// ```
public struct DataCollatorWithPadding: DataCollator {
    public var padTokenId: Int
    public var padToMultipleOf: Int?
    public var paddingSide: PaddingSide
    public var device: Device

    public init(padTokenId: Int, padToMultipleOf: Int? = nil, paddingSide: PaddingSide = .right, device: Device = .cpu) {
        precondition(padToMultipleOf.map { $0 > 0 } ?? true, "DataCollatorWithPadding: padToMultipleOf must be > 0, got \(padToMultipleOf!)")
        self.padTokenId = padTokenId
        self.padToMultipleOf = padToMultipleOf
        self.paddingSide = paddingSide
        self.device = device
    }

    public func collate(_ rows: [DataRow], step: Int = 0) throws -> CollatedBatch {
        let padder = RowPadder(padTokenId: padTokenId, padToMultipleOf: padToMultipleOf, side: paddingSide)
        var columns = try padder.pad(rows, what: "DataCollatorWithPadding")
        // HF renames "label", then "label_ids", to "labels" by re-adding it: it goes last.
        for name in ["label", "label_ids"] {
            if let i = columns.firstIndex(where: { $0.0 == name }) {
                let column = columns.remove(at: i).1
                columns.removeAll { $0.0 == "labels" }
                columns.append(("labels", column))
            }
        }
        return CollatedBatch(columns.map { ($0, $1.tensor(device)) })
    }
}

/// transformers' `DataCollatorForLanguageModeling`.
///
/// - `mlm: false` (causal LM): pads, then `labels` = `input_ids` with every pad-id position -100 (a real token
///   equal to the pad id too, as transformers does — GPT-2 pads with eos).
/// - `mlm: true`: each token that is not special (nor padding) is chosen with `mlmProbability`; chosen tokens
///   keep their id in `labels` (others -100) and become the mask id with `maskReplaceProbability`, a random id
///   with `randomReplaceProbability`, and stay as they are otherwise. A `special_tokens_mask` column, when the rows
///   have one, says which tokens are special (and is dropped from the batch).
///
/// ```swift
/// let mlm = DataCollatorForLanguageModeling(padTokenId: 0, maskTokenId: 103, vocabularySize: 30522,
///                                           specialTokenIds: [0, 100, 101, 102, 103], seed: 42)
/// let batch = try mlm(rows, step: globalStep)      // input_ids masked, labels -100 off the masked positions
/// let clm = DataCollatorForLanguageModeling(padTokenId: 50256, mlm: false)
/// ```
public struct DataCollatorForLanguageModeling: DataCollator {
    public var padTokenId: Int?
    public var mlm: Bool
    public var maskTokenId: Int?
    /// `len(tokenizer)`: random replacements are drawn from `0 ..< vocabularySize`.
    public var vocabularySize: Int
    /// The tokenizer's `all_special_ids` (never masked); the pad id is always included.
    public var specialTokenIds: Set<Int>
    public var mlmProbability: Double
    public var maskReplaceProbability: Double
    public var randomReplaceProbability: Double
    public var padToMultipleOf: Int?
    public var paddingSide: PaddingSide
    public var seed: UInt64
    public var device: Device

    public init(padTokenId: Int?, mlm: Bool = true, maskTokenId: Int? = nil, vocabularySize: Int = 0,
                specialTokenIds: Set<Int> = [], mlmProbability: Double = 0.15, maskReplaceProbability: Double = 0.8,
                randomReplaceProbability: Double = 0.1, padToMultipleOf: Int? = nil, paddingSide: PaddingSide = .right,
                seed: UInt64 = 0, device: Device = .cpu) {
        if mlm {
            precondition(maskTokenId != nil, "DataCollatorForLanguageModeling: masked language modeling needs a maskTokenId (the tokenizer's mask token); pass mlm: false to train a causal LM")
            precondition(vocabularySize > 0, "DataCollatorForLanguageModeling: masked language modeling needs vocabularySize (len(tokenizer)) for random replacements")
            precondition((0...1).contains(mlmProbability), "DataCollatorForLanguageModeling: mlmProbability should be between 0 and 1, got \(mlmProbability)")
        }
        precondition((0...1).contains(maskReplaceProbability) && (0...1).contains(randomReplaceProbability)
                     && maskReplaceProbability + randomReplaceProbability <= 1,
                     "DataCollatorForLanguageModeling: maskReplaceProbability (\(maskReplaceProbability)) and randomReplaceProbability (\(randomReplaceProbability)) must lie in [0, 1] and sum to at most 1")
        self.padTokenId = padTokenId
        self.mlm = mlm
        self.maskTokenId = maskTokenId
        self.vocabularySize = vocabularySize
        self.specialTokenIds = specialTokenIds.union(padTokenId.map { [$0] } ?? [])
        self.mlmProbability = mlmProbability
        self.maskReplaceProbability = maskReplaceProbability
        self.randomReplaceProbability = randomReplaceProbability
        self.padToMultipleOf = padToMultipleOf
        self.paddingSide = paddingSide
        self.seed = seed
        self.device = device
    }

    public func collate(_ rows: [DataRow], step: Int = 0) throws -> CollatedBatch {
        let padder = RowPadder(padTokenId: padTokenId, padToMultipleOf: padToMultipleOf, side: paddingSide)
        var columns = try padder.pad(rows, what: "DataCollatorForLanguageModeling")
        let specialMask = columns.firstIndex { $0.0 == "special_tokens_mask" }.map { columns.remove(at: $0).1 }
        let i = columns.firstIndex { $0.0 == "input_ids" }!
        guard case .ints(var ids, let shape) = columns[i].1 else { preconditionFailure("input_ids are ints") }
        var labels: [Int]
        if mlm {
            var noMask: [Bool]
            if case .ints(let m, _)? = specialMask { noMask = m.map { $0 != 0 } } else { noMask = ids.map { specialTokenIds.contains($0) } }
            labels = ids
            let draws = MaskDraws(seed: seed, step: step, count: ids.count, vocabularySize: vocabularySize)
            maskTokens(&ids, labels: &labels, noMask: noMask, draws: draws)
            columns[i].1 = .ints(ids, shape: shape)
        } else {
            labels = ids.map { $0 == padTokenId ? -100 : $0 }
        }
        columns.removeAll { $0.0 == "labels" }
        columns.append(("labels", .ints(labels, shape: shape)))
        return CollatedBatch(columns.map { ($0, $1.tensor(device)) })
    }

    /// transformers' `torch_mask_tokens` on given draws: `u[0] < p` chooses (p = 0 where `noMask`), `u[1] < 0.8`
    /// replaces a chosen token with the mask id, else `u[2] < 0.1 / 0.2` with `words`. Comparisons in float32, as
    /// torch's `bernoulli` on a float32 probability matrix.
    func maskTokens(_ ids: inout [Int], labels: inout [Int], noMask: [Bool], draws: MaskDraws) {
        let p = Float(mlmProbability), replace = Float(maskReplaceProbability)
        let randomScaled = Float(randomReplaceProbability / (1 - maskReplaceProbability))
        let doRandom = !(maskReplaceProbability == 1 || randomReplaceProbability == 0)
        for k in ids.indices {
            let masked = !noMask[k] && draws.uniform(0, k) < p
            guard masked else { labels[k] = -100; continue }
            if draws.uniform(1, k) < replace {
                ids[k] = maskTokenId!
            } else if doRandom && draws.uniform(2, k) < randomScaled {
                ids[k] = draws.word(k)
            }
        }
    }
}

/// The random draws of one MLM batch: three uniform streams in [0, 1) and random words, per position.
struct MaskDraws {
    /// Recorded draws (tests replay transformers' own), or nil to hash (seed, step, position).
    var uniforms: [[Float]]?
    var words: [Int]?
    var key: UInt64 = 0
    var vocabularySize: Int = 0

    init(seed: UInt64, step: Int, count: Int, vocabularySize: Int) {
        key = RandomStream.bits(seed: seed ^ 0x4D4C_4D5F_4D41_534B, counter: UInt64(bitPattern: Int64(step)))
        self.vocabularySize = vocabularySize
    }

    init(uniforms: [[Float]], words: [Int]) {
        self.uniforms = uniforms
        self.words = words
    }

    /// Stream `s` (0: choose, 1: mask, 2: random) at position `k`: 24 random bits as a float in [0, 1).
    func uniform(_ s: Int, _ k: Int) -> Float {
        if let uniforms { return uniforms[s][k] }
        let bits = RandomStream.bits(seed: key, counter: UInt64(k) &* 4 &+ UInt64(s))
        return Float(bits >> 40) * 0x1p-24
    }

    /// A random id in `0 ..< vocabularySize` at position `k` (multiply-high, no modulo bias worth naming).
    func word(_ k: Int) -> Int {
        if let words { return words[k] }
        let bits = RandomStream.bits(seed: key, counter: UInt64(k) &* 4 &+ 3)
        return Int(bits.multipliedFullWidth(by: UInt64(vocabularySize)).high)
    }
}
