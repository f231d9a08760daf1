// The boundary step: overflow check, unscale + clip in one multiply, optimizer update, schedule.
// Invariant: the optimizer always sees fp32 gradients already divided by the loss scale and
// clipped; a skipped (overflowed) step changes no weights, no optimizer state and no LR.

import Logging
import SpeedCore
import SpeedOptim

extension Engine {
    func applyBoundaryStep() throws {
        // Stages 0–1: average the accumulated gradients over the ranks, in `reduce_bucket_size`
        // buckets (views of the flat buffer, so no copies). Stages 2–3 reduced them during backward.
        if let grads = flat.grads, group.size > 1 {
            let bucket = Swift.max(1, config.zeroOptimization.reduceBucketSize)
            for start in stride(from: 0, to: flat.paddedCount, by: bucket) {
                try reduceGradients(grads.slice(axis: 0, start..<Swift.min(start + bucket, flat.paddedCount)), counts: nil)
            }
        }
        // This rank's averaged gradients as fp32 on the optimizer's device (the CPU with offload).
        let g32: Tensor
        if gradShard.dtype == .float32 && gradShard.device == optimizerDevice { g32 = gradShard } else {
            g32 = Tensor(empty: [partition.count], dtype: .float32, device: optimizerDevice)
            g32.copyData(from: gradShard)
        }
        var sumOfSquares = countedSumOfSquares(g32)
        if partition.count != flat.paddedCount {
            // Each rank holds a different slice: the global norm (and the overflow flag it carries,
            // inf/NaN propagate through the sum) is reduced across ranks.
            let t = Tensor([sumOfSquares], shape: [1], dtype: .float64)
            try group.allReduce(t, op: .sum)
            sumOfSquares = t.item()
        }
        for other in modelParallelNormGroups where other.size > 1 {
            // Tensor-parallel shards and pipeline stages hold different parameters: their squares add up.
            let t = Tensor([sumOfSquares], shape: [1], dtype: .float64)
            try other.allReduce(t, op: .sum)
            sumOfSquares = t.item()
        }
        let scaledNorm = sumOfSquares.squareRoot()
        let scale = lossScaler?.scale ?? 1
        let overflow = !scaledNorm.isFinite
        if var scaler = lossScaler {
            let before = scaler.scale
            let hysteresis = scaler.currentHysteresis
            try scaler.update(overflow: overflow)
            lossScaler = scaler
            if overflow {
                let change = scaler.scale < before ? "reducing to \(scaler.scale)"
                    : "but hysteresis is \(hysteresis). Reducing hysteresis to \(scaler.currentHysteresis)"
                logger.info("[SwiftSpeed] OVERFLOW! Skipping step. Attempted loss scale: \(before), \(change)")
            }
        }
        if overflow {
            skippedSteps += 1
            consecutiveSkippedSteps += 1
            if group.rank == 0, [10, 100, 1000, 10000].contains(consecutiveSkippedSteps) || consecutiveSkippedSteps % 100_000 == 0 {
                let fix = config.fp16.enabled && config.fp16.lossScale > 0
                    ? "the static fp16 loss_scale \(config.fp16.lossScale) overflows: lower it, or use dynamic scaling (loss_scale 0)"
                    : "the gradients are not finite: lower the learning rate or check the data"
                logger.warning("[SwiftSpeed] \(consecutiveSkippedSteps) optimizer steps in a row were skipped (no update since step \(globalSteps + 1 - consecutiveSkippedSteps)): \(fix)")
            }
            globalGradNorm = nil
            if lossScaler == nil {
                logger.warning("[SwiftSpeed] non-finite gradient norm at step \(globalSteps + 1); skipping the update")
            }
            zeroGrad()
            return
        }
        consecutiveSkippedSteps = 0
        let norm = scaledNorm / scale
        globalGradNorm = norm
        // DeepSpeed's unscale_and_clip: one combined factor on the scaled gradients.
        var combined = scale
        let clip = config.gradientClipping
        if clip > 0 {
            let ratio = (norm + 1e-6) / clip
            if ratio > 1 { combined *= ratio }
        }
        if combined != 1 { g32.scale(by: 1 / combined) }
        optimizerSteps += 1
        let param = master ?? weightShard
        // The optimizer writes the rounded 16-bit copy in the same pass when it shares a device.
        let copy = master == nil || master?.device != weightShard.device ? nil : weightShard
        func update(_ r: Range<Int>) {
            optimizer.update(param: param.slice(axis: 0, r), grad: g32.slice(axis: 0, r),
                             state: optimizerState.map { $0.slice(axis: 0, r) }, step: optimizerSteps,
                             lowPrecisionCopy: copy?.slice(axis: 0, r))
        }
        if optimizer.updatesPerTensor {
            // Per-tensor optimizers run only unpartitioned (the engine refuses them on shards), so flat ranges are local.
            for (i, (p, offset)) in zip(flat.params, flat.offsets).enumerated() {
                let r = offset..<(offset + p.count)
                if let parameterDecays { withWeightDecay(parameterDecays[i]) { update(r) } } else { update(r) }
            }
        } else if let decayRuns {
            // Parameter groups: one update per run of equal weight decay (elementwise, so the split changes nothing else).
            for run in decayRuns { withWeightDecay(run.weightDecay) { update(run.range) } }
        } else {
            optimizer.update(param: param, grad: g32, state: optimizerState, step: optimizerSteps, lowPrecisionCopy: copy)
        }
        if let master, copy == nil { weightShard.copyData(from: master) }   // offload: weights come back
        if let values = flat.values, partition.count != flat.paddedCount {
            // Stages 1–2: every rank updated its slice; gather the new weights everywhere.
            try group.allGather(weightShard, into: values)
        }
        try partitioner?.refreshPersistent()
        zeroGrad()
        if let scheduler {
            scheduler.step()
            scheduler.apply(to: optimizer)
        }
    }

    /// The sum of squares of this rank's gradient partition `g32` (`[partition.count]`) over the elements this rank
    /// counts in the global norm: all of them, less ``normExcludedRanges``.
    func countedSumOfSquares(_ g32: Tensor) -> Double {
        guard !normExcludedRanges.isEmpty else { return noGrad { g32.sumOfSquares() }.item() }
        let base = partition.lowerBound
        var cursor = base, total = 0.0
        func add(_ lo: Int, _ hi: Int) {
            if lo < hi { total += noGrad { g32.slice(axis: 0, (lo - base)..<(hi - base)).sumOfSquares() }.item() }
        }
        for r in normExcludedRanges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let lo = Swift.max(r.lowerBound, base), hi = Swift.min(r.upperBound, partition.upperBound)
            guard lo < hi else { continue }
            add(cursor, lo)
            cursor = Swift.max(cursor, hi)
        }
        add(cursor, partition.upperBound)
        return total
    }

    /// `steps_per_print` logging, wall-clock breakdown and monitor events after a boundary step.
    func report() {
        let every = config.stepsPerPrint ?? 0
        if every > 0 && globalSteps % every == 0 {
            var line = "[SwiftSpeed] step=\(globalSteps), skipped=\(skippedSteps), lr=\(getLR())"
            if let betas = optimizer.betas { line += ", mom=[(\(betas.0), \(betas.1))]" }
            if lossScaler != nil { line += ", loss_scale=\(lossScale)" }
            logger.info("\(line)")
        }
        if config.wallClockBreakdown {
            let t = timers
            logger.info("[SwiftSpeed] time (ms) | forward: \(ms(t.forward)) | backward: \(ms(t.backward)) | step: \(ms(t.step))")
        }
        timers = StepTimers()
        guard !monitors.isEmpty else { return }
        var events: [MonitorEvent] = [MonitorEvent(tag: "Train/Samples/lr", value: optimizer.lr, step: globalSamples)]
        if let loss = lastLoss { events.append(MonitorEvent(tag: "Train/Samples/train_loss", value: loss, step: globalSamples)) }
        if lossScaler != nil { events.append(MonitorEvent(tag: "Train/Samples/loss_scale", value: lossScale, step: globalSamples)) }
        for m in monitors { m.write(events) }
    }

    private func ms(_ seconds: Double) -> String {
        String(Double(Int(seconds * 100_000)) / 100)
    }
}

/// Accumulated wall time of the current optimizer step's phases, in seconds.
struct StepTimers {
    var forward = 0.0, backward = 0.0, step = 0.0
}

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
