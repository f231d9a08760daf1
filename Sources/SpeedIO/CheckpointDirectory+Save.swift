// The save side of a checkpoint directory: a tag is written into `.<tag>.partial` and then swapped in whole.
// Invariant: at every instant (a kill -9 included) `<tag>` is the old complete checkpoint or the new one, or
// — on a file system without an atomic exchange, between two renames — missing with `.<tag>.old` holding the
// old complete copy, which loads read (CheckpointDirectory.resolve) and the next save puts back.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The file-system steps of a checkpoint save, in order (the test hook `SWIFTSPEED_CHECKPOINT_CRASH_AFTER`
/// names one of them). A save takes `swapped` where the OS exchanges two folders atomically, and
/// `movedOldAside` + `movedNewIn` otherwise (a new tag takes `movedNewIn` only).
package enum CheckpointSaveStep: String, CaseIterable, Sendable {
    /// Folders left by an earlier interrupted save were put back (or removed) and a stale `.<tag>.partial` removed.
    case tidied = "tidied"
    /// `.<tag>.partial` exists, empty.
    case createdPartial = "created-partial"
    /// Rank 0 wrote the model-states file into it.
    case wroteModelStates = "wrote-model-states"
    /// Every rank wrote its optimizer shard (after the barrier).
    case wroteShards = "wrote-shards"
    /// `.<tag>.partial` and `<tag>` were exchanged atomically: `<tag>` is new, `.<tag>.partial` the old copy.
    case swapped = "swapped"
    /// Portable protocol: the old `<tag>` was renamed to `.<tag>.old`.
    case movedOldAside = "moved-old-aside"
    /// `.<tag>.partial` was renamed to `<tag>`.
    case movedNewIn = "moved-new-in"
    /// The old copy was deleted.
    case removedOld = "removed-old"
    /// `latest` names the tag.
    case wroteLatest = "wrote-latest"
}

extension CheckpointDirectory {
    /// `dir/.<tag>.partial`, where a save writes before the swap.
    package static func partialFolder(_ root: URL, _ tag: String) -> URL { root.appendingPathComponent(".\(tag).partial") }

    /// Rank 0, before a save: puts back any tag an interrupted swap left only as `.<tag>.old*`, deletes
    /// such copies of tags that are in place, removes every unfinished `.<name>.partial` (one process saves
    /// into a directory at a time; such a folder was never committed, or holds a replaced copy) and
    /// creates `.<tag>.partial` empty.
    /// - Returns: what it put back or removed, for the log (empty when the directory was tidy).
    package static func preparePartial(_ root: URL, tag: String) throws -> (folder: URL, repairs: [String]) {
        let fm = FileManager.default
        var repairs: [String] = []
        do { try fm.createDirectory(at: root, withIntermediateDirectories: true) } catch {
            throw CheckpointError("cannot create the checkpoint directory \(root.path): \(fileErrorText(error)); pass a writable --save-dir")
        }
        let partial = partialFolder(root, tag)
        for name in ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).sorted() where name.hasPrefix(".") {
            if name.hasSuffix(".partial"), name.count > ".partial".count + 1, name != partial.lastPathComponent,
               isDirectory(root.appendingPathComponent(name)) {
                try? fm.removeItem(at: root.appendingPathComponent(name))
                repairs.append("removed \(name), left by an interrupted save")
                continue
            }
            guard let range = name.range(of: ".old", options: .backwards), range.lowerBound > name.index(after: name.startIndex)
            else { continue }
            let rest = name[range.upperBound...]
            guard rest.isEmpty || (rest.hasPrefix("-") && rest.dropFirst().allSatisfy(\.isNumber)) else { continue }
            let owner = String(name[name.index(after: name.startIndex)..<range.lowerBound])
            let copy = root.appendingPathComponent(name), target = root.appendingPathComponent(owner)
            if isDirectory(target) {
                try? fm.removeItem(at: copy)
                repairs.append("removed \(name), the old copy of \(owner) left by an interrupted save")
            } else if case .success = inspect(copy), rename(copy.path, target.path) == 0 {
                repairs.append("put back \(owner) from \(name), where an interrupted save had left it")
            }
        }
        if !repairs.isEmpty { syncDirectory(root.path) }
        if fm.fileExists(atPath: partial.path) {
            do { try fm.removeItem(at: partial) } catch {
                throw CheckpointError("cannot remove the unfinished save \(partial.path): \(fileErrorText(error)); remove it by hand")
            }
        }
        crashHook(after: .tidied)
        do { try fm.createDirectory(at: partial, withIntermediateDirectories: false) } catch {
            throw CheckpointError("cannot create checkpoint directory \(partial.path): \(fileErrorText(error))")
        }
        crashHook(after: .createdPartial)
        return (partial, repairs)
    }

    /// Rank 0, once every file of the save is in `fresh` (`.<tag>.partial`): makes it `dir/<tag>`,
    /// replacing an older copy so that `<tag>` is never a mix (see the file's invariant), then deletes
    /// the old copy and syncs the directory.
    package static func commit(_ fresh: URL, to target: URL) throws {
        let root = target.deletingLastPathComponent()
        let tag = target.lastPathComponent
        func failure(_ what: String, _ code: Int32) -> CheckpointError {
            CheckpointError("cannot \(what) (\(String(cString: strerror(code))), errno \(code)); the complete new checkpoint is in \(fresh.path) — check the file system, then move it to \(target.path) by hand or save again")
        }
        if isDirectory(target) {
            switch exchange(fresh.path, target.path) {
            case .done:
                syncDirectory(root.path)
                crashHook(after: .swapped)
                try? FileManager.default.removeItem(at: fresh)   // now the old copy
                crashHook(after: .removedOld)
                return
            case .failed(let code): throw failure("swap \(fresh.path) with \(target.path)", code)
            case .unsupported: break
            }
            // Portable protocol: two renames, with the old copy under a name loads look for.
            let old = root.appendingPathComponent(".\(tag).old")
            try? FileManager.default.removeItem(at: old)
            guard rename(target.path, old.path) == 0 else { throw failure("move \(target.path) aside", errno) }
            syncDirectory(root.path)
            crashHook(after: .movedOldAside)
            guard rename(fresh.path, target.path) == 0 else {
                let code = errno
                _ = rename(old.path, target.path)
                throw failure("move \(fresh.path) to \(target.path)", code)
            }
            syncDirectory(root.path)
            crashHook(after: .movedNewIn)
            try? FileManager.default.removeItem(at: old)
            crashHook(after: .removedOld)
        } else {
            guard rename(fresh.path, target.path) == 0 else { throw failure("move \(fresh.path) to \(target.path)", errno) }
            syncDirectory(root.path)
            crashHook(after: .movedNewIn)
            // A copy an interrupted re-save left (the new folder supersedes it).
            for name in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
            where name == ".\(tag).old" || name.hasPrefix(".\(tag).old-") {
                try? FileManager.default.removeItem(at: root.appendingPathComponent(name))
            }
        }
    }

    /// Rank 0, last: points `dir/latest` at `tag` (atomically).
    package static func writeLatest(_ root: URL, tag: String) throws {
        try AtomicFile.write(Array(tag.utf8), to: root.appendingPathComponent(latestFile))
        crashHook(after: .wroteLatest)
    }

    // MARK: Test hook and system calls

    /// The test hook: when `SWIFTSPEED_CHECKPOINT_CRASH_AFTER` names `step`, the process kills itself with
    /// SIGKILL right after it (no cleanup runs, as in a real crash). Set only by the crash tests.
    package static func crashHook(after step: CheckpointSaveStep) {
        guard let name = getenv("SWIFTSPEED_CHECKPOINT_CRASH_AFTER"), String(cString: name) == step.rawValue else { return }
        _ = kill(getpid(), SIGKILL)
    }

    enum Exchange { case done, unsupported, failed(Int32) }

    /// Exchanges two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`, Darwin `renamex_np(RENAME_SWAP)`);
    /// `.unsupported` where the OS or the file system cannot, or when `SWIFTSPEED_CHECKPOINT_PORTABLE_RENAME=1`
    /// asks for the two-rename protocol (for its tests).
    static func exchange(_ a: String, _ b: String) -> Exchange {
        if let flag = getenv("SWIFTSPEED_CHECKPOINT_PORTABLE_RENAME"), String(cString: flag) == "1" { return .unsupported }
        #if os(Linux)
        guard let renameat2 = renameat2Function else { return .unsupported }
        let renameExchange: UInt32 = 1 << 1   // RENAME_EXCHANGE in <linux/fs.h>
        if renameat2(AT_FDCWD, a, AT_FDCWD, b, renameExchange) == 0 { return .done }
        #elseif canImport(Darwin)
        if renamex_np(a, b, UInt32(RENAME_SWAP)) == 0 { return .done }
        #else
        return .unsupported
        #endif
        let code = errno
        return code == EINVAL || code == ENOSYS || code == ENOTSUP || code == EOPNOTSUPP ? .unsupported : .failed(code)
    }

    /// Best-effort `fsync` of a directory, so that renames in it survive a power loss.
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        _ = close(fd)
    }
}

#if os(Linux)
/// glibc's `renameat2` (2.28+), looked up at run time: Swift's Glibc module does not declare it, and
/// `syscall(2)` is variadic, which Swift cannot call.
private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
private let renameat2Function: RenameAt2? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
    return unsafeBitCast(symbol, to: RenameAt2.self)
}()
#endif
