// `swiftspeed finetune`: the seed's Trainer program as a command — from_pretrained, TrainingArguments from HF-style
// flags (or --args FILE), Trainer(train, eval).train() on the library's Trainer, accuracy/F1 on --eval at the end.
// Invariant: the training flags are TrainingArguments' own spellings, passed through unchanged; with
// --print-deepspeed-config only config.json and the number of --train rows are read (no weights, no tokenizer).

import ArgumentParser
import Foundation
import Logging
import SwiftSpeed

struct Finetune: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            abstract: "Fine-tune a Hugging Face model folder with the Trainer (sequence classification or causal LM).",
            discussion: """
                Every other flag is a TrainingArguments argument with transformers' spelling, e.g. \
                --per_device_train_batch_size 16 --learning_rate 3e-5 --num_train_epochs 1 --deepspeed ds.json \
                --eval_strategy epoch --report_to csv. Rows are JSON Lines or CSV: "text" (and optionally \
                "text_pair") with "label" for classification (ints, strings or floats for regression), or "text" / \
                "input_ids" for a causal LM.

                TrainingArguments:
                \(TrainingArguments.helpText)
                """)
    }

    enum Task: String, ExpressibleByArgument { case auto, sequenceClassification = "sequence-classification", causalLM = "causal-lm" }

    @Option(help: "A Hugging Face model folder (config.json, safetensors, tokenizer.json).") var model: String
    @Option(help: "Training rows (.jsonl, .json or .csv).") var train: String
    @Option(help: "Evaluation rows, same format; accuracy and F1 are reported on them.") var eval: String?
    @Option(help: ArgumentHelp("A JSON file of TrainingArguments; the flags override it.", valueName: "file")) var args: String?
    @Option(name: .customLong("num_labels"), help: "Classes (default: from the training file's labels).") var numLabels: Int?
    @Option(help: "auto (from config.json's architectures), sequence-classification or causal-lm.") var task: Task = .auto
    @Option(name: .customLong("max_length"), help: "Truncate rows to this many tokens (default: the model's maximum).")
    var maxLength: Int?
    @Option(name: .customLong("text_column"), help: "The text column.") var textColumn = "text"
    @Option(name: .customLong("text_pair_column"), help: "A second text column (sentence pairs).") var textPairColumn: String?
    @Flag(help: "Print every log and evaluation as one JSON line (HF's keys) instead of a progress bar.") var json = false
    @Flag(help: "Print the DeepSpeed config with every \"auto\" filled and exit (reads config.json and the row count only).")
    var printDeepspeedConfig = false
    @Option(parsing: .unconditional, help: "CPU worker threads (default: all cores).") var threads: Int?
    @Argument(parsing: .allUnrecognized, help: "TrainingArguments flags (see below).") var trainingArguments: [String] = []

    func validate() throws {
        if let n = numLabels, n < 1 { throw ValidationError("--num_labels must be at least 1, got \(n)") }
        if let n = maxLength, n < 1 { throw ValidationError("--max_length must be at least 1 token, got \(n)") }
        if let n = threads, n < 1 { throw ValidationError("--threads must be at least 1, got \(n)") }
    }

    func run() throws {
        var logger = Logger(label: "swiftspeed")
        logger.logLevel = json ? .warning : .info
        do {
            try finetune(logger: &logger)
        } catch let e as ValidationError {
            throw e
        } catch let e as ExitCode {
            throw e
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }

    func finetune(logger: inout Logger) throws {
        var (arguments, rest) = try TrainingArguments.parseKnown(arguments: trainingArguments, baseFile: args)
        if let unknown = rest.first {
            throw TrainingArgumentsError(key: unknown, "unknown argument (neither a finetune option nor a TrainingArguments flag; see --help)")
        }
        if arguments.useCpu == false { arguments.useCpu = true }
        let group = try ProcessGroups.fromEnvironment(timeout: 1800)
        if group.rank != 0 { logger.logLevel = .error }
        let dir = URL(fileURLWithPath: model)
        let folder = try PretrainedFolder(dir)
        let modelConfig = try JSONValue.parse(String(decoding: folder.configData, as: UTF8.self))
        func configInt(_ key: String) -> Int? {
            if case .object(let o) = modelConfig { return o[key]?.intValue }
            return nil
        }
        let task = resolvedTask(folder)
        let format = train.hasSuffix(".csv") ? "csv" : "json"
        var trainTable = try loadDataset(format, dataFiles: .files([train]), split: "train")

        if printDeepspeedConfig {
            let setup = try TrainerSetup(arguments: arguments, modelConfig: modelConfig, trainRows: trainTable.count,
                                         worldSize: group.size)
            if group.rank == 0 { print(setup.json.rendered(pretty: false)) }
            group.finalize()
            return
        }

        let device: Device = threads.map { Device.cpu(threads: $0) } ?? .cpu
        // Rows that are already token ids need no tokenizer; text rows get the folder's (its error says what is missing).
        let loadedTokenizer = Result { try Tokenizer(contentsOf: dir) }
        let tokenizer = try? loadedTokenizer.get()
        var evalTable = try eval.map { try loadDataset($0.hasSuffix(".csv") ? "csv" : "json", dataFiles: .files([$0]), split: "train") }
        var labelCount: Int?
        if task == .sequenceClassification {
            (trainTable, evalTable, labelCount) = try encodeLabels(trainTable, evalTable)
        }
        let limit = maxLength ?? tokenizer?.config?.modelMaxLength.map { Int(Swift.min($0, 1e9)) }
            ?? configInt("max_position_embeddings") ?? configInt("n_positions")
        func prepare(_ t: DatasetTable) throws -> DatasetTable {
            t.columnNames.contains("input_ids") ? t
                : try t.tokenized(with: loadedTokenizer.get(), textColumn: textColumn, pairColumn: textPairColumn, maxLength: limit)
        }
        trainTable = try prepare(trainTable)
        evalTable = try evalTable.map(prepare)
        let padId = tokenizer?.config?.padToken.flatMap { tokenizer?.id(of: $0) } ?? configInt("pad_token_id")
            ?? configInt("eos_token_id") ?? 0

        let net: any PretrainedModel
        let collator: any DataCollator
        var metrics: ComputeMetrics?
        switch task {
        case .causalLM:
            net = try AutoModelForCausalLM.fromPretrained(dir, device: device)
            collator = DataCollatorForLanguageModeling(padTokenId: padId, mlm: false, device: device)
        default:
            let loaded = try AutoModelForSequenceClassification.fromPretrained(
                dir, numLabels: numLabels ?? labelCount, device: device, seed: UInt64(arguments.seed))
            net = loaded.model
            if group.rank == 0, !loaded.newlyInitialized.isEmpty {
                logger.warning("Some weights of \(type(of: net).architecture) were not initialized from the model checkpoint at \(model) and are newly initialized: \(loaded.newlyInitialized)")
            }
            collator = DataCollatorWithPadding(padTokenId: padId, device: device)
            let n = numLabels ?? labelCount ?? 2
            metrics = n == 1 ? Metrics.regression() : Metrics.classification(average: n == 2 ? .binary : .macro)
        }
        let trainer = try Trainer(model: net, arguments: arguments, trainDataset: trainTable, evalDataset: evalTable,
                                  dataCollator: collator, computeMetrics: metrics, processGroup: group, logger: logger)
        trainer.modelOrigin = (dir.path, String(decoding: folder.configData, as: UTF8.self))
        trainer.processingFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                                   "vocab.json", "merges.txt"].map { dir.appendingPathComponent($0) }
        var progress: ProgressBar?
        trainer.onLog = { entry in
            if json { print(JSONValue.object(entry.filter { $0.value.doubleValue?.isFinite ?? true }).rendered()); return }
            if entry.keys.contains(where: { $0.hasPrefix("eval_") }) {
                progress?.finish(); progress = nil
                let shown = entry.filter { $0.key.hasPrefix("eval_") && !$0.key.hasSuffix("_per_second") && $0.key != "eval_runtime" }
                print(shown.sorted { $0.key < $1.key }.map { "\($0.key) \(fmt($0.value.doubleValue ?? .nan))" }.joined(separator: " | "))
            }
        }
        if !json, !(arguments.disableTqdm ?? false) {
            trainer.onProgress = { done, total, note in
                if progress == nil { progress = ProgressBar(total: total, start: done - 1) }
                progress?.update(done, note)
            }
        }
        do {
            let out = try trainer.train()
            progress?.finish(); progress = nil
            if evalTable != nil { try trainer.evaluate() }
            try trainer.saveModel()
            if !json, group.rank == 0 {
                print("trained \(out.globalStep) steps in \(fmt(out.metrics["train_runtime"]!)) s, train_loss \(fmt(out.trainingLoss)); model saved to \(arguments.outputDir)")
            }
        } catch let error as CommError {
            printError("\(error)")
            group.abort(code: 3)
        }
        try group.barrier()
        group.finalize()
    }

    /// The task from --task, else from config.json's architectures (causal LMs end in ForCausalLM / LMHeadModel).
    func resolvedTask(_ folder: PretrainedFolder) -> Task {
        guard task == .auto else { return task }
        return folder.architectures.contains { $0.hasSuffix("ForCausalLM") || $0.hasSuffix("LMHeadModel") }
            ? .causalLM : .sequenceClassification
    }

    /// `label` (or `labels`) as class ids: strings in the training set's sorted order (shared by the eval set), ints as
    /// they are (classes = max + 1), floats as a regression target. Returns the class count (1 for regression).
    func encodeLabels(_ train: DatasetTable, _ eval: DatasetTable?) throws -> (DatasetTable, DatasetTable?, Int) {
        guard let column = ["label", "labels"].first(where: { train.columnNames.contains($0) }) else {
            throw TrainerError("--train \(self.train) has no label column (columns: \(train.columnNames.joined(separator: ", "))); sequence classification needs \"label\"")
        }
        switch train.type(of: column) {
        case .string?:
            let encoded = try train.classEncodeColumn(column)
            let names = encoded.classLabels[column] ?? []
            let ids = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
            let mappedEval = try eval.map { table in
                try table.map { row in
                    var out = row
                    if let s = row[column]?.stringValue {
                        guard let id = ids[s] else {
                            throw DatasetError(file: row.source?.file, line: row.source?.line,
                                               "label \"\(s)\" does not occur in --train (its labels: \(names.joined(separator: ", ")))")
                        }
                        out[column] = .int(id)
                    }
                    return out
                }
            }
            return (encoded, mappedEval, names.count)
        case .double?:
            return (train, eval, 1)
        default:
            let labels = try train.ints(column)
            return (train, eval, (labels.max() ?? 1) + 1)
        }
    }
}
