// The swiftspeed command line: training, DeepSpeed's launcher and ds_report (`report`), config checks, benchmarks.
import ArgumentParser

@main
struct SwiftSpeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftspeed",
        abstract: "DeepSpeed's training runtime, in Swift.",
        subcommands: [Train.self, Finetune.self, Launch.self, Config.self, Report.self, Bench.self, ZeroToFP32.self, CommCheck.self, ZeroCheck.self,
                      SelfTestCommand.self, Tokenize.self, Generate.self, LaunchExec.self])
}
