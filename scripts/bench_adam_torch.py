#!/usr/bin/env python3
"""B2 anchors: one AdamW step over N fp32 parameters on the CPU, in PyTorch and DeepSpeed.

Prints one JSON line per implementation in `swiftspeed bench adam --json`'s format, so the two can
be compared side by side. Not needed by CI or the tests.

    python3 scripts/bench_adam_torch.py --params 50000000 --threads 2 --impl torch
    python3 scripts/bench_adam_torch.py --impl deepspeed   # needs `pip install deepspeed ninja` and g++

torch: torch.optim.AdamW with its defaults (fused=False; foreach chosen by torch). deepspeed:
DeepSpeedCPUAdam (JIT-built with ninja on first use; adamw_mode=True).
"""
import argparse
import json
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=int, default=50_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--impl", choices=["torch", "deepspeed", "all"], default="torch")
    args = ap.parse_args()

    # OpenMP (DeepSpeed's CPU Adam) reads this at start-up, before torch is imported.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    impls = ["torch", "deepspeed"] if args.impl == "all" else [args.impl]
    for impl in impls:
        try:
            print(json.dumps(run(torch, impl, args)), flush=True)
        except Exception as e:  # report why an anchor could not run instead of dying silently
            print(json.dumps({"case": "B2-adam", "impl": impl, "error": f"{type(e).__name__}: {e}"}), flush=True)
            if args.impl != "all":
                sys.exit(1)


def run(torch, impl, args):
    gen = torch.Generator().manual_seed(2)
    p = torch.nn.Parameter(torch.randn(args.params, generator=gen) * 0.02)
    p.grad = torch.randn(args.params, generator=gen) * 1e-3
    if impl == "torch":
        opt = torch.optim.AdamW([p], lr=3e-4, weight_decay=0.1)
        name = f"torch {torch.__version__} AdamW (fused=False, foreach default)"
    else:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
        import deepspeed

        opt = DeepSpeedCPUAdam([p], lr=3e-4, weight_decay=0.1, adamw_mode=True)
        name = f"deepspeed {deepspeed.__version__} DeepSpeedCPUAdam"
    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.step()
        t1 = time.perf_counter()
        if step >= args.warmup:
            times.append(t1 - t0)
    ms = statistics.median(times) * 1000
    return {
        "case": "B2-adam",
        "impl": name,
        "params": args.params,
        "threads": args.threads,
        "ms_per_step": round(ms, 2),
        "params_per_s": round(args.params / (ms / 1000)),
        "min_ms": round(min(times) * 1000, 2),
        "max_ms": round(max(times) * 1000, 2),
        "gb_per_s": round(args.params * 28 / (ms / 1000) / 1e9, 2),
    }


if __name__ == "__main__":
    main()
