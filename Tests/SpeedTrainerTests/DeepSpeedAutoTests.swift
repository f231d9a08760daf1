// The DeepSpeed "auto" fill against transformers' HfTrainerDeepSpeedConfig (Fixtures/deepspeed_auto.json): the filled
// config of both passes or the exact mismatch text, T and warmup from transformers' own step arithmetic.
// Invariant: the fixture's T comes from transformers' set_initial_training_values over accelerate's per-rank loader.

import Foundation
import SpeedOptim
import SpeedRuntime
@testable import SpeedTrainer
import Testing

struct DSCase: Sendable, CustomTestStringConvertible {
    var name: String
    var swiftArgs: [String: JSONValue]
    var deepspeed: JSONValue
    var worldSize: Int
    var trainRows: Int
    var modelConfig: JSONValue
    var batchesPerEpoch: Int
    var updatesPerEpoch: Int
    var totalSteps: Int
    var warmupSteps: Int
    var filled: JSONValue?
    var error: String?
    var testDescription: String { name }

    /// Read with JSONValue.parse, which keeps 1.0 a double and 1 an integer (as Python's json.load).
    static let all: [DSCase] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/deepspeed_auto.json")
        guard let text = try? String(contentsOf: url, encoding: .utf8), let root = try? JSONValue.parse(text),
              case .array(let cases)? = root["cases"] else { fatalError("cannot read \(url.path)") }
        return cases.map { c in
            func int(_ k: String) -> Int { c[k]!.intValue! }
            guard case .string(let name)? = c["name"], case .object(let swiftArgs)? = c["swift_args"] else { fatalError("bad case") }
            var error: String?
            if case .string(let e)? = c["error"] { error = e }
            return DSCase(name: name, swiftArgs: swiftArgs, deepspeed: c["deepspeed"]!, worldSize: int("world_size"),
                          trainRows: int("train_rows"), modelConfig: c["model_config"]!, batchesPerEpoch: int("batches_per_epoch"),
                          updatesPerEpoch: int("updates_per_epoch"), totalSteps: int("total_steps"),
                          warmupSteps: int("warmup_steps"), filled: c["filled"], error: error)
        }
    }()

    func arguments() throws -> TrainingArguments {
        var json = swiftArgs
        json["output_dir"] = "trainer_output"
        json["deepspeed"] = deepspeed
        return try TrainingArguments(json: .object(json))
    }
}

@Suite struct DeepSpeedAutoTests {
    @Test(arguments: DSCase.all)
    func fillsAndChecksAsTransformers(_ c: DSCase) throws {
        let args = try c.arguments()
        let steps = TrainingSteps(arguments: args, trainRows: c.trainRows, worldSize: c.worldSize)
        #expect(steps.batchesPerEpoch == c.batchesPerEpoch)
        #expect(steps.updatesPerEpoch == c.updatesPerEpoch)
        #expect(steps.totalSteps == c.totalSteps)
        #expect(args.warmupSteps(forTrainingSteps: steps.totalSteps) == c.warmupSteps)
        var ds = try TrainerDeepSpeedConfig(args.deepspeed!, arguments: args, worldSize: c.worldSize)
        if let message = c.error {
            do {
                try ds.finalize(arguments: args, modelConfig: c.modelConfig, numTrainingSteps: steps.totalSteps)
                Issue.record("\(c.name): no error; transformers raised \(message)")
            } catch {
                #expect("\(error)".hasSuffix(message), "\(c.name): \(error)")
            }
            // TrainerSetup raises the same.
            #expect(throws: (any Error).self) {
                try TrainerSetup(arguments: args, modelConfig: c.modelConfig, trainRows: c.trainRows, worldSize: c.worldSize)
            }
            return
        }
        try ds.finalize(arguments: args, modelConfig: c.modelConfig, numTrainingSteps: steps.totalSteps)
        let want = try #require(c.filled)
        // Exactly transformers' config, integers as integers and floats as floats (what --print-deepspeed-config prints).
        #expect(ds.json == want, "\(c.name):\n  ours \(ds.json.rendered())\n  hf   \(want.rendered())")
        if c.name == "numeric_equality_no_mismatch" {
            // transformers takes fp16.enabled 0 as False (no mismatch, as above); SwiftSpeed's config reader then
            // asks for a real boolean, naming the key.
            let error = #expect(throws: ConfigError.self) { try ds.deepSpeedConfig(worldSize: c.worldSize) }
            #expect(error?.keyPath == "fp16.enabled")
            return
        }
        // The filled config parses for initialize, with the batch sizes the arguments give.
        let config = try ds.deepSpeedConfig(worldSize: c.worldSize)
        #expect(config.trainMicroBatchSizePerGPU == args.perDeviceTrainBatchSize)
        #expect(config.trainBatchSize == c.worldSize * args.perDeviceTrainBatchSize * args.gradientAccumulationSteps)
        let setup = try TrainerSetup(arguments: args, modelConfig: c.modelConfig, trainRows: c.trainRows, worldSize: c.worldSize)
        #expect(setup.json == ds.json && setup.config == config && setup.steps == steps)
    }

    @Test func mismatchTextIsTransformersExactly() throws {
        let c = try #require(DSCase.all.first { $0.name == "mismatches" })
        let args = try c.arguments()
        var ds = try TrainerDeepSpeedConfig(args.deepspeed!, arguments: args, worldSize: 1)
        // Pass 1 already collected the argument mismatches; pass 2 adds total_num_steps and throws them all.
        #expect(ds.mismatches.count == 6)
        let error = #expect(throws: DeepSpeedMismatchError.self) {
            try ds.finalize(arguments: args, modelConfig: c.modelConfig, numTrainingSteps: 50)
        }
        #expect(error?.description == c.error)
        #expect(error?.mismatches.count == 7)
    }

    @Test func stage3BucketsAndLeftoverAutoBelowStage3() throws {
        let stage3 = try #require(DSCase.all.first { $0.name == "stage3_buckets" })
        let config = try TrainerSetup(arguments: try stage3.arguments(), modelConfig: stage3.modelConfig,
                                      trainRows: stage3.trainRows, worldSize: 1).config
        #expect(config.zeroOptimization.reduceBucketSize == 768 * 768)
        #expect(config.zeroOptimization.stage3PrefetchBucketSize == 530_841)
        #expect(config.zeroOptimization.stage3ParamPersistenceThreshold == 7680)
        #expect(config.bf16.enabled)
        // Stage 2: the stage-3 keys stay "auto" in the JSON and take DeepSpeed's defaults once parsed.
        let stage2 = try #require(DSCase.all.first { $0.name == "world_2" })
        let setup = try TrainerSetup(arguments: try stage2.arguments(), modelConfig: stage2.modelConfig,
                                     trainRows: stage2.trainRows, worldSize: 2)
        #expect(setup.json["zero_optimization"]?["stage3_prefetch_bucket_size"] == "auto")
        #expect(setup.config.zeroOptimization.stage3PrefetchBucketSize == 50_000_000)
        #expect(setup.config.zeroOptimization.reduceBucketSize == 24 * 24)
        #expect(setup.config.scheduler?.params.totalNumSteps == 14)
        #expect(setup.config.scheduler?.params.warmupNumSteps == 3)
    }

    @Test func hiddenSizeFromModelConfigs() {
        #expect(TrainerDeepSpeedConfig.hiddenSize(fromModelConfig: ["hidden_size": 64]) == 64)
        #expect(TrainerDeepSpeedConfig.hiddenSize(fromModelConfig: ["model_type": "gpt2", "n_embd": 32]) == 32)
        #expect(TrainerDeepSpeedConfig.hiddenSize(fromModelConfig: ["hidden_sizes": [96, 384, 192]]) == 384)
        #expect(TrainerDeepSpeedConfig.hiddenSize(fromModelConfig: ["text_config": ["hidden_size": 48]]) == 48)
        #expect(TrainerDeepSpeedConfig.hiddenSize(fromModelConfig: ["vocab_size": 10]) == nil)
    }

    @Test func aFileConfigAndTheTrainersOwnOptimizerAndSchedule() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ds-auto-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "zero_optimization": {"stage": 1}}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let args = try TrainingArguments.parse(arguments: ["--deepspeed", path, "--learning_rate", "1e-3", "--weight_decay", "0.1",
                                                           "--lr_scheduler_type", "cosine", "--warmup_steps", "2", "--max_steps", "10",
                                                           "--max_grad_norm", "0.5"])
        let setup = try TrainerSetup(arguments: args, modelConfig: nil, trainRows: 64, worldSize: 1)
        #expect(setup.json["zero_allow_untested_optimizer"] == true)
        #expect(setup.config.zeroAllowUntestedOptimizer && setup.config.gradientClipping == 0.5)
        let model = TinyNet()
        let opt = try setup.optimization(model: model)
        let adamw = try #require(opt.optimizer as? AdamW)
        #expect(adamw.lr == 1e-3 && adamw.weightDecay == 0.1)
        #expect(opt.parameterGroups?.map(\.weightDecay) == [0.1, 0])
        #expect(opt.parameterGroups?[0].parameters.count == 2 && opt.parameterGroups?[1].parameters.count == 4)
        let schedule = try #require(opt.scheduler as? HFSchedule)
        #expect(schedule.type == .cosine && schedule.numWarmupSteps == 2 && schedule.numTrainingSteps == 10)
        // With optimizer and scheduler blocks, DeepSpeed's own: one group.
        let blocks = try TrainingArguments.parse(arguments: ["--deepspeed", #"{"train_micro_batch_size_per_gpu": "auto", "optimizer": {"type": "Lamb", "params": {"lr": "auto", "weight_decay": "auto"}}, "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": "auto", "warmup_max_lr": "auto"}}}"#,
                                                             "--warmup_steps", "0.5", "--max_steps", "8"])
        let ds = try TrainerSetup(arguments: blocks, modelConfig: nil, trainRows: 64, worldSize: 1)
        let o = try ds.optimization(model: TinyNet())
        #expect(o.optimizer is Lamb && o.parameterGroups == nil)
        #expect((o.scheduler as? WarmupLR)?.warmupNumSteps == 4)
        #expect(ds.json["zero_allow_untested_optimizer"] == nil)
    }

    @Test func aMissingFileOrANonObjectIsAClearError() {
        var args = TrainingArguments()
        args.deepspeed = .path("/nonexistent/ds.json")
        #expect(throws: TrainingArgumentsError(key: "deepspeed", "cannot read the DeepSpeed config /nonexistent/ds.json; check the path")) {
            try TrainerDeepSpeedConfig(arguments: args, worldSize: 1)
        }
        #expect(throws: TrainingArgumentsError.self) { try TrainerDeepSpeedConfig(.inline([1, 2]), arguments: args, worldSize: 1) }
    }

    @Test func withoutDeepSpeedTheImplicitConfigFollowsTheArguments() throws {
        let args = try TrainingArguments.parse(arguments: ["--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2",
                                                           "--fp16", "--max_grad_norm", "0"])
        let setup = try TrainerSetup(arguments: args, modelConfig: nil, trainRows: 10, worldSize: 2)
        #expect(setup.config.trainMicroBatchSizePerGPU == 4 && setup.config.gradientAccumulationSteps == 2)
        #expect(setup.config.trainBatchSize == 16 && setup.config.fp16.enabled && setup.config.gradientClipping == 0)
        #expect(setup.config.zeroOptimization.stage == 0)
    }
}
