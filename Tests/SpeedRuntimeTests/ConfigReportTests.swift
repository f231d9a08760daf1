// `swiftspeed config`'s JSON report, from the library (the command itself: SwiftSpeedCLITests/ConfigCommandTests).
// Invariant: the executable test skips itself when no built `swiftspeed` sits beside the test bundle.

import Foundation
import Testing
@testable import SpeedRuntime

@Suite struct ConfigReportTests {
    func report(_ json: String, worldSize: Int = 1, lrSteps: Int? = nil) throws -> (object: [String: JSONValue], warnings: [String]) {
        let r = try DeepSpeedConfig.parse(json, worldSize: worldSize).report(lrSteps: lrSteps)
        guard case .object(let o) = r.json else { Issue.record("not an object"); return ([:], []) }
        return (o, r.warnings)
    }

    @Test func summaryKeys() throws {
        let (o, warnings) = try report(ConfigParsingTests.seedZero2Offload, worldSize: 2)
        #expect(o["train_batch_size"] == 32 && o["train_micro_batch_size_per_gpu"] == 16)
        #expect(o["gradient_accumulation_steps"] == 1 && o["world_size"] == 2)
        #expect(o["zero_stage"] == 2 && o["fp16"] == true && o["bf16"] == false)
        #expect(o["gradient_clipping"] == 1.0)
        #expect(o["optimizer"] == "adam" && o["scheduler"] == .null)
        #expect(o["fp16_settings"] == ["loss_scale": 0.0, "initial_scale_power": 16, "loss_scale_window": 1000,
                                       "hysteresis": 2, "min_loss_scale": 1.0, "consecutive_hysteresis": false])
        #expect(o["lr"] == nil)
        guard case .object(let resolved)? = o["resolved"], case .object(let zero)? = resolved["zero_optimization"]
        else { Issue.record("no resolved config"); return }
        #expect(zero["overlap_comm"] == false)
        #expect(warnings.isEmpty)
        let bf = try report(#"{"train_batch_size": 8, "bf16": {"enabled": true}}"#).object
        #expect(bf["fp16_settings"] == nil && bf["bf16"] == true && bf["optimizer"] == .null)
    }

    @Test func lrStepsFollowTheObservableSequence() throws {
        let (o, _) = try report("""
            {"train_batch_size": 8, "optimizer": {"type": "Adam", "params": {"lr": 0.1}},
             "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 0.001,
                                                          "warmup_num_steps": 10, "warmup_type": "log"}}}
            """, lrSteps: 4)
        guard case .array(let lr)? = o["lr"] else { Issue.record("no lr"); return }
        let values = lr.compactMap(\.doubleValue)
        #expect(values.count == 4)
        #expect(values[0] == 0 && values[1] == 0)
        #expect(abs(values[2] - 3.0103e-4) < 1e-8 && abs(values[3] - 4.7712e-4) < 1e-8)
        #expect(o["beta1"] == nil)
    }

    @Test func oneCycleReportsBeta1WhenTheOptimizerHasBetas() throws {
        let json = """
            {"train_batch_size": 8, "optimizer": {"type": "%@"},
             "scheduler": {"type": "OneCycle", "params": {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-2,
                                                          "cycle_first_step_size": 10, "cycle_second_step_size": 15}}}
            """
        let adam = try report(json.replacingOccurrences(of: "%@", with: "AdamW"), lrSteps: 3).object
        guard case .array(let lr)? = adam["lr"], case .array(let b1)? = adam["beta1"] else {
            Issue.record("missing lr/beta1"); return
        }
        #expect(lr[0] == 1e-4 && abs(lr[1].doubleValue! - 1.09e-3) < 1e-12 && abs(lr[2].doubleValue! - 2.08e-3) < 1e-12)
        #expect(b1[0] == 0.8 && abs(b1[1].doubleValue! - 0.89) < 1e-12)
        let sgd = try report(json.replacingOccurrences(of: "%@", with: "SGD"), lrSteps: 3).object
        #expect(sgd["beta1"] == nil)
    }

    @Test func constantLRWithoutAScheduler() throws {
        let (o, _) = try report(#"{"train_batch_size": 8, "optimizer": {"type": "Adagrad"}}"#, lrSteps: 3)
        #expect(o["lr"] == [0.01, 0.01, 0.01])
    }

    @Test func undefinedLRIsNullWithAWarning() throws {
        let (o, warnings) = try report(#"{"train_batch_size": 8}"#, lrSteps: 2)
        #expect(o["lr"] == [nil, nil])
        #expect(warnings.last?.contains("neither an optimizer nor a scheduler") == true)
        let cosine = try report(#"{"train_batch_size": 8, "scheduler": {"type": "WarmupCosineLR", "params": {"total_num_steps": 5, "warmup_num_steps": 2}}}"#,
                                lrSteps: 2)
        #expect(cosine.object["lr"] == [nil, nil])
        #expect(cosine.warnings.last?.contains("WarmupCosineLR") == true)
        // A schedule with its own LRs needs no optimizer.
        let range = try report(#"{"train_batch_size": 8, "scheduler": {"type": "LRRangeTest", "params": {"lr_range_test_step_size": 1}}}"#,
                               lrSteps: 2)
        #expect(range.object["lr"] == [0.001, 0.002])
    }

    @Test func renderedJSONIsParseableAndSorted() throws {
        let r = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "fp16": {"enabled": true}}"#).report(lrSteps: 1)
        let text = r.json.rendered(pretty: true)
        #expect(try JSONValue.parse(text) == r.json)
        let data = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect(data?["train_batch_size"] as? Int == 8)
        #expect(JSONValue.double(1e-5).rendered() == "1e-05")
        #expect(JSONValue.string("a\"b\n").rendered() == #""a\"b\n""#)
    }
}
