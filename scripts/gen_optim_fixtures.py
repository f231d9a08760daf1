#!/usr/bin/env python3
"""Regenerates Tests/SpeedOptimTests/Fixtures/optimizers.json: a few steps of reference optimizers.

Run by hand, never in CI. torch cases need only torch; the DeepSpeed CPU cases (DeepSpeedCPUAdam,
DeepSpeedCPULion) JIT-build DeepSpeed's C++ ops with ninja and g++ on first use (minutes):
    python3 -m venv --system-site-packages /tmp/dsvenv
    DS_BUILD_OPS=0 /tmp/dsvenv/bin/pip install deepspeed ninja
    PATH=/tmp/dsvenv/bin:$PATH /tmp/dsvenv/bin/python scripts/gen_optim_fixtures.py
Without deepspeed installed only the torch cases are written.

Each case starts from the same fp32 parameters, applies `steps` updates with recorded fp32 gradients,
and records the parameters after every step and the state buffers after the last, all as fp32 values
(written as the exact doubles they convert to).
"""
import json
import os
import sys
import zlib

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch

N, STEPS = 12, 4
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SpeedOptimTests", "Fixtures", "optimizers.json")

# (name, implementation, constructor kwargs, our optimizer and its arguments, state keys to record)
TORCH_CASES = [
    ("torch_adamw", "torch.optim.AdamW", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
     ["exp_avg", "exp_avg_sq"]),
    ("torch_adam_l2", "torch.optim.Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
     ["exp_avg", "exp_avg_sq"]),
    ("torch_sgd_nesterov", "torch.optim.SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
     ["momentum_buffer"]),
    ("torch_sgd_dampening", "torch.optim.SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.001),
     ["momentum_buffer"]),
    ("torch_adagrad", "torch.optim.Adagrad",
     dict(lr=0.05, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.1, eps=1e-10), ["sum"]),
]
DEEPSPEED_CASES = [
    ("deepspeed_cpu_adam_adamw", "DeepSpeedCPUAdam",
     dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, adamw_mode=True), ["exp_avg", "exp_avg_sq"]),
    ("deepspeed_cpu_adam_l2", "DeepSpeedCPUAdam",
     dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, adamw_mode=False), ["exp_avg", "exp_avg_sq"]),
    ("deepspeed_cpu_adam_no_bias_correction", "DeepSpeedCPUAdam",
     dict(lr=1e-3, eps=1e-8, weight_decay=0.01, bias_correction=False, adamw_mode=True), ["exp_avg", "exp_avg_sq"]),
    ("deepspeed_cpu_lion", "DeepSpeedCPULion", dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.5), ["exp_avg"]),
]


def make(impl, params, kwargs):
    if impl.startswith("torch.optim."):
        cls = getattr(torch.optim, impl.split(".")[-1])
        extra = {"foreach": False}
        return cls(params, **kwargs, **extra)
    if impl == "DeepSpeedCPUAdam":
        from deepspeed.ops.adam import DeepSpeedCPUAdam
        return DeepSpeedCPUAdam(params, **kwargs)
    from deepspeed.ops.lion import DeepSpeedCPULion
    return DeepSpeedCPULion(params, **kwargs)


def floats(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def run(name, impl, kwargs, state_keys):
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    p0 = torch.randn(N, generator=gen, dtype=torch.float32)
    grads = [torch.randn(N, generator=gen, dtype=torch.float32) for _ in range(STEPS)]
    p = torch.nn.Parameter(p0.clone())
    opt = make(impl, [p], kwargs)
    params_after = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        params_after.append(floats(p))
    state = {k: floats(opt.state[p][k]) for k in state_keys}
    return {"name": name, "implementation": impl, "kwargs": {k: list(v) if isinstance(v, tuple) else v
                                                               for k, v in kwargs.items()},
            "param": floats(p0), "grads": [floats(g) for g in grads], "params_after": params_after, "state": state}


def main():
    cases = [run(*c) for c in TORCH_CASES]
    versions = {"torch": torch.__version__}
    try:
        import deepspeed
        versions["deepspeed"] = deepspeed.__version__
        cases += [run(*c) for c in DEEPSPEED_CASES]
    except ImportError:
        print("deepspeed not installed: writing the torch cases only", file=sys.stderr)
    with open(OUT, "w") as f:  # one case per line: small, and diffs stay readable
        f.write('{"versions": ' + json.dumps(versions) + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]}\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
