// TrainingArguments against transformers 5.x itself (Fixtures/training_args.json: defaults, HfArgumentParser command
// lines, __post_init__ normalization and errors), plus our own errors, JSON round trips and the help text.
// Invariant: comparisons use Python's == on the JSON values (500 == 500.0), key by key over the keys SwiftSpeed implements.

import Foundation
import SpeedRuntime
@testable import SpeedTrainer
import Testing

struct ArgsFixture: Decodable {
    struct CLI: Decodable { var argv: [String]; var args: [String: JSONValue] }
    struct Validation: Decodable, CustomTestStringConvertible {
        var name: String; var kwargs: [String: JSONValue]; var args: [String: JSONValue]?; var error: String?
        var testDescription: String { name }
    }
    var defaults: [String: JSONValue]
    var cli: [CLI]
    var validation: [Validation]
    var toJsonString: JSONValue

    enum CodingKeys: String, CodingKey { case defaults, cli, validation, toJsonString = "to_json_string" }

    static let shared: ArgsFixture = load("training_args.json")
}

func load<T: Decodable>(_ name: String) -> T {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    do { return try JSONDecoder().decode(T.self, from: Data(contentsOf: url)) } catch {
        fatalError("cannot read \(url.path): \(error)")
    }
}

/// Every key of `want` has a Python-equal value in `got` (lr_scheduler_kwargs: transformers' None is our {}).
func expectSameArguments(_ got: JSONValue, _ want: [String: JSONValue], _ what: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    for key in want.keys.sorted() {
        var expected = want[key]!
        if key == "lr_scheduler_kwargs" && expected == .null { expected = [:] }
        let value = got[key] ?? .null
        #expect(PythonValue.equal(value, expected), "\(what): \(key) = \(value.rendered()), transformers \(expected.rendered())",
                sourceLocation: sourceLocation)
    }
}

@Suite struct TrainingArgumentsTests {
    @Test func defaultsAreTransformers() throws {
        let args = try TrainingArguments(outputDir: "trainer_output")
        let fixture = ArgsFixture.shared.defaults
        // The fixture holds exactly the keys we implement (scripts/make_trainer_fixtures.py reads swift_keys.json).
        let ours = Set(TrainingArguments.fields.filter { !$0.legacy }.map(\.name))
        #expect(Set(fixture.keys) == ours)
        expectSameArguments(args.json, fixture, "defaults")
        #expect(args.warnings.isEmpty)
    }

    @Test(arguments: ArgsFixture.shared.cli.indices)
    func commandLinesParseAsHfArgumentParser(_ i: Int) throws {
        let c = ArgsFixture.shared.cli[i]
        let args = try TrainingArguments.parse(arguments: c.argv)
        var want = c.args
        if c.argv.contains("--output_dir") == false && !c.argv.contains(where: { $0.hasPrefix("--output_dir=") }) {
            want["output_dir"] = "trainer_output"
        }
        expectSameArguments(args.json, want, c.argv.joined(separator: " "))
    }

    @Test(arguments: ArgsFixture.shared.validation)
    func postInitNormalizesAndRejectsAsTransformers(_ c: ArgsFixture.Validation) throws {
        var json = c.kwargs
        json["output_dir"] = "trainer_output"
        if let message = c.error {
            let error = #expect(throws: TrainingArgumentsError.self) { try TrainingArguments(json: .object(json)) }
            #expect(error?.message == message)
        } else {
            let args = try TrainingArguments(json: .object(json))
            expectSameArguments(args.json, c.args!, c.name)
            // Validation is idempotent.
            #expect(try args.validated() == args)
        }
    }

    @Test func aFileWrittenByToJsonStringLoadsWithoutWarnings() throws {
        let args = try TrainingArguments(json: ArgsFixture.shared.toJsonString)
        #expect(args.warnings.isEmpty, "\(args.warnings)")
        #expect(args == (try TrainingArguments(outputDir: "trainer_output")))
        // An ignored key away from transformers' default is a warning, not silence.
        var json = ArgsFixture.shared.toJsonString
        json["torch_compile"] = true
        #expect(try TrainingArguments(json: json).warnings.count == 1)
    }

    @Test func jsonRoundTripsThroughCodableAndFiles() throws {
        var args = try TrainingArguments.parse(arguments: [
            "--output_dir", "o", "--bf16", "--use_cpu", "--lr_scheduler_type", "polynomial",
            "--lr_scheduler_kwargs", #"{"power": 2}"#, "--warmup_steps", "0.05", "--report_to", "tensorboard", "csv",
            "--label_names", "labels", "--deepspeed", #"{"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": "auto"}"#,
            "--data_seed", "3", "--save_total_limit", "2"])
        #expect(args.lrSchedulerKwargs == ["power": 2])
        #expect(args.reportTo == ["tensorboard", "csv"])
        #expect(args.deepspeed == .inline(["zero_optimization": ["stage": 3], "train_micro_batch_size_per_gpu": "auto"]))
        let data = try JSONEncoder().encode(args)
        #expect(try JSONDecoder().decode(TrainingArguments.self, from: data) == args)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trainargs-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try args.json.rendered(pretty: true).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try TrainingArguments.load(path: path) == args)
        #expect(try TrainingArguments.parse(arguments: [path]) == args)
        // 4.x-only keys appear only when set.
        #expect(args.json["warmup_ratio"] == nil && args.json["overwrite_output_dir"] == nil)
        args.warmupRatio = 0.1
        #expect(args.json["warmup_ratio"] == 0.1)
    }

    @Test func flagsAndTheirValueForms() throws {
        #expect(try TrainingArguments.parse(arguments: ["--fp16"]).fp16)
        #expect(try TrainingArguments.parse(arguments: ["--fp16=true"]).fp16)
        #expect(try !TrainingArguments.parse(arguments: ["--fp16", "no"]).fp16)
        #expect(try !TrainingArguments.parse(arguments: ["--no_remove_unused_columns"]).removeUnusedColumns)
        #expect(try TrainingArguments.parse(arguments: ["--report_to", "none"]).reportTo == [])
        #expect(try TrainingArguments.parse(arguments: ["--report_to=all"]).reportTo == ["tensorboard", "csv"])
        #expect(try TrainingArguments.parse(arguments: ["--deepspeed", "ds.json"]).deepspeed == .path("ds.json"))
        #expect(try TrainingArguments.parse(arguments: ["--max_steps", "-1"]).maxSteps == -1)
        let (args, rest) = try TrainingArguments.parseKnown(arguments: ["--model", "gpt2", "--max_steps", "10", "--print-deepspeed-config"])
        #expect(args.maxSteps == 10 && rest == ["--model", "gpt2", "--print-deepspeed-config"])
    }

    @Test func errorsNameTheFlagAndSuggestOrExpect() {
        func message(_ argv: [String]) -> String {
            do { _ = try TrainingArguments.parse(arguments: argv); return "no error" } catch { return "\(error)" }
        }
        #expect(message(["--learning_rat", "1e-4"]) == "--learning_rat: unknown argument (did you mean --learning_rate?)")
        #expect(message(["--per_device_train_batch_size", "8.5"]) == "--per_device_train_batch_size: invalid int value: '8.5'; expected an integer")
        #expect(message(["--learning_rate"]) == "--learning_rate: expected one argument (a number)")
        #expect(message(["--fp16", "--bf16", "--use_cpu"]) == "--bf16: At most one of fp16 and bf16 can be True, but not both")
        #expect(message(["--eval_strategy", "sometimes"]).hasPrefix("--eval_strategy: 'sometimes' is not a valid IntervalStrategy, please select one of ['no', 'steps', 'epoch']"))
        #expect(message(["--lr_scheduler_type", "cosin"]).contains("(did you mean 'cosine'?)"))
        #expect(message(["--lr_scheduler_type", "reduce_lr_on_plateau"]).contains("not implemented in SwiftSpeed"))
        #expect(message(["--report_to", "wandb"]).contains("'wandb' is not an integration SwiftSpeed reports to"))
        #expect(message(["--evaluation_strategy", "steps"]) == "--evaluation_strategy: not an argument of transformers 5.x; use --eval_strategy")
        #expect(message(["--optim", "adafactor"]).contains("builds torch's AdamW"))
        #expect(message(["--lr_scheduler_kwargs", #"{"num_cycles": 2}"#]).contains("lr_scheduler_kwargs.num_cycles: not an argument of the linear schedule"))
        #expect(message(["stray"]).contains("unrecognized argument stray"))
        let json = #expect(throws: TrainingArgumentsError.self) { try TrainingArguments(json: ["seed": "42"]) }
        #expect(json?.description == "seed: expected an integer, got \"42\" (a string)")
        let unknown = #expect(throws: TrainingArgumentsError.self) { try TrainingArguments(json: ["warmup_step": 3]) }
        #expect(unknown?.description == "warmup_step: unknown training argument (did you mean warmup_steps?)")
    }

    @Test func warmupRules() throws {
        var a = TrainingArguments()
        a.warmupSteps = 7.9
        #expect(a.warmupSteps(forTrainingSteps: 100) == 7)      // int(warmup_steps) when >= 1
        a.warmupSteps = 0.1
        #expect(a.warmupSteps(forTrainingSteps: 25) == 3)       // ⌈2.5⌉
        a.warmupSteps = 0
        a.warmupRatio = 0.25
        #expect(a.warmupSteps(forTrainingSteps: 9) == 3)        // 4.x: ⌈R·T⌉
        a.warmupSteps = 2
        #expect(a.warmupSteps(forTrainingSteps: 9) == 2)        // warmup_steps overrides the ratio
        #expect(try a.validated().warnings.contains { $0.contains("warmup_steps will override") })
        a.warmupRatio = 1.5
        #expect(throws: TrainingArgumentsError(key: "warmup_ratio", "warmup_ratio must lie in range [0,1]")) { try a.validated() }
    }

    @Test func helpListsEveryArgumentWithItsDefault() {
        let help = TrainingArguments.helpText
        for field in TrainingArguments.fields { #expect(help.contains("--\(field.name) "), "\(field.name)") }
        #expect(help.contains("(default: 5e-05)"))
        #expect(help.contains("--no_remove_unused_columns"))
        let line = help.split(separator: "\n").first { $0.contains("--per_device_train_batch_size ") }
        #expect(line?.hasSuffix("(default: 8)") == true)
        let lr = help.split(separator: "\n").first { $0.contains("--lr_scheduler_type ") }
        #expect(lr?.hasSuffix("(default: linear)") == true)
        let ds = help.split(separator: "\n").first { $0.contains("--deepspeed ") }
        #expect(ds?.hasSuffix("(default: None)") == true)
    }
}
