#!/usr/bin/env python3
# Builds the SpeedTransformers test fixtures with Python transformers: tiny random models saved with
# save_pretrained, and the logits / losses / embeddings transformers computes for fixed inputs.
# Invariant: fixtures are fp32, eager attention, eval mode and seeded, so rerunning gives the same files; the
# all-MiniLM-L6-v2 expectations use token ids recorded here, so the Swift tests need no tokenizer.
#
# Not needed in CI. Locally:
#   python3 -m venv /tmp/hfenv && /tmp/hfenv/bin/pip install torch transformers safetensors
#   /tmp/hfenv/bin/python scripts/make_hf_fixtures.py [--minilm DIR]   # DIR: the all-MiniLM-L6-v2 folder
#   /tmp/hfenv/bin/python scripts/make_hf_fixtures.py --check DIR      # from_pretrained a folder Swift wrote
import argparse
import json
import os
import sys

import torch
from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, GPT2Config,
                          GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, RobertaConfig, RobertaForMaskedLM,
                          RobertaForSequenceClassification, DistilBertConfig, DistilBertForMaskedLM,
                          DistilBertForSequenceClassification, GPT2ForSequenceClassification,
                          LlamaForSequenceClassification, Qwen2ForSequenceClassification)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "SpeedTransformersTests", "Fixtures")


def save(model, name, inputs, outputs):
    path = os.path.join(FIXTURES, name)
    model.save_pretrained(path, safe_serialization=True)
    expected = {"inputs": {k: v.tolist() for k, v in inputs.items()},
                "outputs": {k: v.tolist() for k, v in outputs.items()}}
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"wrote {path}: {sorted(os.listdir(path))}")


def gpt2():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                        resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, attn_implementation="eager")
    model = GPT2LMHeadModel(config).eval()
    ids = torch.tensor([[5, 17, 42, 3, 99, 0, 64, 8], [1, 2, 3, 4, 5, 6, 7, 9]])
    labels = ids.clone()
    labels[1, 5:] = -100
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
        mask = torch.tensor([[1] * 8, [1] * 6 + [0] * 2])
        masked = model(input_ids=ids, attention_mask=mask)
    save(model, "tiny-gpt2", {"input_ids": ids, "labels": labels, "attention_mask": mask},
         {"logits": out.logits, "loss": out.loss, "masked_logits": masked.logits})


def gpt2_variant():
    """GPT-2's rarer config.json switches: ReLU, n_inner, scale_attn_by_inverse_layer_idx, a wide epsilon; weights
    perturbed so the per-layer scale moves the logits visibly."""
    torch.manual_seed(9)
    config = GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=3, n_head=4, n_inner=48,
                        activation_function="relu", scale_attn_by_inverse_layer_idx=True, layer_norm_epsilon=1e-3,
                        attn_implementation="eager")
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ids = torch.tensor([[5, 17, 42, 3, 99, 0, 64, 8], [1, 2, 3, 4, 5, 6, 7, 9]])
    mask = torch.tensor([[1] * 8, [1] * 6 + [0] * 2])
    labels = ids.clone()
    labels[1, 6:] = -100
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    save(model, "tiny-gpt2-variant", {"input_ids": ids, "labels": labels, "attention_mask": mask},
         {"logits": out.logits, "loss": out.loss})


def activations():
    """transformers' ACT2FN on fixed points, for every activation name config.json may give."""
    from transformers.activations import ACT2FN
    x = torch.linspace(-4, 4, 33)
    names = ["gelu", "gelu_python", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate", "quick_gelu",
             "relu", "silu", "swish", "sigmoid", "tanh", "linear"]
    with open(os.path.join(FIXTURES, "activations.json"), "w") as f:
        json.dump({"x": x.tolist(), "y": {n: ACT2FN[n](x).tolist() for n in names}}, f)
    print("wrote activations.json")


def bert_config(**extra):
    return BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
                      attn_implementation="eager", **extra)


def bert_inputs():
    ids = torch.tensor([[2, 15, 33, 71, 9, 3, 0, 0], [2, 44, 8, 90, 61, 27, 12, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8])
    types = torch.tensor([[0, 0, 0, 1, 1, 1, 0, 0], [0] * 4 + [1] * 4])
    return ids, mask, types


def bert_classifier():
    torch.manual_seed(1)
    model = BertForSequenceClassification(bert_config(num_labels=3)).eval()
    ids, mask, types = bert_inputs()
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    save(model, "tiny-bert-cls", {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                                  "labels": labels}, {"logits": out.logits, "loss": out.loss})


def bert_regression():
    torch.manual_seed(3)
    model = BertForSequenceClassification(bert_config(num_labels=1)).eval()
    ids, mask, types = bert_inputs()
    labels = torch.tensor([0.5, -1.25])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    save(model, "tiny-bert-reg", {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                                  "labels": labels}, {"logits": out.logits, "loss": out.loss})


def bert_mlm():
    torch.manual_seed(2)
    model = BertForMaskedLM(bert_config()).eval()
    ids, mask, types = bert_inputs()
    labels = torch.full_like(ids, -100)
    labels[0, 2] = 33
    labels[1, 4] = 61
    labels[1, 6] = 12
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    save(model, "tiny-bert-mlm", {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                                  "labels": labels}, {"logits": out.logits, "loss": out.loss})


def roberta():
    """RoBERTa: positions from pad_token_id + 1 over the non-padding tokens (a left- and a right-padded row, pad 1),
    the <s> classification head (3 labels) and the MLM head; random weights scaled so positions matter."""
    config = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=16, type_vocab_size=1, layer_norm_eps=1e-5, attn_implementation="eager")
    ids = torch.tensor([[0, 15, 33, 71, 9, 2, 1, 1], [1, 1, 0, 44, 8, 90, 61, 2]])
    mask = (ids != 1).long()
    for name, seed, make in [("tiny-roberta-cls", 21, lambda: RobertaForSequenceClassification(RobertaConfig(num_labels=3, **config))),
                             ("tiny-roberta-mlm", 22, lambda: RobertaForMaskedLM(RobertaConfig(**config)))]:
        torch.manual_seed(seed)
        model = make().eval()
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "position_embeddings" in pname:
                    p.mul_(20.0)   # the positions' effect well above 1e-4
        if name == "tiny-roberta-cls":
            labels = torch.tensor([2, 0])
        else:
            labels = torch.full_like(ids, -100)
            labels[0, 2] = 33
            labels[1, 4] = 8
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
        save(model, name, {"input_ids": ids, "attention_mask": mask, "labels": labels},
             {"logits": out.logits, "loss": out.loss})


def distilbert():
    """DistilBERT: a classifier (3 labels, pre_classifier + ReLU) and the MLM head (GELU, tied projector), padded."""
    config = dict(vocab_size=100, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=16,
                  attn_implementation="eager")
    ids = torch.tensor([[101, 15, 33, 71, 9, 102, 0, 0], [101, 44, 8, 90, 61, 27, 12, 102]]) % 100
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8])
    for name, seed, make in [("tiny-distilbert-cls", 31, lambda: DistilBertForSequenceClassification(DistilBertConfig(num_labels=3, **config))),
                             ("tiny-distilbert-mlm", 32, lambda: DistilBertForMaskedLM(DistilBertConfig(activation="gelu", **config)))]:
        torch.manual_seed(seed)
        model = make().eval()
        if name == "tiny-distilbert-cls":
            labels = torch.tensor([1, 2])
        else:
            labels = torch.full_like(ids, -100)
            labels[0, 2] = 33
            labels[1, 5] = 27
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
        save(model, name, {"input_ids": ids, "attention_mask": mask, "labels": labels},
             {"logits": out.logits, "loss": out.loss})


def decoder_classifiers():
    """Sequence classification on decoder LMs (reward models): the rightmost non-padding token's state through `score`;
    a right- and a left-padded row (pad 0). GPT-2 with 3 labels, Llama with 1 (regression, float labels), Qwen2 with 2."""
    ids = torch.tensor([[5, 17, 42, 3, 99, 0, 0, 0], [0, 0, 7, 64, 8, 21, 33, 9]])
    mask = (ids != 0).long()
    small = dict(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=64, attn_implementation="eager", pad_token_id=0)
    cases = [
        ("tiny-gpt2-cls", 41, lambda: GPT2ForSequenceClassification(GPT2Config(
            vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=4, num_labels=3, pad_token_id=0,
            attn_implementation="eager")), torch.tensor([2, 0])),
        ("tiny-llama-reward", 42, lambda: LlamaForSequenceClassification(LlamaConfig(num_labels=1, **small)),
         torch.tensor([0.75, -1.5])),
        ("tiny-qwen2-cls", 43, lambda: Qwen2ForSequenceClassification(Qwen2Config(num_labels=2, **small)),
         torch.tensor([1, 0])),
    ]
    for name, seed, make, labels in cases:
        torch.manual_seed(seed)
        model = make().eval()
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("bias") or pname.endswith("norm.weight"):
                    p.add_(0.1 * torch.randn_like(p))
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
        save(model, name, {"input_ids": ids, "attention_mask": mask, "labels": labels},
             {"logits": out.logits, "loss": out.loss})


def llama():
    torch.manual_seed(4)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rope_theta=10000.0,
                         rms_norm_eps=1e-6, tie_word_embeddings=False, attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norm weights, so a missed RMSNorm scale shows
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
    ids = torch.tensor([[5, 17, 42, 3, 99, 0, 64, 8], [1, 2, 3, 4, 5, 6, 7, 9]])
    labels = ids.clone()
    labels[1, 5:] = -100
    mask = torch.tensor([[1] * 8, [1] * 6 + [0] * 2])
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
        masked = model(input_ids=ids, attention_mask=mask, labels=labels)
    save(model, "tiny-llama", {"input_ids": ids, "labels": labels, "attention_mask": mask},
         {"logits": out.logits, "loss": out.loss, "masked_logits": masked.logits, "masked_loss": masked.loss})


def llama_variants(only=None):
    """llama3 rope scaling (all three frequency bands), tied embeddings and all attention biases, explicit
    position_ids; linear rope scaling; Qwen2 (q/k/v biases, tied); Mistral (head_dim ≠ hidden / heads); a gated MLP
    whose hidden_act is not SiLU, with MLP biases."""
    ids = torch.tensor([[5, 17, 42, 3, 99, 0, 64, 8], [1, 2, 3, 4, 5, 6, 7, 9]])
    labels = ids.clone()
    labels[0, :2] = -100
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    positions = torch.arange(40, 48).unsqueeze(0).expand(2, 8)
    small = dict(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=1, max_position_embeddings=64, attn_implementation="eager")
    variants = [
        ("tiny-llama-llama3", 5, LlamaForCausalLM,
         LlamaConfig(rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0,
                                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 64},
                     tie_word_embeddings=True, attention_bias=True, **dict(small, max_position_embeddings=128))),
        ("tiny-llama-linear", 6, LlamaForCausalLM,
         LlamaConfig(rope_parameters={"rope_type": "linear", "rope_theta": 500.0, "factor": 2.5}, **small)),
        ("tiny-qwen2", 7, Qwen2ForCausalLM, Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                                                        tie_word_embeddings=True, **small)),
        ("tiny-mistral", 8, MistralForCausalLM, MistralConfig(sliding_window=16, head_dim=16, **small)),
        ("tiny-llama-gelu", 10, LlamaForCausalLM,
         LlamaConfig(hidden_act="gelu_pytorch_tanh", mlp_bias=True, **dict(small, num_key_value_heads=2))),
        # The rope types whose frequencies depend on the sequence: positions 40-47 run past max_position_embeddings
        # (dynamic) / original_max_position_embeddings (longrope's long factors); "short_logits" at positions 0-7.
        ("tiny-llama-dynamic", 11, LlamaForCausalLM,
         LlamaConfig(rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 3.0},
                     **dict(small, max_position_embeddings=32))),
        ("tiny-llama-yarn", 12, LlamaForCausalLM,
         LlamaConfig(rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                      "original_max_position_embeddings": 16}, **small)),
        ("tiny-qwen2-yarn", 13, Qwen2ForCausalLM,
         Qwen2Config(rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 8.0, "attention_factor": 1.25,
                                      "beta_fast": 8.0, "beta_slow": 2.0, "truncate": False,
                                      "original_max_position_embeddings": 8}, **small)),
        ("tiny-llama-longrope", 14, LlamaForCausalLM,
         LlamaConfig(rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                      "short_factor": [1.0, 1.1, 1.3, 2.0], "long_factor": [1.5, 3.0, 6.0, 11.0],
                                      "original_max_position_embeddings": 16}, **small)),
    ]
    for name, seed, cls, config in variants:
        if only and name != only:
            continue
        torch.manual_seed(seed)
        model = cls(config).eval()
        with torch.no_grad():  # non-zero biases and norm weights, so a dropped one shows
            for pname, p in model.named_parameters():
                if pname.endswith("bias") or pname.endswith("norm.weight"):
                    p.add_(0.1 * torch.randn_like(p))
                elif name == "tiny-llama-gelu":  # pre-activations large enough that GELU and SiLU differ plainly
                    p.add_(0.2 * torch.randn_like(p))
                elif "rope" in name or "dynamic" in name or "yarn" in name:  # logits that depend on the rotation
                    p.add_(0.3 * torch.randn_like(p))
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, labels=labels)
            outputs = {"logits": out.logits, "loss": out.loss}
            if name in ("tiny-llama-dynamic", "tiny-llama-longrope"):
                fresh = cls(config).eval()  # a new model: HF's dynamic rope keeps state from the longer forward
                fresh.load_state_dict(model.state_dict())
                outputs["short_logits"] = fresh(input_ids=ids, attention_mask=mask).logits
        save(model, name, {"input_ids": ids, "labels": labels, "attention_mask": mask, "position_ids": positions},
             outputs)


def mistral_window():
    """Mistral with sliding_window (3) shorter than the sequence (10), eager attention so the window is honoured,
    grouped K/V heads and a right-padded row."""
    torch.manual_seed(9)
    config = MistralConfig(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                           sliding_window=3, attn_implementation="eager")
    model = MistralForCausalLM(config).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
    ids = torch.tensor([[5, 17, 42, 3, 99, 0, 64, 8, 23, 71], [1, 2, 3, 4, 5, 6, 7, 9, 11, 13]])
    mask = torch.tensor([[1] * 10, [1] * 7 + [0] * 3])
    labels = ids.clone()
    labels[1, 7:] = -100
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        full = model(input_ids=ids[:1])
        # Query (1, 9)'s window holds only padding: eager spreads it over every key, sdpa gives it zero weights.
        model.set_attn_implementation("sdpa")
        sdpa = model(input_ids=ids, attention_mask=mask)
        model.set_attn_implementation("eager")
    save(model, "tiny-mistral-window", {"input_ids": ids, "attention_mask": mask, "labels": labels},
         {"logits": out.logits, "loss": out.loss, "unpadded_logits": full.logits, "sdpa_logits": sdpa.logits})


def qwen2_gqa():
    """Qwen2 for tensor parallelism: 8 query heads over 4 key/value heads (splits over 2 and 4 ranks), q/k/v biases,
    tied embeddings and an odd vocabulary (101: uneven vocab-parallel shards), a right-padded row."""
    torch.manual_seed(11)
    config = Qwen2Config(vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=64,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=True,
                         attn_implementation="eager")
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # non-zero biases and norm weights, so a dropped or mis-split one shows
        for pname, p in model.named_parameters():
            if pname.endswith("bias") or pname.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
    ids = torch.tensor([[5, 17, 42, 3, 100, 0, 64, 8], [1, 2, 3, 4, 5, 6, 7, 9]])
    labels = ids.clone()
    labels[1, 6:] = -100
    mask = torch.tensor([[1] * 8, [1] * 6 + [0] * 2])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    save(model, "tiny-qwen2-gqa", {"input_ids": ids, "labels": labels, "attention_mask": mask},
         {"logits": out.logits, "loss": out.loss})


def bert_padded():
    """BertModel on a batch padded to three lengths (8, 5, 2): every position's hidden state, padded ones included,
    and the pooler output."""
    torch.manual_seed(10)
    model = BertModel(bert_config()).eval()
    ids = torch.tensor([[2, 15, 33, 71, 9, 40, 12, 3], [2, 44, 8, 90, 3, 0, 0, 0], [2, 3, 0, 0, 0, 0, 0, 0]])
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 2 + [0] * 6])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    save(model, "tiny-bert-padded", {"input_ids": ids, "attention_mask": mask},
         {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output})


def minilm(folder):
    """Mean-pooled (sentence-transformers style) embeddings of all-MiniLM-L6-v2 for three sentences."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    sentences = ["SwiftSpeed trains transformers in Swift.", "The cat sat on the mat.", "Hello!"]
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    path = os.path.join(FIXTURES, "all-MiniLM-L6-v2-expected.json")
    with open(path, "w") as f:
        json.dump({"sentences": sentences, "input_ids": batch["input_ids"].tolist(),
                   "attention_mask": batch["attention_mask"].tolist(),
                   "token_type_ids": batch["token_type_ids"].tolist(),
                   "mean_pooled": pooled.tolist(),
                   "last_hidden_state_first_token": hidden[:, 0, :].tolist()}, f)
    print(f"wrote {path}")


def check(folder):
    """Loads a folder SwiftSpeed's savePretrained wrote and prints transformers' loading info."""
    with open(os.path.join(folder, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    import transformers
    cls = getattr(transformers, arch)
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    print(arch, {k: v for k, v in info.items()})
    bad = info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--minilm", help="all-MiniLM-L6-v2 folder (config.json, model.safetensors, tokenizer)")
    parser.add_argument("--check", help="a folder written by savePretrained to load with transformers")
    parser.add_argument("--only", help="build just this fixture (e.g. llama), leaving the others untouched")
    parser.add_argument("--variant", help="with --only llama_variants: just this variant (e.g. tiny-llama-gelu)")
    args = parser.parse_args()
    if args.check:
        check(args.check)
    elif args.only == "llama_variants":
        llama_variants(args.variant)
    elif args.only:
        globals()[args.only]()
    else:
        gpt2()
        gpt2_variant()
        activations()
        bert_classifier()
        bert_regression()
        bert_mlm()
        roberta()
        distilbert()
        decoder_classifiers()
        llama()
        llama_variants()
        mistral_window()
        bert_padded()
        qwen2_gqa()
        if args.minilm:
            minilm(args.minilm)
