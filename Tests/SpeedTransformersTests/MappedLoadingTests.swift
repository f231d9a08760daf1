// Loading Hugging Face folders through mapped safetensors: the same parameter bits as the eager path (read every
// tensor, sanitize, load(stateDict:)) for single and sharded folders and converted dtypes, no staging allocation on
// the model's backend, errors for truncated shards, and the eager fallback for a sanitize that computes tensors.
// Invariant: the reference for every comparison is the eager path, which HFModelTests pins to transformers' outputs.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SpeedCore
import SpeedIO
import SpeedNN
import SpeedTestSupport
@testable import SpeedTransformers
import Testing


private func bits(_ t: Tensor) -> [UInt8] {
    let host = t.device.isCPU ? t : t.to(.cpu)
    return Array(UnsafeRawBufferPointer(start: host.rawPointer, count: host.byteCount))
}

/// The model's parameters loaded the eager way: every tensor read onto the heap, then load(stateDict:).
private func eagerLoad<M: PretrainedModel>(_ type: M.Type, _ dir: URL, dtype: DType, device: Device = .cpu) throws -> M {
    let folder = try PretrainedFolder(dir)
    let model = try type.init(folder: folder, dtype: dtype, device: device)
    _ = try model.loadSanitized(model.sanitize(try folder.weights()), path: dir.path, strict: true)
    return model
}

/// `eagerLoad` of the model's own (dynamic) type.
private func eagerTwin<M: PretrainedModel>(of model: M, _ dir: URL, dtype: DType) throws -> M {
    try eagerLoad(type(of: model), dir, dtype: dtype)
}

private func expectSameParameters(_ a: Module, _ b: Module, _ label: String) {
    let (x, y) = (a.stateDict(), b.stateDict())
    #expect(x.keys.sorted() == y.keys.sorted(), "\(label)")
    for (name, t) in x { #expect(bits(t) == bits(y[name]!), "\(label): \(name)") }
}

/// A one-layer model whose file stores the weight transposed: its sanitize computes a new tensor.
final class TransposedLinearModel: Module, PretrainedModel {
    static let architecture = "TransposedLinear"
    static let modelType = "transposed-linear"
    let fc: Linear

    init(folder: PretrainedFolder, dtype: DType, device: Device) throws {
        var rng = RandomStream(seed: 1)
        fc = Linear(3, 2, dtype: dtype, device: device, rng: &rng)
        super.init()
    }

    func configJSON() throws -> [String: Any] { ["model_type": Self.modelType] }

    func sanitize(_ weights: StateDict) -> StateDict {
        var out = weights
        if let w = out.removeValue(forKey: "w_t") { out["fc.weight"] = w.transposed() }
        return out
    }
}

@Suite struct MappedLoadingTests {
    @Test(arguments: ["tiny-gpt2", "tiny-bert-cls", "tiny-llama", "tiny-qwen2"])
    func mappedLoadingGivesTheEagerPathsBits(name: String) throws {
        let dir = fixtures.appendingPathComponent(name)
        for dtype in [DType.float32, .bfloat16, .float16] {
            let (mapped, _) = try AutoModel.load(dir, dtype: dtype)
            let eager = try eagerTwin(of: mapped, dir, dtype: dtype)
            #expect(type(of: eager) == type(of: mapped))
            expectSameParameters(mapped, eager, "\(name) \(dtype)")
        }
    }

    @Test func halfFilesConvertFromTheMappingAsCopyDataDoes() throws {
        let source = try GPT2LMHeadModel.fromPretrained(fixtures.appendingPathComponent("tiny-gpt2"))
        for fileType in [DType.bfloat16, .float16] {
            let tmp = IOTestDirectory(); let dir = tmp.file("half")
            let half = try GPT2LMHeadModel(source.config, dtype: fileType)
            try half.load(stateDict: source.stateDict())
            try half.savePretrained(dir)
            for dtype in [DType.float32, .float64, .bfloat16, .float16] {
                let mapped = try GPT2LMHeadModel.fromPretrained(dir, dtype: dtype)
                let eager = try eagerLoad(GPT2LMHeadModel.self, dir, dtype: dtype)
                expectSameParameters(mapped, eager, "file \(fileType) -> \(dtype)")
            }
        }
    }

    @Test func shardedFoldersLoadAsTheSingleFile() throws {
        let single = fixtures.appendingPathComponent("tiny-llama")
        let model = try LlamaForCausalLM.fromPretrained(single)
        let tmp = IOTestDirectory(); let dir = tmp.file("sharded")
        try model.savePretrained(dir, maxShardSize: 20_000)
        let files = try PretrainedFolder(dir).weightFiles()
        #expect(files.count > 2)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
        let again = try LlamaForCausalLM.fromPretrained(dir)
        expectSameParameters(again, model, "sharded")
        expectSameParameters(again, try eagerLoad(LlamaForCausalLM.self, dir, dtype: .float32), "sharded eager")
    }

    @Test func loadingAllocatesNothingOnTheModelsBackend() throws {
        // Parameters on a private backend: the mapped path copies (and converts) into them straight from the
        // mapping, so the backend's peak during loading is the parameters alone — no staging tensor, for F32 and
        // BF16 files alike. (The eager path reads every tensor onto the default CPU backend first, and on a GPU
        // also stages each one on the device; SafetensorsMappedTests shows the bytes are views of the mapping.)
        let backend = CPUBackend(threads: 1)
        let device = Device(backend: backend, kind: "cpu")
        let dir = fixtures.appendingPathComponent("tiny-gpt2")
        let tmp = IOTestDirectory(); let bf16 = tmp.file("bf16")
        let half = try GPT2LMHeadModel(try GPT2LMHeadModel.fromPretrained(dir).config, dtype: .bfloat16)
        try half.load(stateDict: try GPT2LMHeadModel.fromPretrained(dir).stateDict())
        try half.savePretrained(bf16)
        for source in [dir, bf16] {
            let folder = try PretrainedFolder(source)
            let model = try GPT2LMHeadModel(folder: folder, dtype: .float32, device: device)
            let parameters = backend.memoryStats.allocatedBytes
            backend.resetPeakMemory()
            try model.loadWeights(from: folder)
            #expect(backend.memoryStats.peakAllocatedBytes == parameters, "\(source.lastPathComponent)")
            expectSameParameters(model, try eagerLoad(GPT2LMHeadModel.self, source, dtype: .float32),
                                 source.lastPathComponent)
            _ = model
        }
    }

    @Test func aTruncatedShardIsANamedError() throws {
        let tmp = IOTestDirectory(); let dir = tmp.file("cut")
        try LlamaForCausalLM.fromPretrained(fixtures.appendingPathComponent("tiny-llama")).savePretrained(dir, maxShardSize: 20_000)
        let shard = try PretrainedFolder(dir).weightFiles()[1]
        let size = try FileManager.default.attributesOfItem(atPath: shard.path)[.size] as! Int
        #expect(truncate(shard.path, off_t(size - 100)) == 0)
        let e = #expect(throws: SafetensorsError.self) { try LlamaForCausalLM.fromPretrained(dir) }
        #expect(e?.path == shard.path)
        guard case .offsetsOutOfBounds? = e?.problem else { Issue.record("\(String(describing: e))"); return }
    }

    @Test func aSanitizeThatComputesTensorsFallsBackToReadingThem() throws {
        let tmp = IOTestDirectory(); let dir = tmp.file("transposed")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(#"{"model_type":"transposed-linear"}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        let w: [Float] = [1, 2, 3, 4, 5, 6]   // stored [in 3, out 2]
        try Safetensors.write(["w_t": Tensor(w, shape: [3, 2]), "fc.bias": Tensor([7, 8] as [Float])],
                              to: dir.appendingPathComponent("model.safetensors"))
        let model = try TransposedLinearModel.fromPretrained(dir)
        #expect(model.fc.weight.scalars == [1, 3, 5, 2, 4, 6])
        #expect(model.fc.bias!.scalars == [7, 8])
        let folder = try PretrainedFolder(dir)
        try folder.withMappedWeights { #expect(model.sanitizedMapping($0) == nil) }
    }

    @Test func sanitizedNamesMapBackToTheFileTensors() throws {
        let folder = try PretrainedFolder(fixtures.appendingPathComponent("tiny-gpt2"))
        let model = try GPT2LMHeadModel(folder: folder, dtype: .float32, device: .cpu)
        try folder.withMappedWeights { files in
            let keys = try #require(model.sanitizedMapping(files))
            #expect(Set(keys.keys) == Set(model.stateDict().keys))
            for (key, weight) in keys {
                let fileName = weight.entry.name
                #expect(key == fileName || key == "transformer." + fileName || "transformer." + key == fileName, "\(key)")
            }
        }
    }
}
