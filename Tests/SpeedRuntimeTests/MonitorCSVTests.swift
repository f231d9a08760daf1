// CSVMonitor writes exactly what DeepSpeed's csv_monitor writes (file names, headers, CRLF rows, float repr).
// Invariant: expected strings here are byte-for-byte what DeepSpeed 0.19's csvMonitor produces for the same events.

import Foundation
import SpeedRuntime
import SpeedTestSupport
import Testing

@Suite struct MonitorCSVTests {
    func contents(_ dir: String, _ name: String) throws -> String {
        try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
    }

    @Test func oneFilePerTagWithDeepSpeedsNamesHeadersAndRows() throws {
        let tmp = IOTestDirectory()
        let csv = try CSVMonitor(outputPath: tmp.url.path, jobName: "gpt2")
        #expect(csv.directory == tmp.url.path + "/gpt2")
        csv.write([
            MonitorEvent(tag: "Train/Samples/train_loss", value: 2.5, step: 64),
            MonitorEvent(tag: "Train/Samples/lr", value: 1e-05, step: 64),
        ])
        csv.write([
            MonitorEvent(tag: "Train/Samples/train_loss", value: 2.0, step: 128),
            MonitorEvent(tag: "Train/Samples/lr", value: 0.0001, step: 128),
        ])
        csv.flush()
        #expect(try FileManager.default.contentsOfDirectory(atPath: csv.directory).sorted()
                == ["Train_Samples_lr.csv", "Train_Samples_train_loss.csv"])
        #expect(try contents(csv.directory, "Train_Samples_train_loss.csv")
                == "step,train_loss\r\n64,2.5\r\n128,2.0\r\n")
        #expect(try contents(csv.directory, "Train_Samples_lr.csv") == "step,lr\r\n64,1e-05\r\n128,0.0001\r\n")
    }

    @Test func valuesPrintAsPythonReprDoes() throws {
        let tmp = IOTestDirectory()
        let csv = try CSVMonitor(outputPath: tmp.url.path, jobName: "j")
        let values: [Double] = [3, 0.1 + 0.2, 1e16, 1e15, 2.5e-7, -0.0, .infinity, -.infinity, .nan, 65536]
        csv.write(values.enumerated().map { MonitorEvent(tag: "v", value: $0.element, step: $0.offset) })
        // Python: [str(x) for x in values]
        let python = ["3.0", "0.30000000000000004", "1e+16", "1000000000000000.0", "2.5e-07", "-0.0",
                      "inf", "-inf", "nan", "65536.0"]
        let rows = python.enumerated().map { "\($0.offset),\($0.element)\r\n" }.joined()
        #expect(try contents(csv.directory, "v.csv") == "step,v\r\n" + rows)
    }

    @Test func spacesSlashesAndCommasInTags() throws {
        let tmp = IOTestDirectory()
        let csv = try CSVMonitor(outputPath: tmp.url.path + "/", jobName: "j")
        #expect(csv.directory == tmp.url.path + "/j")
        csv.write(events: [("eval loss", 1.5, 1), ("a/b,c\"d", 2, 2)])
        #expect(CSVMonitor.fileName(for: "eval loss") == "eval_loss.csv")
        #expect(try contents(csv.directory, "eval_loss.csv") == "step,eval loss\r\n1,1.5\r\n")
        #expect(try contents(csv.directory, "a_b,c\"d.csv") == "step,\"b,c\"\"d\"\r\n2,2.0\r\n")
    }

    @Test func aResumedJobAppendsWithoutRepeatingTheHeader() throws {
        let tmp = IOTestDirectory()
        do {
            let first = try CSVMonitor(outputPath: tmp.url.path, jobName: "j")
            first.write([MonitorEvent(tag: "Train/loss", value: 1, step: 1)])
        }
        let second = try CSVMonitor(outputPath: tmp.url.path, jobName: "j")
        second.write([MonitorEvent(tag: "Train/loss", value: 0.5, step: 2)])
        #expect(try contents(second.directory, "Train_loss.csv") == "step,loss\r\n1,1.0\r\n2,0.5\r\n")
    }

    @Test func absoluteJobNameWinsAsInOsPathJoin() throws {
        let tmp = IOTestDirectory()
        let csv = try CSVMonitor(outputPath: "ignored-relative", jobName: tmp.url.path + "/abs")
        #expect(csv.directory == tmp.url.path + "/abs")
        #expect(!FileManager.default.fileExists(atPath: "ignored-relative"))
    }

    @Test func unusableOutputPathThrowsAtSetUp() throws {
        let tmp = IOTestDirectory()
        let blocker = tmp.file("a-file")
        try Data("x".utf8).write(to: blocker)
        let e = #expect(throws: MonitorError.self) { try CSVMonitor(outputPath: blocker.path, jobName: "j") }
        #expect(e?.path == blocker.path + "/j")
    }
}
