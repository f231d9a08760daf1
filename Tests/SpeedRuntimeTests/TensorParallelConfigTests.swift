// The `tensor_parallel` block against DeepSpeed's TPTrainingConfig (keys, defaults), its warnings and errors, and the
// batch rule's data-parallel world size W / (TP · PP). Invariant: configs are inline JSON text, as a user writes them.

import Testing
@testable import SpeedRuntime

@Suite struct TensorParallelConfigTests {
    @Test func defaultsAreDeepSpeedsAndTheBlockIsRead() throws {
        let plain = try DeepSpeedConfig.parse(#"{"train_batch_size": 8}"#)
        #expect(plain.tensorParallel == TensorParallelConfig())
        #expect(plain.tensorParallel.autotpSize == 0 && !plain.tensorParallel.tpOverlapComm && !plain.tensorParallel.isEnabled)
        #expect(plain.tensorParallel.size == 1 && plain.tensorParallel.presetModel == nil && plain.tensorParallel.partitionConfig == nil)
        let c = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "tensor_parallel": {"autotp_size": 4, "keep_module_on_host": true}}"#)
        #expect(c.tensorParallel.autotpSize == 4 && c.tensorParallel.isEnabled && c.tensorParallel.keepModuleOnHost)
        #expect(c.warnings.isEmpty, "\(c.warnings)")
        // 1 is accepted and means no sharding, as DeepSpeed shards only above 1.
        let one = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "tensor_parallel": {"autotp_size": 1}}"#)
        #expect(!one.tensorParallel.isEnabled && one.tensorParallel.size == 1)
        // The resolved JSON (what `swiftspeed config` prints and checkpoints store) carries the block.
        guard case .object(let top) = c.json, case .object(let block)? = top["tensor_parallel"] else {
            Issue.record("no tensor_parallel in \(c.json)"); return
        }
        #expect(block["autotp_size"] == .int(4) && block["tp_overlap_comm"] == .bool(false))
    }

    @Test func acceptedButInactiveKeysWarnAndUnknownOnesGetASuggestion() throws {
        let c = try DeepSpeedConfig.parse("""
            {"train_batch_size": 8, "tensor_parallel": {"autotp_size": 2, "tp_overlap_comm": true, "preset_model": "llama",
             "partition_config": {"use_default_specs": false, "layer_specs": []}, "dtype": "bf16",
             "tp": {"tp_size": 2}, "autotp_sise": 3}}
            """)
        #expect(c.tensorParallel.tpOverlapComm && c.tensorParallel.presetModel == "llama")
        #expect(c.tensorParallel.partitionConfig == .object(["use_default_specs": false, "layer_specs": .array([])]))
        let byKey = Dictionary(c.warnings.map { ($0.keyPath, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byKey["tensor_parallel.tp_overlap_comm"]?.message.contains("same result, no overlap") == true)
        #expect(byKey["tensor_parallel.preset_model"]?.message.contains("TensorParallelShardable") == true)
        #expect(byKey["tensor_parallel.partition_config"] != nil)
        #expect(byKey["tensor_parallel.dtype"]?.message.contains("fp16 / bf16") == true)
        #expect(byKey["tensor_parallel.tp"]?.message.contains("inference") == true)
        #expect(byKey["tensor_parallel.autotp_sise"]?.suggestion == "tensor_parallel.autotp_size")
        // It is no longer an ignored top-level key.
        #expect(!c.warnings.contains { $0.keyPath == "tensor_parallel" })
        // A misplaced top-level key points into the block.
        let misplaced = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "autotp_size": 2}"#)
        #expect(misplaced.warnings.first?.suggestion == "tensor_parallel.autotp_size")
    }

    @Test func badValuesAreErrorsNamingTheKey() {
        func keyPath(_ json: String) -> String? {
            do { _ = try DeepSpeedConfig.parse(json); return nil } catch let e as ConfigError { return e.keyPath } catch { return "\(error)" }
        }
        #expect(keyPath(#"{"train_batch_size": 8, "tensor_parallel": {"autotp_size": -1}}"#) == "tensor_parallel.autotp_size")
        #expect(keyPath(#"{"train_batch_size": 8, "tensor_parallel": {"autotp_size": "two"}}"#) == "tensor_parallel.autotp_size")
        #expect(keyPath(#"{"train_batch_size": 8, "tensor_parallel": {"tp_overlap_comm": 1}}"#) == "tensor_parallel.tp_overlap_comm")
        #expect(keyPath(#"{"train_batch_size": 8, "tensor_parallel": {"preset_model": "gpt5"}}"#) == "tensor_parallel.preset_model")
        #expect(keyPath(#"{"train_batch_size": 8, "tensor_parallel": 2}"#) == "tensor_parallel")
    }

    /// DeepSpeed sizes the batch by the data-parallel group: train_batch_size = micro × GAS × W / (TP · PP).
    @Test func theBatchRuleUsesTheDataParallelSize() throws {
        let json = try JSONValue.parse(#"{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 2, "tensor_parallel": {"autotp_size": 2}}"#)
        let c = try DeepSpeedConfig(json: json, processes: 8)
        #expect(c.worldSize == 4 && c.gradientAccumulationSteps == 2)
        let piped = try DeepSpeedConfig(json: json, processes: 8, pipelineStages: 2)
        #expect(piped.worldSize == 2 && piped.gradientAccumulationSteps == 4)
        #expect(try DeepSpeedConfig.dataParallelSize(processes: 8, tensorParallel: 2, pipelineStages: 2) == 2)
        #expect(try DeepSpeedConfig.dataParallelSize(processes: 3, tensorParallel: 0) == 3)
        // Without the block the processes are the data-parallel ranks.
        let plain = try DeepSpeedConfig(json: try JSONValue.parse(#"{"train_batch_size": 16, "train_micro_batch_size_per_gpu": 2}"#), processes: 8)
        #expect(plain.worldSize == 8 && plain.gradientAccumulationSteps == 1)
        do {
            _ = try DeepSpeedConfig(json: json, processes: 3)
            Issue.record("3 processes split into TP groups of 2")
        } catch let e as ConfigError {
            #expect(e.keyPath == "tensor_parallel.autotp_size")
            #expect(e.description.contains("3 processes do not split into tensor-parallel groups of 2"), "\(e)")
        }
    }
}
