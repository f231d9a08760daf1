// DeepSpeed's batch rule: all six cases for W = 1, 2, 4, the "neither" error, > 0 checks and the consistency message.
// Invariant: expected values are computed here with Python's floor division, independently of the code under test.

import Testing
@testable import SpeedRuntime

@Suite struct ConfigBatchTests {
    static let worldSizes = [1, 2, 4]

    func parse(_ json: String, _ w: Int) throws -> DeepSpeedConfig { try DeepSpeedConfig.parse(json, worldSize: w) }

    @Test(arguments: worldSizes) func allThreeGivenAreKept(w: Int) throws {
        let c = try parse(#"{"train_batch_size": \#(8 * w), "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2}"#, w)
        #expect((c.trainBatchSize, c.trainMicroBatchSizePerGPU, c.gradientAccumulationSteps) == (8 * w, 4, 2))
    }

    @Test(arguments: worldSizes) func trainAndMicroDeriveGradAccum(w: Int) throws {
        let c = try parse(#"{"train_batch_size": 64, "train_micro_batch_size_per_gpu": 4}"#, w)
        #expect(c.gradientAccumulationSteps == 64 / 4 / w)   // 16, 8, 4
        #expect(c.trainBatchSize == 64 && c.trainMicroBatchSizePerGPU == 4)
    }

    @Test(arguments: worldSizes) func trainAndGradAccumDeriveMicro(w: Int) throws {
        let c = try parse(#"{"train_batch_size": 64, "gradient_accumulation_steps": 2}"#, w)
        #expect(c.trainMicroBatchSizePerGPU == 64 / w / 2)   // 32, 16, 8
    }

    @Test(arguments: worldSizes) func microAndGradAccumDeriveTrain(w: Int) throws {
        let c = try parse(#"{"train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 5}"#, w)
        #expect(c.trainBatchSize == 3 * 5 * w)
    }

    @Test(arguments: worldSizes) func trainOnlyGivesOneAccumulationStep(w: Int) throws {
        let c = try parse(#"{"train_batch_size": 32}"#, w)
        #expect(c.gradientAccumulationSteps == 1 && c.trainMicroBatchSizePerGPU == 32 / w)
    }

    @Test(arguments: worldSizes) func microOnlyGivesOneAccumulationStep(w: Int) throws {
        let c = try parse(#"{"train_micro_batch_size_per_gpu": 6}"#, w)
        #expect(c.gradientAccumulationSteps == 1 && c.trainBatchSize == 6 * w)
    }

    @Test(arguments: worldSizes) func neitherTrainNorMicroIsAnError(w: Int) {
        for json in [#"{}"#, #"{"gradient_accumulation_steps": 4}"#] {
            let e = #expect(throws: ConfigError.self) { try parse(json, w) }
            #expect(e?.keyPath == "train_batch_size")
            #expect(e?.description.contains("either train_batch_size or train_micro_batch_size_per_gpu") == true)
        }
    }

    @Test func inconsistentSizesShowDeepSpeedsNumbers() {
        let e = #expect(throws: ConfigError.self) {
            try parse(#"{"train_batch_size": 24, "train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2}"#, 2)
        }
        #expect(e?.keyPath == "train_batch_size")
        #expect(e?.description.contains("train_batch_size 24 != 3 * 2 * 2") == true, "\(e.map(String.init(describing:)) ?? "")")
        #expect(e?.description.contains("= 12") == true)
    }

    @Test(arguments: worldSizes) func floorDivisionThatDoesNotAddUpIsAnError(w: Int) throws {
        // 30 // 4 // W then the product check: W = 1 → GAS 7, 28 != 30.
        let e = #expect(throws: ConfigError.self) {
            try parse(#"{"train_batch_size": 30, "train_micro_batch_size_per_gpu": 4}"#, w)
        }
        let gas = 30 / 4 / w
        #expect(e?.description.contains("train_batch_size 30 != 4 * \(gas) * \(w)") == true)
    }

    @Test func trainOnlyNotDivisibleByWorldSizeIsAnError() {
        let e = #expect(throws: ConfigError.self) { try parse(#"{"train_batch_size": 10}"#, 4) }
        #expect(e?.description.contains("train_batch_size 10 != 2 * 1 * 4") == true)
    }

    @Test func derivedZeroIsAnErrorThatExplainsTheDerivation() {
        let e = #expect(throws: ConfigError.self) {
            try parse(#"{"train_batch_size": 4, "train_micro_batch_size_per_gpu": 8}"#, 1)
        }
        #expect(e?.keyPath == "gradient_accumulation_steps")
        #expect(e?.description.contains("gradient_accumulation_steps 0 (derived as train_batch_size 4 // train_micro_batch_size_per_gpu 8 // world size 1)") == true)
        let micro = #expect(throws: ConfigError.self) { try parse(#"{"train_batch_size": 2}"#, 4) }
        #expect(micro?.keyPath == "train_micro_batch_size_per_gpu")
    }

    @Test func givenSizesMustBePositiveIntegers() {
        for (key, json) in [("train_batch_size", #"{"train_batch_size": -8}"#),
                            ("train_batch_size", #"{"train_batch_size": 0}"#),
                            ("train_micro_batch_size_per_gpu", #"{"train_micro_batch_size_per_gpu": -1}"#),
                            ("gradient_accumulation_steps", #"{"train_batch_size": 8, "gradient_accumulation_steps": 0}"#)] {
            let e = #expect(throws: ConfigError.self) { try parse(json, 1) }
            #expect(e?.keyPath == key)
            #expect(e?.allowed == "an integer > 0")
        }
        let frac = #expect(throws: ConfigError.self) { try parse(#"{"train_batch_size": 8.5}"#, 1) }
        #expect(frac?.description == "train_batch_size: 8.5 is not allowed (allowed: an integer)")
        let str = #expect(throws: ConfigError.self) { try parse(#"{"train_batch_size": "8"}"#, 1) }
        #expect(str?.description.contains(#""8" is not allowed"#) == true)
        #expect(throws: ConfigError.self) { try parse(#"{"train_batch_size": 8}"#, 0) }
    }

    @Test func integralFloatsAreIntegers() throws {
        let c = try parse(#"{"train_batch_size": 16.0, "train_micro_batch_size_per_gpu": 4e0}"#, 1)
        #expect(c.gradientAccumulationSteps == 4)
    }

    @Test func resolveBatchIsPublicAndMatchesPythonFloorDivision() throws {
        #expect(floorDiv(-7, 2) == -4 && floorDiv(7, 2) == 3 && floorDiv(-8, 2) == -4)
        let b = try DeepSpeedConfig.resolveBatch(trainBatchSize: 48, microBatchSizePerGPU: nil,
                                                 gradientAccumulationSteps: 3, worldSize: 4)
        #expect(b == BatchSizes(trainBatchSize: 48, microBatchSizePerGPU: 4, gradientAccumulationSteps: 3))
    }
}
