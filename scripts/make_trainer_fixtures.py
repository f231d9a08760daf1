#!/usr/bin/env python3
"""Regenerates SpeedTrainer's and the HF schedules' fixtures from the real transformers, accelerate, DeepSpeed and torch.

Run by hand, never in CI:
    python3 -m venv /tmp/hfenv && /tmp/hfenv/bin/pip install torch transformers
    DS_BUILD_OPS=0 /tmp/hfenv/bin/pip install accelerate deepspeed
    /tmp/hfenv/bin/python scripts/make_trainer_fixtures.py

Writes
- Tests/SpeedOptimTests/Fixtures/hf_schedules.json: for each `lr_scheduler_type`, the LR of every optimizer step
  (lr[0] at construction, then one value per `scheduler.step()`), from `transformers.get_scheduler` on a torch AdamW.
- Tests/SpeedTrainerTests/Fixtures/deepspeed_auto.json: DeepSpeed configs filled by transformers'
  `HfTrainerDeepSpeedConfig` (`trainer_config_process` with the world size, then `trainer_config_finalize` with T),
  or the ValueError text; T from transformers' own `Trainer.set_initial_training_values` over accelerate's per-rank
  `BatchSamplerShard` (the loader transformers' Trainer uses), warmup from `TrainingArguments.get_warmup_steps`.
  transformers 5.x has no `warmup_ratio`; the 4.x case (`"swift_args"` differ from `"args"`) checks that SwiftSpeed's
  `warmup_ratio: R` equals 5.x's `warmup_steps: R` (both ⌈R·T⌉).
- Tests/SpeedTrainerTests/Fixtures/training_args.json: transformers' defaults (`to_dict()`), what
  `HfArgumentParser` makes of command lines, and what `TrainingArguments(**kwargs)` normalizes or rejects (the
  ValueError text), restricted to the keys SwiftSpeed implements; plus one full `to_json_string()`.
- Tests/SpeedTrainerTests/Fixtures/adamw_groups.json: a tiny Linear-LayerNorm-Linear model trained 3 steps with
  torch's AdamW and transformers' two parameter groups (`Trainer.get_decay_parameter_names`), and the decay names of
  tiny GPT-2, BERT and Llama models built from their config.json.
"""
import json
import math
import os
import types

import torch
import transformers
import accelerate
import deepspeed
from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import BatchSampler, SequentialSampler
from transformers import Trainer, TrainingArguments, get_scheduler
from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, deepspeed_optim_sched

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = "/tmp/make_trainer_fixtures_out"


def write(path, obj):
    path = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print("wrote", path)


# ---------------------------------------------------------------- schedules
SCHEDULES = [
    ("linear", 1e-3, 3, 10, {}),
    ("linear_no_warmup", 5e-5, 0, 6, {}),
    ("cosine", 1e-3, 2, 12, {}),
    ("cosine_cycles_1_5", 2e-4, 3, 15, {"num_cycles": 1.5}),
    ("cosine_with_restarts", 1e-3, 2, 12, {}),
    ("cosine_with_restarts_3", 1e-3, 2, 20, {"num_cycles": 3}),
    ("polynomial", 1e-3, 3, 12, {}),
    ("polynomial_power_2", 1e-3, 2, 10, {"lr_end": 1e-5, "power": 2.0}),
    ("constant", 3e-4, 4, 8, {}),
    ("constant_with_warmup", 3e-4, 4, 8, {}),
    ("inverse_sqrt", 1e-3, 4, 12, {}),
    ("inverse_sqrt_timescale", 1e-3, 2, 12, {"timescale": 7}),
    ("inverse_sqrt_no_warmup", 1e-3, 0, 5, {}),
    ("cosine_with_min_lr", 1e-3, 2, 12, {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr_abs", 1e-3, 2, 12, {"min_lr": 2e-4}),
]


def schedule_cases():
    cases = []
    for name, lr, warmup, total, kwargs in SCHEDULES:
        type_ = name
        for t in ["linear", "cosine_with_restarts", "cosine_with_min_lr", "cosine", "polynomial", "constant_with_warmup",
                  "constant", "inverse_sqrt"]:
            if name == t or name.startswith(t + "_"):
                type_ = t
                break
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=lr)
        sched = get_scheduler(type_, opt, num_warmup_steps=warmup, num_training_steps=total,
                              scheduler_specific_kwargs=dict(kwargs))
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(total + 3):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        cases.append({"name": name, "type": type_, "base_lr": lr, "num_warmup_steps": warmup,
                      "num_training_steps": total, "kwargs": kwargs, "lr": lrs})
    return cases


# ---------------------------------------------------------------- DeepSpeed auto
class Args:
    """TrainingArguments with another world size (transformers reads args.world_size from torch.distributed)."""

    def __init__(self, args, world_size):
        self._args = args
        self.world_size = world_size

    def __getattr__(self, name):
        return getattr(self._args, name)


def steps_T(args, rows, world):
    """transformers' set_initial_training_values over rank 0's accelerate loader of `rows` samples."""
    sampler = BatchSampler(SequentialSampler(range(rows)), args.per_device_train_batch_size, args.dataloader_drop_last)
    shard = BatchSamplerShard(sampler, num_processes=world, process_index=0, even_batches=True)
    length = len(shard)
    loader = types.SimpleNamespace(__len__=lambda: length)

    class Loader:
        def __len__(self):
            return length

        dataset = range(rows)

    fake = types.SimpleNamespace(
        get_total_train_batch_size=lambda a: a.per_device_train_batch_size * a.gradient_accumulation_steps * world,
        get_sp_size=lambda: 1,
        num_examples=lambda dl: rows,
    )
    values = Trainer.set_initial_training_values(fake, args, Loader())
    return values[6], values[1], length


BASE_AUTO = {
    "train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"}},
    "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": "auto", "warmup_max_lr": "auto",
                                                       "warmup_num_steps": "auto", "total_num_steps": "auto"}},
    "fp16": {"enabled": "auto"}, "bf16": {"enabled": "auto"},
    "zero_optimization": {"stage": 2, "reduce_bucket_size": "auto", "stage3_prefetch_bucket_size": "auto",
                          "stage3_param_persistence_threshold": "auto"},
}


def ds(**changes):
    c = json.loads(json.dumps(BASE_AUTO))
    for k, v in changes.items():
        node = c
        parts = k.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if v is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = v
    return c


DS_CASES = [
    ("all_auto", {"learning_rate": 3e-4, "weight_decay": 0.01, "warmup_steps": 5, "num_train_epochs": 2}, ds(), 1, 1000, {"hidden_size": 64}),
    ("mismatches", {"learning_rate": 3e-4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
                    "adam_beta2": 0.98, "max_grad_norm": 0.5, "warmup_steps": 10, "max_steps": 50},
     ds(**{"train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 2.0, "train_batch_size": 32,
           "gradient_clipping": 1.0, "optimizer.params.lr": 1e-3, "optimizer.params.betas": [0.9, 0.999],
           "optimizer.params.eps": 1e-8, "optimizer.params.weight_decay": 0, "fp16.enabled": True,
           "scheduler.params.warmup_max_lr": 0.0003, "scheduler.params.total_num_steps": 100,
           "scheduler.params.warmup_num_steps": 10}), 1, 400, {"hidden_size": 32}),
    ("numeric_equality_no_mismatch", {"learning_rate": 1e-3, "max_grad_norm": 1.0, "per_device_train_batch_size": 2, "max_steps": 7},
     ds(**{"train_micro_batch_size_per_gpu": 2.0, "gradient_clipping": 1, "optimizer.params.lr": 0.001,
           "optimizer.params.weight_decay": 0, "fp16.enabled": 0, "bf16.enabled": False}), 1, 100, {"hidden_size": 16}),
    ("stage3_buckets", {"bf16": True, "use_cpu": True, "per_device_train_batch_size": 2, "num_train_epochs": 1},
     ds(**{"zero_optimization.stage": 3}), 1, 64, {"hidden_size": 768}),
    ("stage3_hidden_sizes", {"per_device_train_batch_size": 2},
     ds(**{"zero_optimization.stage": 3}), 1, 64, {"hidden_sizes": [96, 384, 192]}),
    ("hidden_size_missing", {}, ds(), 1, 64, {"vocab_size": 100}),
    ("warmup_as_steps", {"warmup_steps": 7, "max_steps": 40}, ds(), 1, 100, {"hidden_size": 8}),
    ("warmup_as_ratio", {"warmup_steps": 0.1, "num_train_epochs": 3, "per_device_train_batch_size": 8}, ds(), 1, 205, {"hidden_size": 8}),
    ("warmup_ratio_4x", {"warmup_steps": 0.25, "num_train_epochs": 1.5, "gradient_accumulation_steps": 3}, ds(), 1, 130, {"hidden_size": 8}),
    ("no_warmup_clamped_to_1", {"max_steps": 12}, ds(), 1, 50, {"hidden_size": 8}),
    ("max_steps_over_epochs", {"max_steps": 17, "num_train_epochs": 100}, ds(), 1, 1000, {"hidden_size": 8}),
    ("epochs_fractional", {"num_train_epochs": 2.5, "gradient_accumulation_steps": 4}, ds(), 1, 1001, {"hidden_size": 8}),
    ("drop_last", {"dataloader_drop_last": True, "num_train_epochs": 1}, ds(), 2, 100, {"hidden_size": 8}),
    ("world_2", {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "num_train_epochs": 2,
                 "warmup_steps": 0.2}, ds(), 2, 99, {"hidden_size": 24}),
    ("world_2_mismatch", {"per_device_train_batch_size": 4}, ds(**{"train_batch_size": 4}), 2, 99, {"hidden_size": 24}),
    ("absent_keys_not_added", {"learning_rate": 2e-5, "max_steps": 9},
     {"train_micro_batch_size_per_gpu": "auto", "zero_optimization": {"stage": 1},
      "optimizer": {"type": "Adam", "params": {"lr": "auto"}}}, 1, 50, {"hidden_size": 8}),
    ("no_optimizer_no_scheduler", {"learning_rate": 2e-5, "max_steps": 9, "save_on_each_node": True},
     {"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "zero_optimization": {"stage": 0}},
     1, 50, {"hidden_size": 8}),
]


def ds_cases():
    cases = []
    for name, kwargs, config, world, rows, model_config in DS_CASES:
        args = TrainingArguments(output_dir=OUT_DIR, report_to="none", **kwargs)
        swift_args = dict(kwargs)
        if name == "warmup_ratio_4x":
            swift_args["warmup_ratio"] = swift_args.pop("warmup_steps")
        T, U, L = steps_T(args, rows, world)
        hf = HfTrainerDeepSpeedConfig(json.loads(json.dumps(config)))
        pa = Args(args, world)
        hf.trainer_config_process(pa)
        model = types.SimpleNamespace(config=types.SimpleNamespace(**model_config))
        case = {"name": name, "args": kwargs, "swift_args": swift_args, "deepspeed": config, "world_size": world,
                "train_rows": rows, "model_config": model_config, "batches_per_epoch": L, "updates_per_epoch": U,
                "total_steps": T, "warmup_steps": args.get_warmup_steps(T)}
        try:
            hf.trainer_config_finalize(pa, model, T)
            # transformers' deepspeed_init then picks optimizer and scheduler: without an "optimizer" block the Trainer
            # builds its own and sets zero_allow_untested_optimizer (a stand-in trainer answers create_optimizer).
            trainer = types.SimpleNamespace(create_optimizer=lambda: None)
            deepspeed_optim_sched(trainer, hf, pa, T, [torch.nn.Parameter(torch.zeros(1))])
            case["filled"] = hf.config
        except ValueError as e:
            case["error"] = str(e)
        cases.append(case)
    return cases


# ---------------------------------------------------------------- AdamW with two groups
class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 5)
        self.norm = torch.nn.LayerNorm(5)
        self.fc2 = torch.nn.Linear(5, 2)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(x)))


def adamw_groups():
    torch.manual_seed(0)
    model = Tiny()
    with torch.no_grad():
        model.norm.weight.copy_(torch.rand(5) + 0.5)
        model.norm.bias.copy_(torch.rand(5) - 0.5)
    x, y = torch.randn(6, 4), torch.randn(6, 2)
    initial = {n: p.detach().flatten().tolist() for n, p in model.named_parameters()}
    decay = Trainer.get_decay_parameter_names(None, model)
    lr, wd = 0.05, 0.1
    groups = [{"params": [p for n, p in model.named_parameters() if n in decay], "weight_decay": wd},
              {"params": [p for n, p in model.named_parameters() if n not in decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    final = {n: p.detach().flatten().tolist() for n, p in model.named_parameters()}
    return {"lr": lr, "weight_decay": wd, "x": x.flatten().tolist(), "y": y.flatten().tolist(), "decay": decay,
            "initial": initial, "final": final, "losses": losses}


def model_decay_names():
    out = []
    src = os.path.join(ROOT, "Tests/SpeedTransformersTests/Fixtures")
    for folder, cls in [("tiny-gpt2", transformers.GPT2LMHeadModel), ("tiny-bert-cls", transformers.BertForSequenceClassification),
                        ("tiny-llama", transformers.LlamaForCausalLM)]:
        with open(os.path.join(src, folder, "config.json")) as f:
            config = json.load(f)
        model = cls(cls.config_class.from_dict(config))
        decay = set(Trainer.get_decay_parameter_names(None, model))
        out.append({"folder": folder, "architecture": cls.__name__, "config": config,
                    "parameters": [[n, n in decay] for n, _ in model.named_parameters()]})
    return out


SWIFT_KEYS = None  # filled from the Swift field table's names below (kept in sync by the Swift test)

CLI_CASES = [
    ["--output_dir", "out", "--per_device_train_batch_size", "16", "--learning_rate", "3e-4"],
    ["--output_dir=out", "--fp16", "--max_steps", "-1", "--num_train_epochs=1.5"],
    ["--fp16", "false", "--do_train", "--do_eval", "True", "--seed", "7"],
    ["--no_remove_unused_columns", "--report_to", "tensorboard", "--gradient_checkpointing"],
    ["--lr_scheduler_type", "cosine", "--lr_scheduler_kwargs", '{"num_cycles": 2}', "--warmup_steps", "0.1"],
    ["--eval_strategy", "steps", "--logging_steps", "50", "--save_strategy", "steps", "--save_steps", "100",
     "--load_best_model_at_end", "--metric_for_best_model", "accuracy"],
    ["--label_names", "labels", "start_positions", "--report_to", "none", "--dataloader_drop_last", "yes"],
    ["--activation_checkpointing", "false", "--weight_decay", "0.01", "--adam_beta2", "0.95", "--max_grad_norm", "0"],
]

VALIDATION_CASES = [
    ("eval_steps_from_logging", {"eval_strategy": "steps", "logging_steps": 20}),
    ("do_eval_from_strategy", {"eval_strategy": "epoch"}),
    ("best_model_defaults", {"load_best_model_at_end": True, "eval_strategy": "steps", "save_steps": 500}),
    ("greater_is_better_from_metric", {"metric_for_best_model": "eval_accuracy"}),
    ("best_model_strategy_mismatch", {"load_best_model_at_end": True, "eval_strategy": "epoch", "save_strategy": "steps"}),
    ("best_model_steps_not_multiple", {"load_best_model_at_end": True, "eval_strategy": "steps", "eval_steps": 30, "save_steps": 50}),
    ("best_model_save_best", {"load_best_model_at_end": True, "eval_strategy": "epoch", "save_strategy": "best"}),
    ("fp16_and_bf16", {"fp16": True, "bf16": True, "use_cpu": True}),
    ("fractional_logging_steps", {"logging_steps": 2.5}),
    ("ratio_logging_steps", {"logging_steps": 0.1}),
    ("zero_logging_steps", {"logging_steps": 0}),
    ("negative_warmup", {"warmup_steps": -1}),
    ("gradient_checkpointing_alias", {"gradient_checkpointing": True}),
    ("report_to_list", {"report_to": ["tensorboard"]}),
]


def subset(d):
    return {k: v for k, v in d.items() if k in SWIFT_KEYS}


def training_args():
    from transformers import HfArgumentParser
    defaults = subset(TrainingArguments(output_dir="trainer_output").to_dict())
    cli = []
    for argv in CLI_CASES:
        (a,) = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses(args=argv)
        cli.append({"argv": argv, "args": subset(a.to_dict())})
    validation = []
    for name, kwargs in VALIDATION_CASES:
        try:
            a = TrainingArguments(output_dir="trainer_output", **kwargs)
            validation.append({"name": name, "kwargs": kwargs, "args": subset(a.to_dict())})
        except ValueError as e:
            validation.append({"name": name, "kwargs": kwargs, "error": str(e)})
    full = json.loads(TrainingArguments(output_dir="trainer_output").to_json_string())
    return {"defaults": defaults, "cli": cli, "validation": validation, "to_json_string": full}


if __name__ == "__main__":
    SWIFT_KEYS = set(json.load(open(os.path.join(ROOT, "Tests/SpeedTrainerTests/Fixtures/swift_keys.json"))))
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "accelerate": accelerate.__version__, "deepspeed": deepspeed.__version__}
    note = "Generated by scripts/make_trainer_fixtures.py; do not edit by hand."
    write("Tests/SpeedOptimTests/Fixtures/hf_schedules.json",
          {"comment": note + " lr[k] is the LR of optimizer step k+1 (lr[0] = at construction).", "versions": versions,
           "cases": schedule_cases()})
    write("Tests/SpeedTrainerTests/Fixtures/deepspeed_auto.json",
          {"comment": note, "versions": versions, "cases": ds_cases()})
    write("Tests/SpeedTrainerTests/Fixtures/training_args.json",
          {"comment": note, "versions": versions, **training_args()})
    write("Tests/SpeedTrainerTests/Fixtures/adamw_groups.json",
          {"comment": note, "versions": versions, "tiny": adamw_groups(), "models": model_decay_names()})
