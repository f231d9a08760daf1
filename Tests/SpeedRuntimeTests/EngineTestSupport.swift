// Helpers for engine tests: tiny models, configs from JSON text, and a log handler that records lines.
import Logging
import SpeedCore
import SpeedNN
import SpeedOptim
@testable import SpeedRuntime
import Synchronization

/// Collects log messages so tests can assert on `steps_per_print` and breakdown lines.
final class LogRecorder: Sendable {
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    func logger() -> Logger {
        var l = Logger(label: "test") { _ in RecordingHandler(recorder: self) }
        l.logLevel = .trace
        return l
    }
}

struct RecordingHandler: LogHandler {
    let recorder: LogRecorder
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        recorder.lines.withLock { $0.append("\(event.message)") }
    }
}

/// `y = x·Wᵀ + b` regression on fixed data: a model whose optimum and gradients are easy to reason about.
func regressionData(samples: Int, seed: UInt64) -> (Tensor, Tensor) {
    var rng = RandomStream(seed: seed)
    let x = Tensor.randn([samples, 6], rng: &rng)
    let w = Tensor.randn([3, 6], rng: &rng)
    return (x, noGrad { Tensor.matmul(x, w, transposeB: true) })
}

func config(_ json: String, worldSize: Int = 1) throws -> DeepSpeedConfig {
    try DeepSpeedConfig.parse(json, worldSize: worldSize)
}

/// Flattened copy of every parameter value.
func weights(_ m: Module) -> [Float] { m.parameters().flatMap { $0.cast(to: .float32).scalars } }
