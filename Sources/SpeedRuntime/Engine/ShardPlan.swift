// What ZeRO keeps whole and what it slices on this rank, decided once from the stage (llm.c's shape for ZeRO).
// Invariant: the engine reads stage-dependent choices only from here; a stage is exactly a set of these flags
// (DeepSpeed's ZeRO paper: P_os at 1, P_os+g at 2, P_os+g+p at 3).

/// Which model states a ZeRO stage partitions over the data-parallel ranks, and where offload puts them.
///
/// ```swift
/// let plan = ShardPlan(zero: config.zeroOptimization, worldSize: 4)
/// plan.ranks                   // 4 at stages 1–3, 1 at stage 0
/// plan.partitionsGradients     // stages 2–3: reduce-scatter buckets into this rank's slice during backward
/// ```
package struct ShardPlan: Sendable, Equatable {
    package let stage: Int
    /// fp32 masters and optimizer state: this rank's slice (stages 1–3) or everything (stage 0).
    package let partitionsOptimizer: Bool
    /// Gradients: reduced into this rank's slice bucket by bucket during backward (stages 2–3), or kept in a
    /// full buffer all-reduced at the boundary (stages 0–1).
    package let partitionsGradients: Bool
    /// Parameters: only this rank's slice is resident, gathered around each module's forward and backward
    /// (stage 3), or the whole flat buffer (stages 0–2).
    package let partitionsParameters: Bool
    /// `offload_optimizer`: masters and optimizer state in host memory, the optimizer runs there.
    package let offloadOptimizer: Bool
    /// `offload_param` (stage 3 only, as in DeepSpeed): the parameter slice lives in host memory.
    package let offloadParameters: Bool
    /// Partitions the flat buffer splits into: the world size once anything is partitioned, else 1.
    package let ranks: Int

    package init(zero: ZeroConfig, worldSize: Int) {
        precondition((0...3).contains(zero.stage), "ShardPlan: stage \(zero.stage) is not 0–3 (the config reader checks this)")
        stage = zero.stage
        partitionsOptimizer = stage >= 1
        partitionsGradients = stage >= 2
        partitionsParameters = stage == 3
        offloadOptimizer = (zero.offloadOptimizer?.device ?? .none) != .none
        offloadParameters = partitionsParameters && (zero.offloadParam?.device ?? .none) != .none
        ranks = partitionsOptimizer ? worldSize : 1
    }
}
