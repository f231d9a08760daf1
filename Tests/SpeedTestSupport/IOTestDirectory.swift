// A scratch directory for tests that write files, removed when the value is released.
// Invariant: every instance is a new, empty directory under the system temp dir.

import Foundation

/// A fresh directory under the system temp dir, removed when released (shared by the I/O test files).
public final class IOTestDirectory {
    public let url: URL

    public init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftspeed-io-\(UUID().uuidString)", isDirectory: true)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Names of everything in the directory (hidden files included), sorted.
    public func listing() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }
}
