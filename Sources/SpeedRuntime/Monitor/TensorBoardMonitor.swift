// DeepSpeed's `tensorboard` block: scalars as TensorBoard event files, written without TensorFlow or PyTorch.
// Invariant: the file is created with O_EXCL and starts with the `brain.Event:2` record before init returns,
// and each write(_:) appends whole records with one write(2) — a reader never sees a file without the header.

import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes scalars to `output_path/job_name/events.out.tfevents.<time>.<host>.<pid>`, readable by
/// TensorBoard (`tensorboard --logdir output_path`), as DeepSpeed's `tensorboard` block does through
/// PyTorch's `SummaryWriter.add_scalar`: one `Event{step, wall_time, Summary{Value{tag, simple_value}}}`
/// per scalar.
///
/// ```swift
/// // ds_config.json: "tensorboard": {"enabled": true, "output_path": "runs", "job_name": "gpt2"}
/// let tb = try TensorBoardMonitor(outputPath: "runs", jobName: "gpt2")
/// tb.write([MonitorEvent(tag: "Train/Samples/train_loss", value: 2.5, step: 64)])
/// ```
public final class TensorBoardMonitor: Monitor {
    /// The event file this monitor appends to.
    public let path: String
    private let file: AppendFile
    private let clock: @Sendable () -> Double
    private let logger: Logger
    /// Whether the last write failed (warn once until one succeeds again).
    private let failing = Mutex(false)

    /// Creates `output_path/job_name` and a new event file in it, starting with the file-version record.
    ///
    /// ```swift
    /// let tb = try TensorBoardMonitor(outputPath: "runs", jobName: "gpt2")
    /// print(tb.path)   // runs/gpt2/events.out.tfevents.1700000000.myhost.4242
    /// ```
    /// - Parameter clock: seconds since 1970 for each event's `wall_time` (tests pass a fixed clock).
    /// - Throws: ``MonitorError`` if the directory or the file cannot be created.
    public init(outputPath: String = "", jobName: String = "DeepSpeedJobName",
                logger: Logger = Logger(label: "swiftspeed.monitor"),
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        let directory = monitorDirectory(outputPath: outputPath, jobName: jobName)
        try AppendFile.makeDirectory(directory)
        let start = clock()
        let seconds = String(Int64(start))
        let base = directory + "/events.out.tfevents."
            + String(repeating: "0", count: max(0, 10 - seconds.count)) + seconds
            + ".\(Self.hostName()).\(getpid())"
        // Two monitors started in the same second by the same process get ".1", ".2", … suffixes.
        var opened: AppendFile?
        var code: Int32 = EEXIST
        for attempt in 0..<1000 where opened == nil && code == EEXIST {
            (opened, code) = AppendFile.tryOpen(attempt == 0 ? base : "\(base).\(attempt)", exclusive: true)
        }
        guard let opened else {
            throw MonitorError(path: base, message: AppendFile.reason("create the event file", code))
        }
        file = opened
        path = opened.path
        self.clock = clock
        self.logger = logger
        if let failure = file.append(TFRecord.frame(TensorBoardEvent.fileVersion(wallTime: start))) {
            file.close()
            throw MonitorError(path: path, message: failure)
        }
    }

    deinit { file.close() }

    /// Appends one event record per scalar (simple_value is stored as float32, as TensorBoard does).
    public func write(_ events: [MonitorEvent]) {
        guard !events.isEmpty else { return }
        let wallTime = clock()
        var bytes: [UInt8] = []
        for e in events {
            let event = TensorBoardEvent.scalar(tag: e.tag, value: e.value, step: e.step, wallTime: wallTime)
            bytes += TFRecord.frame(event)
        }
        report(file.append(bytes))
    }

    /// `fsync`s the event file.
    public func flush() {
        report(file.sync())
    }

    private func report(_ failure: String?) {
        failing.withLock { failing in
            if let failure {
                if !failing {
                    logger.warning("tensorboard: \(path): \(failure); dropping events until writes succeed again")
                }
                failing = true
            } else {
                failing = false
            }
        }
    }

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name.replacingOccurrences(of: "/", with: "_")
    }
}
