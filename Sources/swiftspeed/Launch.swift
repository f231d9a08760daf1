// `swiftspeed launch`: DeepSpeed's launcher on top of OpenMPI's mpirun.
// Invariant: every process sees DeepSpeed's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_SIZE,
// MASTER_ADDR, MASTER_PORT), set by the hidden `launch-exec` trampoline from OpenMPI's own.

import ArgumentParser
import Foundation

struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a program on N processes (and hosts) like the `deepspeed` launcher.",
        discussion: """
            Example: swiftspeed launch --num_procs 4 -- swiftspeed train --model gpt-mini \
            --config ds.json --synthetic --steps 20 --json
            Output lines are tagged with their rank; the first failing exit code is returned.
            """)

    @Option(name: [.customLong("num_procs"), .customLong("num_gpus")], help: "Processes per node (default: all slots, else 1).")
    var numProcs: Int?
    @Option(name: .customLong("num_nodes"), help: "Use only the first N hosts of the hostfile.") var numNodes: Int?
    @Option(name: .customLong("hostfile"), help: "Lines 'hostname slots=N'; '#' starts a comment.") var hostfile: String?
    @Option(name: .customLong("include"), help: "Hosts/slots to use: host[:slot,slot][@host…].") var include: String?
    @Option(name: .customLong("exclude"), help: "Hosts/slots to skip: host[:slot,slot][@host…].") var exclude: String?
    @Option(name: .customLong("master_addr"), help: "Address of rank 0 (default: first host).") var masterAddr: String?
    @Option(name: .customLong("master_port"), help: "Port of rank 0.") var masterPort: Int = 29500
    @Option(name: .customLong("launcher_args"), help: "Extra arguments passed to mpirun.") var launcherArgs: String = ""
    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).") var command: [String] = []

    func run() throws {
        var program = command
        if program.first == "--" { program.removeFirst() }
        guard !program.isEmpty else { throw ValidationError("give the program to run after --") }
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
            total = pool.totalSlots
            master = masterAddr ?? pool.hosts[0].name
        } else if include != nil || exclude != nil {
            throw ValidationError("--include/--exclude need --hostfile")
        }
        defer { if let p = hostfileToDelete { try? FileManager.default.removeItem(atPath: p) } }
        args += ["-np", "\(total)", "-x", "MASTER_ADDR=\(master)", "-x", "MASTER_PORT=\(masterPort)"]
        args += launcherArgs.split(separator: " ").map(String.init)
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).path
        let selfPath = me.contains("/") ? (me.hasPrefix("/") ? me : FileManager.default.currentDirectoryPath + "/" + me) : me
        args += [selfPath, "launch-exec", "--"] + program
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw ExitCode(p.terminationStatus) }
    }
}

/// Hidden trampoline run by mpirun on every rank: sets DeepSpeed's variables from OpenMPI's and
/// replaces itself with the program.
struct LaunchExec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "launch-exec", shouldDisplay: false)
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        var program = command
        if program.first == "--" { program.removeFirst() }
        guard !program.isEmpty else { throw ValidationError("launch-exec: no program") }
        let env = ProcessInfo.processInfo.environment
        let map = ["RANK": "OMPI_COMM_WORLD_RANK", "LOCAL_RANK": "OMPI_COMM_WORLD_LOCAL_RANK",
                   "WORLD_SIZE": "OMPI_COMM_WORLD_SIZE", "LOCAL_SIZE": "OMPI_COMM_WORLD_LOCAL_SIZE"]
        for (name, source) in map { setenv(name, env[source] ?? (name.hasSuffix("RANK") ? "0" : "1"), 1) }
        var argv = program.map { strdup($0) } + [nil]
        execvp(program[0], &argv)
        printError("cannot run '\(program[0])': \(String(cString: strerror(errno)))")
        throw ExitCode(127)
    }
}
