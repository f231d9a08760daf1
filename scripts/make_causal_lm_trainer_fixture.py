#!/usr/bin/env python3
"""Regenerates the causal-LM Trainer fixture from the real transformers' Trainer (and torch), by hand, never in CI:

    /tmp/hfenv/bin/python scripts/make_causal_lm_trainer_fixture.py

Writes Tests/SpeedTrainerTests/Fixtures/causal-lm/:
- model/config.json, model/model.safetensors: a tiny GPT-2 (vocabulary 402 = the bpe-small tokenizer's, 2 layers,
  width 32, dropout 0 so both sides compute the same function), freshly initialised with torch seed 0;
- trainer.json: the text rows, their input_ids from `PreTrainedTokenizerFast` over
  Tests/SpeedTokenizersTests/Fixtures/bpe-small/tokenizer.json (RobertaProcessing adds <s> … </s>), the
  TrainingArguments used, and per optimizer step the exact training loss (`compute_loss`, before the Trainer rounds
  it to 4 digits for its log), the learning rate after the step and transformers' `num_items_in_batch`.

The Trainer runs on the CPU with `DataCollatorForLanguageModeling(mlm=False)` (labels = input_ids, padding -> -100),
AdamW with transformers' decay groups, a linear schedule with warmup and clipping at 1.0. Every step's batch is the
whole training set (per_device_train_batch_size = number of rows), so the order the sampler draws is irrelevant and the
Swift Trainer must reproduce the same losses step for step.
"""
import json, os, sys

import torch
from transformers import (DataCollatorForLanguageModeling, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast,
                          Trainer, TrainerCallback, TrainingArguments)
import transformers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests/SpeedTrainerTests/Fixtures/causal-lm")
TOKENIZER = os.path.join(ROOT, "Tests/SpeedTokenizersTests/Fixtures/bpe-small/tokenizer.json")

TEXTS = [
    "hello world, the quick brown fox",
    "jumps over the lazy dog",
    "the cat sat on the mat and looked at the dog",
    "a word",
    "hello again, world",
    "the fox and the dog are friends now",
    "quick quick quick",
    "lazy afternoons are the best",
]

ARGS = dict(per_device_train_batch_size=len(TEXTS), max_steps=6, learning_rate=1e-2, warmup_steps=2,
            weight_decay=0.01, logging_steps=1, seed=7, lr_scheduler_type="linear", max_grad_norm=1.0)


def main():
    tok = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    config = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    os.makedirs(os.path.join(OUT, "model"), exist_ok=True)
    model.save_pretrained(os.path.join(OUT, "model"))

    ids = [tok(t)["input_ids"] for t in TEXTS]
    dataset = [{"input_ids": i} for i in ids]
    collator = DataCollatorForLanguageModeling(tok, mlm=False)

    steps = []

    class Recording(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            value = loss[0] if return_outputs else loss
            steps.append({"loss": value.item(),
                          "num_items_in_batch": None if num_items_in_batch is None else int(num_items_in_batch)})
            return loss

    class LR(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "learning_rate" in logs:
                steps[state.global_step - 1]["learning_rate"] = logs["learning_rate"]
                steps[state.global_step - 1]["logged_loss"] = logs["loss"]
                steps[state.global_step - 1]["grad_norm"] = float(logs["grad_norm"])

    args = TrainingArguments(output_dir="/tmp/causal-lm-fixture", report_to="none", use_cpu=True, save_strategy="no",
                             **ARGS)
    trainer = Recording(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[LR()])
    trainer.train()
    assert len(steps) == ARGS["max_steps"], steps

    with open(os.path.join(OUT, "trainer.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "texts": TEXTS,
                   "input_ids": ids, "pad_token_id": tok.pad_token_id, "args": ARGS, "steps": steps}, f, indent=1)
    print(json.dumps(steps, indent=1))


if __name__ == "__main__":
    main()
