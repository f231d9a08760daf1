// Tokenizing a dataset's text columns with a tokenizer.json tokenizer, as `dataset.map(lambda r: tokenizer(r["text"],
// truncation=True), batched=True)` does. Invariant: the text columns are replaced by input_ids, attention_mask (and
// token_type_ids when the tokenizer returns them); every other column (the label) is kept as it is.

import SpeedData
import SpeedTokenizers

extension DatasetTable {
    /// This table with `textColumn` (and `pairColumn`) tokenized, truncated to `maxLength` tokens.
    ///
    /// ```swift
    /// let tok = try Tokenizer(contentsOf: URL(fileURLWithPath: "/opt/swiftspeed/models/all-MiniLM-L6-v2"))
    /// let train = try loadDataset("json", dataFiles: "train.jsonl", split: "train").tokenized(with: tok, maxLength: 128)
    /// train.columnNames   // ["label", "input_ids", "token_type_ids", "attention_mask"]
    /// ```
    /// - Throws: `DatasetError` naming the row's file and line when a text cell is not a string.
    public func tokenized(with tokenizer: Tokenizer, textColumn: String = "text", pairColumn: String? = nil,
                          maxLength: Int? = nil, batchSize: Int = 1024) throws -> DatasetTable {
        for name in [textColumn] + (pairColumn.map { [$0] } ?? []) where !columnNames.contains(name) {
            throw DatasetError("no '\(name)' column to tokenize (columns: \(columnNames.joined(separator: ", ")))")
        }
        let typeIds = tokenizer.returnsTokenTypeIds
        let truncation = maxLength.map { Truncation(maxLength: $0) }
        var start = 0
        return try map(batchSize: batchSize) { batch in
            defer { start += batch.count }
            func texts(_ name: String) throws -> [String] {
                try batch[name]!.enumerated().map { i, v in
                    guard let s = v.stringValue else {
                        let at = source(of: start + i)
                        throw DatasetError(file: at?.file, line: at?.line, "column '\(name)' holds \(v), not text")
                    }
                    return s
                }
            }
            let encodings = tokenizer.encodeBatch(try texts(textColumn), pairs: try pairColumn.map(texts),
                                                  truncation: truncation)
            var out = DataBatch(zip(batch.names, batch.columns).filter { $0.0 != textColumn && $0.0 != pairColumn })
            out["input_ids"] = encodings.map { .ints($0.ids) }
            if typeIds { out["token_type_ids"] = encodings.map { .ints($0.typeIds) } }
            out["attention_mask"] = encodings.map { .ints($0.attentionMask) }
            return out
        }
    }
}
