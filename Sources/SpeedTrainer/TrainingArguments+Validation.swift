// transformers' `__post_init__` for TrainingArguments: derived defaults first, then `_validate_args`, then our range checks.
// Invariant: `validated()` is idempotent — validating a validated value changes nothing — so a JSON round trip is stable.

import Foundation

extension TrainingArguments {
    /// The arguments normalized and checked as transformers does when it builds them: `output_dir` with `~`
    /// expanded, `gradient_checkpointing` mirroring `activation_checkpointing`, `do_eval` set by an eval strategy,
    /// `eval_steps` from `logging_steps`, `metric_for_best_model` "loss" for `load_best_model_at_end`,
    /// `greater_is_better` from the metric's name, integral `*_steps` above 1 made integers.
    ///
    /// - Throws: ``TrainingArgumentsError`` with transformers' message where it has one (fp16 with bf16,
    ///   load_best_model_at_end with mismatched strategies, a fractional logging_steps above 1, …), and for values
    ///   no training could use (a batch size of 0, a negative learning rate, betas outside [0, 1)).
    ///
    /// ```swift
    /// var args = TrainingArguments()
    /// args.evalStrategy = .steps
    /// args = try args.validated()      // args.evalSteps == 500, args.doEval == true
    /// ```
    public func validated() throws -> TrainingArguments {
        var a = self
        func fail(_ key: String?, _ message: String) -> TrainingArgumentsError { TrainingArgumentsError(key: key, message) }
        if a.outputDir.hasPrefix("~") { a.outputDir = (a.outputDir as NSString).expandingTildeInPath }
        if a.activationCheckpointing == nil, let old = a.gradientCheckpointing {
            a.activationCheckpointing = old
            a.note("gradient_checkpointing is deprecated and will be removed in v6. Use activation_checkpointing instead.")
        }
        a.activationCheckpointing = a.activationCheckpointing ?? false
        a.gradientCheckpointing = a.activationCheckpointing
        if a.disableTqdm == nil { a.disableTqdm = false }
        if !a.doEval && a.evalStrategy != .no { a.doEval = true }
        if a.evalStrategy == .steps && (a.evalSteps == nil || a.evalSteps == 0) {
            guard a.loggingSteps > 0 else {
                throw fail("eval_steps", "evaluation strategy IntervalStrategy.STEPS requires either non-zero --eval_steps or --logging_steps")
            }
            a.evalSteps = a.loggingSteps
        }
        if a.loadBestModelAtEnd && a.metricForBestModel == nil { a.metricForBestModel = "loss" }
        if a.greaterIsBetter == nil, let metric = a.metricForBestModel { a.greaterIsBetter = !metric.hasSuffix("loss") }

        // transformers' _validate_args.
        if a.loggingStrategy == .steps && a.loggingSteps == 0 {
            throw fail("logging_steps", "logging strategy IntervalStrategy.STEPS requires non-zero --logging_steps")
        }
        func integral(_ name: String, _ value: Double) throws -> Double {
            guard value <= 1 || value == value.rounded() else {
                throw fail(name, "--\(name) must be an integer if bigger than 1: \(Self.number(value))")
            }
            return value
        }
        if a.loggingStrategy == .steps { a.loggingSteps = try integral("logging_steps", a.loggingSteps) }
        if a.evalStrategy == .steps, let e = a.evalSteps { a.evalSteps = try integral("eval_steps", e) }
        if a.saveStrategy == .steps { a.saveSteps = try integral("save_steps", a.saveSteps) }
        if a.loadBestModelAtEnd && a.saveStrategy != .best {
            if a.evalStrategy != a.saveStrategy {
                throw fail("load_best_model_at_end", "--load_best_model_at_end requires the save and eval strategy to match, except when --save_strategy=\"best\", but found\n- Evaluation strategy: IntervalStrategy.\(a.evalStrategy.rawValue.uppercased())\n- Save strategy: SaveStrategy.\(a.saveStrategy.rawValue.uppercased())")
            }
            if a.evalStrategy == .steps, let e = a.evalSteps, a.saveSteps.truncatingRemainder(dividingBy: e) != 0 {
                if e < 1 || a.saveSteps < 1 {
                    guard e < 1 && a.saveSteps < 1 else {
                        throw fail("load_best_model_at_end", "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation steps, which cannot get guaranteed when mixing ratio and absolute steps for save_steps \(Self.number(a.saveSteps)) and eval_steps \(Self.number(e)).")
                    }
                    if (a.saveSteps * 1_000_000).truncatingRemainder(dividingBy: e * 1_000_000) != 0 {
                        throw fail("load_best_model_at_end", "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation steps, but found \(Self.number(a.saveSteps)), which is not a multiple of \(Self.number(e)).")
                    }
                } else {
                    throw fail("load_best_model_at_end", "--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, but found \(Self.number(a.saveSteps)), which is not a round multiple of \(Self.number(e)).")
                }
            }
        }
        if a.fp16 && a.bf16 { throw fail("bf16", "At most one of fp16 and bf16 can be True, but not both") }
        if a.fp16FullEval && a.bf16FullEval {
            throw fail("bf16_full_eval", "At most one of fp16 and bf16 can be True for full eval, but not both")
        }
        if a.warmupSteps < 0 {
            throw fail("warmup_steps", "Got warmup_steps = \(Self.number(a.warmupSteps)), Expected value warmup_steps >= 0")
        }

        // transformers 4.x's warmup_ratio.
        if let ratio = a.warmupRatio {
            guard ratio >= 0 && ratio <= 1 else { throw fail("warmup_ratio", "warmup_ratio must lie in range [0,1]") }
            if a.warmupSteps > 0 {
                a.note("Both warmup_ratio and warmup_steps given, warmup_steps will override any effect of warmup_ratio during training")
            } else {
                a.note("warmup_ratio is deprecated (transformers 5.x removed it); warmup_steps below 1 is a ratio of the total steps")
            }
        }

        // Values no training can use (transformers fails later, inside torch).
        for (name, value) in [("per_device_train_batch_size", a.perDeviceTrainBatchSize),
                              ("per_device_eval_batch_size", a.perDeviceEvalBatchSize),
                              ("gradient_accumulation_steps", a.gradientAccumulationSteps)] where value < 1 {
            throw fail(name, "must be >= 1, got \(value)")
        }
        for (name, value) in [("learning_rate", a.learningRate), ("weight_decay", a.weightDecay),
                              ("adam_epsilon", a.adamEpsilon), ("max_grad_norm", a.maxGradNorm),
                              ("num_train_epochs", a.numTrainEpochs), ("label_smoothing_factor", a.labelSmoothingFactor),
                              ("eval_delay", a.evalDelay)] where value < 0 {
            throw fail(name, "must be >= 0, got \(Self.number(value))")
        }
        for (name, value) in [("adam_beta1", a.adamBeta1), ("adam_beta2", a.adamBeta2)] where !(value >= 0 && value < 1) {
            throw fail(name, "must be in [0, 1), got \(Self.number(value))")
        }
        if let limit = a.saveTotalLimit, limit < 1 { throw fail("save_total_limit", "must be >= 1 (or null for no limit), got \(limit)") }
        if !["adamw_torch", "adamw_torch_fused"].contains(a.optim) {
            throw fail("optim", "'\(a.optim)': SwiftSpeed's Trainer builds torch's AdamW (adamw_torch_fused or adamw_torch); for another optimizer give the DeepSpeed config an \"optimizer\" block")
        }
        if a.lrSchedulerType != .constant {
            for key in a.lrSchedulerKwargs.keys.sorted() where !a.lrSchedulerType.kwargKeys.contains(key) {
                let takes = a.lrSchedulerType.kwargKeys
                throw fail("lr_scheduler_kwargs.\(key)", "not an argument of the \(a.lrSchedulerType.rawValue) schedule; it takes " + (takes.isEmpty ? "none" : takes.joined(separator: ", ")))
            }
        }
        if case .path(let p)? = a.deepspeed, p.isEmpty { throw fail("deepspeed", "an empty path; give a ds_config.json path or a JSON object") }
        return a
    }

    /// A number as transformers prints it here: integral values as integers (transformers makes `*_steps` > 1
    /// integers, and JSON ints stay ints), others as Python floats.
    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : PythonValue.float(v)
    }

    private mutating func note(_ message: String) {
        if !warnings.contains(message) { warnings.append(message) }
    }
}
