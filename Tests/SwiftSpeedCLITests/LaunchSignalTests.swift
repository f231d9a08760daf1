// `swiftspeed launch` stops cleanly: SIGTERM, SIGKILL, or Ctrl-C (once, and twice) to the launcher ends mpirun
// and every rank within seconds — no process outlives its launcher.
import Foundation
import SpeedTestSupport
import Testing

/// PIDs of processes whose argv is exactly `argv` (read from /proc).
private func processes(_ argv: [String]) -> [Int32] {
    let wanted = argv.joined(separator: "\u{0}") + "\u{0}"
    return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
        guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
        return String(decoding: data, as: UTF8.self) == wanted ? pid : nil
    }
}

/// Waits up to `seconds` for `condition`.
private func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.1)
    }
    return condition()
}

@Suite(.serialized, .needsMPI) struct LaunchSignalTests {
    @Test(arguments: [[SIGTERM], [SIGKILL], [SIGINT], [SIGINT, SIGINT], [SIGHUP]])
    func noRankOutlivesTheLauncher(signals: [Int32]) throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        // A program whose argv is unique to this case, so only its own ranks are counted.
        let rank = ["sleep", "\(900_000 + Int(signals.reduce(0, +)) * 10 + signals.count)"]
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
        let p = Process()
        p.executableURL = exe
        p.arguments = ["launch", "--num_procs", "2", "--"] + rank
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { for pid in processes(rank) { kill(pid, SIGKILL) } }
        #expect(eventually(30) { processes(rank).count == 2 }, "the two ranks did not start")
        for sig in signals {
            kill(p.processIdentifier, sig)
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(eventually(15) { processes(rank).isEmpty }, "ranks \(processes(rank)) outlived the launcher after \(signals)")
        p.waitUntilExit()
        #expect(p.terminationStatus != 0)
    }
}
