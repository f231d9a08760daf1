// End-to-end: the built `swiftspeed` binary trains, checkpoints and resumes exactly (issue #3's promise:
// `--steps 3` then `--steps 6 --resume` prints the same losses as one `--steps 6` run).
import Foundation
import Testing

/// Runs the `swiftspeed` binary built next to this test bundle.
func swiftspeed(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// mpirun's tagged output (`[1,r]<stderr>:…` pieces, which two ranks interleave mid-line) put back together per rank.
func perRankOutput(_ text: String, stream: String = "stderr") -> [Int: String] {
    var out: [Int: String] = [:]
    let tag = try! NSRegularExpression(pattern: #"\[\d+,(\d+)\]<"# + stream + #">:"#)
    let ns = text as NSString
    let matches = tag.matches(in: text, range: NSRange(location: 0, length: ns.length))
    for (i, m) in matches.enumerated() {
        let rank = Int(ns.substring(with: m.range(at: 1)))!
        let end = i + 1 < matches.count ? matches[i + 1].range.location : ns.length
        out[rank, default: ""] += ns.substring(with: NSRange(location: m.range.upperBound, length: end - m.range.upperBound))
    }
    return out
}

func scratchDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ss-cli-\(UInt64.random(in: 0...UInt64.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// The `step` and `loss` fields of each JSON line.
func losses(_ stdout: String) throws -> [Int: Double] {
    var out: [Int: Double] = [:]
    for line in stdout.split(separator: "\n") where line.hasPrefix("{") {
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        out[obj["step"] as! Int] = obj["loss"] as? Double
    }
    return out
}

@Suite(.serialized) struct TrainCommandTests {
    static let config = #"""
    {
      // comments are fine, as in DeepSpeed's hjson
      "train_micro_batch_size_per_gpu": 2,
      "gradient_accumulation_steps": 2,
      "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.01}},
      "scheduler": {"type": "WarmupLR", "params": {"warmup_max_lr": 1e-3, "warmup_num_steps": 3}},
    }
    """#

    @Test func resumeReproducesAnUninterruptedRunExactly() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("ds_config.json")
        try Self.config.write(to: cfg, atomically: true, encoding: .utf8)
        let common = ["train", "--model", "simple", "--config", cfg.path, "--synthetic", "--json", "--seed", "3"]
        let full = try swiftspeed(common + ["--steps", "6"])
        #expect(full.status == 0, "\(full.stderr)")
        let ckpt = dir.appendingPathComponent("ckpt").path
        let first = try swiftspeed(common + ["--steps", "3", "--save-dir", ckpt])
        #expect(first.status == 0, "\(first.stderr)")
        let second = try swiftspeed(common + ["--steps", "6", "--save-dir", ckpt, "--resume"])
        #expect(second.status == 0, "\(second.stderr)")
        let a = try losses(full.stdout), b = try losses(first.stdout).merging(try losses(second.stdout)) { $1 }
        #expect(a.count == 6)
        #expect(a == b)
        #expect(FileManager.default.fileExists(atPath: ckpt + "/global_step6/mp_rank_00_model_states.safetensors"))
    }

    @Test func anInvalidConfigExitsWithStatusOneAndDeepSpeedsNumbers() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("bad.json")
        try #"{"train_batch_size": 24, "train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let r = try swiftspeed(["train", "--model", "simple", "--config", cfg.path, "--synthetic", "--steps", "1"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("24 != 3 * 2 * 1"))
    }

    @Test func trainingOnTextLowersTheLossAndPrintsASample() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 200)
        let data = dir.appendingPathComponent("corpus.txt")
        try text.write(to: data, atomically: true, encoding: .utf8)
        let cfg = dir.appendingPathComponent("ds.json")
        try #"{"train_batch_size": 4, "optimizer": {"type": "AdamW", "params": {"lr": 3e-3}}}"#
            .write(to: cfg, atomically: true, encoding: .utf8)
        let r = try swiftspeed(["train", "--model", "gpt-mini", "--config", cfg.path, "--data", data.path,
                                "--steps", "12", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let l = try losses(r.stdout)
        #expect(l.count == 12)
        #expect(l[12]! < l[1]! - 1.0)
    }
}
