// The seed's second program in Swift: a pretrained BERT (all-MiniLM-L6-v2) fine-tuned for sentiment with the Trainer
// and DeepSpeed's ZeRO-2 config, line for line with transformers' version. Invariant: the data is real labelled text
// (Rotten Tomatoes critics' snippets, written by scripts/setup.sh), and accuracy is printed before and after.
//
//   swift run -c release HFTrainerExample [MODEL_DIR] [DATA_DIR]
//   swiftspeed launch --num_procs 2 -- .build/release/HFTrainerExample
import Foundation
import SwiftSpeed

let modelDir = CommandLine.arguments.dropFirst().first ?? "/opt/swiftspeed/models/all-MiniLM-L6-v2"
let dataDir = CommandLine.arguments.dropFirst(2).first ?? "/opt/swiftspeed/data/rotten-tomatoes"
let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let group = try ProcessGroups.fromEnvironment()

// 1. Load the model and the dataset (and tokenize it, as dataset.map(tokenizer) does).
let (model, _, _) = try AutoModelForSequenceClassification.fromPretrained(URL(fileURLWithPath: modelDir), numLabels: 2)
let tokenizer = try Tokenizer(contentsOf: URL(fileURLWithPath: modelDir))
let dataset = try loadDataset("json", dataFiles: ["train": .files(["\(dataDir)/train.jsonl"]), "validation": .files(["\(dataDir)/eval.jsonl"])])
    .mapSplits { try $0.tokenized(with: tokenizer, maxLength: 64) }

// 2. The training arguments. A global batch of 16 on any number of ranks (the seed's 16 per device on one), so
// `swiftspeed launch --num_procs 2` trains exactly the steps one process does.
guard 16 % group.size == 0 else {
    FileHandle.standardError.write(Data("HFTrainerExample: run it on 1, 2, 4, 8 or 16 ranks (the global batch of 16 is split evenly), not \(group.size)\n".utf8))
    exit(1)
}
var trainingArgs = try TrainingArguments(outputDir: "./results")
trainingArgs.perDeviceTrainBatchSize = 16 / group.size
trainingArgs.perDeviceEvalBatchSize = 16
trainingArgs.numTrainEpochs = 1
trainingArgs.learningRate = 1e-4
trainingArgs.saveSteps = 10_000
trainingArgs.saveTotalLimit = 2
trainingArgs.loggingSteps = 20
trainingArgs.deepspeed = .path(here.appendingPathComponent("ds_config.json").path)   // the key part: DeepSpeed's config

// 3. Create the Trainer and train.
let trainer = try Trainer(
    model: model,
    arguments: trainingArgs,
    trainDataset: try dataset.split("train").select(0..<2048),
    evalDataset: try dataset.split("validation"),
    dataCollator: DataCollatorWithPadding(padTokenId: 0),
    computeMetrics: Metrics.classification(),
    processGroup: group)
trainer.onLog = { entry in
    if case .double(let loss)? = entry["loss"], case .int(let step)? = entry["step"] { print("step \(step): loss \(loss)") }
}

let before = try trainer.evaluate()
try trainer.train()
let after = try trainer.evaluate()
if group.rank == 0 {
    print("eval accuracy before fine-tuning: \(before["eval_accuracy"]!), after: \(after["eval_accuracy"]!) (f1 \(after["eval_f1"]!))")
}
group.finalize()
