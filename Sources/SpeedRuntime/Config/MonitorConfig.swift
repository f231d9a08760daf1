// Monitor blocks: `tensorboard`, `csv_monitor` (enabled, output_path, job_name) and `wandb`.
// Invariant: an absent block reads as a disabled monitor with DeepSpeed's defaults, never as nil.

/// `tensorboard` or `csv_monitor`: where the engine writes its per-step events.
///
/// ```swift
/// if config.csvMonitor.enabled {
///     let dir = URL(fileURLWithPath: config.csvMonitor.outputPath).appendingPathComponent(config.csvMonitor.jobName)
/// }
/// ```
public struct MonitorConfig: Codable, Sendable, Equatable {
    public var enabled = false
    /// "" = under the launch directory.
    public var outputPath = ""
    public var jobName = "DeepSpeedJobName"

    public init(enabled: Bool = false, outputPath: String = "", jobName: String = "DeepSpeedJobName") {
        self.enabled = enabled
        self.outputPath = outputPath
        self.jobName = jobName
    }

    enum CodingKeys: String, CodingKey { case enabled, outputPath = "output_path", jobName = "job_name" }
}

/// `wandb` (Weights & Biases): DeepSpeed's keys are `enabled`, `group`, `team`, `project`.
public struct WandbConfig: Codable, Sendable, Equatable {
    public var enabled = false
    public var group: String?
    public var team: String?
    public var project = "deepspeed"

    public init() {}
}

extension MonitorConfig {
    init(reading r: ConfigReader) throws {
        enabled = try r.bool("enabled", false)
        outputPath = try r.string("output_path", "")
        jobName = try r.string("job_name", "DeepSpeedJobName")
        r.finish()
    }
}

extension WandbConfig {
    init(reading r: ConfigReader) throws {
        enabled = try r.bool("enabled", false)
        group = try r.optionalString("group")
        team = try r.optionalString("team")
        project = try r.string("project", "deepspeed")
        r.finish()
    }
}
