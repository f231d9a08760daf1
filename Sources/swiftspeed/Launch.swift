// `swiftspeed launch`: DeepSpeed's launcher on top of OpenMPI's mpirun.
// Invariant: every process sees DeepSpeed's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_SIZE,
// MASTER_ADDR, MASTER_PORT), set by the hidden `launch-exec` trampoline from OpenMPI's own; and nothing
// outlives the launcher: mpirun runs under a trampoline that gets SIGTERM when the launcher dies (even by
// SIGKILL), every rank gets SIGKILL when its mpirun dies, and the launcher forwards INT/TERM/HUP to mpirun.

import ArgumentParser
import CSpeedShims
import Foundation

struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a program on N processes (and hosts) like the `deepspeed` launcher.",
        discussion: """
            Example: swiftspeed launch --num_procs 4 -- swiftspeed train --model gpt-mini \
            --config ds.json --synthetic --steps 20 --json
            Output lines are tagged with their rank; the first failing exit code is returned.
            """)

    @Option(name: [.customLong("num_procs"), .customLong("num_gpus")], parsing: .unconditional, help: "Processes per node (default: all slots, else 1).") var numProcs: Int?
    @Option(name: .customLong("num_nodes"), parsing: .unconditional, help: "Use only the first N hosts of the hostfile.") var numNodes: Int?
    @Option(name: .customLong("hostfile"), help: "Lines 'hostname slots=N'; '#' starts a comment.") var hostfile: String?
    @Option(name: .customLong("include"), help: "Hosts/slots to use: host[:slot,slot][@host…].") var include: String?
    @Option(name: .customLong("exclude"), help: "Hosts/slots to skip: host[:slot,slot][@host…].") var exclude: String?
    @Option(name: .customLong("master_addr"), help: "Address of rank 0 (default: first host).") var masterAddr: String?
    @Option(name: .customLong("master_port"), parsing: .unconditional, help: "Port of rank 0.") var masterPort: Int = 29500
    @Option(name: .customLong("launcher_args"), help: "Extra arguments passed to mpirun.") var launcherArgs: String = ""
    @Option(name: .customLong("max-restarts"), parsing: .unconditional,
            help: "Restart the whole job up to N times when a rank fails (the program resumes from its latest checkpoint, e.g. train --save-dir D --resume); each rank sees SWIFTSPEED_RESTART=k.")
    var maxRestarts: Int = 0
    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).") var command: [String] = []

    func validate() throws {
        // `swiftspeed launch --help` (or -h) before any program is a request for this command's help.
        if let first = command.first, ["--help", "-h", "help"].contains(first) { throw CleanExit.helpRequest(self) }
        if let numProcs, numProcs < 1 { throw ValidationError("--num_procs must be >= 1 (got \(numProcs))") }
        if let numNodes, numNodes < 1 { throw ValidationError("--num_nodes must be >= 1 (got \(numNodes))") }
        if maxRestarts < 0 { throw ValidationError("--max-restarts must be >= 0 (got \(maxRestarts))") }
        if !(1...65535).contains(masterPort) { throw ValidationError("--master_port must be a TCP port, 1...65535 (got \(masterPort))") }
        if command.drop(while: { $0 == "--" }).isEmpty { throw ValidationError("give the program to run after --, e.g. swiftspeed launch --num_procs 2 -- swiftspeed train …") }
    }

    func run() throws {
        var program = command
        if program.first == "--" { program.removeFirst() }
        guard !program.isEmpty else { throw ValidationError("give the program to run after --") }
        unblockSignals()
        guard let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: FileManager.default.isExecutableFile) else {
            printError("mpirun not found: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev, or run scripts/setup.sh)")
            throw ExitCode(1)
        }
        var args = ["--oversubscribe", "--tag-output"]
        if getuid() == 0 { args.append("--allow-run-as-root") }
        var total = numProcs ?? 1
        var master = masterAddr ?? "127.0.0.1"
        var hostfileToDelete: String?
        if let hostfile {
            var pool: HostPool
            do {
                guard let text = try? String(contentsOfFile: hostfile, encoding: .utf8) else {
                    throw HostfileError(description: "cannot read hostfile \(hostfile)")
                }
                pool = try HostPool.parse(text, path: hostfile).filtered(include: include, exclude: exclude)
                if let n = numNodes { pool.hosts = Array(pool.hosts.prefix(n)) }
                if let perNode = numProcs { pool.hosts = pool.hosts.map { ($0.name, Array($0.slots.prefix(perNode))) } }
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftspeed-hosts-\(getpid())").path
            try pool.openMPIHostfile.write(toFile: path, atomically: true, encoding: .utf8)
            hostfileToDelete = path
            args += ["--hostfile", path]
            // OpenMPI 4.1's remote daemons map the shared hwloc topology into a guessed VM hole, which under ASLR
            // can land on their stack (orted segfaults in hwloc_shmem_topology_write, roughly one start in three
            // here); "none" makes each daemon read its own topology. --launcher_args can still override it.
            args += ["--mca", "rtc_hwloc_vmhole", "none"]
            total = pool.totalSlots
            master = masterAddr ?? pool.hosts[0].name
        } else if include != nil || exclude != nil {
            throw ValidationError("--include/--exclude need --hostfile")
        }
        defer { if let p = hostfileToDelete { try? FileManager.default.removeItem(atPath: p) } }
        args += ["-np", "\(total)", "-x", "MASTER_ADDR=\(master)", "-x", "MASTER_PORT=\(masterPort)"]
        args += launcherArgs.split(separator: " ").map(String.init)
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).path
        let selfPath = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? (me.hasPrefix("/") ? me : FileManager.default.currentDirectoryPath + "/" + me)
        let forwarding = SignalForwarding()
        for attempt in 0...maxRestarts {
            let status = try runOnce(mpirun: mpirun, selfPath: selfPath, args: args + ["-x", "SWIFTSPEED_RESTART=\(attempt)"],
                                     program: program, forwarding: forwarding)
            if let signal = forwarding.received { throw ExitCode(128 + signal) }
            if status == 0 { return }
            guard attempt < maxRestarts else {
                if maxRestarts > 0 { note("launch: the job failed (exit status \(status)) after \(maxRestarts) restart(s); giving up") }
                throw ExitCode(status)
            }
            note("launch: the job failed (exit status \(status): a rank died or stopped); restart \(attempt + 1)/\(maxRestarts), the program resumes from its latest checkpoint")
        }
    }

    /// One mpirun of the job: mpirun itself runs under the trampoline, so it dies (SIGTERM, stopping its ranks)
    /// with this process. Returns mpirun's exit status.
    private func runOnce(mpirun: String, selfPath: String, args: [String], program: [String],
                         forwarding: SignalForwarding) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: selfPath)
        p.arguments = ["launch-exec", "--no-rank-variables", "--parent-death-signal", "\(SIGTERM)", "--", mpirun]
            + args + [selfPath, "launch-exec", "--"] + program
        try p.run()
        forwarding.start(child: p.processIdentifier)
        p.waitUntilExit()
        forwarding.stop()
        return p.terminationStatus
    }
}

/// A launcher message on standard error (not an error of the program).
func note(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Clears the signal mask this process inherited, so SIGTERM and SIGINT reach it and whatever it starts.
func unblockSignals() {
    var none = sigset_t()
    sigemptyset(&none)
    sigprocmask(SIG_SETMASK, &none, nil)
}

/// Forwards SIGINT, SIGTERM and SIGHUP to the launched mpirun (which runs in its own process group, so a
/// terminal's Ctrl-C does not reach it); a second signal kills it outright.
final class SignalForwarding: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var count = 0
    private var first: Int32?

    /// The first signal forwarded, if any.
    var received: Int32? { lock.withLock { first } }

    func start(child: Int32) {
        stop()
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                let n = lock.withLock { count += 1; if first == nil { first = sig }; return count }
                if n == 1 {
                    note("launch: got signal \(sig); stopping every rank (send it again to kill them at once)")
                    kill(child, sig)
                } else {
                    kill(child, SIGKILL)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        for s in sources { s.cancel() }
        sources = []
    }
}

/// Hidden trampoline run by mpirun on every rank: sets DeepSpeed's variables from OpenMPI's and
/// replaces itself with the program.
struct LaunchExec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "launch-exec", shouldDisplay: false)
    @Flag(help: "Do not set RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_SIZE.") var noRankVariables = false
    @Option(help: "Signal this process gets when its parent dies (Linux).") var parentDeathSignal: Int32 = SIGKILL
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        var program = command
        if program.first == "--" { program.removeFirst() }
        guard !program.isEmpty else { throw ValidationError("launch-exec: no program") }
        // Kept across exec: the program dies with whoever started it (mpirun for a rank, the launcher for mpirun).
        let parent = getppid()
        if ss_set_parent_death_signal(parentDeathSignal) == 0 && getppid() != parent { throw ExitCode(1) }   // orphaned already
        unblockSignals()   // a parent that blocked signals (a test runner's thread) must not pass that on
        if !noRankVariables {
            let env = ProcessInfo.processInfo.environment
            let map = ["RANK": "OMPI_COMM_WORLD_RANK", "LOCAL_RANK": "OMPI_COMM_WORLD_LOCAL_RANK",
                       "WORLD_SIZE": "OMPI_COMM_WORLD_SIZE", "LOCAL_SIZE": "OMPI_COMM_WORLD_LOCAL_SIZE"]
            for (name, source) in map { setenv(name, env[source] ?? (name.hasSuffix("RANK") ? "0" : "1"), 1) }
        }
        var argv = program.map { strdup($0) } + [nil]
        execvp(program[0], &argv)
        printError("cannot run '\(program[0])': \(String(cString: strerror(errno)))")
        throw ExitCode(127)
    }
}
