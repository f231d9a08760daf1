// PipelineModule and GPTPipe: GPT's exact weights and loss from layer specs, stage-local building, tied modules,
// DeepSpeed's partition methods on GPT, and the settings the engine refuses.
import Foundation
import SpeedComm
import SpeedCore
import SpeedNN
@testable import SpeedPipeline
@testable import SpeedRuntime
import Testing

@Suite struct PipelineModuleTests {
    @Test func oneStageHoldsGPTsExactWeightsAndComputesItsLoss() throws {
        var rng = RandomStream(seed: gptSeed)
        let gpt = GPT(smallGPT, rng: &rng)
        let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: 1)
        let stage = module.build(stage: 0)
        let reference = Dictionary(uniqueKeysWithValues: gpt.namedParameters().map { ($0.0, $0.1.scalars) })
        let mine = gptWeights(of: stage)
        #expect(Set(mine.keys) == Set(reference.keys))
        for (name, w) in mine { #expect(w == reference[name], "\(name) differs from GPT's") }
        // The embedding and the head are one module on one stage: wte is held (and trained) once.
        #expect(stage.module(forLayer: 0) === stage.module(forLayer: smallGPT.layers + 3))
        #expect(stage.parameters().count == gpt.parameters().count)
        let b = microBatch(0)
        let expected = noGrad { gpt.loss(b.input, targets: b.target).item() }
        let loss = noGrad { module.lossFunction(stage(b.input), b.target).item() }
        #expect(loss == expected)
    }

    @Test func aStageBuildsOnlyItsOwnLayers() throws {
        final class Counter: @unchecked Sendable { var built: [Int] = []; let lock = NSLock() }
        let counter = Counter()
        let layers: [PipelineLayer] = (0..<6).map { i in
            .layer(LayerSpec("Linear", parameters: 4 * 4 + 4) {
                counter.lock.lock(); counter.built.append(i); counter.lock.unlock()
                var rng = RandomStream(seed: UInt64(i))
                return Linear(4, 4, rng: &rng)
            })
        }
        let module = try PipelineModule(layers: layers, numStages: 3, lossFunction: { y, _ in y.sum() })
        #expect(module.parts == [0, 2, 4, 6])
        #expect(counter.built.isEmpty, "partitioning with given parameter counts builds nothing")
        let stage = module.build(stage: 1)
        #expect(counter.built == [2, 3])
        #expect(stage.layers.count == 2 && stage.layerRange == 2..<4)
        #expect(module.stageOwner(layer: 5) == 2)
    }

    @Test func gptPartitionsEqualDeepSpeedsForEachMethod() throws {
        let layers = GPTPipe.layers(smallGPT, seed: gptSeed)
        // The declared counts are the built layers' counts.
        for (i, layer) in layers.enumerated() {
            let built: Module = switch layer {
            case .layer(let s): s.build()
            case .tied(let s): s.build()
            case .function: Module()
            }
            #expect(layer.countParameters() == built.parameterCount, "layer \(i)")
        }
        let counts = layers.map { $0.countParameters() }
        // DeepSpeed's partition_balanced of these counts (fixture).
        let fixture = DeepSpeedPipeFixture.shared.balanced.filter { $0.weights == counts }
        #expect(fixture.count == 4)
        for f in fixture {
            #expect(try PipelineModule(layers: layers, numStages: f.parts, lossFunction: GPTPipe.loss).parts == f.bounds)
        }
        #expect(try PipelineModule(layers: layers, numStages: 4, lossFunction: GPTPipe.loss, partitionMethod: "uniform").parts
                == [0, 2, 4, 6, 8])
        // type:block balances the four blocks, two per stage (and the other layers go where DeepSpeed puts them).
        let byType = try PipelineModule(layers: layers, numStages: 2, lossFunction: GPTPipe.loss, partitionMethod: "type:Block")
        #expect(byType.parts == Partition.balanced(weights: [0, 0, 1, 1, 1, 1, 0, 0], parts: 2))
        #expect(byType.layerRange(stage: 0).filter { layers[$0].typeName == "Block" }.count == 2)
        #expect(throws: PipelineError.configuration("Partitioning 'conv' found no valid layers to partition (layer types: Block, Embedding, GPTPositions, LayerNorm)")) {
            try PipelineModule(layers: layers, numStages: 2, lossFunction: GPTPipe.loss, partitionMethod: "type:Conv")
        }
        #expect(throws: PipelineError.self) {
            try PipelineModule(layers: layers, numStages: 2, lossFunction: GPTPipe.loss, partitionMethod: "profile")
        }
    }

    @Test func flopsBalancesComputeWhereParametersBalancesWeights() throws {
        // gpt-mini (V 8192, C 256, T 128, 4 blocks): the embedding's 2.1M weights cost no compute, the tied head's
        // matmul 2·V·C per token. "parameters" gives 2 | 2 blocks (stage 1 ≈ 2.2× stage 0's FLOPs); "flops" 3 | 1.
        let c = GPTConfig.gptMini
        let layers = GPTPipe.layers(c, seed: gptSeed)
        let flops = layers.map { $0.countFlops() }
        let block = 24 * c.embedDim * c.embedDim + 4 * c.contextLength * c.embedDim
        #expect(flops == [0, c.embedDim, block, block, block, block, 4 * c.embedDim, 2 * c.vocabSize * c.embedDim])
        let byParameters = try PipelineModule(layers: layers, numStages: 2, lossFunction: GPTPipe.loss).parts
        let byFlops = try PipelineModule(layers: layers, numStages: 2, lossFunction: GPTPipe.loss, partitionMethod: "FLOPS").parts
        #expect(byParameters == [0, 4, 8])
        #expect(byFlops == [0, 5, 8])
        func spread(_ parts: [Int]) -> Int {
            let sums = (0..<2).map { s in flops[parts[s]..<parts[s + 1]].reduce(0, +) }
            return sums.max()! - sums.min()!
        }
        #expect(spread(byFlops) < spread(byParameters) / 3)
        // A spec without a figure weighs twice its parameters (a dense layer's multiply-adds).
        let plain = PipelineLayer.layer(LayerSpec("Linear", parameters: 40) { Module() })
        #expect(plain.countFlops() == 80)
    }

    @Test func twoStagesSplitTheTiedEmbeddingOverTheEnds() throws {
        let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: 2)
        #expect(module.tieKeys == ["embed"])
        #expect(module.tiedLayers("embed") == [0, 7])
        #expect(module.tiedStages("embed") == [0, 1])
        let last = module.build(stage: 1)
        let head = try #require(last.tiedModule("embed") as? Embedding)
        var rng = RandomStream(seed: gptSeed)
        #expect(head.weight.scalars == GPT(smallGPT, rng: &rng).wte.weight.scalars)
    }

    @Test func zeroStagesTwoAndThreeAreRefusedWithDeepSpeedsReason() throws {
        let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: 1)
        for stage in [2, 3] {
            let config = try pipeConfig(gas: 1, dataParallel: 1, zeroStage: stage)
            #expect(throws: PipelineError.configuration("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism (zero_optimization.stage is \(stage)); use stage 0 or 1, as DeepSpeed requires")) {
                _ = try PipelineEngine(module: module, config: config, world: SingleProcessGroup())
            }
        }
    }

    @Test func aConfigResolvedForTheWrongDataParallelSizeIsRefused() throws {
        let module = try GPTPipe.module(smallGPT, seed: gptSeed, numStages: 2)
        let errors = try LocalProcessGroup.run(size: 2) { world -> String in
            do {
                _ = try PipelineEngine(module: module, config: try pipeConfig(gas: 1, dataParallel: 2), world: world)
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(errors == Array(repeating: "pipeline configuration: the config's batch sizes were resolved for data-parallel size 2, but 2 ranks over 2 stages make 1 data-parallel ranks; load it with worldSize 1", count: 2))
    }
}

