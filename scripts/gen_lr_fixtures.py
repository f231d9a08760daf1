#!/usr/bin/env python3
"""Regenerates Tests/SpeedOptimTests/Fixtures/lr_schedules.json from DeepSpeed's own LR schedules.

Run by hand, never in CI (needs torch and deepspeed, e.g. in a scratch venv):
    python3 -m venv --system-site-packages /tmp/dsvenv
    /tmp/dsvenv/bin/pip install wheel setuptools
    DS_BUILD_OPS=0 /tmp/dsvenv/bin/pip install --no-build-isolation --no-deps deepspeed
    /tmp/dsvenv/bin/python scripts/gen_lr_fixtures.py

Each case builds the scheduler the way DeepSpeed's engine does (`Type(optimizer, **params)`) on
a one-parameter torch Adam whose lr is `base_lr`, then records the optimizer's lr (and beta1)
at construction and after each of `steps` calls to `step()`: lr[k] is the LR of optimizer step k+1.
"""
import json
import logging
import os
import sys

import torch
import deepspeed
from deepspeed.runtime import lr_schedules

logging.disable(logging.WARNING)

CASES = [
    # WarmupLR
    ("warmup_log_spec_example", "WarmupLR", {"warmup_min_lr": 0, "warmup_max_lr": 1e-3, "warmup_num_steps": 10, "warmup_type": "log"}, 1e-3, 15),
    ("warmup_linear", "WarmupLR", {"warmup_min_lr": 0, "warmup_max_lr": 1e-3, "warmup_num_steps": 10, "warmup_type": "linear"}, 1e-3, 15),
    ("warmup_steps_1_log", "WarmupLR", {"warmup_min_lr": 1e-5, "warmup_max_lr": 2e-3, "warmup_num_steps": 1, "warmup_type": "log"}, 1e-3, 5),
    ("warmup_steps_1_linear", "WarmupLR", {"warmup_min_lr": 1e-5, "warmup_max_lr": 2e-3, "warmup_num_steps": 1, "warmup_type": "linear"}, 1e-3, 5),
    ("warmup_steps_2_linear", "WarmupLR", {"warmup_max_lr": 0.01, "warmup_num_steps": 2, "warmup_type": "linear"}, 1e-3, 5),
    ("warmup_min_nonzero_linear", "WarmupLR", {"warmup_min_lr": 3e-5, "warmup_max_lr": 3e-4, "warmup_num_steps": 37, "warmup_type": "linear"}, 1e-3, 45),
    ("warmup_max_from_optimizer", "WarmupLR", {"warmup_num_steps": 7}, 5e-4, 10),
    ("warmup_defaults", "WarmupLR", {}, 2e-4, 6),
    ("warmup_unknown_type_falls_back_to_log", "WarmupLR", {"warmup_max_lr": 1e-3, "warmup_num_steps": 10, "warmup_type": "cosine"}, 1e-3, 12),
    ("warmup_steps_0_error", "WarmupLR", {"warmup_num_steps": 0}, 1e-3, 3),
    # WarmupDecayLR
    ("decay_log", "WarmupDecayLR", {"total_num_steps": 40, "warmup_min_lr": 0, "warmup_max_lr": 1e-3, "warmup_num_steps": 10, "warmup_type": "log"}, 1e-3, 45),
    ("decay_linear_min", "WarmupDecayLR", {"total_num_steps": 30, "warmup_min_lr": 1e-4, "warmup_max_lr": 1e-3, "warmup_num_steps": 8, "warmup_type": "linear"}, 1e-3, 35),
    ("decay_total_less_than_warmup", "WarmupDecayLR", {"total_num_steps": 5, "warmup_max_lr": 1e-3, "warmup_num_steps": 10, "warmup_type": "linear"}, 1e-3, 14),
    ("decay_total_equals_warmup", "WarmupDecayLR", {"total_num_steps": 10, "warmup_max_lr": 1e-3, "warmup_num_steps": 10}, 1e-3, 14),
    ("decay_total_warmup_plus_1", "WarmupDecayLR", {"total_num_steps": 11, "warmup_max_lr": 1e-3, "warmup_num_steps": 10, "warmup_type": "linear"}, 1e-3, 14),
    ("decay_warmup_1", "WarmupDecayLR", {"total_num_steps": 20, "warmup_max_lr": 5e-4, "warmup_num_steps": 1, "warmup_type": "linear"}, 1e-3, 24),
    ("decay_default_max", "WarmupDecayLR", {"total_num_steps": 12, "warmup_num_steps": 4}, 7e-4, 15),
    ("decay_steps_0_error", "WarmupDecayLR", {"total_num_steps": 12, "warmup_num_steps": 0}, 1e-3, 3),
    # WarmupCosineLR
    ("cosine_log", "WarmupCosineLR", {"total_num_steps": 50, "warmup_num_steps": 10}, 3e-4, 60),
    ("cosine_linear_ratios", "WarmupCosineLR", {"total_num_steps": 40, "warmup_min_ratio": 0.1, "warmup_num_steps": 8, "cos_min_ratio": 0.01, "warmup_type": "linear"}, 1e-3, 50),
    ("cosine_total_less_than_warmup", "WarmupCosineLR", {"total_num_steps": 5, "warmup_num_steps": 10, "warmup_type": "linear"}, 1e-3, 15),
    ("cosine_total_equals_warmup", "WarmupCosineLR", {"total_num_steps": 10, "warmup_num_steps": 10, "cos_min_ratio": 0.05}, 1e-3, 15),
    ("cosine_warmup_1", "WarmupCosineLR", {"total_num_steps": 20, "warmup_num_steps": 1, "warmup_min_ratio": 0.5}, 2e-3, 25),
    ("cosine_steps_0_error", "WarmupCosineLR", {"total_num_steps": 20, "warmup_num_steps": 0}, 1e-3, 3),
    # OneCycle
    ("onecycle_spec_example", "OneCycle", {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-2, "cycle_first_step_size": 10, "cycle_second_step_size": 15}, 1e-3, 40),
    ("onecycle_symmetric_default_second", "OneCycle", {"cycle_min_lr": 1e-3, "cycle_max_lr": 5e-3, "cycle_first_step_size": 6, "cycle_min_mom": 0.85, "cycle_max_mom": 0.95}, 1e-3, 20),
    ("onecycle_post_cycle_decay", "OneCycle", {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3, "cycle_first_step_size": 5, "cycle_second_step_size": 7, "decay_lr_rate": 0.5, "decay_step_size": 3, "decay_mom_rate": 0.01}, 1e-3, 40),
    ("onecycle_decay_rate_without_step_size", "OneCycle", {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3, "cycle_first_step_size": 4, "decay_lr_rate": 0.5}, 1e-3, 15),
    ("onecycle_stairs", "OneCycle", {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3, "cycle_first_step_size": 9, "cycle_second_step_size": 12, "cycle_first_stair_count": 3, "cycle_second_stair_count": 4}, 1e-3, 30),
    ("onecycle_stairs_second_defaults_to_first", "OneCycle", {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3, "cycle_first_step_size": 8, "cycle_first_stair_count": 2}, 1e-3, 20),
    ("onecycle_no_momentum", "OneCycle", {"cycle_min_lr": 2e-4, "cycle_max_lr": 2e-3, "cycle_first_step_size": 3, "cycle_momentum": False}, 1e-3, 10),
    ("onecycle_second_step_0", "OneCycle", {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3, "cycle_first_step_size": 4, "cycle_second_step_size": 0, "decay_lr_rate": 1.0, "decay_step_size": 2}, 1e-3, 12),
    ("onecycle_first_step_0_error", "OneCycle", {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3, "cycle_first_step_size": 0}, 1e-3, 3),
    # LRRangeTest
    ("range_continuous", "LRRangeTest", {"lr_range_test_min_lr": 1e-4, "lr_range_test_step_size": 10, "lr_range_test_step_rate": 2.0}, 1e-3, 25),
    ("range_staircase", "LRRangeTest", {"lr_range_test_min_lr": 1e-3, "lr_range_test_step_size": 4, "lr_range_test_step_rate": 0.5, "lr_range_test_staircase": True}, 1e-3, 20),
    ("range_step_size_1", "LRRangeTest", {"lr_range_test_min_lr": 3e-5, "lr_range_test_step_size": 1, "lr_range_test_step_rate": 1.0}, 1e-3, 10),
    ("range_defaults", "LRRangeTest", {}, 1e-3, 5),
    ("range_step_size_0_error", "LRRangeTest", {"lr_range_test_step_size": 0}, 1e-3, 3),
]


def run_case(name, type_name, params, base_lr, steps):
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([weight], lr=base_lr, betas=(0.9, 0.999))
    try:
        scheduler = getattr(lr_schedules, type_name)(optimizer, **params)
    except (ValueError, TypeError) as e:
        return {"name": name, "type": type_name, "params": params, "base_lr": base_lr, "error": str(e)}
    group = optimizer.param_groups[0]
    lrs, beta1s = [float(group["lr"])], [float(group["betas"][0])]
    for _ in range(steps):
        scheduler.step()
        lrs.append(float(group["lr"]))
        beta1s.append(float(group["betas"][0]))
    cycles_momentum = type_name == "OneCycle" and params.get("cycle_momentum", True)
    return {"name": name, "type": type_name, "params": params, "base_lr": base_lr,
            "lr": lrs, "beta1": beta1s if cycles_momentum else None}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "SpeedOptimTests",
                       "Fixtures", "lr_schedules.json")
    fixture = {
        "comment": "Generated by scripts/gen_lr_fixtures.py from DeepSpeed's lr_schedules; lr[k] is the LR of "
                   "optimizer step k+1 (lr[0] = at construction). Do not edit by hand.",
        "deepspeed_version": deepspeed.__version__,
        "cases": [run_case(*case) for case in CASES],
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {len(CASES)} cases to {os.path.normpath(out)}", file=sys.stderr)


if __name__ == "__main__":
    main()
