// Gradient reduction: stage 0–1 all-reduce at the boundary, stage 2–3 bucketed reduce-scatter as
// backward produces gradients. Invariant: buckets are contiguous flat ranges of whole parameters, so
// one uneven reduce-scatter hands each rank exactly its partition's share of a bucket; every rank
// reduces the same buckets in the same order (backward's order is deterministic, and the buckets a
// backward did not complete are flushed in index order).

import SpeedComm
import SpeedCore

/// Stages 2–3: which parameters make up each gradient bucket and which have arrived this backward.
final class GradientReducer {
    /// Flat ranges, each whole parameters (the last one includes the padding), in the order backward
    /// tends to complete them: the last parameters first.
    let buckets: [Range<Int>]
    /// Parameter indices per bucket.
    let members: [[Int]]
    /// Parameter index → bucket.
    let bucketOf: [Int]
    /// Per bucket: how many of its parameters have not delivered a gradient in this backward.
    var waiting: [Int]
    /// Gradients handed over by autograd, held until their bucket is reduced.
    var held: [Tensor?]
    /// Per bucket: reduced at least once in this backward.
    var reduced: [Bool]

    init(flat: FlatParameters, layout: PartitionLayout, bucketSize: Int) {
        let limit = Swift.max(1, bucketSize)
        var buckets: [Range<Int>] = [], members: [[Int]] = []
        var current: [Int] = [], size = 0
        for i in flat.params.indices.reversed() {
            let n = flat.params[i].count
            if !current.isEmpty && size + n > limit {
                members.append(current); current = []; size = 0
            }
            current.append(i)
            size += n
        }
        if !current.isEmpty { members.append(current) }
        var bucketOf = [Int](repeating: 0, count: flat.params.count)
        for (b, ids) in members.enumerated() {
            let lower = flat.offsets[ids.last!]
            let upper = ids.first! == flat.params.count - 1 ? flat.paddedCount : flat.range(of: ids.first!).upperBound
            buckets.append(lower..<upper)
            for i in ids { bucketOf[i] = b }
        }
        self.buckets = buckets
        self.members = members
        self.bucketOf = bucketOf
        waiting = members.map(\.count)
        held = Array(repeating: nil, count: flat.params.count)
        reduced = Array(repeating: false, count: members.count)
    }

    /// Takes parameter `i`'s gradient; returns its bucket when that bucket is now complete.
    func deliver(_ i: Int, _ grad: Tensor) -> Int? {
        let b = bucketOf[i]
        if held[i] == nil { waiting[b] -= 1 }
        held[i] = grad
        return waiting[b] == 0 ? b : nil
    }

    /// Buckets still to reduce when backward ends, in index order: those holding some gradients
    /// (other parameters were unused) and those not reduced at all (zeros, so every rank matches).
    var leftover: [Int] { waiting.indices.filter { waiting[$0] < members[$0].count || !reduced[$0] } }

    func reset(_ b: Int) {
        waiting[b] = members[b].count
        reduced[b] = true
        for i in members[b] { held[i] = nil }
    }

    func endBackward() { for b in reduced.indices { reduced[b] = false } }
}

extension Engine {
    /// Points each trainable parameter's gradient hook at the reducer (stages 2–3).
    func installHooks() throws {
        guard reducer != nil else { return }
        for (i, p) in flat.params.enumerated() {
            p.grad = nil
            p.onGradReady = { [weak self] param in self?.gradientReady(i, param) }
        }
        if let partitioner {
            partitioner.install(on: module)
            let bucket = config.zeroOptimization.stage3PrefetchBucketSize
            if bucket > 0, let companion = try group.makeCompanion() {
                partitioner.prefetcher = ParameterPrefetcher(group: companion, bucketElements: bucket)
            }
            partitioner.onFailure = { [logger, group] error in
                logger.critical("[SwiftSpeed] ZeRO-3 parameter gather failed: \(error)")
                group.abort(code: 3)
            }
        }
    }

    /// Autograd finished parameter `i`'s gradient: hand it to its bucket, reduce a complete bucket.
    func gradientReady(_ i: Int, _ param: Tensor) {
        guard let reducer, let grad = param.grad else { return }
        param.grad = nil
        if let b = reducer.deliver(i, grad) { reduceBucket(b) }
        partitioner?.backwardDone(with: i)
    }

    /// Reduce-scatters bucket `b` into the owners' `gradShard`s and frees its gradients.
    func reduceBucket(_ b: Int) {
        guard let reducer, hookError == nil else { reducer?.reset(b); return }
        let range = reducer.buckets[b]
        let staging = Tensor.zeros([range.count], dtype: gradShard.dtype, device: device)   // [bucket]
        for i in reducer.members[b] {
            guard let g = reducer.held[i] else { continue }
            let r = flat.range(of: i)
            staging.slice(axis: 0, (r.lowerBound - range.lowerBound)..<(r.upperBound - range.lowerBound)).copyData(from: g)
        }
        reducer.reset(b)
        let mine = range.clamped(to: partition)
        let target = mine.isEmpty ? nil
            : gradShard.slice(axis: 0, (mine.lowerBound - partition.lowerBound)..<(mine.upperBound - partition.lowerBound))
        do {
            try reduceGradients(staging, counts: layout.counts(in: range), accumulateInto: target)
        } catch {
            hookError = error
        }
    }

    /// After autograd returns: flush buckets whose parameters got no gradient, release stage-3
    /// parameters, and surface a communication failure from inside the hooks.
    func finishBackward() throws {
        if let reducer {
            for b in reducer.leftover { reduceBucket(b) }
            reducer.endBackward()
        }
        partitioner?.drain()
        partitioner?.releaseAll()
        if let error = hookError {
            hookError = nil
            throw error
        }
    }

    /// DeepSpeed's gradient averaging with `prescale_gradients`, `gradient_predivide_factor` and
    /// `communication_data_type`: all-reduce `buffer` in place (`counts` nil), or reduce-scatter it
    /// with `counts` and add this rank's block into `target`.
    func reduceGradients(_ buffer: Tensor, counts: [Int]?, accumulateInto target: Tensor? = nil) throws {
        let w = Double(group.size)
        if group.size == 1 {
            if counts != nil, let target { target.addInPlace(buffer) }
            return
        }
        let commType = config.communicationDataType.flatMap(Self.dtype(named:)) ?? buffer.dtype
        let t = commType == buffer.dtype ? buffer : noGrad { buffer.cast(to: commType) }
        let f = config.gradientPredivideFactor
        if config.prescaleGradients { t.scale(by: 1 / w) } else if f != 1 { t.scale(by: 1 / f) }
        let post = config.prescaleGradients || f == w ? 1 : f / w
        if let counts {
            let out = Tensor(empty: [counts[group.rank]], dtype: commType, device: device)
            try group.reduceScatter(t, into: out, counts: counts, op: .sum)
            if let target { target.addInPlace(out.dtype == target.dtype ? out : noGrad { out.cast(to: target.dtype) }, scale: post) }
        } else {
            try group.allReduce(t, op: .sum)
            if post != 1 { t.scale(by: post) }
            if t !== buffer { buffer.copyData(from: t) }
        }
    }

    static func dtype(named name: String) -> DType? {
        switch name {
        case "fp32": .float32
        case "fp16": .float16
        case "bf16": .bfloat16
        default: nil
        }
    }
}
