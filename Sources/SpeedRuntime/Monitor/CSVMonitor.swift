// DeepSpeed's `csv_monitor`: one CSV file per tag under output_path/job_name, rows `step,value`.
// Invariant: byte-for-byte what DeepSpeed's csv.writer produces — file `<tag with / and space → _>.csv`,
// header `step,<last / component of tag>`, CRLF line ends, values as Python's repr(float) (= Swift's
// Double.description) — except that a header is only written to an empty file, so a resumed run
// appending to the same job does not repeat it mid-file (**Beyond**).

import Foundation
import Logging
import Synchronization

/// Writes each tag's scalars to its own CSV file, as DeepSpeed's `csv_monitor` block does.
///
/// ```swift
/// // ds_config.json: "csv_monitor": {"enabled": true, "output_path": "runs", "job_name": "gpt2"}
/// let csv = try CSVMonitor(outputPath: "runs", jobName: "gpt2")
/// csv.write([MonitorEvent(tag: "Train/Samples/train_loss", value: 2.5, step: 64)])
/// // runs/gpt2/Train_Samples_train_loss.csv:
/// // step,train_loss
/// // 64,2.5
/// ```
public final class CSVMonitor: Monitor {
    /// `output_path/job_name`, where the CSV files go.
    public let directory: String
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        /// Open files by file name.
        var files: [String: AppendFile] = [:]
        /// Files whose last write failed (warned once until a write succeeds again).
        var failing: Set<String> = []
    }

    /// Creates `output_path/job_name` (DeepSpeed's defaults: `""` and `"DeepSpeedJobName"`, i.e.
    /// `./DeepSpeedJobName`).
    ///
    /// ```swift
    /// let csv = try CSVMonitor(outputPath: "runs", jobName: "gpt2")
    /// ```
    /// - Throws: ``MonitorError`` if the directory cannot be created.
    public init(outputPath: String = "", jobName: String = "DeepSpeedJobName",
                logger: Logger = Logger(label: "swiftspeed.monitor")) throws {
        directory = monitorDirectory(outputPath: outputPath, jobName: jobName)
        self.logger = logger
        try AppendFile.makeDirectory(directory)
    }

    deinit {
        state.withLock { for file in $0.files.values { file.close() } }
    }

    /// The file name DeepSpeed uses for `tag`: `/` and spaces become `_`, plus `.csv`.
    public static func fileName(for tag: String) -> String {
        tag.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: " ", with: "_") + ".csv"
    }

    /// Appends one row per event to its tag's file (one `write` per file per call).
    public func write(_ events: [MonitorEvent]) {
        // Group rows by file, keeping each file's rows in order.
        var order: [String] = []
        var rows: [String: (header: String, text: String)] = [:]
        for event in events {
            let name = Self.fileName(for: event.tag)
            if rows[name] == nil {
                order.append(name)
                rows[name] = (Self.csvField(event.tag.split(separator: "/", omittingEmptySubsequences: false)
                    .last.map(String.init) ?? event.tag), "")
            }
            rows[name]!.text += "\(event.step),\(event.value.description)\r\n"
        }
        state.withLock { state in
            for name in order {
                let (header, text) = rows[name]!
                let path = directory + "/" + name
                do {
                    let file = try state.files[name] ?? AppendFile.open(path)
                    state.files[name] = file
                    let bytes = file.isEmpty ? "step,\(header)\r\n" + text : text
                    if let failure = file.append(Array(bytes.utf8)) {
                        throw MonitorError(path: path, message: failure)
                    }
                    state.failing.remove(name)
                } catch {
                    if state.failing.insert(name).inserted {
                        logger.warning("csv_monitor: \(error); dropping its events until writes succeed again")
                    }
                }
            }
        }
    }

    /// `fsync`s every CSV file written so far.
    public func flush() {
        state.withLock { state in
            for file in state.files.values {
                if let failure = file.sync() { logger.warning("csv_monitor: \(file.path): \(failure)") }
            }
        }
    }

    /// `field` quoted as Python's csv module (QUOTE_MINIMAL) does: in double quotes, with inner quotes
    /// doubled, when it contains a comma, a quote, CR or LF.
    static func csvField(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else {
            return field
        }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
