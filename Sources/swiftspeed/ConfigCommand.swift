// `swiftspeed config FILE`: validates a ds_config.json and prints the resolved config as one JSON object.
// Invariant: stdout carries only the JSON; warnings and errors go to stderr, and a bad config exits with status 1.

import ArgumentParser
import Foundation
import SwiftSpeed

/// `swiftspeed config ds_config.json [--world-size N] [--lr-steps K]`
///
/// ```
/// $ swiftspeed config ds_config.json --world-size 4 --lr-steps 3
/// {"train_batch_size": 32, …, "lr": [0.0, 0.0, 0.00030103]}
/// ```
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a DeepSpeed config and print it resolved (batch sizes, defaults, LR schedule) as JSON.",
        discussion: """
            Batch sizes are resolved with DeepSpeed's rule for the data-parallel world size. With --lr-steps K \
            the output has "lr": the learning rate of each of the first K optimizer steps (step 1 runs at the \
            scheduler's construction-time LR). When the config defines no learning rate (no optimizer and no \
            scheduler, or a schedule scaling a client optimizer's LR) the entries are null and a warning says why. \
            "auto" values are errors here (the Hugging Face Trainer fills them).
            """)

    @Argument(help: "Path to ds_config.json.") var file: String
    @Option(parsing: .unconditional, help: "Data-parallel world size used by the batch-size rule.") var worldSize: Int = 1
    @Option(parsing: .unconditional, help: "Print the learning rate of the first K optimizer steps.") var lrSteps: Int?

    func validate() throws {
        if let lrSteps, !(0...1_000_000).contains(lrSteps) {
            throw ValidationError("--lr-steps must be between 0 and 1000000 (got \(lrSteps))")
        }
        if worldSize < 1 { throw ValidationError("--world-size must be >= 1 (got \(worldSize))") }
    }

    func run() throws {
        do {
            let config = try DeepSpeedConfig.load(path: file, worldSize: worldSize)
            let report = try config.report(lrSteps: lrSteps)
            for warning in report.warnings { printError("warning: \(warning)") }
            print(report.json.rendered(pretty: true))
        } catch let error as ConfigError {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    private func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
