// Builds the optimizer, schedule and monitors a config describes (the config stays pure data).
// Invariant: every ds_config optimizer type maps to exactly one SpeedOptim class with the same semantics.

import SpeedOptim

/// The optimizer an `optimizer` block describes (`type` is case-insensitive; "Adam" keeps DeepSpeed's
/// `adam_w_mode` default of true).
public func makeOptimizer(_ block: OptimizerConfig) throws -> any Optimizer {
    let p = block.params
    switch block.type {
    case .adam:
        return Adam(lr: p.lr, betas: p.betaPair, eps: p.eps, weightDecay: p.weightDecay,
                    biasCorrection: p.biasCorrection, adamWMode: p.adamWMode)
    case .adamw:
        return AdamW(lr: p.lr, betas: p.betaPair, eps: p.eps, weightDecay: p.weightDecay, biasCorrection: p.biasCorrection)
    case .sgd:
        return SGD(lr: p.lr, momentum: p.momentum, dampening: p.dampening, weightDecay: p.weightDecay, nesterov: p.nesterov)
    case .lamb:
        return Lamb(lr: p.lr, betas: p.betaPair, eps: p.eps, weightDecay: p.weightDecay, biasCorrection: p.biasCorrection,
                    epsInsideSqrt: p.epsInsideSqrt, maxCoeff: p.maxCoeff, minCoeff: p.minCoeff)
    case .adagrad:
        return Adagrad(lr: p.lr, lrDecay: p.lrDecay, weightDecay: p.weightDecay,
                       initialAccumulatorValue: p.initialAccumulatorValue, eps: p.eps)
    case .lion:
        return Lion(lr: p.lr, betas: p.betaPair, weightDecay: p.weightDecay)
    }
}

/// The schedule a `scheduler` block describes, starting from the optimizer's `baseLR`.
public func makeScheduler(_ block: SchedulerConfig, baseLR: Double) throws -> any LRScheduler {
    try block.makeScheduler(baseLR: baseLR)
}

/// The `tensorboard` and `csv_monitor` sinks that are enabled.
public func makeMonitors(_ config: DeepSpeedConfig) throws -> [any Monitor] {
    var monitors: [any Monitor] = []
    if config.tensorboard.enabled {
        monitors.append(try TensorBoardMonitor(outputPath: config.tensorboard.outputPath, jobName: config.tensorboard.jobName))
    }
    if config.csvMonitor.enabled {
        monitors.append(try CSVMonitor(outputPath: config.csvMonitor.outputPath, jobName: config.csvMonitor.jobName))
    }
    return monitors
}
