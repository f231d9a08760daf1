// Which tag folder of a checkpoint directory a load reads: `latest`, a given tag, an interrupted swap's
// leftover copy, or — when `latest` is missing or unusable — the complete tag with the highest global step.
// Invariant: nothing here writes; a tag is chosen only after its model-states metadata and every optimizer
// shard header have been read and checked ("complete"), and every choice other than `latest`'s is explained.

import Foundation

/// The tag folders of a checkpoint directory (the folder given to `saveCheckpoint` / `--save-dir`).
package enum CheckpointDirectory {
    /// The file naming the tag a load reads by default.
    package static let latestFile = "latest"
    /// `latest` is a short tag name; anything longer is not one.
    static let latestLimit = 4096

    /// What `dir/latest` holds.
    package enum Latest: Equatable {
        /// No such file.
        case missing
        /// A tag name.
        case tag(String)
        /// Something that names no tag: the reason, e.g. "…/latest is a FIFO (named pipe), not a file naming a tag".
        case unusable(String)
    }

    /// The tag folder a load will read, and why, when it is not simply the one named.
    package struct Choice: Equatable {
        package let tag: String
        package let folder: URL
        /// Set when the folder is not `dir/<tag as named>`: a recovered copy, or the newest complete tag.
        package let note: String?
    }

    /// Reads `dir/latest` without blocking (a FIFO or a directory in its place is `.unusable`).
    package static func readLatest(_ root: URL) -> Latest {
        let path = root.appendingPathComponent(latestFile).path
        let bytes: [UInt8]?
        do { bytes = try RegularFile.contents(path, limit: latestLimit) } catch {
            switch error {
            case .notRegular(let kind): return .unusable("\(path) is \(kind), not a file naming a tag")
            case .os(let message): return .unusable("\(path) \(message)")
            case .missing: return .missing
            }
        }
        guard let bytes else { return .missing }
        let tag = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if tag.isEmpty { return .unusable("\(path) is empty") }
        guard isTagName(tag), String(validating: bytes, as: UTF8.self) != nil else {
            return .unusable("\(path) holds \"\(tag.prefix(80))\", which is not a tag name")
        }
        return .tag(tag)
    }

    /// A folder name `saveCheckpoint` could have written: not empty, no `/`, not hidden, not `.`/`..`.
    package static func isTagName(_ tag: String) -> Bool {
        !tag.isEmpty && !tag.contains("/") && !tag.hasPrefix(".") && !tag.contains("\0")
    }

    /// The folder to read for `tag`, or for `latest` when `tag` is nil.
    ///
    /// - With a tag (given, or read from `latest`): `dir/<tag>`, or — when that folder is missing
    ///   because a save of the same tag was interrupted mid-swap — its complete copy `.<tag>.old*`.
    /// - With no usable `latest` (missing, empty, a FIFO, a directory …): the complete tag with the
    ///   highest global step in its metadata (not the highest name), with a note saying so.
    /// - Returns: nil when `latest` is missing and `dir` holds no tag folders at all (a fresh start).
    /// - Throws: ``CheckpointError`` naming the tags there are, when the named tag does not exist,
    ///   or when no usable `latest` and no complete tag exists.
    package static func resolve(_ root: URL, tag: String?, fallBackToNewest: Bool = true) throws -> Choice? {
        if let tag { return try named(root, tag, fromLatest: false) }
        let reason: String
        switch readLatest(root) {
        case .tag(let named): return try Self.named(root, named, fromLatest: true)
        case .missing:
            if candidates(root).isEmpty { return nil }
            reason = "\(root.appendingPathComponent(latestFile).path) does not exist"
        case .unusable(let why):
            guard !candidates(root).isEmpty else {
                throw CheckpointError("\(why), and \(root.path) holds no checkpoint tags: remove it to start from scratch, or restore the checkpoint folders")
            }
            reason = why
        }
        guard fallBackToNewest else {
            throw CheckpointError("\(reason), so there is no default tag; pass a tag\(tagList(root))")
        }
        return try newest(root, reason: reason)
    }

    /// `dir/<tag>`, or its recovered copy.
    static func named(_ root: URL, _ tag: String, fromLatest: Bool) throws -> Choice {
        let folder = root.appendingPathComponent(tag)
        let origin = fromLatest ? ", from latest" : ""
        guard isTagName(tag) else {
            throw CheckpointError("'\(tag)'\(origin) is not a tag name (tags are folder names in \(root.path))\(tagList(root))")
        }
        if isDirectory(folder) { return Choice(tag: tag, folder: folder, note: nil) }
        if let copy = interruptedCopy(root, tag) {
            return Choice(tag: tag, folder: copy.folder, note: "checkpoint \(folder.path) is missing but \(copy.folder.lastPathComponent) holds its complete copy (global step \(copy.globalSteps)): a save of tag '\(tag)' was interrupted while swapping folders; reading that copy (the next save of the checkpoint directory puts it back in place)")
        }
        throw CheckpointError("checkpoint \(folder.path) does not exist (tag '\(tag)'\(origin))\(tagList(root))")
    }

    /// The complete tag with the highest global step (ties: the later name).
    static func newest(_ root: URL, reason: String) throws -> Choice {
        var complete: [(tag: String, steps: Int)] = []
        var broken: [String] = []
        for tag in candidates(root) {
            switch inspect(root.appendingPathComponent(tag)) {
            case .success(let steps): complete.append((tag, steps))
            case .failure(let error): broken.append("\(tag) (\(error))")
            }
        }
        guard let best = complete.max(by: { ($0.steps, $0.tag) < ($1.steps, $1.tag) }) else {
            throw CheckpointError("\(reason), and no tag in \(root.path) is a complete checkpoint: \(broken.joined(separator: "; ")) — pass a tag, or restore the files")
        }
        let others = complete.filter { $0.tag != best.tag }.sorted { $0.steps > $1.steps }
            .map { "\($0.tag) (step \($0.steps))" }
        var note = "\(reason); using \(best.tag), the complete checkpoint with the highest global step (\(best.steps)) in \(root.path)"
        if !others.isEmpty { note += "; other complete tags: \(others.joined(separator: ", "))" }
        if !broken.isEmpty { note += "; incomplete: \(broken.map { String($0.prefix(300)) }.joined(separator: "; "))" }
        note += " — write the tag to resume from into latest to choose another"
        return Choice(tag: best.tag, folder: root.appendingPathComponent(best.tag), note: note)
    }

    /// Checks that a tag folder is a complete checkpoint — the model-states metadata valid, every optimizer
    /// shard present with a consistent header — without reading tensor data; returns its global step.
    package static func inspect(_ folder: URL) -> Result<Int, any Error> {
        Result {
            let model = folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile)
            let meta: ModelStateSummary = try ZeroCheckpoint.decode(Safetensors.header(model).metadata["swiftspeed"], file: model.path)
            try ZeroCheckpoint.validate(meta, file: model.path)
            // A tensor-parallel checkpoint: every mp rank's model states and optimizer shards.
            let size = meta.tensorParallel?.size ?? 1
            try CheckpointLimits.check("tensorParallel.size", size, min: 1, max: CheckpointLimits.maxWorldSize, file: model.path)
            for mp in 0..<size {
                if mp > 0 {
                    let file = folder.appendingPathComponent(ZeroCheckpoint.modelStatesFile(mpRank: mp))
                    let other: ModelStateSummary = try ZeroCheckpoint.decode(Safetensors.header(file).metadata["swiftspeed"], file: file.path)
                    try ZeroCheckpoint.validate(other, file: file.path)
                    guard other.tensorParallel == TensorParallelSummary(rank: mp, size: size) else {
                        throw CheckpointError("\(file.path) is not tensor-parallel rank \(mp) of \(size): the folder mixes files from different saves")
                    }
                }
                _ = try ZeroCheckpoint.Shards(folder: folder, mpRank: mp)
            }
            return meta.globalSteps
        }
    }

    /// The visible sub-folders of `dir` that hold a model-states file (tags, complete or not), sorted by name.
    static func candidates(_ root: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter {
            isTagName($0) && FileManager.default.fileExists(
                atPath: root.appendingPathComponent($0).appendingPathComponent(ZeroCheckpoint.modelStatesFile).path)
        }.sorted()
    }

    /// The complete copy an interrupted re-save of `tag` left as `.<tag>.old` (or `.<tag>.old-<n>`, from
    /// earlier versions), the one with the highest global step if there are several.
    package static func interruptedCopy(_ root: URL, _ tag: String) -> (folder: URL, globalSteps: Int)? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        let prefix = ".\(tag).old"
        return names.filter { $0 == prefix || $0.hasPrefix(prefix + "-") }.sorted().compactMap { name in
            let folder = root.appendingPathComponent(name)
            return (try? inspect(folder).get()).map { (folder, $0) }
        }.max { $0.globalSteps < $1.globalSteps }
    }

    /// ", tags in <dir>: a, b" (folders holding a model-states file), or a note that there are none.
    package static func tagList(_ root: URL) -> String {
        let tags = candidates(root)
        return tags.isEmpty ? "; \(root.path) holds no checkpoint tags" : "; tags in \(root.path): \(tags.joined(separator: ", "))"
    }

    static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
