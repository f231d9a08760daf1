// Keeps the documents true to the code: README's and ARCHITECTURE's target tables against Package.swift
// (names and dependencies), the README status table's targets, links between documents, no stale references.
// Invariant: the manifest is parsed as text, so the test needs no SwiftPM and runs in every build.
import Foundation
import Testing

/// The repository root, from this file's path.
private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private func read(_ path: String) throws -> String {
    try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
}

/// Every target of Package.swift with the names of its dependencies (products by product name).
func manifestTargets(_ manifest: String) -> [String: Set<String>] {
    var out: [String: Set<String>] = [:]
    let text = Array(manifest)
    let kinds = [".target(", ".systemLibrary(", ".executableTarget(", ".testTarget("]
    var i = 0
    while i < text.count {
        guard let kind = kinds.first(where: { k in i + k.count <= text.count && String(text[i..<(i + k.count)]) == k }) else {
            i += 1
            continue
        }
        // The call's text, up to its matching parenthesis.
        var depth = 0, j = i + kind.count - 1
        repeat {
            if text[j] == "(" { depth += 1 } else if text[j] == ")" { depth -= 1 }
            j += 1
        } while depth > 0 && j < text.count
        let call = String(text[i..<j])
        i = j
        guard let name = call.firstMatch(of: /name:\s*"([^"]+)"/)?.1 else { continue }
        var deps: Set<String> = []
        if let range = call.range(of: "dependencies:") {
            var block = String(call[range.upperBound...])
            var level = 0, end = block.startIndex
            for (k, c) in zip(block.indices, block) {
                if c == "[" { level += 1 } else if c == "]" { level -= 1; if level == 0 { end = k; break } }
            }
            block = String(block[..<end]).replacing(/package:\s*"[^"]*"/, with: "")
            deps = Set(block.matches(of: /"([^"]+)"/).map { String($0.1) })
        }
        out[String(name)] = deps
    }
    return out
}

/// Backticked names in the first column of the markdown table that starts at `header`.
private func tableRows(_ text: String, header: String) -> [[String]] {
    guard let start = text.range(of: header) else { return [] }
    var rows: [[String]] = []
    for line in text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst() {
        guard line.hasPrefix("|") else { if rows.isEmpty { continue } else { break } }
        if line.hasPrefix("|---") { continue }
        rows.append(line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().map {
            $0.trimmingCharacters(in: .whitespaces)
        })
    }
    return rows
}

private func ticked(_ cell: String) -> [String] { cell.matches(of: /`([^`]+)`/).map { String($0.1) } }

@Suite struct DocumentationTests {
    let targets = manifestTargets((try? read("Package.swift")) ?? "")

    @Test func theManifestParses() {
        #expect(targets.count >= 20)
        #expect(targets["SpeedRuntime"]?.contains("Logging") == true)
        #expect(targets["SpeedComm"] == ["SpeedCore"])
    }

    @Test func readmesPackageTableNamesEveryTargetOnce() throws {
        let rows = tableRows(try read("README.md"), header: "| Target | What it holds |")
        let named = rows.flatMap { ticked($0[0]) }
        #expect(named.count == Set(named).count, "a target is listed twice: \(named)")
        #expect(Set(named) == Set(targets.keys),
                "README lists \(Set(named).subtracting(targets.keys).sorted()) that Package.swift lacks and misses \(Set(targets.keys).subtracting(named).sorted())")
    }

    @Test func architecturesTargetTableMatchesTheManifestsDependencies() throws {
        let text = try read("docs/ARCHITECTURE.md")
        #expect(text.contains("### Targets (`Package.swift`)"))
        let rows = tableRows(text, header: "| Target | Depends on | Holds |")
        var seen: Set<String> = []
        for row in rows {
            for name in ticked(row[0]) {
                seen.insert(name)
                let listed = Set(ticked(row[1]))
                #expect(listed == targets[name], "\(name): ARCHITECTURE.md says \(listed.sorted()), Package.swift \(targets[name]?.sorted() ?? [])")
            }
        }
        #expect(seen == Set(targets.keys), "ARCHITECTURE.md misses \(Set(targets.keys).subtracting(seen).sorted()), has extra \(seen.subtracting(targets.keys).sorted())")
    }

    @Test func theStatusTablesTargetsExist() throws {
        let rows = tableRows(try read("README.md"), header: "| Capability | State | Where |")
        #expect(rows.count >= 10)
        for row in rows {
            for name in ticked(row[2]) where name.hasPrefix("Speed") || name == "swiftspeed" {
                #expect(targets[name] != nil, "the status table names \(name), which is not a target")
            }
        }
    }

    @Test func linkedDocumentsExistAndNothingCitesAMissingSpec() throws {
        let readme = try read("README.md")
        for link in readme.matches(of: /\]\(((docs|Examples|configs)\/[^)#]+)/) {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(String(link.1)).path), "README links \(link.1)")
        }
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.map { "docs/\($0)" }
        for path in ["README.md"] + docs {
            #expect(!(try read(path)).contains("SPEC §"), "\(path) cites a SPEC section that is not in the repository")
        }
    }
}
