// Checkpoints in transformers' layout: output_dir/checkpoint-N/ holding the DeepSpeed checkpoint (`latest`,
// `global_stepN/`), the model as a Hugging Face folder, trainer_state.json and training_args.json; rotation by
// save_total_limit; resume. Invariant: the engine checkpoint is written (atomically, by every rank) before
// trainer_state.json, so a checkpoint-N with a trainer_state.json is complete, and rotation never deletes the best.

import Foundation
import SpeedIO
import SpeedRuntime
import SpeedTransformers

extension Trainer {
    /// `output_dir/checkpoint-<step>`.
    func checkpointFolder(step: Int) -> URL {
        URL(fileURLWithPath: arguments.outputDir).appendingPathComponent("checkpoint-\(step)")
    }

    /// Saves `checkpoint-<global step>` (collective: every rank writes its ZeRO shard), then rotates old ones.
    func saveCheckpoint(control: inout TrainerControl) throws {
        guard let engine else { return }
        let folder = checkpointFolder(step: state.globalStep)
        try engine.saveCheckpoint(folder.path, tag: "global_step\(state.globalStep)")
        try saveModel(to: folder)
        if pendingBest {
            state.bestModelCheckpoint = folder.path
            pendingBest = false
        }
        if group.rank == 0 {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(arguments), to: folder.appendingPathComponent("training_args.json"))
            try AtomicFile.write(try encoder.encode(state), to: folder.appendingPathComponent("trainer_state.json"))
            try rotateCheckpoints()
        }
        try group.barrier()
        for c in callbacks { c.onSave(arguments: arguments, state: state, control: &control) }
    }

    /// Writes the model as a Hugging Face folder (config.json, model.safetensors, the processing files) into `folder`
    /// — `save_model`. At ZeRO-3 the parameters are gathered first, under tensor parallelism the shards (collective).
    public func saveModel(to folder: URL? = nil) throws {
        let folder = folder ?? URL(fileURLWithPath: arguments.outputDir)
        guard let pretrained = model as? any PretrainedModel else { return }
        let write = { [self] in
            if let comm = pretrained.tensorParallelCommunicator(), comm.size > 1 {
                // Sharded: every rank of each tensor-parallel group gathers its shards; rank 0 writes.
                try pretrained.savePretrained(folder, tensorParallelWriter: group.rank == 0)
            } else {
                guard group.rank == 0 else { return }
                try pretrained.savePretrained(folder)
            }
            guard group.rank == 0 else { return }
            for file in processingFiles where FileManager.default.fileExists(atPath: file.path) {
                let target = folder.appendingPathComponent(file.lastPathComponent)
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(at: file, to: target)
            }
        }
        if let engine { try engine.withGatheredParameters(write) } else { try write() }
    }

    /// The `checkpoint-N` folders in `output_dir` that hold a trainer_state.json, oldest first.
    func checkpoints() -> [(step: Int, url: URL)] {
        let root = URL(fileURLWithPath: arguments.outputDir)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("checkpoint-"), let step = Int(name.dropFirst("checkpoint-".count)) else { return nil }
            let url = root.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent("trainer_state.json").path) else { return nil }
            return (step, url)
        }.sorted { $0.0 < $1.0 }
    }

    /// Deletes the oldest checkpoints beyond `save_total_limit`, keeping the best one (transformers' rotation: with a
    /// limit of 1 and a best checkpoint that is not the newest, both stay).
    func rotateCheckpoints() throws {
        guard let limit = arguments.saveTotalLimit, limit > 0 else { return }
        var sorted = checkpoints().map(\.url)
        let best = state.bestModelCheckpoint.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var keep = limit
        if let best, let i = sorted.firstIndex(where: { $0.standardizedFileURL.path == best }) {
            // The best moves to the second-to-last place, so it is deleted last (transformers' _sorted_checkpoints).
            var j = i
            while j < sorted.count - 2 { sorted.swapAt(j, j + 1); j += 1 }
            if limit == 1, sorted.last?.standardizedFileURL.path != best { keep = 2 }
        }
        for old in sorted.dropLast(keep) {
            try FileManager.default.removeItem(at: old)
            logger.info("deleted older checkpoint \(old.path) (save_total_limit \(limit))")
        }
    }

    /// Loads `checkpoint-N` (or the newest in output_dir for "last" / "true"): engine state and trainer_state.json.
    func resume(from path: String, engine: Engine) throws {
        var folder = URL(fileURLWithPath: path)
        if ["true", "True", "last"].contains(path) {
            guard let last = checkpoints().last else {
                throw TrainerError("resume_from_checkpoint \(path): \(arguments.outputDir) holds no checkpoint-N folder with a trainer_state.json")
            }
            folder = last.url
        }
        let stateFile = folder.appendingPathComponent("trainer_state.json")
        guard FileManager.default.fileExists(atPath: stateFile.path) else {
            throw TrainerError("resume_from_checkpoint \(folder.path): no trainer_state.json there; pass a checkpoint-N folder the Trainer saved (in \(arguments.outputDir))")
        }
        let saved: TrainerState
        do {
            saved = try JSONDecoder().decode(TrainerState.self, from: Data(contentsOf: stateFile))
        } catch {
            throw TrainerError("\(stateFile.path) is not a trainer_state.json the Trainer can read: \(error)")
        }
        guard try engine.loadCheckpoint(folder.path).path != nil else {
            throw TrainerError("resume_from_checkpoint \(folder.path): no DeepSpeed checkpoint (latest, global_stepN/) inside")
        }
        let fresh = state
        state = saved
        state.maxSteps = fresh.maxSteps
        state.isWorldProcessZero = fresh.isWorldProcessZero
        state.isLocalProcessZero = fresh.isLocalProcessZero
        if group.rank == 0 { logger.info("resumed from \(folder.path) at step \(saved.globalStep)") }
    }
}
