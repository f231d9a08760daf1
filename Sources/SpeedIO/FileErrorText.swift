// Readable text for Foundation's file errors: the POSIX cause ("No space left on device") instead of
// "The operation could not be completed. (NSCocoaErrorDomain error 512.)". Invariant: never empty.

import Foundation

/// The most specific description of `error`: its underlying POSIX error's message when Foundation wrapped one.
///
/// ```swift
/// do { try FileManager.default.createDirectory(atPath: "/proc/x", withIntermediateDirectories: true) }
/// catch { print(fileErrorText(error)) }   // "Operation not permitted" or similar, not "error 512"
/// ```
public func fileErrorText(_ error: any Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError {
        if underlying.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(underlying.code))) }
        return fileErrorText(underlying)
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    let text = ns.localizedDescription
    if ns.domain == NSCocoaErrorDomain, let path = ns.userInfo[NSFilePathErrorKey] as? String {
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileWriteOutOfSpace: return "no space left on the device holding \(path)"
        case .fileWriteNoPermission: return "no permission to write \(path)"
        case .fileWriteFileExists: return "\(path) exists and is in the way"
        case .fileNoSuchFile, .fileReadNoSuchFile: return "\(path) does not exist"
        default: break
        }
    }
    return text.isEmpty ? "\(error)" : text
}
