// Table transformations with datasets' names and rules: map (per row or batched), filter, select, shuffle,
// train_test_split, column removal and renaming, and class encoding. Each returns a new table.
// Invariant: rows keep their source (file, line) through every transformation, so a later error still points at the file.

extension DatasetTable {
    /// Rows `indices` in that order (repeats allowed), like datasets' `select`. An index out of range is a caller bug.
    ///
    /// ```swift
    /// table.select([2, 0]).count     // 2
    /// ```
    public func select<C: Collection>(_ indices: C) -> DatasetTable where C.Element == Int {
        for i in indices { precondition(i >= 0 && i < count, "DatasetTable.select: index \(i) is out of range (\(count) rows)") }
        return DatasetTable(columnNames: columnNames, columnTypes: columnTypes,
                            columns: columns.map { col in indices.map { col[$0] } },
                            sources: indices.map { sources[$0] }, classLabels: classLabels)
    }

    /// The rows for which `isIncluded` is true, in order.
    ///
    /// ```swift
    /// let short = table.filter { ($0["text"]?.stringValue?.count ?? 0) < 200 }
    /// ```
    public func filter(_ isIncluded: (DataRow) throws -> Bool) rethrows -> DatasetTable {
        select(try (0..<count).filter { try isIncluded(self[$0]) })
    }

    /// The rows in a seeded random order (Fisher–Yates on the counter-based `RandomStream`): the same seed gives the
    /// same order on every machine. The order differs from datasets' (numpy's PCG64).
    public func shuffle(seed: UInt64) -> DatasetTable {
        select(Self.permutation(count, seed: seed))
    }

    static func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<n)
        DistributedSampler.shuffle(&order, seed: seed, epoch: 0)
        return order
    }

    /// Row by row: `transform` returns the new row (add, change or remove cells). Columns keep the first output
    /// row's order; a column some rows lack is null there; one column must keep one type.
    ///
    /// ```swift
    /// let tokenized = try table.map { row in
    ///     var out = row
    ///     out["input_ids"] = .ints(tokenizer.encode(row["text"]!.stringValue!).ids.map(Int.init))
    ///     out["text"] = nil
    ///     return out
    /// }
    /// ```
    public func map(_ transform: (DataRow) throws -> DataRow) throws -> DatasetTable {
        var builder = TableBuilder()
        for r in 0..<count {
            let out = try transform(self[r])
            try builder.append(out.cells, source: out.source ?? sources[r], what: "row \(r) of map's output")
        }
        return carryingLabels(into: builder.finish())
    }

    /// Batched, like datasets' `map(batched=True, batch_size=)`: `transform` gets up to `batchSize` rows as
    /// columns and returns columns, possibly with another number of rows (then the rows lose their sources).
    ///
    /// ```swift
    /// let lengths = try table.map(batchSize: 256) { batch in
    ///     var out = batch
    ///     out["length"] = batch["text"]!.map { .int($0.stringValue!.count) }
    ///     return out
    /// }
    /// ```
    public func map(batchSize: Int, _ transform: (DataBatch) throws -> DataBatch) throws -> DatasetTable {
        precondition(batchSize > 0, "DatasetTable.map: batchSize must be > 0, got \(batchSize)")
        var builder = TableBuilder()
        for start in stride(from: 0, to: count, by: batchSize) {
            let range = start..<Swift.min(count, start + batchSize)
            let batch = DataBatch(zip(columnNames, columns.map { Array($0[range]) }))
            let out = try transform(batch)
            let keepSources = out.count == range.count
            for k in 0..<out.count {
                try builder.append(zip(out.names, out.columns.map { $0[k] }).map { ($0, $1) },
                                   source: keepSources ? sources[start + k] : nil,
                                   what: "row \(k) of map's output batch \(start / batchSize)")
            }
        }
        return carryingLabels(into: builder.finish())
    }

    /// `table` with this table's class names for the columns that are still int columns.
    func carryingLabels(into table: DatasetTable) -> DatasetTable {
        var t = table
        t.classLabels = classLabels.filter { t.type(of: $0.key) == .int }
        return t
    }

    /// Without `names` (datasets' `remove_columns`); a name that is not a column is an error.
    public func removeColumns(_ names: [String]) throws -> DatasetTable {
        for n in names { _ = try columnIndex(n) }
        let keep = columnNames.indices.filter { !names.contains(columnNames[$0]) }
        return DatasetTable(columnNames: keep.map { columnNames[$0] }, columnTypes: keep.map { columnTypes[$0] },
                            columns: keep.map { columns[$0] }, sources: sources,
                            classLabels: classLabels.filter { !names.contains($0.key) })
    }

    /// Only `names`, in that order (datasets' `select_columns`).
    public func selectColumns(_ names: [String]) throws -> DatasetTable {
        let keep = try names.map { try columnIndex($0) }
        return DatasetTable(columnNames: names, columnTypes: keep.map { columnTypes[$0] },
                            columns: keep.map { columns[$0] }, sources: sources,
                            classLabels: classLabels.filter { names.contains($0.key) })
    }

    /// Column `old` renamed `new` (datasets' `rename_column`); `old` missing or `new` taken is an error.
    public func renameColumn(_ old: String, to new: String) throws -> DatasetTable {
        let i = try columnIndex(old)
        guard old == new || !columnNames.contains(new) else {
            throw DatasetError("cannot rename '\(old)' to '\(new)': the table already has a column '\(new)'")
        }
        var t = self
        t.columnNames[i] = new
        if let names = t.classLabels.removeValue(forKey: old) { t.classLabels[new] = names }
        return t
    }

    /// The distinct non-null values of column `name`, in order of first appearance (datasets' `unique`).
    public func unique(_ name: String) throws -> [DataValue] {
        var seen = Set<DataValue>()
        return columns[try columnIndex(name)].filter { $0 != .null && seen.insert($0).inserted }
    }

    /// Column `name` as class ids, like datasets' `class_encode_column`: the distinct values, as strings (ints
    /// and bools stringified as Python prints them), sorted by code point, are the class names and each cell
    /// becomes its name's index; nulls stay null. The names go into ``classLabels``.
    ///
    /// ```swift
    /// let encoded = try table.classEncodeColumn("label")    // "neg"/"pos" → 0/1
    /// encoded.classLabels["label"]                          // ["neg", "pos"]
    /// ```
    public func classEncodeColumn(_ name: String) throws -> DatasetTable {
        let c = try columnIndex(name)
        func text(_ v: DataValue) throws -> String? {
            switch v {
            case .null: return nil
            case .string(let s): return s
            case .int(let i): return String(i)
            case .bool(let b): return b ? "True" : "False"
            case .double(let d): return String(d)
            default:
                throw DatasetError("class_encode_column: column '\(name)' holds lists (\(v)); class labels are scalars")
            }
        }
        let texts = try columns[c].map(text)
        let names = Set(texts.compactMap { $0 }).sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        let id = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var t = self
        t.columns[c] = texts.map { $0.map { .int(id[$0]!) } ?? .null }
        t.columnTypes[c] = names.isEmpty ? .null : .int
        t.classLabels[name] = names
        return t
    }

    /// How big a split is: a fraction of the rows in (0, 1), or a row count.
    public enum SplitSize: Sendable, Hashable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
        case fraction(Double)
        case count(Int)

        public init(floatLiteral value: Double) { self = .fraction(value) }
        public init(integerLiteral value: Int) { self = .count(value) }
    }

    /// `train` and `test` splits, with datasets' `train_test_split` size rules: a test fraction takes
    /// ceil(fraction · n) rows, a train fraction floor(fraction · n), a missing size is the rest. Shuffled by `seed`
    /// (test is the permutation's head), or in order (train first) when `shuffle` is false.
    ///
    /// ```swift
    /// let dd = try table.trainTestSplit(testSize: 0.2, seed: 42)
    /// let (train, test) = (dd["train"]!, dd["test"]!)
    /// ```
    public func trainTestSplit(testSize: SplitSize? = nil, trainSize: SplitSize? = nil, shuffle: Bool = true,
                               seed: UInt64 = 0) throws -> DatasetDict {
        let n = count
        let test = testSize ?? (trainSize == nil ? .fraction(0.25) : nil)
        func check(_ size: SplitSize?, _ label: String) throws {
            let bad: Bool
            switch size {
            case .fraction(let x): bad = x <= 0 || x >= 1
            case .count(let k): bad = k <= 0 || k >= n
            case nil: bad = false
            }
            if bad {
                throw DatasetError("\(label)=\(f(size)) should be either positive and smaller than the number of samples \(n) or a float in the (0, 1) range")
            }
        }
        func f(_ size: SplitSize?) -> String {
            switch size {
            case .fraction(let x): String(x)
            case .count(let k): String(k)
            case nil: "None"
            }
        }
        try check(test, "test_size")
        try check(trainSize, "train_size")
        if case .fraction(let a) = test, case .fraction(let b) = trainSize, a + b > 1 {
            throw DatasetError("The sum of test_size and train_size = \(a + b), should be in the (0, 1) range. Reduce test_size and/or train_size.")
        }
        var nTest = test.map { s -> Int in
            switch s {
            case .fraction(let x): Int((x * Double(n)).rounded(.up))
            case .count(let k): k
            }
        }
        var nTrain = trainSize.map { s -> Int in
            switch s {
            case .fraction(let x): Int((x * Double(n)).rounded(.down))
            case .count(let k): k
            }
        }
        if nTrain == nil { nTrain = n - nTest! } else if nTest == nil { nTest = n - nTrain! }
        guard nTrain! + nTest! <= n else {
            throw DatasetError("The sum of train_size and test_size = \(nTrain! + nTest!), should be smaller than the number of samples \(n). Reduce test_size and/or train_size.")
        }
        guard nTrain! > 0 else {
            throw DatasetError("With n_samples=\(n), test_size=\(f(testSize)) and train_size=\(f(trainSize)), the resulting train set will be empty. Adjust any of the aforementioned parameters.")
        }
        let trainIndices: [Int], testIndices: [Int]
        if shuffle {
            let order = Self.permutation(n, seed: seed)
            testIndices = Array(order[0..<nTest!])
            trainIndices = Array(order[nTest!..<(nTest! + nTrain!)])
        } else {
            trainIndices = Array(0..<nTrain!)
            testIndices = Array(nTrain!..<(nTrain! + nTest!))
        }
        return DatasetDict([("train", select(trainIndices)), ("test", select(testIndices))])
    }
}
