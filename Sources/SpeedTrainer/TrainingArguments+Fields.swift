// The table of TrainingArguments' keys: name, kind (with its key path), help — one row drives JSON, CLI, encoding, help.
// Invariant: every stored argument has exactly one row, so decoding, encoding and the help text cannot drift apart.

import SpeedOptim
import SpeedRuntime

/// What a key holds, and where in ``TrainingArguments`` it lives.
enum ArgumentKind {
    case int(WritableKeyPath<TrainingArguments, Int>)
    case optionalInt(WritableKeyPath<TrainingArguments, Int?>)
    case double(WritableKeyPath<TrainingArguments, Double>)
    case optionalDouble(WritableKeyPath<TrainingArguments, Double?>)
    case bool(WritableKeyPath<TrainingArguments, Bool>)
    case optionalBool(WritableKeyPath<TrainingArguments, Bool?>)
    case string(WritableKeyPath<TrainingArguments, String>)
    case optionalString(WritableKeyPath<TrainingArguments, String?>)
    case strategy(WritableKeyPath<TrainingArguments, IntervalStrategy>, save: Bool)
    case schedule
    case scheduleKwargs
    case optionalStringList(WritableKeyPath<TrainingArguments, [String]?>)
    case reportTo
    case deepspeed

    /// The expected type, for errors ("an integer") and help ("int").
    var expected: String {
        switch self {
        case .int, .optionalInt: return "an integer"
        case .double, .optionalDouble: return "a number"
        case .bool, .optionalBool: return "true or false"
        case .string, .optionalString: return "a string"
        case .strategy(_, let save): return save ? "one of \"no\", \"steps\", \"epoch\", \"best\"" : "one of \"no\", \"steps\", \"epoch\""
        case .schedule: return "a schedule name (" + HFScheduleType.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case .scheduleKwargs: return "a JSON object of numbers, e.g. {\"num_cycles\": 2}"
        case .optionalStringList: return "a list of strings"
        case .reportTo: return "\"none\", \"all\", \"tensorboard\", \"csv\" or a list of them"
        case .deepspeed: return "a path to a ds_config.json or a JSON object"
        }
    }

    var helpType: String {
        switch self {
        case .int, .optionalInt: return "INT"
        case .double, .optionalDouble: return "FLOAT"
        case .bool, .optionalBool: return "[BOOL]"
        case .string, .optionalString: return "STR"
        case .strategy(_, let save): return save ? "{no,steps,epoch,best}" : "{no,steps,epoch}"
        case .schedule: return "SCHEDULE"
        case .scheduleKwargs: return "JSON"
        case .optionalStringList: return "STR [STR ...]"
        case .reportTo: return "{none,all,tensorboard,csv} [...]"
        case .deepspeed: return "PATH|JSON"
        }
    }

    var isBool: Bool {
        switch self {
        case .bool, .optionalBool: return true
        default: return false
        }
    }

    var isList: Bool {
        switch self {
        case .optionalStringList, .reportTo: return true
        default: return false
        }
    }
}

/// One key of ``TrainingArguments``.
struct ArgumentField {
    let name: String
    let kind: ArgumentKind
    let help: String
    /// transformers 4.x only: encoded only when set, so the JSON loads in transformers 5.x.
    var legacy = false

    init(_ name: String, _ kind: ArgumentKind, _ help: String, legacy: Bool = false) {
        self.name = name
        self.kind = kind
        self.help = help
        self.legacy = legacy
    }
}

extension TrainingArguments {
    /// Every key, in transformers' order of sections.
    static var fields: [ArgumentField] {
        [
            ArgumentField("output_dir", .string(\.outputDir), "Where checkpoints and the final model are written."),
            ArgumentField("overwrite_output_dir", .bool(\.overwriteOutputDir), "transformers 4.x; accepted and ignored.", legacy: true),
            ArgumentField("do_train", .bool(\.doTrain), "Whether to run training (for scripts; the Trainer does not read it)."),
            ArgumentField("do_eval", .bool(\.doEval), "Whether to run evaluation (set when eval_strategy is not \"no\")."),
            ArgumentField("do_predict", .bool(\.doPredict), "Whether to predict on the test set (for scripts)."),
            ArgumentField("resume_from_checkpoint", .optionalString(\.resumeFromCheckpoint), "A checkpoint folder to resume from (for scripts)."),
            ArgumentField("per_device_train_batch_size", .int(\.perDeviceTrainBatchSize), "Training batch size per device (DeepSpeed's train_micro_batch_size_per_gpu)."),
            ArgumentField("per_device_eval_batch_size", .int(\.perDeviceEvalBatchSize), "Evaluation batch size per device."),
            ArgumentField("gradient_accumulation_steps", .int(\.gradientAccumulationSteps), "Micro-batches accumulated per optimizer step."),
            ArgumentField("eval_accumulation_steps", .optionalInt(\.evalAccumulationSteps), "Prediction steps accumulated before moving outputs to the CPU."),
            ArgumentField("num_train_epochs", .double(\.numTrainEpochs), "Epochs to train (a fraction runs part of the last one)."),
            ArgumentField("max_steps", .int(\.maxSteps), "If > 0: the number of optimizer steps, overriding num_train_epochs."),
            ArgumentField("learning_rate", .double(\.learningRate), "The initial learning rate (AdamW)."),
            ArgumentField("weight_decay", .double(\.weightDecay), "Weight decay, applied to every parameter except biases and LayerNorm weights."),
            ArgumentField("adam_beta1", .double(\.adamBeta1), "AdamW's beta1."),
            ArgumentField("adam_beta2", .double(\.adamBeta2), "AdamW's beta2."),
            ArgumentField("adam_epsilon", .double(\.adamEpsilon), "AdamW's epsilon."),
            ArgumentField("max_grad_norm", .double(\.maxGradNorm), "Gradient clipping norm (0 disables)."),
            ArgumentField("optim", .string(\.optim), "The optimizer: adamw_torch_fused or adamw_torch (both torch's AdamW)."),
            ArgumentField("lr_scheduler_type", .schedule, "The learning-rate schedule: " + HFScheduleType.allCases.map(\.rawValue).joined(separator: ", ") + "."),
            ArgumentField("lr_scheduler_kwargs", .scheduleKwargs, "Extra schedule arguments: num_cycles, lr_end, power, timescale, min_lr, min_lr_rate."),
            ArgumentField("warmup_steps", .double(\.warmupSteps), "Linear warmup steps; a value in [0, 1) is a ratio of the total steps."),
            ArgumentField("warmup_ratio", .optionalDouble(\.warmupRatio), "transformers 4.x: warmup as a ratio of the total steps (used when warmup_steps is 0).", legacy: true),
            ArgumentField("label_smoothing_factor", .double(\.labelSmoothingFactor), "Label smoothing (0 = none)."),
            ArgumentField("bf16", .bool(\.bf16), "bfloat16 mixed precision."),
            ArgumentField("fp16", .bool(\.fp16), "float16 mixed precision (dynamic loss scaling)."),
            ArgumentField("bf16_full_eval", .bool(\.bf16FullEval), "Evaluate in bfloat16."),
            ArgumentField("fp16_full_eval", .bool(\.fp16FullEval), "Evaluate in float16."),
            ArgumentField("activation_checkpointing", .optionalBool(\.activationCheckpointing), "Recompute activations in backward to save memory."),
            ArgumentField("gradient_checkpointing", .optionalBool(\.gradientCheckpointing), "Deprecated alias of activation_checkpointing."),
            ArgumentField("use_cpu", .bool(\.useCpu), "Train on the CPU even when a GPU is present."),
            ArgumentField("logging_strategy", .strategy(\.loggingStrategy, save: false), "When to log."),
            ArgumentField("logging_steps", .double(\.loggingSteps), "Log every N optimizer steps (a ratio of the total when < 1)."),
            ArgumentField("logging_first_step", .bool(\.loggingFirstStep), "Also log the first step."),
            ArgumentField("logging_nan_inf_filter", .bool(\.loggingNanInfFilter), "Leave NaN and inf losses out of the logged average."),
            ArgumentField("report_to", .reportTo, "Where logs go: tensorboard, csv, all or none."),
            ArgumentField("run_name", .optionalString(\.runName), "A name for the run in the logs."),
            ArgumentField("disable_tqdm", .optionalBool(\.disableTqdm), "Disable the progress bar."),
            ArgumentField("eval_strategy", .strategy(\.evalStrategy, save: false), "When to evaluate."),
            ArgumentField("eval_steps", .optionalDouble(\.evalSteps), "Evaluate every N steps (default: logging_steps; a ratio when < 1)."),
            ArgumentField("eval_delay", .double(\.evalDelay), "Epochs or steps to wait before the first evaluation."),
            ArgumentField("prediction_loss_only", .bool(\.predictionLossOnly), "Evaluation returns the loss only."),
            ArgumentField("save_strategy", .strategy(\.saveStrategy, save: true), "When to save a checkpoint."),
            ArgumentField("save_steps", .double(\.saveSteps), "Save every N steps (a ratio of the total when < 1)."),
            ArgumentField("save_total_limit", .optionalInt(\.saveTotalLimit), "Keep at most this many checkpoints (the best is kept too)."),
            ArgumentField("save_only_model", .bool(\.saveOnlyModel), "Checkpoints hold the weights only (cannot resume)."),
            ArgumentField("save_on_each_node", .bool(\.saveOnEachNode), "Save on every node, not only the main one (DeepSpeed checkpoint.use_node_local_storage)."),
            ArgumentField("load_best_model_at_end", .bool(\.loadBestModelAtEnd), "Load the best checkpoint at the end (needs matching eval and save strategies)."),
            ArgumentField("metric_for_best_model", .optionalString(\.metricForBestModel), "The metric that picks the best model (default: loss)."),
            ArgumentField("greater_is_better", .optionalBool(\.greaterIsBetter), "Whether a larger metric is better (default: unless the name ends in loss)."),
            ArgumentField("seed", .int(\.seed), "Random seed set at the start of training."),
            ArgumentField("data_seed", .optionalInt(\.dataSeed), "Seed of the data sampler (default: seed)."),
            ArgumentField("dataloader_drop_last", .bool(\.dataloaderDropLast), "Drop the last incomplete batch."),
            ArgumentField("remove_unused_columns", .bool(\.removeUnusedColumns), "Drop dataset columns the model's forward does not take."),
            ArgumentField("label_names", .optionalStringList(\.labelNames), "The input keys that hold the labels."),
            ArgumentField("deepspeed", .deepspeed, "A ds_config.json path or an inline JSON config; its \"auto\" values are filled from these arguments."),
        ]
    }

    static func field(named name: String) -> ArgumentField? { fields.first { $0.name == name } }

    /// transformers 5.x arguments SwiftSpeed's Trainer does not use, with transformers' defaults: accepted, and warned
    /// about when set to something else (a file written by `args.to_json_string()` holds them all).
    static let ignoredDefaults: [String: JSONValue] = [
        "optim_args": nil, "optim_target_modules": nil, "average_tokens_across_devices": true, "tf32": nil,
        "activation_checkpointing_kwargs": nil, "gradient_checkpointing_kwargs": nil, "torch_compile": false,
        "torch_compile_backend": nil, "torch_compile_mode": nil, "use_liger_kernel": false, "liger_kernel_config": nil,
        "use_cache": false, "neftune_noise_alpha": nil, "torch_empty_cache_steps": nil, "auto_find_batch_size": false,
        "log_on_each_node": true, "include_num_input_tokens_seen": "no", "log_level": "passive",
        "log_level_replica": "warning", "project": "huggingface", "trackio_space_id": nil, "trackio_bucket_id": nil,
        "trackio_static_space_id": nil, "eval_on_start": false, "eval_do_concat_batches": true,
        "eval_use_gather_object": false, "include_for_metrics": [], "batch_eval_metrics": false,
        "enable_jit_checkpoint": false, "push_to_hub": false, "hub_token": nil, "hub_private_repo": nil,
        "hub_model_id": nil, "hub_strategy": "every_save", "hub_always_push": false, "hub_revision": nil,
        "ignore_data_skip": false, "restore_callback_states_from_checkpoint": false, "full_determinism": false,
        "accelerator_config": nil, "parallelism_config": nil, "dataloader_num_workers": 0,
        "dataloader_pin_memory": true, "dataloader_persistent_workers": false, "dataloader_prefetch_factor": nil,
        "dataloader_multiprocessing_context": nil, "dataloader_in_order": true, "train_sampling_strategy": "random",
        "length_column_name": "length", "ddp_find_unused_parameters": nil, "ddp_bucket_cap_mb": nil,
        "ddp_broadcast_buffers": nil, "ddp_static_graph": nil, "ddp_backend": nil, "ddp_timeout": 1800, "fsdp": nil,
        "fsdp_config": nil, "debug": [], "skip_memory_metrics": true, "local_rank": -1,
        // transformers 4.x keys without a 5.x meaning here.
        "logging_dir": nil, "save_safetensors": true,
    ]

    /// Values of ignored keys that also count as the default (what `to_json_string()` writes for them).
    static func isIgnoredDefault(_ key: String, _ value: JSONValue) -> Bool {
        if value == .null || value == ignoredDefaults[key] { return true }
        switch key {
        case "hub_token": return value == "<HUB_TOKEN>"
        case "debug", "fsdp": return value == "" || value == []
        case "accelerator_config":
            return value == ["split_batches": false, "dispatch_batches": nil, "even_batches": true,
                             "use_seedable_sampler": true, "non_blocking": false, "gradient_accumulation_kwargs": nil]
        default: return false
        }
    }

    /// Old names transformers itself no longer takes, with the one to use.
    static let renamedKeys: [String: String] = [
        "evaluation_strategy": "eval_strategy", "no_cuda": "use_cpu", "per_gpu_train_batch_size": "per_device_train_batch_size",
        "per_gpu_eval_batch_size": "per_device_eval_batch_size",
    ]

    /// Every name a key may have (for suggestions).
    static var knownNames: Set<String> { Set(fields.map(\.name)).union(ignoredDefaults.keys) }
}
