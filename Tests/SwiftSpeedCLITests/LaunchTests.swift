// `swiftspeed launch`: DeepSpeed's variables on every rank, hostfiles (errors name the line),
// --include/--exclude, two "hosts" through an rsh agent that runs locally, and exit codes.
import Foundation
import SpeedTestSupport
import Testing

@Suite(.serialized, .needsMPI) struct LaunchTests {
    /// Lines of the program's output, without mpirun's `[job,rank]<stdout>:` tags, sorted.
    func lines(_ out: String) -> [String] {
        out.split(separator: "\n").compactMap { line in
            guard let r = line.range(of: "<stdout>:") else { return nil }
            return String(line[r.upperBound...])
        }.sorted()
    }

    @Test func everyRankGetsDeepSpeedsVariables() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let r = try swiftspeed(["launch", "--num_procs", "2", "--master_port", "29555", "--",
                                "sh", "-c", "echo $RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_SIZE $MASTER_ADDR $MASTER_PORT"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(lines(r.stdout) == ["0 0 2 2 127.0.0.1 29555", "1 1 2 2 127.0.0.1 29555"])
    }

    @Test func theFirstFailingExitCodeIsReturned() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let r = try swiftspeed(["launch", "--num_procs", "2", "--", "sh", "-c", "exit $((RANK + 3))"])
        #expect(r.status == 3 || r.status == 4)
    }

    @Test func aBadHostfileLineIsReportedWithItsNumber() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let hosts = dir.appendingPathComponent("hostfile")
        try "# cluster\nworker-1 slots=2\nworker-2 slot=2\n".write(to: hosts, atomically: true, encoding: .utf8)
        let r = try swiftspeed(["launch", "--hostfile", hosts.path, "--", "true"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("hostfile:3: expected 'hostname slots=N'"), "\(r.stderr)")
        let both = try swiftspeed(["launch", "--hostfile", hosts.path, "--include", "a", "--exclude", "b", "--", "true"])
        #expect(both.status != 0)
    }

    @Test func twoHostsThroughALocalRshAgentWithIncludeAndExclude() throws {
        _ = try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI))
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let agent = dir.appendingPathComponent("local-rsh")
        // Ignores the host name and runs the command here: two host names, one machine.
        try "#!/bin/sh\nwhile [ \"$#\" -gt 0 ]; do case \"$1\" in -*) shift ;; *) break ;; esac; done\nshift\nexec sh -c \"$*\"\n"
            .write(to: agent, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: agent.path)
        let hosts = dir.appendingPathComponent("hostfile")
        try "worker-1 slots=2  # first\n\nworker-2 slots=2\n".write(to: hosts, atomically: true, encoding: .utf8)
        let base = ["launch", "--hostfile", hosts.path, "--launcher_args=--mca plm_rsh_agent \(agent.path)"]
        let show = ["--", "sh", "-c", "echo $RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR"]
        let all = try swiftspeed(base + show)
        #expect(all.status == 0, "\(all.stderr)")
        #expect(lines(all.stdout) == ["0 0 4 worker-1", "1 1 4 worker-1", "2 0 4 worker-1", "3 1 4 worker-1"])
        let included = try swiftspeed(base + ["--include", "worker-2:1"] + show)
        #expect(lines(included.stdout) == ["0 0 1 worker-2"], "\(included.stderr)")
        let excluded = try swiftspeed(base + ["--exclude", "worker-1"] + show)
        #expect(lines(excluded.stdout) == ["0 0 2 worker-2", "1 1 2 worker-2"], "\(excluded.stderr)")
    }
}
