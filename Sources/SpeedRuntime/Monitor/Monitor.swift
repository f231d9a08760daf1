// The Monitor protocol behind DeepSpeed's `csv_monitor` and `tensorboard` blocks, and the events it receives.
// Invariant: `write` never throws — metrics are best-effort, so an I/O failure (a full disk) is logged once
// per file and training goes on; only setting a monitor up (creating its directory or file) throws.

/// One scalar to record: DeepSpeed's `(tag, value, step)` tuple, e.g. `("Train/Samples/train_loss", 2.31, 4096)`.
///
/// ```swift
/// let event = MonitorEvent(tag: "Train/Samples/lr", value: 1e-4, step: 128)
/// ```
public struct MonitorEvent: Sendable, Equatable {
    /// The series name; `/` separates groups (TensorBoard shows them as sections).
    public var tag: String
    public var value: Double
    /// The x-axis value; DeepSpeed's engine passes the global sample count.
    public var step: Int

    public init(tag: String, value: Double, step: Int) {
        self.tag = tag
        self.value = value
        self.step = step
    }
}

/// A sink for training scalars (DeepSpeed's `Monitor`). Only rank 0 should create monitors, as in DeepSpeed.
///
/// ```swift
/// let monitors: [any Monitor] = [
///     try CSVMonitor(outputPath: "runs", jobName: "gpt2"),
///     try TensorBoardMonitor(outputPath: "runs", jobName: "gpt2"),
/// ]
/// for m in monitors { m.write([MonitorEvent(tag: "Train/Samples/train_loss", value: 2.31, step: 64)]) }
/// ```
public protocol Monitor: AnyObject, Sendable {
    /// Records `events` in order and hands them to the OS (visible to readers when this returns).
    func write(_ events: [MonitorEvent])
    /// Makes everything written so far durable (`fsync`), e.g. before a checkpoint or at exit.
    func flush()
}

extension Monitor {
    /// DeepSpeed's `write_events(event_list)` spelling, with `(tag, value, step)` tuples.
    ///
    /// ```swift
    /// monitor.write(events: [("Train/Samples/lr", 1e-4, 128)])
    /// ```
    public func write(events: [(tag: String, value: Double, step: Int)]) {
        write(events.map { MonitorEvent(tag: $0.tag, value: $0.value, step: $0.step) })
    }
}

/// `output_path` joined with `job_name` the way Python's `os.path.join` does it: an empty output path
/// gives `job_name` relative to the working directory, and an absolute `job_name` wins.
func monitorDirectory(outputPath: String, jobName: String) -> String {
    if outputPath.isEmpty || jobName.hasPrefix("/") { return jobName }
    return outputPath.hasSuffix("/") ? outputPath + jobName : outputPath + "/" + jobName
}
