// DeepSpeedConfig parsing: DeepSpeed 0.19 defaults, JSON5 + # syntax and its limits, aliases, the seed configs, Codable round trip.
// Invariant: configs are written inline as JSON text, exactly as a user would write ds_config.json.

import Foundation
import Testing
import SpeedOptim
@testable import SpeedRuntime

@Suite struct ConfigParsingTests {
    @Test func defaultsMatchDeepSpeed019() throws {
        let c = try DeepSpeedConfig.parse(#"{"train_batch_size": 8}"#)
        #expect(c.trainBatchSize == 8 && c.trainMicroBatchSizePerGPU == 8 && c.gradientAccumulationSteps == 1)
        #expect(c.gradientClipping == 1.0)
        #expect(c.stepsPerPrint == nil)
        #expect(!c.wallClockBreakdown && !c.dumpState && !c.prescaleGradients && !c.zeroAllowUntestedOptimizer)
        #expect(c.gradientPredivideFactor == 1.0)
        #expect(c.communicationDataType == nil)
        #expect(c.optimizer == nil && c.scheduler == nil)
        #expect(c.fp16 == FP16Config())
        #expect(c.fp16.lossScale == 0 && c.fp16.initialScalePower == 16 && c.fp16.lossScaleWindow == 1000)
        #expect(c.fp16.hysteresis == 2 && !c.fp16.consecutiveHysteresis && c.fp16.minLossScale == 1)
        #expect(!c.bf16.enabled && c.bf16.checkGradOverflow && !c.bf16.immediateGradUpdate)
        #expect(c.dataTypes.gradAccumDType == nil)
        let z = c.zeroOptimization
        #expect(z.stage == 0 && z.contiguousGradients && z.reduceScatter)
        #expect(z.reduceBucketSize == 500_000_000 && z.allgatherBucketSize == 500_000_000)
        #expect(!z.overlapComm)
        #expect(z.stage3PrefetchBucketSize == 50_000_000 && z.stage3ParamPersistenceThreshold == 100_000)
        #expect(z.stage3MaxLiveParameters == 1_000_000_000 && z.stage3MaxReuseDistance == 1_000_000_000)
        #expect(!z.stage3Gather16BitWeightsOnModelSave && z.subGroupSize == 1_000_000_000 && !z.roundRobinGradients)
        #expect(z.offloadOptimizer == nil && z.offloadParam == nil)
        let a = c.activationCheckpointing
        #expect(!a.partitionActivations && !a.cpuCheckpointing && !a.contiguousMemoryOptimization)
        #expect(a.numberCheckpoints == nil && !a.synchronizeCheckpointBoundary && !a.profile)
        #expect(c.pipeline.stages == nil && c.pipeline.partition == "best" && c.pipeline.pipePartitioned)
        #expect(c.checkpoint.tagValidation == .warn && !c.checkpoint.loadUniversal)
        #expect(c.tensorboard == MonitorConfig() && c.csvMonitor.jobName == "DeepSpeedJobName")
        #expect(c.wandb.project == "deepspeed" && !c.wandb.enabled)
        #expect(c.warnings.isEmpty)
    }

    @Test func overlapCommDefaultsToTrueOnlyAtStage3() throws {
        for stage in 0...3 {
            let c = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "zero_optimization": {"stage": \#(stage)}}"#)
            #expect(c.zeroOptimization.overlapComm == (stage == 3))
        }
        let c = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "zero_optimization": {"stage": 3, "overlap_comm": false}}"#)
        #expect(!c.zeroOptimization.overlapComm)
    }

    @Test func everyBlockIsRead() throws {
        let c = try DeepSpeedConfig.parse("""
            {
              "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 3,
              "steps_per_print": 10, "wall_clock_breakdown": true, "dump_state": true,
              "gradient_clipping": 0.5, "prescale_gradients": true, "gradient_predivide_factor": 2,
              "communication_data_type": "BF16", "zero_allow_untested_optimizer": true,
              "optimizer": {"type": "Lamb", "params": {"lr": 0.002, "max_coeff": 5, "min_coeff": 0.1}},
              "scheduler": {"type": "WarmupDecayLR", "params": {"total_num_steps": 100, "warmup_num_steps": 10}},
              "bf16": {"enabled": true, "immediate_grad_update": true},
              "data_types": {"grad_accum_dtype": "float32"},
              "zero_optimization": {
                "stage": 3, "reduce_bucket_size": 5e7, "allgather_bucket_size": 2e8,
                "stage3_prefetch_bucket_size": 1000, "stage3_param_persistence_threshold": 10,
                "stage3_max_live_parameters": 2e9, "stage3_max_reuse_distance": 3e9,
                "stage3_gather_16bit_weights_on_model_save": true, "sub_group_size": 1e8,
                "round_robin_gradients": true, "contiguous_gradients": false, "reduce_scatter": false,
                "offload_optimizer": {"device": "nvme", "nvme_path": "/local_nvme", "pin_memory": false, "ratio": 0.5},
                "offload_param": {"device": "cpu", "buffer_count": 6}
              },
              "activation_checkpointing": {"partition_activations": true, "cpu_checkpointing": true,
                "contiguous_memory_optimization": true, "number_checkpoints": 4,
                "synchronize_checkpoint_boundary": true, "profile": true},
              "pipeline": {"stages": 2, "partition": "uniform", "activation_checkpoint_interval": 1},
              "checkpoint": {"tag_validation": "fail", "load_universal": true},
              "tensorboard": {"enabled": true, "output_path": "runs/", "job_name": "tb"},
              "csv_monitor": {"enabled": true, "output_path": "csv/", "job_name": "csv"},
              "wandb": {"enabled": true, "team": "t", "group": "g", "project": "p"}
            }
            """, worldSize: 4)
        #expect(c.trainBatchSize == 24)
        #expect(c.stepsPerPrint == 10 && c.wallClockBreakdown && c.dumpState && c.gradientClipping == 0.5)
        #expect(c.prescaleGradients && c.gradientPredivideFactor == 2 && c.communicationDataType == "bf16")
        #expect(c.zeroAllowUntestedOptimizer)
        #expect(c.optimizer?.type == .lamb && c.optimizer?.params.lr == 0.002)
        #expect(c.optimizer?.params.maxCoeff == 5 && c.optimizer?.params.minCoeff == 0.1)
        #expect(c.scheduler?.type == .warmupDecayLR && c.scheduler?.params.totalNumSteps == 100)
        #expect(c.bf16.enabled && c.bf16.immediateGradUpdate)
        #expect(c.dataTypes.gradAccumDType == "fp32")
        let z = c.zeroOptimization
        #expect(z.stage == 3 && z.reduceBucketSize == 50_000_000 && z.allgatherBucketSize == 200_000_000)
        #expect(z.stage3PrefetchBucketSize == 1000 && z.stage3ParamPersistenceThreshold == 10)
        #expect(z.stage3MaxLiveParameters == 2_000_000_000 && z.stage3MaxReuseDistance == 3_000_000_000)
        #expect(z.stage3Gather16BitWeightsOnModelSave && z.subGroupSize == 100_000_000 && z.roundRobinGradients)
        #expect(!z.contiguousGradients && !z.reduceScatter && z.overlapComm)
        #expect(z.offloadOptimizer?.device == .nvme && z.offloadOptimizer?.nvmePath == "/local_nvme")
        #expect(z.offloadOptimizer?.pinMemory == false && z.offloadOptimizer?.ratio == 0.5)
        #expect(z.offloadParam?.device == .cpu && z.offloadParam?.bufferCount == 6 && z.offloadParam?.pinMemory == true)
        let a = c.activationCheckpointing
        #expect(a.partitionActivations && a.cpuCheckpointing && a.contiguousMemoryOptimization)
        #expect(a.numberCheckpoints == 4 && a.synchronizeCheckpointBoundary && a.profile)
        #expect(c.pipeline.stages == 2 && c.pipeline.partition == "uniform" && c.pipeline.activationCheckpointInterval == 1)
        #expect(c.checkpoint.tagValidation == .fail && c.checkpoint.loadUniversal)
        #expect(c.tensorboard == MonitorConfig(enabled: true, outputPath: "runs/", jobName: "tb"))
        #expect(c.csvMonitor == MonitorConfig(enabled: true, outputPath: "csv/", jobName: "csv"))
        #expect(c.wandb.enabled && c.wandb.team == "t" && c.wandb.group == "g" && c.wandb.project == "p")
        #expect(c.warnings.isEmpty, "\(c.warnings)")
    }

    @Test func commentsTrailingCommasAndBareKeysAreAccepted() throws {
        let c = try DeepSpeedConfig.parse("""
            // DeepSpeed accepts hjson
            {
              /* the batch */
              "train_batch_size": 32,   // global
              # hash comments too
              train_micro_batch_size_per_gpu: 8,
              "fp16": {"enabled": true, "loss_scale": 128,},
              "optimizer": {"type": "AdamW", "params": {"betas": [0.8, 0.95,],},},
            }
            """, worldSize: 2)
        #expect(c.gradientAccumulationSteps == 2)
        #expect(c.fp16.enabled && c.fp16.lossScale == 128)
        #expect(c.optimizer?.params.betas == [0.8, 0.95])
    }

    @Test func syntaxErrorsNameLineColumnAndKeyPath() {
        let e = #expect(throws: ConfigError.self) {
            try DeepSpeedConfig.parse("{\n  \"fp16\": {\"enabled\": tru}\n}")
        }
        #expect(e?.keyPath == "fp16.enabled")
        #expect(e?.description.contains("line 2") == true)
        let dup = #expect(throws: ConfigError.self) {
            try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "train_batch_size": 16}"#)
        }
        #expect(dup?.description.contains("duplicate key \"train_batch_size\"") == true)
        #expect(throws: ConfigError.self) { try DeepSpeedConfig.parse(#"{"a": 1 /* open"#) }
        #expect(throws: ConfigError.self) { try DeepSpeedConfig.parse(#"[1, 2]"#) }
    }

    @Test func duplicateKeysAreRefusedInEveryObject() throws {
        let nested = #expect(throws: ConfigError.self) {
            try JSONValue.parse("{\"fp16\": {\"enabled\": true,\n  enabled: false}}")
        }
        #expect(nested?.keyPath == "fp16")
        #expect(nested?.description.contains("line 2, column 3: duplicate key \"enabled\"") == true)
        // The same key spelled with an escape, and the same key in two sibling objects (allowed).
        #expect(throws: ConfigError.self) { try JSONValue.parse(#"{"ab": 1, "a\u0062": 2}"#) }
        #expect(try JSONValue.parse(#"{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 3}, {"x": 4}]}"#)
            == ["a": ["x": 1], "b": ["x": 2], "c": [["x": 3], ["x": 4]]])
    }

    @Test func commentMarkersInsideStringsAreText() throws {
        let v = try JSONValue.parse("\u{FEFF}{'url': \"http://h/#x\", $k: 'it\\'s /* no */', # end\n e: [],} // end")
        #expect(v == ["url": "http://h/#x", "$k": "it's /* no */", "e": []])
        #expect(throws: ConfigError.self) { try JSONValue.parse("") }
        #expect(throws: ConfigError.self) { try JSONValue.parse("{a-b: 1}") }   // JSON5 identifiers only
    }

    @Test func deepNestingIsAnErrorNotACrash() throws {
        let deep = #expect(throws: ConfigError.self) { try JSONValue.parse(String(repeating: "[", count: 60_000)) }
        #expect(deep?.description.contains("nesting deeper than \(JSONValue.maxNesting) levels") == true)
        #expect(throws: ConfigError.self) {
            try JSONValue.parse(String(repeating: "{\"a\": ", count: 10_000) + "1" + String(repeating: "}", count: 10_000))
        }
        let limit = JSONValue.maxNesting
        let ok = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect((try? JSONValue.parse(ok)) != nil)
    }

    @Test func numbersKeepTheirWrittenKindAndErrorsTheirPlace() throws {
        let v = try JSONValue.parse(#"{"a": 8, "b": 16.0, "c": 5e7, "d": [1.0, 2, -3E2], "e": "1.5", "f": 0x1e}"#)
        #expect(v == ["a": .int(8), "b": .double(16), "c": .double(5e7), "d": [.double(1), .int(2), .double(-300)],
                      "e": "1.5", "f": .int(30)])
        #expect(v.rendered() == #"{"a":8,"b":16.0,"c":50000000.0,"d":[1.0,2,-300.0],"e":"1.5","f":30}"#)
        for (text, keyPath, place) in [("{\"a\": 1,\n \"b\": [1, 2 3]}", "b", "line 2, column 13"),
                                       ("{\"a\": {\"b\": 1e400}}", "a.b", "line 1, column 13"),
                                       ("{\"a\": 1,,}", "(root)", "line 1, column 9"),
                                       ("{\"a\" 1}", "a", "line 1, column 6"),
                                       ("{\"a\": 'x\n'}", "a", "line 1, column 9"),
                                       ("{\"a\": [1, 2]", "(root)", "line 1, column 13"),
                                       ("{\"a\": 1}]", "(root)", "line 1, column 9")] {
            let e = #expect(throws: ConfigError.self, "\(text)") { try JSONValue.parse(text) }
            #expect(e?.keyPath == keyPath, "\(text): \(e.map(String.init(describing:)) ?? "")")
            #expect(e?.description.contains(place) == true, "\(text): \(e.map(String.init(describing:)) ?? "")")
        }
    }

    @Test func bfloat16IsAnAliasForBf16() throws {
        let c = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "bfloat16": {"enabled": true}}"#)
        #expect(c.bf16.enabled)
        #expect(c.warnings.isEmpty)
        let both = try DeepSpeedConfig.parse(
            #"{"train_batch_size": 8, "bf16": {"enabled": false}, "bfloat16": {"enabled": true}}"#)
        #expect(!both.bf16.enabled)
        #expect(both.warnings.map(\.keyPath) == ["bfloat16"])
    }

    @Test func optimizerTypeIsCaseInsensitiveWithPerTypeDefaults() throws {
        func params(_ type: String) throws -> OptimizerConfig {
            try #require(DeepSpeedConfig.parse(#"{"train_batch_size": 1, "optimizer": {"type": "\#(type)"}}"#).optimizer)
        }
        #expect(try params("ADAM").type == .adam)
        #expect(try params("adam").params == OptimizerParams(defaultsFor: .adam))
        #expect(try params("Adam").params.adamWMode)
        #expect(try params("AdamW").params.betas == [0.9, 0.999])
        #expect(try params("Adagrad").params.lr == 1e-2)
        #expect(try params("Adagrad").params.eps == 1e-10)
        #expect(try params("SGD").params.lr == 1e-3 && params("sgd").params.momentum == 0)
        #expect(try params("Lamb").params.maxCoeff == 10 && params("Lamb").params.minCoeff == 0.01)
        #expect(try params("Lion").params.betas == [0.9, 0.999])
    }

    @Test func optimizerParamsAreRead() throws {
        let c = try DeepSpeedConfig.parse("""
            {"train_batch_size": 1, "optimizer": {"type": "Adam", "params":
              {"lr": 3e-4, "betas": [0.9, 0.95], "eps": 1e-6, "weight_decay": 0.1, "bias_correction": false,
               "adam_w_mode": false}}}
            """)
        let p = try #require(c.optimizer?.params)
        #expect(p.lr == 3e-4 && p.betaPair == (0.9, 0.95) && p.eps == 1e-6 && p.weightDecay == 0.1)
        #expect(!p.biasCorrection && !p.adamWMode)
        let sgd = try DeepSpeedConfig.parse(
            #"{"train_batch_size": 1, "optimizer": {"type": "SGD", "params": {"lr": 0.1, "momentum": 0.9, "nesterov": true}}}"#)
        #expect(sgd.optimizer?.params.momentum == 0.9 && sgd.optimizer?.params.nesterov == true)
    }

    @Test func schedulerTypeKeepsItsSpellingAndBuildsWithTheOptimizersLR() throws {
        let c = try DeepSpeedConfig.parse("""
            {"train_batch_size": 1, "optimizer": {"type": "AdamW", "params": {"lr": 5e-4}},
             "scheduler": {"type": "warmupcosinelr", "params": {"total_num_steps": 100, "warmup_num_steps": 10}}}
            """)
        let block = try #require(c.scheduler)
        #expect(block.type == .warmupCosineLR && block.typeName == "warmupcosinelr")
        #expect(c.warnings.map(\.keyPath) == ["scheduler.type"])
        let s = try block.makeScheduler(baseLR: try #require(c.optimizer?.params.lr))
        #expect(s is WarmupCosineLR)
        #expect(abs(s.lr(at: 9) - 5e-4) < 1e-15)   // ln(10)/ln(10) in DeepSpeed's order is 1 - 1 ulp
    }

    @Test func fromADictionary() throws {
        let c = try DeepSpeedConfig.parse(dictionary: [
            "train_batch_size": 16, "gradient_accumulation_steps": 2,
            "fp16": ["enabled": true, "loss_scale": 0, "initial_scale_power": 12] as [String: Any],
            "optimizer": ["type": "Adam", "params": ["lr": 0.001, "betas": [0.9, 0.98]] as [String: Any]] as [String: Any],
        ], worldSize: 2)
        #expect(c.trainMicroBatchSizePerGPU == 4)
        #expect(c.fp16.enabled && c.fp16.initialScalePower == 12)
        #expect(c.optimizer?.params.betas == [0.9, 0.98])
        let fromFoundation = try JSONSerialization.jsonObject(
            with: Data(#"{"train_batch_size": 4, "fp16": {"enabled": true, "loss_scale": 1.5}}"#.utf8)) as! [String: Any]
        let f = try DeepSpeedConfig.parse(dictionary: fromFoundation)
        #expect(f.fp16.enabled && f.fp16.lossScale == 1.5 && f.trainBatchSize == 4)
    }

    @Test func loadsAFileAndNamesAMissingOne() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ds_config_\(UUID().uuidString).json")
        try Data(#"{"train_micro_batch_size_per_gpu": 3}"#.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let c = try DeepSpeedConfig.load(path: url.path, worldSize: 4)
        #expect(c.trainBatchSize == 12 && c.worldSize == 4)
        let e = #expect(throws: ConfigError.self) { try DeepSpeedConfig.load(path: "/nonexistent/ds_config.json") }
        #expect(e?.description.contains("/nonexistent/ds_config.json") == true)
    }

    @Test func codableRoundTripKeepsEveryResolvedValue() throws {
        let c = try DeepSpeedConfig.parse("""
            {"train_batch_size": 32, "train_micro_batch_size_per_gpu": 4,
             "optimizer": {"type": "AdamW", "params": {"lr": 1e-4}},
             "scheduler": {"type": "OneCycle", "params": {"cycle_min_lr": 1e-5, "cycle_max_lr": 1e-3}},
             "fp16": {"enabled": true}, "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}}
            """, worldSize: 2)
        let data = try JSONEncoder().encode(c)
        var back = try JSONDecoder().decode(DeepSpeedConfig.self, from: data)
        back.worldSize = 2
        #expect(back == c)
        // The encoded form is itself a valid ds_config.json.
        let again = try DeepSpeedConfig(json: c.json, worldSize: 2)
        #expect(again == c)
    }

    // The seed programs' configs (/work/shared/seeds), verbatim.
    static let seedZero2Offload = """
        {
          "train_batch_size": 32,
          "gradient_accumulation_steps": 1,
          "optimizer": {
            "type": "Adam",
            "params": {
              "lr": 0.001,
              "betas": [0.9, 0.999],
              "eps": 1e-8,
              "weight_decay": 3e-7
            }
          },
          "fp16": {
            "enabled": true
          },
          "zero_optimization": {
            "stage": 2,
            "offload_optimizer": {
              "device": "cpu"
            }
          }
        }
        """

    static let seedZero2 = """
        {
          "train_batch_size": 16,
          "train_micro_batch_size_per_gpu": 4,
          "optimizer": {
            "type": "Adam",
            "params": {
              "lr": 0.001
            }
          },
          "fp16": {
            "enabled": true
          },
          "zero_optimization": {
            "stage": 2
          }
        }
        """

    @Test func seedFp16Zero2OffloadConfigParses() throws {
        let c = try DeepSpeedConfig.parse(Self.seedZero2Offload)
        #expect(c.trainBatchSize == 32 && c.gradientAccumulationSteps == 1 && c.trainMicroBatchSizePerGPU == 32)
        #expect(c.optimizer?.type == .adam)
        #expect(c.optimizer?.params == {
            var p = OptimizerParams(defaultsFor: .adam)
            p.weightDecay = 3e-7
            return p
        }())
        #expect(c.fp16.enabled && c.fp16.lossScale == 0)
        #expect(c.zeroOptimization.stage == 2)
        #expect(c.zeroOptimization.offloadOptimizer?.device == .cpu)
        #expect(c.zeroOptimization.offloadOptimizer?.pinMemory == true)
        #expect(c.warnings.isEmpty)
        // With 4 ranks: MB = 32 // 4 // 1 = 8.
        #expect(try DeepSpeedConfig.parse(Self.seedZero2Offload, worldSize: 4).trainMicroBatchSizePerGPU == 8)
    }

    @Test func seedZero2ConfigParses() throws {
        let c = try DeepSpeedConfig.parse(Self.seedZero2)
        #expect(c.gradientAccumulationSteps == 4)
        #expect(try DeepSpeedConfig.parse(Self.seedZero2, worldSize: 2).gradientAccumulationSteps == 2)
        #expect(c.fp16.enabled && c.zeroOptimization.stage == 2 && c.optimizer?.params.lr == 0.001)
        #expect(c.warnings.isEmpty)
    }
}
