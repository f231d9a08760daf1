// What the tests that need an outside tool (OpenMPI's mpirun, glibc's libm) use to find it, and whether to run.
// Invariant: with SWIFTSPEED_REQUIRE_ALL=1 (scripts/test.sh, hence CI) such a test always runs, so a missing
// tool fails it instead of skipping it silently; without it the test is skipped with the reason.

import Foundation

public enum Requirements {
    /// True when every tool the suite uses must be present (scripts/test.sh sets it after installing them).
    public static var requireAll: Bool { ProcessInfo.processInfo.environment["SWIFTSPEED_REQUIRE_ALL"] == "1" }

    /// Whether a test needing something `available` should run: always when ``requireAll``.
    ///
    /// ```swift
    /// @Test(.enabled(if: Requirements.run(if: Requirements.mpirun != nil), Requirements.noMPI))
    /// func onTwoRanks() throws { let mpirun = try #require(Requirements.mpirun, Requirements.noMPI) … }
    /// ```
    public static func run(if available: Bool) -> Bool { available || requireAll }

    /// OpenMPI's launcher, or nil when it is not installed.
    public static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    public static let noMPI = "needs OpenMPI's mpirun: scripts/setup.sh installs it"
}

#if canImport(Testing)
import Testing

extension Trait where Self == ConditionTrait {
    /// Runs the test when OpenMPI's mpirun is installed, or always under ``Requirements/requireAll``.
    public static var needsMPI: Self {
        .enabled(if: Requirements.run(if: Requirements.mpirun != nil), Comment(rawValue: Requirements.noMPI))
    }
}
#endif
