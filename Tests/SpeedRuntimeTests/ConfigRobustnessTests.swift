// Hostile and careless config input, by class: sizes that overflow, numbers out of range, learning rates and
// loss scales that would train silently wrong, files that are not files, and a bounded fuzz of the parser.
// Invariant: every case ends in a ConfigError naming the key (or the file), never a trap, hang or silent accept.

import Foundation
@testable import SpeedRuntime
import SpeedTestSupport
import Testing

@Suite struct ConfigRobustnessTests {
    func error(_ json: String, worldSize: Int = 1) -> ConfigError? {
        #expect(throws: ConfigError.self, "\(json)") { try DeepSpeedConfig.parse(json, worldSize: worldSize) }
    }

    @Test(arguments: [
        (#"{"train_batch_size": 4611686018427387904, "gradient_accumulation_steps": 4}"#, 1, "train_batch_size"),
        (#"{"train_micro_batch_size_per_gpu": 4611686018427387904, "gradient_accumulation_steps": 4}"#, 1, "train_batch_size"),
        (#"{"train_micro_batch_size_per_gpu": 8}"#, 4_611_686_018_427_387_904, "train_batch_size"),
        (#"{"train_batch_size": 16}"#, 4_611_686_018_427_387_904, "train_micro_batch_size_per_gpu"),
        (#"{"train_batch_size": 2199023255552}"#, 1, "train_batch_size"),
    ] as [(String, Int, String)])
    func batchSizesThatOverflowOrExceedAnyRealBatchAreErrors(json: String, worldSize: Int, key: String) {
        let e = error(json, worldSize: worldSize)
        #expect(e?.keyPath == key, "\(String(describing: e))")
        #expect(e.map { "\($0)".contains("overflow") || "\($0)".contains("2^40") || "\($0)".contains("> 0") } == true, "\(String(describing: e))")
    }

    @Test(arguments: ["1e30", "9223372036854775808", "-1", "0.5", "true", "\"8\"", "[8]"])
    func aNonIntegerOrOutOfRangeSizeNamesItsValue(value: String) {
        let e = error(#"{"train_batch_size": 8, "steps_per_print": \#(value)}"#)
        #expect(e?.keyPath == "steps_per_print")
        #expect(e?.description.contains("null is not allowed") == false, "\(String(describing: e))")
    }

    @Test(arguments: ["warmup_min_lr", "warmup_max_lr", "cycle_min_lr", "cycle_max_lr", "decay_lr_rate", "cos_min_ratio",
                      "warmup_min_ratio"])
    func negativeScheduleValuesAreRefusedLikeANegativeLR(key: String) {
        let json = #"{"train_batch_size": 8, "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}, "scheduler": {"type": "WarmupLR", "params": {"\#(key)": -1}}}"#
        // Keys that WarmupLR does not take are refused as unknown before their range matters; either way, an error.
        let e = error(json)
        #expect(e?.keyPath.hasPrefix("scheduler") == true, "\(String(describing: e))")
        #expect(error(#"{"train_batch_size": 8, "optimizer": {"type": "AdamW", "params": {"lr": -1}}}"#)?.keyPath == "optimizer.params.lr")
    }

    @Test(arguments: ["65505", "1e6", "1e39"])
    func aStaticLossScaleBeyondFP16IsAnError(scale: String) {
        let e = error(#"{"train_batch_size": 8, "fp16": {"enabled": true, "loss_scale": \#(scale)}}"#)
        #expect(e?.keyPath == "fp16.loss_scale")
        #expect(e?.allowed.contains("65504") == true)
    }

    @Test func theCollectiveTimeoutIsAConfigKeyReadBeforeTheGroupExists() throws {
        #expect(try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "comm_timeout": 90}"#).commTimeout == 90)
        #expect(error(#"{"train_batch_size": 8, "comm_timeout": 0}"#)?.keyPath == "comm_timeout")
        let dir = IOTestDirectory()
        try #"{"train_batch_size": 7, "train_micro_batch_size_per_gpu": 2, "comm_timeout": 45}"#
            .write(to: dir.file("ds.json"), atomically: true, encoding: .utf8)
        // Read without the batch rule (which fails for W = 1 here): only the timeout matters before the group exists.
        #expect(try DeepSpeedConfig.commTimeout(path: dir.file("ds.json").path) == 45)
    }

    @Test func aConfigPathThatIsNotAJSONFileIsAnErrorNamingIt() throws {
        let dir = IOTestDirectory()
        let fifo = dir.file("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        try Data().write(to: dir.file("empty.json"))
        for (path, words) in [(dir.url.path, "a directory"), ("/dev/null", "a device"), (fifo, "FIFO"),
                              (dir.file("empty.json").path, "is empty"), (dir.file("missing.json").path, "does not exist")] {
            let e = #expect(throws: ConfigError.self) { try DeepSpeedConfig.load(path: path) }
            #expect(e?.description.contains(path) == true && e?.description.contains(words) == true, "\(String(describing: e))")
        }
    }

    /// Mutations of a real config (bytes flipped, inserted, deleted; structure duplicated or cut; numbers replaced by
    /// extremes) for a bounded time: each must parse or throw a ConfigError — a trap would end the test process.
    @Test func fuzzingTheParserNeverCrashes() throws {
        let seedText = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/gpt-mini-fortunes.json"), encoding: .utf8)
        let seed = Array(seedText.utf8)
        let extremes = ["1e308", "-1e308", "9223372036854775807", "-9223372036854775808", "18446744073709551616", "0", "-0",
                        "1e-320", "NaN", "Infinity", "\"auto\"", "[]", "{}", "null", "true", String(repeating: "[", count: 600)]
        let fragments = ["{", "}", "[", "]", ",", ":", "\"", "//", "/*", "#", "\\", "\u{0}", "\u{FEFF}", "é", "\n"]
        var rng = SystemRandomNumberGenerator()
        let deadline = Date(timeIntervalSinceNow: 3)
        var cases = 0, accepted = 0
        while Date() < deadline {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.insert(contentsOf: Array(fragments.randomElement(using: &rng)!.utf8), at: i)
                case 2: bytes.removeSubrange(i..<min(bytes.count, i + Int.random(in: 1...20, using: &rng)))
                case 3:
                    // Replace the number starting at or after i with an extreme value.
                    if let j = bytes[i...].firstIndex(where: { (48...57).contains($0) }) {
                        let end = bytes[j...].firstIndex(where: { !(48...57).contains($0) && $0 != 46 && $0 != 101 && $0 != 45 }) ?? bytes.count
                        bytes.replaceSubrange(j..<end, with: Array(extremes.randomElement(using: &rng)!.utf8))
                    }
                default:
                    let j = Int.random(in: i..<bytes.count, using: &rng)
                    bytes.insert(contentsOf: bytes[i..<j], at: j)
                }
                if bytes.isEmpty { bytes = seed }
            }
            cases += 1
            do {
                _ = try DeepSpeedConfig.parse(data: Data(bytes), worldSize: Int.random(in: 1...8, using: &rng))
                accepted += 1
            } catch is ConfigError {
            } catch {
                Issue.record("a non-ConfigError escaped for \(String(decoding: bytes, as: UTF8.self)): \(error)")
                return
            }
        }
        print("config fuzz: \(cases) mutated configs in 3 s, \(accepted) accepted, the rest ConfigErrors")
        #expect(cases > 100, "only \(cases) fuzz cases ran in 3 s")
        #expect(accepted < cases)
    }
}
