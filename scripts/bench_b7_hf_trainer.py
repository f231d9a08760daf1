#!/usr/bin/env python3
"""B7 anchor: Hugging Face Trainer + PyTorch fine-tuning all-MiniLM-L6-v2 with a classification head on the CPU
(sequence length 128, per-device batch 16, fp32, AdamW, 2 threads) — run by hand, never in CI.

Writes the rows it trains on (JSONL of input_ids/label, every row exactly 128 tokens) so SwiftSpeed can time the
same batches, and prints one JSON line: samples/s over the steps after warm-up. Usage:
  python3 scripts/bench_b7_hf_trainer.py --model /opt/swiftspeed/models/all-MiniLM-L6-v2 --rows /tmp/b7.jsonl
"""
import argparse
import json
import time

import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainerCallback,
                          TrainingArguments)


class Timer(TrainerCallback):
    def __init__(self, warmup):
        self.warmup, self.times = warmup, []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="/opt/swiftspeed/models/all-MiniLM-L6-v2")
    p.add_argument("--rows", default="/tmp/b7.jsonl")
    p.add_argument("--corpus", default="/usr/share/games/fortunes/fortunes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    text = open(a.corpus, encoding="utf-8", errors="replace").read().split("\n%\n")
    n = a.batch * (a.warmup + a.steps)
    enc = tok([text[i % len(text)] * 8 for i in range(n)], truncation=True, max_length=a.seq, padding="max_length")
    rows = [{"input_ids": enc["input_ids"][i], "label": i % 2} for i in range(n)]
    with open(a.rows, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=2)
    dataset = [{"input_ids": torch.tensor(r["input_ids"]), "attention_mask": torch.ones(a.seq, dtype=torch.long),
                "labels": torch.tensor(r["label"])} for r in rows]
    args = TrainingArguments(output_dir="/tmp/b7-hf", per_device_train_batch_size=a.batch, max_steps=a.warmup + a.steps,
                             learning_rate=3e-5, report_to="none", save_strategy="no", logging_strategy="no",
                             dataloader_num_workers=0, use_cpu=True, disable_tqdm=True, seed=42)
    timer = Timer(a.warmup)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[timer])
    trainer.train()
    measured = timer.times[a.warmup - 1:]
    seconds = measured[-1] - measured[0]
    steps = len(measured) - 1
    print(json.dumps({"bench": "b7-hf-trainer", "samples_per_s": round(steps * a.batch / seconds, 2),
                      "s_per_step": round(seconds / steps, 4), "steps": steps, "batch": a.batch, "seq": a.seq,
                      "threads": a.threads, "torch": torch.__version__,
                      "transformers": __import__("transformers").__version__}))


if __name__ == "__main__":
    main()
