// `swiftspeed comm-check`: a diagnostic run under a launcher — every collective checked on every rank.
// Invariant: the stall/crash options exist for the suite's failure tests and stay hidden from help.

import ArgumentParser
import Foundation
import SwiftSpeed

struct CommCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm-check",
        abstract: "Check every collective on every rank (run under swiftspeed launch or mpirun -np N).",
        discussion: "Prints 'rank r/W: all collectives ok' per rank, or the first collective that gave a wrong value or timed out.")

    @Option(help: "Seconds a collective may wait for the other ranks.") var timeout: Double = 60
    @Option(help: .hidden) var stallRank: Int?
    @Option(help: .hidden) var crashRank: Int?
    @Option(help: "cpu (MPI) or cuda (each rank's local GPU, NCCL).") var device: String = "cpu"

    func run() throws {
        var group = try ProcessGroups.fromEnvironment(timeout: timeout)
        let (r, w) = (group.rank, group.size)
        var dev = Device.cpu
        if device != "cpu" {
            let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_RANK"] ?? "") ?? 0
            dev = try device == "cuda" ? Device.cuda(local) : Device.named(device)
            group = try ProcessGroups.accelerated(group, for: dev)
        }
        if crashRank == r { Foundation.exit(9) }
        if let stall = stallRank, stall == r {
            Thread.sleep(forTimeInterval: timeout * 4)
            return
        }
        do {
            try group.verifyCollectives(on: dev)
        } catch {
            printError("\(error)")
            group.abort(code: 3)
        }
        print("rank \(r)/\(w): all collectives ok")
        group.finalize()
    }
}
