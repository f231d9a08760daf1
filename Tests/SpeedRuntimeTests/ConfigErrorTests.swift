// Config errors and warnings: "auto" naming its key path, unknown keys with suggestions, type and range errors.
// Invariant: every error is checked for its key path and, where it matters, the exact message.

import Testing
@testable import SpeedRuntime

@Suite struct ConfigErrorTests {
    func error(_ json: String, worldSize: Int = 1) -> ConfigError? {
        #expect(throws: ConfigError.self) { try DeepSpeedConfig.parse(json, worldSize: worldSize) }
    }

    // MARK: "auto"

    @Test func autoIsAnErrorNamingTheKeyPath() {
        let e = error(#"{"train_batch_size": 8, "optimizer": {"type": "AdamW", "params": {"lr": "auto"}}}"#)
        #expect(e?.keyPath == "optimizer.params.lr")
        #expect(e?.description.contains(#"optimizer.params.lr: "auto" is not resolved"#) == true)
        #expect(e?.allowed.contains("Hugging Face Trainer") == true)
        let all = error(#"{"train_batch_size": "auto", "gradient_clipping": "auto", "optimizer": {"type": "Adam", "params": {"betas": ["auto", 0.9]}}}"#)
        #expect(all?.keyPath == "gradient_clipping")
        #expect(all?.description.contains("also unresolved: optimizer.params.betas[0], train_batch_size") == true)
    }

    @Test func autoIsFilledByTheResolver() throws {
        let json = """
            {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
             "gradient_clipping": "auto",
             "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "weight_decay": "auto"}},
             "zero_optimization": {"stage": 3, "reduce_bucket_size": "auto"},
             "pipeline": {"stages": "auto"}}
            """
        let c = try DeepSpeedConfig.parse(json, worldSize: 2, auto: [
            "train_batch_size": 32, "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 2,
            "gradient_clipping": 0.5, "optimizer.params.lr": 3e-4, "optimizer.params.betas": [0.9, 0.95],
            "optimizer.params.weight_decay": 0.0, "zero_optimization.reduce_bucket_size": 589824,
        ])
        #expect(c.trainBatchSize == 32 && c.gradientClipping == 0.5)
        #expect(c.optimizer?.params.lr == 3e-4 && c.optimizer?.params.betas == [0.9, 0.95])
        #expect(c.zeroOptimization.reduceBucketSize == 589824)
        #expect(c.pipeline.stages == nil)   // DeepSpeed's own "auto", not a Trainer placeholder
        let hidden = 768
        let closure = AutoValues { path in
            switch path {
            case "train_micro_batch_size_per_gpu": return 4
            case "zero_optimization.reduce_bucket_size": return .int(hidden * hidden)
            default: return nil
            }
        }
        let d = try DeepSpeedConfig.parse(#"{"train_micro_batch_size_per_gpu": "auto", "zero_optimization": {"reduce_bucket_size": "auto"}}"#,
                                          auto: closure)
        #expect(d.trainBatchSize == 4 && d.zeroOptimization.reduceBucketSize == 589824)
        #expect(throws: ConfigError.self) {
            try DeepSpeedConfig.parse(#"{"train_batch_size": "auto"}"#, auto: ["train_batch_size": "auto"])
        }
    }

    // MARK: Unknown keys

    @Test func unknownTopLevelKeyWarnsWithASuggestion() throws {
        let c = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "gradient_acumulation_steps": 1}"#)
        #expect(c.warnings.count == 1)
        let w = try #require(c.warnings.first)
        #expect(w.keyPath == "gradient_acumulation_steps")
        #expect(w.suggestion == "gradient_accumulation_steps")
        #expect(w.description == #"gradient_acumulation_steps: unknown key, ignored; did you mean "gradient_accumulation_steps"?"#)
        #expect(c.gradientAccumulationSteps == 1)
    }

    @Test func unknownKeysInsideBlocksWarnWithTheirPath() throws {
        let c = try DeepSpeedConfig.parse("""
            {"train_batch_size": 8,
             "zero_optimization": {"stage": 2, "overlap_com": true, "offload_optimizer": {"device": "cpu", "pin_memroy": true}},
             "fp16": {"enabled": true, "initial_scale_pwr": 8},
             "scheduler": {"type": "WarmupLR", "params": {"warmup_num_step": 10}},
             "optimizer": {"type": "Adam", "params": {"weight_decya": 0.1}}}
            """)
        let byPath = Dictionary(uniqueKeysWithValues: c.warnings.map { ($0.keyPath, $0.suggestion) })
        #expect(byPath["zero_optimization.overlap_com"] == .some("zero_optimization.overlap_comm"))
        #expect(byPath["zero_optimization.offload_optimizer.pin_memroy"] == .some("zero_optimization.offload_optimizer.pin_memory"))
        #expect(byPath["fp16.initial_scale_pwr"] == .some("fp16.initial_scale_power"))
        #expect(byPath["scheduler.params.warmup_num_step"] == .some("scheduler.params.warmup_num_steps"))
        #expect(byPath["optimizer.params.weight_decya"] == .some("optimizer.params.weight_decay"))
        #expect(c.warnings.count == 5)
    }

    @Test func aKeyInTheWrongBlockPointsAtItsBlock() throws {
        let c = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "stage": 2, "zero_optimization": {}}"#)
        #expect(c.warnings.first?.suggestion == "zero_optimization.stage")
        let absent = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "loss_scale": 128}"#)
        #expect(absent.warnings.first?.suggestion == "fp16.loss_scale")
        let far = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "completely_unrelated": 1}"#)
        #expect(far.warnings.first?.suggestion == nil)
    }

    @Test func keysOfAnotherTypeAreFlagged() throws {
        let c = try DeepSpeedConfig.parse("""
            {"train_batch_size": 8, "optimizer": {"type": "SGD", "params": {"lr": 0.1, "betas": [0.9, 0.99]}},
             "scheduler": {"type": "WarmupCosineLR", "params": {"total_num_steps": 10, "warmup_num_steps": 5, "warmup_max_lr": 0.1}}}
            """)
        #expect(c.warnings.map(\.keyPath) == ["optimizer.params.betas", "scheduler.params.warmup_max_lr"])
        #expect(c.warnings[0].message == "not a parameter of sgd; ignored")
        #expect(c.scheduler?.params.warmupMaxLR == nil)
    }

    @Test func ignoredAndDeprecatedDeepSpeedKeysWarn() throws {
        let c = try DeepSpeedConfig.parse("""
            {"train_batch_size": 8, "flops_profiler": {"enabled": false},
             "zero_optimization": {"stage": 1, "cpu_offload": true, "zero_quantized_weights": false}}
            """)
        #expect(Set(c.warnings.map(\.keyPath)) == ["flops_profiler", "zero_optimization.cpu_offload",
                                                    "zero_optimization.zero_quantized_weights"])
        #expect(c.zeroOptimization.offloadOptimizer?.device == .cpu)
    }

    @Test func removedDeepSpeedFeaturesAreErrors() {
        #expect(error(#"{"train_batch_size": 8, "amp": {"enabled": true}}"#)?.keyPath == "amp")
        #expect(error(#"{"train_batch_size": 8, "zero_optimization": {"mics_shard_size": 8}}"#)?.keyPath
                == "zero_optimization.mics_shard_size")
    }

    // MARK: Types and ranges

    @Test func wrongTypesAndRangesNameKeyValueAndWhatIsAllowed() {
        let cases: [(String, String, String)] = [
            (#"{"zero_optimization": {"stage": 4}}"#, "zero_optimization.stage",
             "zero_optimization.stage: 4 is not allowed (allowed: an integer 0...3)"),
            (#"{"zero_optimization": {"stage": "2"}}"#, "zero_optimization.stage",
             #"zero_optimization.stage: "2" is not allowed (allowed: an integer 0...3)"#),
            (#"{"fp16": {"enabled": "yes"}}"#, "fp16.enabled", #"fp16.enabled: "yes" is not allowed (allowed: true or false)"#),
            (#"{"fp16": {"loss_scale": -1}}"#, "fp16.loss_scale", "fp16.loss_scale: -1 is not allowed (allowed: a number >= 0.0 and <= 65504.0)"),
            (#"{"gradient_clipping": -0.5}"#, "gradient_clipping", "gradient_clipping: -0.5 is not allowed (allowed: a number >= 0.0)"),
            (#"{"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "gpu"}}}"#,
             "zero_optimization.offload_optimizer.device",
             #"zero_optimization.offload_optimizer.device: "gpu" is not allowed (allowed: one of "none", "cpu", "nvme")"#),
            (#"{"zero_optimization": {"stage": 3, "offload_param": {"device": "disk"}}}"#,
             "zero_optimization.offload_param.device", ""),
            (#"{"zero_optimization": {"reduce_bucket_size": 0}}"#, "zero_optimization.reduce_bucket_size", ""),
            (#"{"optimizer": {"type": "RMSprop"}}"#, "optimizer.type", ""),
            (#"{"optimizer": {"params": {"lr": 0.1}}}"#, "optimizer.type", ""),
            (#"{"optimizer": {"type": "Adam", "params": {"lr": -1}}}"#, "optimizer.params.lr", ""),
            (#"{"optimizer": {"type": "Adam", "params": {"betas": [0.9]}}}"#, "optimizer.params.betas", ""),
            (#"{"optimizer": {"type": "Adam", "params": {"max_grad_norm": 1.0}}}"#, "optimizer.params.max_grad_norm", ""),
            (#"{"optimizer": {"type": "SGD", "params": {"nesterov": true}}}"#, "optimizer.params.nesterov", ""),
            (#"{"scheduler": {"type": "CosineAnnealingLR"}}"#, "scheduler.type", ""),
            (#"{"scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": 10}}}"#,
             "scheduler.params.total_num_steps", ""),
            (#"{"scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 0}}}"#,
             "scheduler.params.warmup_num_steps", ""),
            (#"{"scheduler": {"type": "OneCycle", "params": {"cycle_max_lr": 0.1}}}"#, "scheduler.params.cycle_min_lr", ""),
            (#"{"scheduler": {"type": "LRRangeTest", "params": {"lr_range_test_step_size": 0}}}"#,
             "scheduler.params.lr_range_test_step_size", ""),
            (#"{"fp16": {"enabled": true, "loss_scale_window": 0}}"#, "fp16.loss_scale_window", ""),
            (#"{"fp16": {"hysteresis": 0}}"#, "fp16.hysteresis", ""),
            (#"{"data_types": {"grad_accum_dtype": "fp8"}}"#, "data_types.grad_accum_dtype", ""),
            (#"{"communication_data_type": "int8"}"#, "communication_data_type", ""),
            (#"{"steps_per_print": 0}"#, "steps_per_print", ""),
            (#"{"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "nvme"}}}"#,
             "zero_optimization.offload_optimizer.nvme_path", ""),
            (#"{"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu", "ratio": 0.5}}}"#,
             "zero_optimization.offload_optimizer.ratio", ""),
            (#"{"checkpoint": {"tag_validation": "sometimes"}}"#, "checkpoint.tag_validation", ""),
            (#"{"zero_optimization": []}"#, "zero_optimization", "zero_optimization: [] is not allowed (allowed: an object)"),
        ]
        for (block, path, message) in cases {
            var json = block
            json.insert(contentsOf: #""train_batch_size": 8, "#, at: json.index(after: json.startIndex))
            let e = error(json)
            #expect(e?.keyPath == path, "\(json)")
            if !message.isEmpty { #expect(e?.description == message) }
            #expect(e?.description.hasPrefix(path) == true)
        }
    }

    @Test func unknownOptimizerTypeSuggestsTheNearestOne() {
        let e = error(#"{"train_batch_size": 8, "optimizer": {"type": "Adamw8bit"}}"#)
        #expect(e?.allowed.contains("Adam, AdamW, SGD, Lamb, Adagrad, Lion") == true)
        let near = error(#"{"train_batch_size": 8, "scheduler": {"type": "WarmupLRR"}}"#)
        #expect(near?.allowed.contains(#"did you mean "WarmupLR""#) == true)
    }

    @Test func fp16AndBf16TogetherIsAnError() {
        let e = error(#"{"train_batch_size": 8, "fp16": {"enabled": true}, "bf16": {"enabled": true}}"#)
        #expect(e?.description.contains("bfloat16 and fp16 modes cannot be simultaneously enabled") == true)
        let alias = error(#"{"train_batch_size": 8, "fp16": {"enabled": true}, "bfloat16": {"enabled": true}}"#)
        #expect(alias != nil)
    }

    @Test func masterWeightsInLowPrecisionNeedZero() {
        let e = error(#"{"train_batch_size": 8, "bf16": {"enabled": true, "bf16_master_weights_and_grads": true}}"#)
        #expect(e?.keyPath == "bf16.bf16_master_weights_and_grads")
    }

    @Test func editDistanceSuggestions() {
        #expect(editDistance("gradient_acumulation_steps", "gradient_accumulation_steps") == 1)
        #expect(editDistance("kitten", "sitting") == 3)
        #expect(closestKey(to: "stge", in: ["stage", "sub_group_size"]) == "stage")
        #expect(closestKey(to: "zzzz", in: ["stage"]) == nil)
    }
}
