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
