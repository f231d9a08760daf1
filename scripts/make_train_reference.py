#!/usr/bin/env python3
# Reference losses for `swiftspeed train --model DIR --data ROWS.jsonl --no-shuffle --json`, made with the real
# DeepSpeed engine (CPU accelerator, gloo) training the real transformers model on the same rows and ds_config.
# Invariant: dropout is switched off in the configs written here (each config.json goes into the fixture), so
# both sides are deterministic; batches are rows in file order, wrapping around, padded right (mask 0, label -100).
#
# Not needed in CI. Locally (DeepSpeed JIT-builds a CPU op, so ninja must be on PATH):
#   /tmp/hfenv/bin/pip install torch transformers deepspeed ninja
#   PATH=/tmp/hfenv/bin:$PATH python scripts/make_train_reference.py
import json
import os
import shutil
import tempfile

os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
os.environ.setdefault("MASTER_PORT", "29533")
os.environ.setdefault("RANK", "0")
os.environ.setdefault("WORLD_SIZE", "1")
os.environ.setdefault("LOCAL_RANK", "0")

import deepspeed  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "Tests", "SpeedTransformersTests", "Fixtures")
OUT = os.path.join(MODELS, "train-reference.json")

DROPOUT_KEYS = ["resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout", "hidden_dropout_prob",
                "attention_probs_dropout_prob", "classifier_dropout", "attention_dropout"]

DS_CONFIG = {
    "train_micro_batch_size_per_gpu": 2,
    "gradient_accumulation_steps": 2,
    "gradient_clipping": 0.5,
    "optimizer": {"type": "AdamW", "params": {"lr": 0.01, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.01}},
    "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0.002, "warmup_max_lr": 0.01,
                                                 "warmup_num_steps": 3, "warmup_type": "linear"}},
    "zero_optimization": {"stage": 0},
}
STEPS = 5
ROWS = 7  # fewer than STEPS * 4 samples: the rows wrap around


def rows(n, label):
    """The same rows as PretrainedTrainTests.rows: token ids of lengths 3...9 in a fixed pattern."""
    out = []
    for i in range(n):
        ids = [(j * 7 + i * 13) % 97 for j in range(3 + i % 7)]
        out.append({"input_ids": ids, "label": i % 3} if label else {"input_ids": ids})
    return out


def batch(data, start, size, label):
    picked = [data[(start + k) % len(data)] for k in range(size)]
    t = max(len(r["input_ids"]) for r in picked)
    ids = torch.tensor([r["input_ids"] + [0] * (t - len(r["input_ids"])) for r in picked])
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (t - len(r["input_ids"])) for r in picked])
    if label:
        labels = torch.tensor([r["label"] for r in picked])
    else:
        labels = torch.tensor([r["input_ids"] + [-100] * (t - len(r["input_ids"])) for r in picked])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def run(name, classifier):
    source = os.path.join(MODELS, name)
    with open(os.path.join(source, "config.json")) as f:
        config = json.load(f)
    for key in DROPOUT_KEYS:
        if key in config:
            config[key] = 0.0
    folder = tempfile.mkdtemp()
    shutil.copy(os.path.join(source, "model.safetensors"), folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    auto = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
    model = auto.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=DS_CONFIG)
    engine.train()
    data = rows(ROWS, classifier)
    losses, lrs, sample = [], [], 0
    for _ in range(STEPS):
        micro = []
        for _ in range(DS_CONFIG["gradient_accumulation_steps"]):
            loss = engine(**batch(data, sample, DS_CONFIG["train_micro_batch_size_per_gpu"], classifier)).loss
            sample += DS_CONFIG["train_micro_batch_size_per_gpu"]
            micro.append(loss.item())
            engine.backward(loss)
            engine.step()
        losses.append(sum(micro) / len(micro))
        lrs.append(engine.get_lr()[0])  # after the update, as DeepSpeed's step log and HF's `learning_rate` report it
    shutil.rmtree(folder)
    return {"model": name, "config": config, "rows": data, "losses": losses, "lr": lrs}


def main():
    deepspeed.init_distributed(dist_backend="gloo")
    cases = [run("tiny-gpt2", False), run("tiny-bert-cls", True), run("tiny-llama", False)]
    fixture = {"ds_config": DS_CONFIG, "steps": STEPS, "deepspeed": deepspeed.__version__,
               "transformers": __import__("transformers").__version__, "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
    for c in cases:
        print(c["model"], c["losses"])


if __name__ == "__main__":
    main()
