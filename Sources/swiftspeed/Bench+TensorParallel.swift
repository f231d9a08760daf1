// `swiftspeed bench tp`: B10, gpt-mini over TP × DP ranks — each rank's model-state bytes against the formula (sharded
// layers ÷ TP, replicated ones whole, then ZeRO's division over DP) and the tensor-parallel traffic of a step against
// Megatron's 4 all-reduces of B·T·C per layer. Invariant: the formulas come from GPTConfig alone, never from the engine.

import ArgumentParser
import SwiftSpeed

extension Bench {
    struct TensorParallelTraffic: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tp",
            abstract: "B10: gpt-mini with tensor parallelism: model-state bytes per rank and TP traffic per step against the formulas.",
            discussion: """
                Run under swiftspeed launch --num_procs W; --tp (default W) ranks form each tensor-parallel group, the rest \
                is data parallelism. fp32, AdamW, one micro-batch of --batch rows × T 128 per step, the vocab-parallel loss. \
                Per rank: parameter, gradient and optimizer bytes as the engine reports them against the formula; the \
                all-reduces (and elements) the tensor-parallel group carried in one step against Megatron's 4 per layer of \
                B·T·C, with the embedding's and the LM head's own all-reduces of B·T·C and the vocab-parallel \
                cross-entropy's three of B·T counted separately. Rank 0 prints.
                """)

        @Option(help: "Tensor-parallel size (default: every rank).") var tp: Int?
        @Option(help: "ZeRO stage over the data-parallel ranks (0, 1 or 2).") var stage: Int = 0
        @Option(help: "Rows per micro-batch (B).") var batch: Int = 2
        @Option(help: "Measured steps (after one warm-up step).") var steps: Int = 2
        @Option(help: "Worker threads per rank.") var threads: Int = 1
        @Flag(help: "Print JSON lines.") var json = false

        func validate() throws {
            if let tp, tp < 1 { throw ValidationError("--tp must be >= 1 (got \(tp))") }
            if !(0...2).contains(stage) { throw ValidationError("--stage must be 0, 1 or 2 (ZeRO-3 does not combine with TP)") }
            if batch < 1 || steps < 1 || threads < 1 { throw ValidationError("--batch, --steps and --threads must be >= 1") }
        }

        func run() throws {
            let world = try ProcessGroups.fromEnvironment(timeout: 600)
            let device = Device.cpu(threads: threads)
            let size = tp ?? world.size
            let model = GPTConfig.gptMini
            let ds = try DeepSpeedConfig(json: try JSONValue.parse("""
                {"train_micro_batch_size_per_gpu": \(batch), "gradient_accumulation_steps": 1, "gradient_clipping": 1.0,
                 "zero_optimization": {"stage": \(stage)}, "tensor_parallel": {"autotp_size": \(size)},
                 "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "weight_decay": 0.1}}}
                """), processes: world.size)
            var rng = RandomStream(seed: 1337)
            let gpt = GPT(model, device: device, rng: &rng)
            let (engine, _, _, _) = try SwiftSpeed.initialize(model: gpt, config: ds, processGroup: world)
            let (input, target) = syntheticTokens(batch: batch, config: model, device: device)
            let groups = engine.parallelGroups
            let traffic = groups?.tensorParallel
            var reduces = 0, reduceElements = 0, gathers = 0
            for i in 0...steps {
                traffic?.resetTraffic()
                try engine.backward(gpt.loss(input, targets: target))
                try engine.step()
                guard i > 0, let t = traffic?.traffic else { continue }
                (reduces, reduceElements, gathers) = (t.allReduces, t.allReduceElements, t.allGathers)
            }
            let m = engine.memoryBytes
            let tpRank = groups?.tensorRank ?? 0, dp = world.size / size
            let formula = Self.formula(model, tp: size, tpRank: tpRank, dp: dp, stage: stage)
            let local = Tensor([m.params, m.grads, m.optimizer, formula.params, formula.grads, formula.optimizer,
                                reduces, reduceElements, gathers, tpRank, groups?.dataRank ?? 0].map(Double.init),
                               shape: [11], dtype: .float64)
            let all = Tensor(empty: [11 * world.size], dtype: .float64)
            try world.allGather(local, into: all)
            guard world.rank == 0 else { world.finalize(); return }
            let v = all.scalars(as: Double.self).map { Int($0) }
            let (b, t, c, l) = (batch, model.contextLength, model.embedDim, model.layers)
            let megatron = 4 * l, activation = b * t * c
            let extraReduces = size > 1 ? 2 + 3 : 0, extraElements = size > 1 ? 2 * activation + 3 * b * t : 0
            for r in 0..<world.size {
                let x = Array(v[(11 * r)..<(11 * r + 11)])
                let line = "{\"case\":\"B10-tp-rank\",\"tp\":\(size),\"dp\":\(dp),\"zero_stage\":\(stage),\"rank\":\(r),"
                    + "\"tp_rank\":\(x[9]),\"dp_rank\":\(x[10]),\"params_bytes\":\(x[0]),\"params_bytes_formula\":\(x[3]),"
                    + "\"grads_bytes\":\(x[1]),\"grads_bytes_formula\":\(x[4]),\"optim_bytes\":\(x[2]),\"optim_bytes_formula\":\(x[5]),"
                    + "\"tp_all_reduces_per_step\":\(x[6]),\"tp_all_reduce_elements_per_step\":\(x[7]),\"tp_all_gathers_per_step\":\(x[8])}"
                if json { print(line) } else {
                    print("rank \(r) (tp \(x[9]), dp \(x[10])): params \(x[0]) B (formula \(x[3])), grads \(x[1]) B (\(x[4])), optimizer \(x[2]) B (\(x[5])); TP all-reduces \(x[6]) of \(x[7]) elements, all-gathers \(x[8])")
                }
            }
            let summary = "{\"case\":\"B10-tp\",\"tp\":\(size),\"dp\":\(dp),\"zero_stage\":\(stage),\"B\":\(b),\"T\":\(t),\"C\":\(c),\"layers\":\(l),"
                + "\"megatron_all_reduces\":\(size > 1 ? megatron : 0),\"megatron_elements\":\(size > 1 ? megatron * activation : 0),"
                + "\"extra_all_reduces\":\(extraReduces),\"extra_elements\":\(extraElements),"
                + "\"measured_all_reduces\":\(v[6]),\"measured_elements\":\(v[7]),\"measured_bytes\":\(4 * v[7])}"
            if json { print(summary) } else {
                print("per step: \(v[6]) all-reduces of \(v[7]) elements; Megatron's 4·L = \(megatron) of B·T·C = \(megatron * activation), plus embedding + head \(2 * activation) and cross-entropy 3·B·T = \(3 * b * t)")
            }
            world.finalize()
        }

        /// Bytes of fp32 parameters, gradients and Adam state on tensor-parallel rank `tpRank`: GPT's sharded layers
        /// (qkv, attention projection, MLP) ÷ TP, the vocabulary's rows of this shard, everything else whole; then
        /// padded to a multiple of DP and divided over DP as ZeRO's stage says.
        static func formula(_ g: GPTConfig, tp: Int, tpRank: Int, dp: Int, stage: Int) -> (params: Int, grads: Int, optimizer: Int) {
            let c = g.embedDim
            let sharded = 3 * c * c + 3 * c + c * c + 4 * c * c + 4 * c + 4 * c * c
            let replicated = 2 * c + 2 * c + c + c
            let rows = TensorParallelSplit.ranges(g.vocabSize, parts: tp)[tpRank].count
            let psi = g.layers * (sharded / tp + replicated) + g.contextLength * c + 2 * c + rows * c
            let padded = stage == 0 ? psi : (psi + dp - 1) / dp * dp
            let slice = stage == 0 ? padded : padded / dp
            return (4 * padded, 4 * (stage == 2 ? slice : padded), 8 * slice)
        }
    }
}
