// A read-only view of the process environment for the process-group engines (launcher variables).
// Invariant: read fresh on every access, never cached, so a test that sets a variable sees it.

#if canImport(Glibc)
import Glibc
#endif

/// Read-only view of the process environment.
package enum ProcessEnvironment {
    package static var current: [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }

    /// True when the process was started by `mpirun` (or `swiftspeed launch`).
    package static var isUnderMPI: Bool {
        let env = current
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil
    }
}

extension ProcessGroups {
    /// DeepSpeed's default: 30 minutes.
    public static let defaultTimeout: Double = 1800

    /// The collective timeout in seconds, from the first that is set: `flag` (e.g. `--comm-timeout`),
    /// `$SWIFTSPEED_COMM_TIMEOUT` (seconds), DeepSpeed's `$DEEPSPEED_TIMEOUT` (minutes), `config`
    /// (`comm_timeout`), else ``defaultTimeout``.
    ///
    /// ```swift
    /// let timeout = try ProcessGroups.timeout(flag: nil, config: ds.commTimeout)   // 1800 when nothing is set
    /// ```
    /// - Throws: ``CommError`` naming a variable that is not a positive number.
    public static func timeout(flag: Double?, config: Double?, environment: [String: String]? = nil) throws -> Double {
        if let flag { return flag }
        let env = environment ?? ProcessEnvironment.current
        for (name, unit) in [("SWIFTSPEED_COMM_TIMEOUT", 1.0), ("DEEPSPEED_TIMEOUT", 60.0)] {
            guard let text = env[name] else { continue }
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite, value > 0 else {
                throw CommError(rank: -1, operation: "reading \(name)", message:
                    "\(name)=\(text) is not a positive number of \(unit == 1 ? "seconds" : "minutes")")
            }
            return value * unit
        }
        return config ?? defaultTimeout
    }
}
