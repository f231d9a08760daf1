// loadDataset and the table transforms against what Python `datasets` 5.2 reads (Fixtures/expected.json, written by
// scripts/make_data_fixtures.py), and every bad-input error naming its file, line and column.
import Foundation
@testable import SpeedData
import SpeedTestSupport
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// expected.json, parsed by Foundation (not by the code under test) into `Any` with NSNumber leaves; read-only
/// after it is made. JSONDecoder reads the numbers: JSONSerialization rounds some doubles wrongly (0.21333333333333335
/// becomes …337), which would hide or fake a one-ulp difference.
nonisolated(unsafe) let expected: [String: Any] = {
    let data = try! Data(contentsOf: fixtures.appendingPathComponent("expected.json"))
    return try! JSONDecoder().decode(FixtureJSON.self, from: data).any as! [String: Any]
}()

/// A JSON value decoded with JSONDecoder's correctly rounded numbers.
enum FixtureJSON: Decodable {
    case null, bool(Bool), int(Int), double(Double), string(String), array([FixtureJSON]), object([String: FixtureJSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([FixtureJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: FixtureJSON].self)) }
    }

    var any: Any {
        switch self {
        case .null: NSNull()
        case .bool(let b): b
        case .int(let i): NSNumber(value: i)
        case .double(let d): NSNumber(value: d)
        case .string(let s): s
        case .array(let a): a.map(\.any)
        case .object(let o): o.mapValues(\.any)
        }
    }
}

/// A JSON value from the fixture as a cell of a `type` column.
func cell(_ any: Any, _ type: String) -> DataValue {
    if any is NSNull { return .null }
    switch type {
    case "int": return .int((any as! NSNumber).intValue)
    case "double": return .double((any as! NSNumber).doubleValue)
    case "bool": return .bool(any as! Bool)
    case "string": return .string(any as! String)
    case "ints": return .ints((any as! [NSNumber]).map(\.intValue))
    case "doubles": return .doubles((any as! [NSNumber]).map(\.doubleValue))
    case "strings": return .strings(any as! [String])
    default: fatalError("fixture type \(type)")
    }
}

/// The error `body` throws, as text (a test failure when it does not throw).
func errorText(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        Issue.record("expected an error")
        return ""
    } catch {
        return "\(error)"
    }
}

@Suite struct DatasetLoadTests {
    @Test(arguments: ["rows.jsonl", "rows-array.json", "typed.csv", "lines.txt"])
    func loadsLikePythonDatasets(name: String) throws {
        let want = (expected["load"] as! [String: Any])[name] as! [String: Any]
        let path = fixtures.appendingPathComponent("load/\(name)").path
        let table = try loadDataset(want["format"] as! String, dataFiles: .files([path]), split: "train")
        let columns = want["columns"] as! [String], types = want["types"] as! [String]
        #expect(table.columnNames == columns)
        #expect(table.columnTypes.map(\.rawValue) == types)
        let rows = want["rows"] as! [[String: Any]]
        #expect(table.count == rows.count)
        for (r, row) in rows.enumerated() where r < table.count {
            for (c, name) in columns.enumerated() {
                #expect(table[r][name] == cell(row[name]!, types[c]), "row \(r) column \(name)")
            }
        }
        // Every row remembers its file and line (a CSV's first row is on line 2, after the header; the JSON
        // array's on line 2, after the '[').
        #expect(table.source(of: 0) == RowSource(file: path, line: name == "typed.csv" || name == "rows-array.json" ? 2 : 1))
    }

    @Test func rowsRememberTheirLines() throws {
        let jsonl = try loadDataset("json", dataFiles: .files([fixtures.appendingPathComponent("load/rows.jsonl").path]), split: "train")
        #expect((0..<jsonl.count).map { jsonl.source(of: $0)!.line } == [1, 3, 4, 5, 6])
        let csv = try loadDataset("csv", dataFiles: .files([fixtures.appendingPathComponent("load/typed.csv").path]), split: "train")
        // The blank line 4 is skipped; the quoted newline makes row 3 span lines 5 and 6.
        #expect((0..<csv.count).map { csv.source(of: $0)!.line } == [2, 3, 5, 7])
        let array = try loadDataset("json", dataFiles: .files([fixtures.appendingPathComponent("load/rows-array.json").path]), split: "train")
        #expect((0..<array.count).map { array.source(of: $0)!.line } == [2, 3, 8])
    }

    @Test func dataFilesNameSplitsOrConcatenateFiles() throws {
        let dir = IOTestDirectory()
        try "{\"text\": \"a\", \"label\": 1}\n".write(to: dir.file("a.jsonl"), atomically: true, encoding: .utf8)
        try "{\"text\": \"b\", \"label\": 0}\n{\"text\": \"c\", \"label\": 2.5}\n".write(to: dir.file("b.jsonl"), atomically: true, encoding: .utf8)
        let both = try loadDataset("json", dataFiles: .files([dir.file("a.jsonl").path, dir.file("b.jsonl").path]))
        #expect(both.splitNames == ["train"])
        #expect(try both.split("train").strings("text") == ["a", "b", "c"])
        // An int column that meets a double becomes doubles across the files.
        #expect(both["train"]!.type(of: "label") == .double)
        #expect(try both.split("train").doubles("label") == [1, 0, 2.5])
        let dd = try loadDataset("json", dataFiles: .splits([("train", [dir.file("b.jsonl").path]), ("test", [dir.file("a.jsonl").path])]))
        #expect(dd.splitNames == ["train", "test"])
        #expect(dd["test"]!.count == 1 && dd["train"]!.count == 2)
        #expect(errorText { try dd.split("validation") }.contains("no split 'validation'"))
        let literal: DataFiles = ["train": "x.csv", "test": ["y.csv", "z.csv"]]
        guard case .splits(let s) = literal else { Issue.record("not splits"); return }
        #expect(s.map(\.name) == ["train", "test"] && s[1].files == ["y.csv", "z.csv"])
    }

    @Test func textFilesKeepBlankLinesAndAllLineEndings() throws {
        let dir = IOTestDirectory()
        try Data("a\r\n\rb\n\nc\n".utf8).write(to: dir.file("t.txt"))
        let t = try loadDataset("text", dataFiles: .files([dir.file("t.txt").path]), split: "train")
        #expect(try t.strings("text") == ["a", "", "b", "", "c"])
    }

    @Test func missingAndEmptyFilesAreErrors() throws {
        let dir = IOTestDirectory()
        let missing = dir.file("nope.jsonl").path
        #expect(errorText { try loadDataset("json", dataFiles: .files([missing])) } .hasPrefix("\(missing): no such file"))
        for (name, content) in [("empty.jsonl", ""), ("blank.csv", " \n\n"), ("empty.txt", "")] {
            try content.write(to: dir.file(name), atomically: true, encoding: .utf8)
            let format = name.hasSuffix("csv") ? "csv" : name.hasSuffix("txt") ? "text" : "json"
            let text = errorText { try loadDataset(format, dataFiles: .files([dir.file(name).path])) }
            #expect(text.hasPrefix("\(dir.file(name).path): the file is empty"), "\(text)")
        }
        #expect(errorText { try loadDataset("parquet", dataFiles: "x") }.contains("unknown dataset format 'parquet'"))
        #expect(errorText { try loadDataset("json", dataFiles: .files([dir.url.path])) }.contains("is a directory"))
    }

    @Test func invalidUTF8NamesByteOffsetLineAndColumn() throws {
        let dir = IOTestDirectory()
        // Line 2: {"a": "é<0xFF>"} — the bad byte is at offset 3 + 7 + 2 = 12, character column 9.
        var bytes = Array("{}\n{\"a\": \"é".utf8)
        bytes.append(0xFF)
        bytes += Array("\"}\n".utf8)
        try Data(bytes).write(to: dir.file("bad.jsonl"))
        let text = errorText { try loadDataset("json", dataFiles: .files([dir.file("bad.jsonl").path])) }
        #expect(text == "\(dir.file("bad.jsonl").path):2:9: invalid UTF-8 at byte offset 12 (byte 0xFF); save the file as UTF-8")
        // A truncated sequence, an overlong form and a surrogate are invalid too.
        for bad: [UInt8] in [[0x61, 0xE2, 0x82], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]] {
            #expect(firstInvalidUTF8(bad) != nil, "\(bad)")
        }
        #expect(firstInvalidUTF8(Array("héllo 🤗 日本".utf8)) == nil)
    }

    /// (file content, expected "line:column: message" prefix after the path).
    static let malformedJSON: [(String, String)] = [
        ("{\"a\": 1,}\n", "1:9: expected a quoted key, found '}'"),
        ("{\"a\": 1}\n{\"a\": 2} x\n", "2:10: unexpected 'x' after the row's object"),
        ("{\"a\": 1}\n{\"a\": \"open\n", "2:7: unterminated string"),
        ("{\n  \"a\": 1\n}\n", "1:2: expected a quoted key, found the end of the line"),
        ("{\"a\": tru}\n", "1:7: invalid literal (expected true)"),
        ("{\"a\": 01}\n", "1:7: invalid number: a leading zero"),
        ("{\"a\": {\"b\": 1}}\n", "1:7: \"a\" holds a nested object"),
        ("{\"a\": [1, \"x\"]}\n", "1:11: \"a\" is a list mixing strings and numbers"),
        ("{\"a\": 1, \"a\": 2}\n", "1:10: key \"a\" appears twice"),
        ("[1, 2]\n", "1:2: expected a JSON object"),
        ("[{\"a\": 1},\n {\"a\": 2}\n", "3:1: expected ',' or ']' after a row of the JSON array, found the end of the file"),
        ("{\"é\": \"ü\", \"b\": \"\\q\"}\n", "1:18: invalid escape '\\q'"),
    ]

    @Test(arguments: 0..<malformedJSON.count)
    func malformedJSONNamesLineAndColumn(index: Int) throws {
        let (content, message) = Self.malformedJSON[index]
        let dir = IOTestDirectory()
        try content.write(to: dir.file("bad.jsonl"), atomically: true, encoding: .utf8)
        let text = errorText { try loadDataset("json", dataFiles: .files([dir.file("bad.jsonl").path])) }
        #expect(text.hasPrefix("\(dir.file("bad.jsonl").path):\(message)"), "\(text)")
    }

    @Test func aStringInAnIntColumnIsAnErrorAtItsPlace() throws {
        let dir = IOTestDirectory()
        try "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": \"pos\"}\n".write(to: dir.file("t.jsonl"), atomically: true, encoding: .utf8)
        let text = errorText { try loadDataset("json", dataFiles: .files([dir.file("t.jsonl").path])) }
        #expect(text.hasPrefix("\(dir.file("t.jsonl").path):2:24: column 'label' holds a string (\"pos\") here, but line 1 made it int"), "\(text)")
        try "{\"ids\": [1]}\n{\"ids\": 3}\n".write(to: dir.file("l.jsonl"), atomically: true, encoding: .utf8)
        #expect(errorText { try loadDataset("json", dataFiles: .files([dir.file("l.jsonl").path])) }.hasPrefix("\(dir.file("l.jsonl").path):2:9: column 'ids' holds a int"))
    }

    static let malformedCSV: [(String, String)] = [
        ("a,b\n1,\"open\n2,3\n", "2:3: unterminated quoted field"),
        ("a,b\n1,\"x\"y\n", "2:6: unexpected 'y' after a closing quote"),
        ("a,b\n1,2\n1,2,3\n", "3: expected 2 fields (the header's [\"a\", \"b\"]), saw 3"),
        ("a,a\n1,2\n", "1: the header names column 'a' twice"),
    ]

    @Test(arguments: 0..<malformedCSV.count)
    func malformedCSVNamesLineAndColumn(index: Int) throws {
        let (content, message) = Self.malformedCSV[index]
        let dir = IOTestDirectory()
        try content.write(to: dir.file("bad.csv"), atomically: true, encoding: .utf8)
        let text = errorText { try loadDataset("csv", dataFiles: .files([dir.file("bad.csv").path])) }
        #expect(text.hasPrefix("\(dir.file("bad.csv").path):\(message)"), "\(text)")
    }

    @Test func csvTypesColumnsAsPandasDoes() throws {
        let dir = IOTestDirectory()
        try "i,f,b,s,n\n1,1,True,1,\n-2,2.5,false,x,NA\n+3,-1e3,TRUE, 7 ,null\n, inf ,,,\n".write(to: dir.file("t.csv"), atomically: true, encoding: .utf8)
        let t = try loadDataset("csv", dataFiles: .files([dir.file("t.csv").path]), split: "train")
        #expect(t.columnTypes == [.int, .double, .bool, .string, .null])
        #expect(t["i"]! == [1, -2, 3, nil])
        #expect(t["f"]! == [1.0, 2.5, -1000.0, .double(.infinity)])
        #expect(t["b"]! == [true, false, true, nil])
        // A string column keeps each cell's text as written.
        #expect(t["s"]! == ["1", "x", " 7 ", nil])
        // A short row is filled with nulls, as pandas does.
        try "a,b,c\n1,2\n".write(to: dir.file("short.csv"), atomically: true, encoding: .utf8)
        #expect(try loadDataset("csv", dataFiles: .files([dir.file("short.csv").path]), split: "train")[0]["c"] == .null)
        // The files of one split need one header.
        try "a,b\n1,2\n".write(to: dir.file("other.csv"), atomically: true, encoding: .utf8)
        #expect(errorText { try loadDataset("csv", dataFiles: .files([dir.file("short.csv").path, dir.file("other.csv").path])) }
            .contains("differs from"))
    }

    @Test func aMissingRequiredValueIsAnErrorAtUseNamingItsLine() throws {
        let dir = IOTestDirectory()
        try "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\"}\n{\"text\": \"c\", \"label\": 0}\n".write(to: dir.file("t.jsonl"), atomically: true, encoding: .utf8)
        let path = dir.file("t.jsonl").path
        let t = try loadDataset("json", dataFiles: .files([path]), split: "train")
        // datasets fills the missing key with null …
        #expect(t["label"]! == [1, nil, 0])
        // … and using it as a label is the error, naming the row's file and line, even after a shuffle.
        #expect(errorText { try t.ints("label") }.hasPrefix("\(path):2: column 'label' is null in row 1"))
        let shuffled = t.shuffle(seed: 3)
        let row = (0..<3).first { shuffled[$0]["label"] == .null }!
        #expect(errorText { try shuffled.ints("label") }.hasPrefix("\(path):2: column 'label' is null in row \(row)"))
        #expect(errorText { try t.strings("label") }.hasPrefix("\(path):1: column 'label' holds 1 in row 0, not a string"))
        #expect(errorText { try t.ints("labels") }.contains("no column 'labels' (the table has [\"text\", \"label\"])"))
        #expect(try t.filter { !($0["label"]?.isNull ?? true) }.ints("label") == [1, 0])
    }
}

@Suite struct DatasetTransformTests {
    func table() throws -> DatasetTable {
        try DatasetTable(["text": ["good", "bad", "fine", "awful", "great"], "label": ["pos", "neg", "pos", "neg", "pos"]])
    }

    @Test func mapAddsAndRemovesColumnsRowByRow() throws {
        let t = try table().map { row in
            var out = row
            out["length"] = .int(row["text"]!.stringValue!.count)
            out["ids"] = .ints(row["text"]!.stringValue!.unicodeScalars.map { Int($0.value) })
            out["label"] = nil
            return out
        }
        #expect(t.columnNames == ["text", "length", "ids"])
        #expect(t.columnTypes == [.string, .int, .ints])
        #expect(t["length"]! == [4, 3, 4, 5, 5])
        #expect(t[1]["ids"] == [98, 97, 100])
        // One column keeps one type.
        let text = errorText { try table().map { row in var o = row; o["x"] = row["text"] == "bad" ? "s" : 1; return o } }
        #expect(text.contains("column 'x' holds a string (\"s\") here, but row 0 of map's output made it int"), "\(text)")
    }

    @Test func batchedMapMayChangeTheRowCount() throws {
        var sizes: [Int] = []
        let doubled = try table().map(batchSize: 2) { batch in
            sizes.append(batch.count)
            let texts = batch["text"]!
            return DataBatch([("text", texts + texts), ("copy", texts.map { _ in 1 } + texts.map { _ in 2 })])
        }
        #expect(sizes == [2, 2, 1])
        #expect(try doubled.strings("text") == ["good", "bad", "good", "bad", "fine", "awful", "fine", "awful", "great", "great"])
        #expect(doubled.columnNames == ["text", "copy"])
    }

    @Test func selectFilterAndSeededShuffle() throws {
        let t = try table()
        #expect(try t.select([4, 0, 0]).strings("text") == ["great", "good", "good"])
        #expect(try t.filter { $0["label"] == "neg" }.strings("text") == ["bad", "awful"])
        let a = t.shuffle(seed: 7), b = t.shuffle(seed: 7), c = t.shuffle(seed: 8)
        #expect(try a.strings("text") == b.strings("text"))
        #expect(try Set(a.strings("text")) == Set(t.strings("text")))
        let big = try DatasetTable(["i": (0..<50).map { DataValue.int($0) }])
        #expect(try big.shuffle(seed: 7).ints("i") != big.shuffle(seed: 8).ints("i"))
        #expect(try big.shuffle(seed: 7).ints("i") != Array(0..<50))
        _ = c
    }

    @Test func trainTestSplitSizesMatchDatasets() throws {
        for case let s as [String: Any] in (expected["load"] as! [String: Any])["train_test_split"] as! [Any] {
            func size(_ any: Any?) -> DatasetTable.SplitSize? {
                // ["fraction", 0.25] or ["count", 3] (JSON numbers alone would not keep 1 and 1.0 apart).
                guard let pair = any as? [Any] else { return nil }
                let n = pair[1] as! NSNumber
                return pair[0] as! String == "fraction" ? .fraction(n.doubleValue) : .count(n.intValue)
            }
            let n = s["n"] as! Int
            let t = try DatasetTable(["i": (0..<n).map { DataValue.int($0) }])
            if let message = s["error"] as? String {
                #expect(errorText { try t.trainTestSplit(testSize: size(s["test"]), trainSize: size(s["train"]), seed: 0) } == message)
                continue
            }
            let dd = try t.trainTestSplit(testSize: size(s["test"]), trainSize: size(s["train"]), seed: 1)
            #expect(dd["train"]!.count == s["nTrain"] as! Int, "\(s)")
            #expect(dd["test"]!.count == s["nTest"] as! Int, "\(s)")
            let train = Set(try dd["train"]!.ints("i")), test = Set(try dd["test"]!.ints("i"))
            #expect(train.isDisjoint(with: test))
        }
        let t = try DatasetTable(["i": (0..<10).map { DataValue.int($0) }])
        let ordered = try t.trainTestSplit(testSize: 0.3, shuffle: false)
        #expect(try ordered["train"]!.ints("i") == Array(0..<7) && ordered["test"]!.ints("i") == [7, 8, 9])
        #expect(try t.trainTestSplit(testSize: 3, seed: 5)["test"]!.ints("i") == t.trainTestSplit(testSize: 3, seed: 5)["test"]!.ints("i"))
    }

    @Test func classEncodeColumnSortsNamesAsDatasets() throws {
        let enc = (expected["load"] as! [String: Any])["class_encode"] as! [String: [String: Any]]
        let strings = enc["strings"]!
        let values = (strings["values"] as! [Any]).map { cell($0, "string") }
        let t = try DatasetTable(["label": values]).classEncodeColumn("label")
        #expect(t.classLabels["label"] == strings["names"] as? [String])
        #expect(t["label"]! == (strings["ids"] as! [Any]).map { cell($0, "int") })
        #expect(t.type(of: "label") == .int)
        let ints = enc["ints"]!
        let u = try DatasetTable(["label": (ints["values"] as! [Any]).map { cell($0, "int") }]).classEncodeColumn("label")
        #expect(u.classLabels["label"] == ints["names"] as? [String])
        #expect(try u.ints("label") == (ints["ids"] as! [Int]))
        // The names follow renames and survive row transforms.
        let renamed = try t.renameColumn("label", to: "labels").shuffle(seed: 1)
        #expect(renamed.classLabels["labels"] == strings["names"] as? [String])
        #expect(errorText { try DatasetTable(["x": [[1, 2]]]).classEncodeColumn("x") }.contains("holds lists"))
    }

    @Test func removeRenameAndSelectColumns() throws {
        let t = try table()
        #expect(try t.removeColumns(["label"]).columnNames == ["text"])
        #expect(errorText { try t.removeColumns(["nope"]) }.contains("no column 'nope'"))
        #expect(try t.renameColumn("label", to: "labels").columnNames == ["text", "labels"])
        #expect(errorText { try t.renameColumn("label", to: "text") }.contains("already has a column 'text'"))
        #expect(try t.selectColumns(["label", "text"]).columnNames == ["label", "text"])
        #expect(try t.unique("label") == ["pos", "neg"])
        #expect(errorText { try DatasetTable(["a": [1, 2], "b": [1]]) }.contains("column 'b' has 1 values"))
        let rows = try DatasetTable(rows: [["a": 1], ["b": "x"]])
        #expect(rows.columnNames == ["a", "b"] && rows["a"]! == [1, nil] && rows["b"]! == [nil, "x"])
    }
}
