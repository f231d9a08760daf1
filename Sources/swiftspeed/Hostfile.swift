// DeepSpeed's hostfile (`host slots=N`, `#` comments) and its --include/--exclude filters.
// Invariant: host order is the file's order, and slots stay in ascending order after filtering.

/// A parsed, validated hostfile error names the line.
struct HostfileError: Error, CustomStringConvertible {
    let description: String
}

/// Hosts and their slot indices, in hostfile order.
struct HostPool: Equatable {
    var hosts: [(name: String, slots: [Int])]

    static func == (a: HostPool, b: HostPool) -> Bool {
        a.hosts.map(\.name) == b.hosts.map(\.name) && a.hosts.map(\.slots) == b.hosts.map(\.slots)
    }

    var totalSlots: Int { hosts.reduce(0) { $0 + $1.slots.count } }

    /// Parses `worker-1 slots=4` lines; blank lines and `#` comments are skipped.
    static func parse(_ text: String, path: String = "hostfile") throws -> HostPool {
        var hosts: [(String, [Int])] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 2, parts[1].hasPrefix("slots="), let n = Int(parts[1].dropFirst(6)), n > 0 else {
                throw HostfileError(description: "\(path):\(i + 1): expected 'hostname slots=N' with N > 0, got '\(line)'")
            }
            let name = String(parts[0])
            guard !hosts.contains(where: { $0.0 == name }) else {
                throw HostfileError(description: "\(path):\(i + 1): host '\(name)' is listed twice")
            }
            hosts.append((name, Array(0..<n)))
        }
        guard !hosts.isEmpty else { throw HostfileError(description: "\(path): no hosts (expected lines like 'worker-1 slots=4')") }
        return HostPool(hosts: hosts.map { (name: $0.0, slots: $0.1) })
    }

    /// DeepSpeed's filter syntax `host[:slot,slot][@host[:slot,…]]…`: keep (include) or drop
    /// (exclude) whole hosts or the listed slots.
    func filtered(include: String?, exclude: String?) throws -> HostPool {
        if include != nil && exclude != nil {
            throw HostfileError(description: "--include and --exclude are mutually exclusive")
        }
        guard let spec = include ?? exclude else { return self }
        var selection: [String: [Int]?] = [:]
        for item in spec.split(separator: "@") {
            let pieces = item.split(separator: ":", maxSplits: 1)
            let host = String(pieces[0])
            guard let known = hosts.first(where: { $0.name == host }) else {
                throw HostfileError(description: "'\(host)' in \(include != nil ? "--include" : "--exclude") is not in the hostfile (\(hosts.map(\.name).joined(separator: ", ")))")
            }
            if pieces.count == 2 {
                var slots: [Int] = []
                for s in pieces[1].split(separator: ",") {
                    guard let n = Int(s), known.slots.contains(n) else {
                        throw HostfileError(description: "slot '\(s)' of '\(host)' does not exist (it has slots \(known.slots))")
                    }
                    slots.append(n)
                }
                selection[host] = slots
            } else {
                selection[host] = .some(nil)
            }
        }
        var out: [(name: String, slots: [Int])] = []
        for h in hosts {
            let chosen = selection[h.name]
            let keep: [Int]
            if include != nil {
                guard let chosen else { continue }
                keep = chosen.map { s in h.slots.filter(s.contains) } ?? h.slots
            } else if let chosen {
                keep = chosen.map { s in h.slots.filter { !s.contains($0) } } ?? []
            } else {
                keep = h.slots
            }
            if !keep.isEmpty { out.append((h.name, keep)) }
        }
        guard !out.isEmpty else { throw HostfileError(description: "the filters leave no slots to run on") }
        return HostPool(hosts: out)
    }

    /// The OpenMPI hostfile for this pool (slot counts only; OpenMPI places ranks in slot order).
    var openMPIHostfile: String { hosts.map { "\($0.name) slots=\($0.slots.count)" }.joined(separator: "\n") + "\n" }
}

#if canImport(Foundation)
import Foundation
#endif
