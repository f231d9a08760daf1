// B7: `swiftspeed bench hf-trainer --model DIR --rows FILE`: the seed's Trainer program's training step on the CPU
// (sequence classification, AdamW, fp32), samples per second after warm-up, over the rows scripts/bench_b7_hf_trainer.py
// wrote for HF's Trainer. Invariant: the timed loop is the library's Trainer.train() itself (the same collator, engine
// and optimizer the example uses), timed between step ends as the Python anchor's callback times HF's.
import ArgumentParser
import Foundation
import SwiftSpeed

/// Records the monotonic time at every optimizer step's end.
final class StepClock: TrainerCallback {
    var times: [Double] = []
    func onStepEnd(arguments: TrainingArguments, state: TrainerState, control: inout TrainerControl) { times.append(now()) }
}

extension Bench {
    struct HFTrainerStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hf-trainer",
            abstract: "B7: Trainer.train() fine-tuning a sequence classifier on pre-tokenized rows, samples per second after warm-up.")

        @Option(help: "A Hugging Face BERT folder (e.g. /opt/swiftspeed/models/all-MiniLM-L6-v2).") var model: String
        @Option(help: "JSON Lines of input_ids/label (scripts/bench_b7_hf_trainer.py writes them).") var rows: String
        @Option(help: "Threads (B7 uses 2).") var threads: Int = 2
        @Option(help: "Per-device batch (B7 uses 16).") var batch: Int = 16
        @Option(help: "Untimed optimizer steps first.") var warmup: Int = 3
        @Option(help: "Timed optimizer steps.") var steps: Int = 10
        @Flag(help: "Print one JSON line.") var json = false

        func validate() throws {
            guard threads >= 1, batch >= 1, warmup >= 1, steps >= 1 else {
                throw ValidationError("--threads, --batch, --warmup and --steps must be at least 1")
            }
        }

        func run() throws {
            let device = Device.cpu(threads: threads)
            let table = try loadDataset("json", dataFiles: .files([rows]), split: "train")
            guard table.count >= batch * (warmup + steps) else {
                throw ValidationError("--rows \(rows) has \(table.count) rows; \(warmup + steps) steps of \(batch) need \(batch * (warmup + steps))")
            }
            let (net, _, _) = try AutoModelForSequenceClassification.fromPretrained(URL(fileURLWithPath: model), numLabels: 2,
                                                                                     device: device, seed: 42)
            var args = try TrainingArguments(outputDir: FileManager.default.temporaryDirectory.appendingPathComponent("b7-swiftspeed").path)
            args.perDeviceTrainBatchSize = batch
            args.maxSteps = warmup + steps
            args.learningRate = 3e-5
            args.saveStrategy = .no
            args.loggingStrategy = .no
            args.seed = 42
            let clock = StepClock()
            let trainer = try Trainer(model: net, arguments: args, trainDataset: table,
                                      dataCollator: DataCollatorWithPadding(padTokenId: 0, device: device), callbacks: [clock])
            try trainer.train()
            let measured = clock.times.suffix(steps + 1)
            let seconds = measured.last! - measured.first!
            let rate = Double(steps * batch) / seconds
            if json {
                print("{\"bench\":\"b7-swiftspeed-trainer\",\"samples_per_s\":\(rate),\"s_per_step\":\(seconds / Double(steps)),\"steps\":\(steps),\"batch\":\(batch),\"threads\":\(threads)}")
            } else {
                print(String(format: "B7 Trainer.train(): %d steps of %d rows in %.3f s on %d threads: %.2f samples/s",
                             steps, batch, seconds, threads, rate))
            }
        }
    }
}
