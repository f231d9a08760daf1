// Collators against transformers 5's DataCollatorWithPadding / DataCollatorForLanguageModeling outputs (Fixtures/,
// scripts/make_data_fixtures.py): keys in order, shapes, dtypes and values; MLM on transformers' own recorded draws.
import Foundation
import SpeedCore
@testable import SpeedData
import Testing

/// A fixture row: ordered [key, value] pairs; `doubles` names keys whose numbers are doubles.
func fixtureRow(_ any: Any, doubles: Set<String> = []) -> DataRow {
    DataRow((any as! [[Any]]).map { pair -> (String, DataValue) in
        let key = pair[0] as! String
        if let list = pair[1] as? [NSNumber] { return (key, .ints(list.map(\.intValue))) }
        let n = pair[1] as! NSNumber
        return (key, doubles.contains(key) ? .double(n.doubleValue) : .int(n.intValue))
    })
}

/// Checks `batch` against a fixture output: the same keys in order, shapes, dtypes and values.
func expectBatch(_ batch: CollatedBatch, _ output: Any, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let want = output as! [[Any]]
    #expect(batch.keys == want.map { $0[0] as! String }, "\(name)", sourceLocation: sourceLocation)
    for pair in want {
        let key = pair[0] as! String, t = pair[1] as! [String: Any]
        guard let got = batch[key] else { continue }
        #expect(got.shape == t["shape"] as! [Int], "\(name) \(key)", sourceLocation: sourceLocation)
        let dtype = t["dtype"] as! String
        #expect(got.dtype == (dtype == "int64" ? .int64 : .float32), "\(name) \(key) dtype", sourceLocation: sourceLocation)
        if dtype == "int64" {
            #expect(got.scalars(as: Int.self) == (t["values"] as! [NSNumber]).map(\.intValue), "\(name) \(key)", sourceLocation: sourceLocation)
        } else {
            #expect(got.scalars(as: Float.self) == (t["values"] as! [NSNumber]).map(\.floatValue), "\(name) \(key)", sourceLocation: sourceLocation)
        }
    }
}

@Suite struct CollatorTests {
    nonisolated(unsafe) static let collators = expected["collators"] as! [String: Any]
    nonisolated(unsafe) static let bert = collators["bert"] as! [String: Any]
    var padId: Int { Self.bert["padTokenId"] as! Int }

    @Test func paddingCollatorMatchesTransformers() throws {
        let cases = Self.collators["padding"] as! [[String: Any]]
        #expect(cases.count == 5)
        for c in cases {
            let name = c["name"] as! String
            let rows = (c["features"] as! [Any]).map { fixtureRow($0, doubles: name.contains("regression") ? ["labels"] : []) }
            let collator = DataCollatorWithPadding(padTokenId: padId, padToMultipleOf: c["padToMultipleOf"] as? Int,
                                                   paddingSide: c["paddingSide"] as? String == "left" ? .left : .right)
            expectBatch(try collator(rows), c["output"]!, name)
        }
    }

    @Test func causalLMCollatorMasksEveryPadIdLikeTransformers() throws {
        for c in Self.collators["clm"] as! [[String: Any]] {
            let rows = (c["features"] as! [Any]).map { fixtureRow($0) }
            let collator = DataCollatorForLanguageModeling(padTokenId: padId, mlm: false, padToMultipleOf: c["padToMultipleOf"] as? Int)
            expectBatch(try collator(rows), c["output"]!, "clm \(c["padToMultipleOf"] ?? "none")")
        }
    }

    @Test func mlmMaskingMatchesTransformersOnTheSameDraws() throws {
        let cases = Self.collators["mlm"] as! [[String: Any]]
        for c in cases {
            let rows = (c["features"] as! [Any]).map { fixtureRow($0) }
            let collator = DataCollatorForLanguageModeling(
                padTokenId: padId, maskTokenId: Self.bert["maskTokenId"] as? Int, vocabularySize: Self.bert["vocabSize"] as! Int,
                specialTokenIds: Set(Self.bert["specialIds"] as! [Int]), mlmProbability: c["mlmProbability"] as! Double)
            // Pad with the real collator (masking nothing), then mask with transformers' recorded draws.
            let padded = try DataCollatorForLanguageModeling(padTokenId: padId, mlm: false).collate(rows, step: 0)
            var ids = padded["input_ids"]!.scalars(as: Int.self)
            var labels = ids
            let noMask = ids.map { collator.specialTokenIds.contains($0) }
            let draws = MaskDraws(uniforms: (c["uniforms"] as! [[NSNumber]]).map { $0.map(\.floatValue) },
                                  words: (c["words"] as! [NSNumber]).map(\.intValue))
            collator.maskTokens(&ids, labels: &labels, noMask: noMask, draws: draws)
            let output = c["output"] as! [[Any]]
            let want = Dictionary(uniqueKeysWithValues: output.map { ($0[0] as! String, (($0[1] as! [String: Any])["values"] as! [NSNumber]).map(\.intValue)) })
            #expect(ids == want["input_ids"]!)
            #expect(labels == want["labels"]!)
            // The fixture exercises all three outcomes at p = 0.5: [MASK], a random word, unchanged.
            let maskId = Self.bert["maskTokenId"] as! Int
            let chosen = labels.indices.filter { labels[$0] != -100 }
            #expect(!chosen.isEmpty)
            if c["mlmProbability"] as! Double == 0.5 {
                #expect(chosen.contains { ids[$0] == maskId } && chosen.contains { ids[$0] != maskId && ids[$0] != labels[$0] }
                        && chosen.contains { ids[$0] == labels[$0] })
            }
            // The whole collator gives the same keys and shapes as transformers.
            let batch = try collator(rows, step: 3)
            #expect(batch.keys == output.map { $0[0] as! String })
            #expect(batch["labels"]!.shape == padded["input_ids"]!.shape)
        }
    }

    @Test func seededMaskingIsReproducibleAndHasTheRightRates() throws {
        // 64 rows of 130 ordinary tokens between [CLS] and [SEP]: about 15% chosen, of them 80/10/10.
        let rows = (0..<64).map { r -> DataRow in ["input_ids": .ints([101] + (0..<130).map { 1000 + ($0 * 7 + r) % 500 } + [102])] }
        let collator = DataCollatorForLanguageModeling(padTokenId: 0, maskTokenId: 103, vocabularySize: 30522,
                                                       specialTokenIds: [0, 100, 101, 102, 103], seed: 9)
        let a = try collator(rows, step: 5), b = try collator(rows, step: 5), c = try collator(rows, step: 6)
        #expect(a["input_ids"]!.scalars(as: Int.self) == b["input_ids"]!.scalars(as: Int.self))
        #expect(a["input_ids"]!.scalars(as: Int.self) != c["input_ids"]!.scalars(as: Int.self))
        let ids = a["input_ids"]!.scalars(as: Int.self), labels = a["labels"]!.scalars(as: Int.self)
        let original = rows.flatMap { $0["input_ids"]!.intsValue! }
        let chosen = labels.indices.filter { labels[$0] != -100 }
        // Special tokens are never chosen; a chosen label is the original token.
        #expect(chosen.allSatisfy { original[$0] >= 1000 && labels[$0] == original[$0] })
        #expect(labels.indices.allSatisfy { labels[$0] != -100 || ids[$0] == original[$0] })
        let n = Double(64 * 130), m = Double(chosen.count)
        #expect(abs(m / n - 0.15) < 0.015, "chosen \(m / n)")
        let masked = Double(chosen.filter { ids[$0] == 103 }.count)
        let random = Double(chosen.filter { ids[$0] != 103 && ids[$0] != original[$0] }.count)
        #expect(abs(masked / m - 0.8) < 0.03, "mask \(masked / m)")
        #expect(abs(random / m - 0.1) < 0.03, "random \(random / m)")
    }

    @Test func badRowsAreErrorsNamingTheRow() throws {
        let collator = DataCollatorWithPadding(padTokenId: 0)
        let source = RowSource(file: "train.jsonl", line: 7)
        let noIds = DataRow([("text", DataValue.string("hi")), ("label", 1)], source: source)
        #expect(errorText { try collator([noIds]) }.hasPrefix("train.jsonl:7: row has no column 'input_ids'"))
        let text = DataRow([("input_ids", DataValue.ints([1, 2])), ("text", "hi"), ("label", 1)], source: source)
        #expect(errorText { try collator([text]) }.contains("column 'text' holds \"hi\", which is not a tensor; remove it"))
        let noLabel = DataRow([("input_ids", DataValue.ints([1, 2])), ("label", .null)], source: source)
        #expect(errorText { try collator([text, noLabel].map { var r = $0; r["text"] = nil; return r }) }
            .hasPrefix("train.jsonl:7: column 'label' is null in this row"))
        let strings = DataRow([("input_ids", DataValue.string("not ids"))], source: source)
        #expect(errorText { try collator([strings]) }.contains("tokenize the text first"))
        // Without a pad id, rows of different lengths cannot be batched.
        let clm = DataCollatorForLanguageModeling(padTokenId: nil, mlm: false)
        #expect(errorText { try clm([["input_ids": [1, 2]], ["input_ids": [1]]]) }.contains("no pad token id"))
        #expect(try clm([["input_ids": [1, 2]], ["input_ids": [3, 4]]])["labels"]!.scalars(as: Int.self) == [1, 2, 3, 4])
    }

    @Test func collatesTableRowsAndBatchesGoToModuleInputsOrder() throws {
        let table = try DatasetTable(["input_ids": [[101, 5, 102], [101, 102]], "label": [1, 0]])
        let batch = try DataCollatorWithPadding(padTokenId: 0).collate(table, indices: [1, 0])
        #expect(batch.keys == ["input_ids", "attention_mask", "labels"])
        #expect(batch["input_ids"]!.scalars(as: Int.self) == [101, 102, 0, 101, 5, 102])
        #expect(batch["attention_mask"]!.scalars(as: Int.self) == [1, 1, 0, 1, 1, 1])
        #expect(batch["labels"]!.scalars(as: Int.self) == [0, 1])
        let pairs: [(String, Tensor)] = Array(batch)
        #expect(pairs.map(\.0) == batch.keys)
    }
}
