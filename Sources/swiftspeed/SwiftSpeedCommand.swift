// The swiftspeed command line: benchmarks and tools (DeepSpeed's launcher, ds_report, … join later).
import ArgumentParser

@main
struct SwiftSpeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftspeed",
        abstract: "DeepSpeed's training runtime, in Swift.",
        subcommands: [Train.self, Launch.self, Config.self, Bench.self, ZeroToFP32.self, CommCheck.self, ZeroCheck.self, LaunchExec.self])
}
