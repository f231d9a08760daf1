// Process groups: the size-1 group's semantics, and every MPI collective on 2 and 4 ranks through
// `mpirun` running the built `swiftspeed comm-check` (values checked on every rank), plus a stuck and
// a dead rank ending the job with an error instead of hanging.
import Foundation
import SpeedComm
import SpeedCommMPI
import SpeedCore
import SpeedTestSupport
import Testing

@Suite struct SingleProcessGroupTests {
    @Test func collectivesOfOneProcessAreIdentitiesOrCopies() throws {
        let g = SingleProcessGroup()
        #expect(g.rank == 0 && g.size == 1)
        let t = Tensor([1, 2, 3] as [Float])
        try g.allReduce(t, op: .avg)
        #expect(t.scalars == [1, 2, 3])
        let out = Tensor.zeros([3])
        try g.allGather(t, into: out)
        #expect(out.scalars == [1, 2, 3])
        let rs = Tensor.zeros([3])
        try g.reduceScatter(t, into: rs, op: .sum)
        #expect(rs.scalars == [1, 2, 3])
        try g.broadcast(t, root: 0)
        try g.barrier()
        #expect(throws: CommError.self) { try g.send(t, to: 1, tag: 0) }
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] == nil, "the tests run under a launcher"))
    func withoutALauncherTheEnvironmentGivesOneProcess() throws {
        #expect(try ProcessGroups.fromEnvironment().size == 1)
    }
}

func runMPI(ranks: Int, _ args: [String]) throws -> (status: Int32, output: String, seconds: Double) {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftspeed")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try #require(Requirements.mpirun, Comment(rawValue: Requirements.noMPI)))
    p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", exe.path] + args
    var env = ProcessInfo.processInfo.environment
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"   // containers often forbid CMA
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    let start = Date()
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self), Date().timeIntervalSince(start))
}

@Suite(.serialized, .needsMPI) struct MPIProcessGroupTests {
    @Test(arguments: [2, 4])
    func everyCollectiveGivesTheExpectedValuesOnEveryRank(ranks: Int) throws {
        let r = try runMPI(ranks: ranks, ["comm-check", "--timeout", "60"])
        #expect(r.status == 0, "\(r.output)")
        for rank in 0..<ranks { #expect(r.output.contains("rank \(rank)/\(ranks): all collectives ok"), "\(r.output)") }
    }

    @Test func aStuckRankEndsTheJobWithATimeoutErrorNamingTheRankAndOperation() throws {
        let r = try runMPI(ranks: 3, ["comm-check", "--timeout", "3", "--stall-rank", "1"])
        #expect(r.status != 0)
        #expect(r.output.contains("allReduce of 5 float32 failed: timed out"), "\(r.output)")
        #expect(r.output.contains("rank(s) [1] did not arrive"), "\(r.output)")
        #expect(r.seconds < 30)
    }

    @Test func aDeadRankEndsTheJobInsteadOfHanging() throws {
        let r = try runMPI(ranks: 2, ["comm-check", "--timeout", "20", "--crash-rank", "1"])
        #expect(r.status != 0)
        #expect(r.seconds < 60)
    }
}

@Suite struct CollectiveTimeoutTests {
    @Test func theFlagWinsThenOurVariableThenDeepSpeedsThenTheConfig() throws {
        #expect(try ProcessGroups.timeout(flag: 5, config: 7, environment: ["SWIFTSPEED_COMM_TIMEOUT": "9"]) == 5)
        #expect(try ProcessGroups.timeout(flag: nil, config: 7, environment: ["SWIFTSPEED_COMM_TIMEOUT": "9", "DEEPSPEED_TIMEOUT": "2"]) == 9)
        #expect(try ProcessGroups.timeout(flag: nil, config: 7, environment: ["DEEPSPEED_TIMEOUT": "2"]) == 120)   // minutes
        #expect(try ProcessGroups.timeout(flag: nil, config: 7, environment: [:]) == 7)
        #expect(try ProcessGroups.timeout(flag: nil, config: nil, environment: [:]) == ProcessGroups.defaultTimeout)
    }

    @Test(arguments: ["abc", "0", "-5", "inf", ""])
    func aBadVariableIsAnErrorNamingIt(value: String) {
        #expect { try ProcessGroups.timeout(flag: nil, config: nil, environment: ["SWIFTSPEED_COMM_TIMEOUT": value]) }
            throws: { "\($0)".contains("SWIFTSPEED_COMM_TIMEOUT=\(value)") }
    }
}
