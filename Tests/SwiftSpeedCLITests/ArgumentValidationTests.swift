// Careless command lines, by class: negative or zero counts, empty paths, out-of-range ports, absurd sizes, data
// too short for one micro-batch, micro-batches beyond memory. Each exits non-zero with a message naming the thing.
import Foundation
import Testing

@Suite struct ArgumentValidationTests {
    static let config: String = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ss-args-\(getpid()).json")
        try? #"{"train_micro_batch_size_per_gpu": 1, "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}}"#
            .write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }()

    @Test(arguments: [
        (["train", "--synthetic", "--steps", "-1"], "--steps must be >= 0"),
        (["train", "--synthetic", "--steps=-1"], "--steps must be >= 0"),
        (["train", "--synthetic", "--save-dir", "d", "--save-every", "0"], "--save-every must be >= 1"),
        (["train", "--synthetic", "--threads", "0"], "--threads must be >= 1"),
        (["train", "--synthetic", "--save-dir", ""], "--save-dir is empty"),
        (["train", "--synthetic", "--comm-timeout", "0"], "--comm-timeout must be > 0"),
        (["launch", "--num_procs", "0", "--", "true"], "--num_procs must be >= 1"),
        (["launch", "--master_port", "99999", "--", "true"], "--master_port must be a TCP port"),
        (["launch"], "give the program to run after --"),
    ] as [([String], String)])
    func badNumbersAndPathsAreValidationErrors(args: [String], message: String) throws {
        let full = args.first == "train" ? args + ["--config", Self.config] : args
        let r = try swiftspeed(full)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(full): \(r.stderr)")
    }

    @Test func configCommandRefusesAbsurdSizes() throws {
        let steps = try swiftspeed(["config", Self.config, "--lr-steps", "9223372036854775807"])
        #expect(steps.status != 0 && steps.stderr.contains("--lr-steps must be between 0 and 1000000"), "\(steps.stderr)")
        let world = try swiftspeed(["config", Self.config, "--world-size", "4611686018427387904"])
        #expect(world.status == 1 && (world.stderr.contains("arithmetic overflow") || world.stderr.contains("2^40")), "\(world.stderr)")
    }

    @Test func launchHelpPrintsHelpInsteadOfRunningIt() throws {
        let r = try swiftspeed(["launch", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("OVERVIEW: Run a program on N processes"), "\(r.stdout)")
    }

    @Test(arguments: [0, 5, 64])
    func aCorpusShorterThanOneMicroBatchIsAnError(bytes: Int) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("tiny.txt")
        try Data(repeating: 0x61, count: bytes).write(to: data)
        let r = try swiftspeed(["train", "--config", Self.config, "--data", data.path, "--steps", "1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("holds \(bytes) tokens") && r.stderr.contains("needs at least 129"), "\(r.stderr)")
    }

    @Test func aMicroBatchBeyondMemoryIsRefusedBeforeAllocating() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("huge.json")
        try #"{"train_micro_batch_size_per_gpu": 100000000, "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let r = try swiftspeed(["train", "--config", cfg.path, "--synthetic", "--steps", "1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("train_micro_batch_size_per_gpu 100000000 needs about") && r.stderr.contains("of memory"), "\(r.stderr)")
    }
}
