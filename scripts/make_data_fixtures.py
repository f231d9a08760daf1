#!/usr/bin/env python3
"""Writes Tests/SpeedDataTests/Fixtures: data files and what Hugging Face `datasets` reads from them, `transformers`'
collator outputs, and scikit-learn / scipy metric values. Reference only: CI never runs it.

    /tmp/hfenv/bin/pip install datasets scikit-learn scipy     # next to torch + transformers
    HF_DATASETS_OFFLINE=1 /tmp/hfenv/bin/python scripts/make_data_fixtures.py

The MLM collator's random draws are recorded: torch.bernoulli / torch.randint are replaced by functions that return
recorded uniforms and words, so transformers' own masking code runs on draws the Swift test can replay.
"""
import json, math, os, shutil, tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "SpeedDataTests", "Fixtures")
LOAD = os.path.join(OUT, "load")
TOKENIZERS = os.path.join(ROOT, "Tests", "SpeedTokenizersTests", "Fixtures")


def write(path, text, binary=False):
    with open(path, "wb") as f:
        f.write(text if binary else text.encode("utf-8"))


def feature_type(feature):
    import datasets
    if isinstance(feature, datasets.Value):
        return {"int64": "int", "float64": "double", "string": "string", "large_string": "string", "bool": "bool",
                "null": "null"}[feature.dtype]
    if isinstance(feature, (datasets.List, datasets.LargeList)) or type(feature).__name__ in ("List", "Sequence"):
        inner = feature_type(feature.feature)
        return {"int": "ints", "double": "doubles", "string": "strings"}[inner]
    raise ValueError(f"no Swift type for {feature}")


def load_fixtures():
    import datasets
    os.makedirs(LOAD, exist_ok=True)
    write(os.path.join(LOAD, "rows.jsonl"),
          '{"text": "a gripping \\"film\\"", "label": 1, "score": 0.5, "ids": [101, 7, 102]}\n'
          '\n'
          '{"text": "caf\\u00e9 \\ud83e\\udd17 na\\u00efve", "label": 0, "score": 2, "tags": ["x", "y"]}\n'
          '{"label": 1, "ids": [5], "flag": true, "text": null}\n'
          '   {"text": "tabs\\tand\\nnewlines", "label": 0, "score": -1.25e-3, "ids": [], "flag": false}\n'
          '{"text": "unicode ünïcödé 日本", "label": 1, "score": 3, "weights": [1, 2.5]}\n')
    write(os.path.join(LOAD, "rows-array.json"),
          '[\n  {"text": "first", "label": 1},\n  {\n    "text": "second",\n    "label": 0,\n    "extra": 2.5\n  },\n'
          '  {"text": "third", "label": 1}\n]\n')
    write(os.path.join(LOAD, "typed.csv"),
          'id,rating,text,flag,note,mixed\r\n'
          '1,4,"Good, solid ""fun""",True,NA,7\r\n'
          '2,3.5,plain,false,,x\r\n'
          '\r\n'
          '3,5,"two\nlines",TRUE,null,8\r\n'
          '4,1e1,caf\u00e9 \u00fcber,False,kept,9\r\n')
    write(os.path.join(LOAD, "lines.txt"), "first line\r\n\nthird after a blank\ncaf\u00e9 \u2014 unicode\nlast, no newline")
    cases = [("json", "rows.jsonl"), ("json", "rows-array.json"), ("csv", "typed.csv"), ("text", "lines.txt")]
    expected = {}
    cache = tempfile.mkdtemp()
    for builder, name in cases:
        d = datasets.load_dataset(builder, data_files=os.path.join(LOAD, name), split="train", cache_dir=cache)
        expected[name] = {
            "format": builder,
            "columns": list(d.column_names),
            "types": [feature_type(d.features[c]) for c in d.column_names],
            "rows": d.to_list(),
        }
    # class_encode_column: strings sorted by code point; ints stringified first ("10" < "2"); nulls stay null.
    enc = {}
    for name, values in [("strings", ["pos", "neg", "neutral", "Neg", None, "\u00e4", "neg", "10", "2"]),
                         ("ints", [10, 2, 1, 2, 10])]:
        d = datasets.Dataset.from_dict({"label": values}).class_encode_column("label")
        enc[name] = {"values": values, "names": d.features["label"].names, "ids": list(d["label"])}
    expected["class_encode"] = enc
    # train_test_split sizes (or the error) for a range of sizes.
    splits = []
    for n, test, train in [(10, 0.25, None), (10, 0.2, None), (7, 0.3, None), (10, 3, None), (10, None, 0.6),
                           (10, None, 4), (10, 0.2, 0.5), (10, 2, 5), (3, 0.1, None), (1000, 0.155, None),
                           (10, 0.0, None), (10, 10, None), (10, 1.0, None), (10, 0.7, 0.5), (2, 0.9, None)]:
        d = datasets.Dataset.from_dict({"i": list(range(n))})
        kind = lambda x: None if x is None else ["fraction" if isinstance(x, float) else "count", x]
        try:
            s = d.train_test_split(test_size=test, train_size=train, seed=0)
            splits.append({"n": n, "test": kind(test), "train": kind(train), "nTrain": len(s["train"]), "nTest": len(s["test"])})
        except ValueError as e:
            splits.append({"n": n, "test": kind(test), "train": kind(train), "error": str(e)})
    expected["train_test_split"] = splits
    shutil.rmtree(cache, ignore_errors=True)
    return expected


def collator_fixtures():
    import torch
    from transformers import (DataCollatorForLanguageModeling, DataCollatorWithPadding, PreTrainedTokenizerFast)

    bert = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TOKENIZERS, "bert", "tokenizer.json"),
                                   unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                                   mask_token="[MASK]")
    texts = ["a gripping film", "dull", "the plot holds together until the last ten minutes", "fine."]
    enc = [dict(bert(t)) for t in texts]
    out = {"bert": {"padTokenId": bert.pad_token_id, "maskTokenId": bert.mask_token_id, "vocabSize": len(bert),
                    "specialIds": sorted(set(bert.all_special_ids))}}

    # Ordered [key, value] pairs (a JSON object's key order would be lost by Foundation's parser).
    def tensors(batch):
        return [[k, {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""), "values": v.flatten().tolist()}]
                for k, v in batch.items()]

    def rows(features):
        return [[[k, v] for k, v in f.items()] for f in features]

    cases = []
    feats = [dict(e, label=l) for e, l in zip(enc, [1, 0, 1, 0])]
    for multiple in [None, 8]:
        c = DataCollatorWithPadding(bert, pad_to_multiple_of=multiple)
        cases.append({"name": f"padding-multiple-{multiple}", "features": rows(feats), "padToMultipleOf": multiple,
                      "output": tensors(c(feats))})
    pairs = [{"input_ids": [101, 7, 102, 8, 9, 102], "token_type_ids": [0, 0, 0, 1, 1, 1], "label": 2},
             {"input_ids": [101, 5, 102, 6, 102], "token_type_ids": [0, 0, 0, 1, 1], "label": 0,
              "attention_mask": [1, 1, 1, 1, 1]},
             {"input_ids": [101, 102, 4, 102], "token_type_ids": [0, 0, 1, 1], "label": 1}]
    pairs[0]["attention_mask"] = [1] * 6
    pairs[2]["attention_mask"] = [1] * 4
    cases.append({"name": "padding-pairs", "features": rows(pairs), "padToMultipleOf": 4,
                  "output": tensors(DataCollatorWithPadding(bert, pad_to_multiple_of=4)(pairs))})
    reg = [dict(input_ids=e["input_ids"], labels=v) for e, v in zip(enc, [0.5, -1.25, 3.0, 0.0])]
    cases.append({"name": "padding-regression", "features": rows(reg), "padToMultipleOf": None,
                  "output": tensors(DataCollatorWithPadding(bert)(reg))})
    left = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TOKENIZERS, "bert", "tokenizer.json"),
                                   pad_token="[PAD]", padding_side="left")
    cases.append({"name": "padding-left", "features": rows(feats[:2]), "padToMultipleOf": None, "paddingSide": "left",
                  "output": tensors(DataCollatorWithPadding(left)(feats[:2]))})
    out["padding"] = cases

    # Causal LM: GPT-2-style ids padded with id 0, and a real token equal to the pad id (HF masks that too).
    clm_feats = [{"input_ids": [5, 6, 7, 8, 9]}, {"input_ids": [0, 3]}, {"input_ids": [4, 4, 4]}]
    clm_tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TOKENIZERS, "bert", "tokenizer.json"),
                                      pad_token="[PAD]")
    assert clm_tok.pad_token_id == 0
    c = DataCollatorForLanguageModeling(clm_tok, mlm=False)
    out["clm"] = [{"features": rows(clm_feats), "padToMultipleOf": None, "output": tensors(c(clm_feats))},
                  {"features": rows(clm_feats), "padToMultipleOf": 4,
                   "output": tensors(DataCollatorForLanguageModeling(clm_tok, mlm=False, pad_to_multiple_of=4)(clm_feats))}]

    # MLM: replay recorded draws through transformers' torch_mask_tokens.
    rng = np.random.default_rng(1)
    mlm_cases = []
    long_texts = texts + ["an unexpectedly moving story about a family and its long history", "[UNK] token here"]
    mlm_feats = [{"input_ids": bert(t)["input_ids"]} for t in long_texts]
    B, T = len(mlm_feats), max(len(f["input_ids"]) for f in mlm_feats)
    for probability in [0.15, 0.5]:
        u = [rng.random((B, T), dtype=np.float32) for _ in range(3)]
        words = rng.integers(0, len(bert), (B, T))
        draws = iter(u)
        real_bernoulli, real_randint = torch.bernoulli, torch.randint
        torch.bernoulli = lambda p, generator=None: (torch.from_numpy(next(draws)) < p).float()
        torch.randint = lambda high, size, dtype=None, generator=None: torch.from_numpy(words).to(dtype)
        try:
            c = DataCollatorForLanguageModeling(bert, mlm=True, mlm_probability=probability)
            batch = c(mlm_feats)
        finally:
            torch.bernoulli, torch.randint = real_bernoulli, real_randint
        mlm_cases.append({"features": rows(mlm_feats), "mlmProbability": probability,
                          "uniforms": [x.flatten().tolist() for x in u], "words": words.flatten().tolist(),
                          "output": tensors(batch)})
    out["mlm"] = mlm_cases
    return out


def metric_fixtures():
    from scipy import stats
    from sklearn import metrics as m

    cases = []
    r = np.random.default_rng(5)
    binary = [
        ([0, 1, 1, 0, 1, 1, 0, 0, 1, 0], [0, 1, 0, 0, 1, 1, 1, 0, 1, 1]),
        ([1, 1, 1, 1], [0, 0, 0, 0]),          # never predicts the positive class: precision 0 (zero_division)
        ([0, 0, 0, 0], [0, 0, 0, 0]),          # no positives at all: precision, recall, F1 and MCC 0
        ([1, 0, 1, 0, 1], [1, 1, 1, 1, 1]),
    ]
    binary.append((r.integers(0, 2, 1000).tolist(), r.integers(0, 2, 1000).tolist()))
    for y, p in binary:
        cases.append({"kind": "binary", "labels": y, "predictions": p,
                      "accuracy": m.accuracy_score(y, p),
                      "precision": m.precision_score(y, p), "recall": m.recall_score(y, p), "f1": m.f1_score(y, p),
                      "mcc": m.matthews_corrcoef(y, p)})
    multi = [
        ([0, 1, 2, 2, 1, 0, 2, 1, 1, 0, 2, 2], [0, 2, 2, 2, 1, 0, 1, 1, 0, 0, 2, 1]),
        ([0, 1, 2, 3, 3, 2, 1, 0], [0, 1, 1, 3, 3, 1, 1, 0]),   # class 2 never predicted
        ([0, 0, 1, 1, 2], [0, 3, 1, 1, 2]),                     # a predicted class (3) absent from the labels
    ]
    multi.append((r.integers(0, 4, 300).tolist(), r.integers(0, 4, 300).tolist()))   # long: numpy's pairwise sums
    for y, p in multi:
        case = {"kind": "multiclass", "labels": y, "predictions": p, "accuracy": m.accuracy_score(y, p),
                "mcc": m.matthews_corrcoef(y, p)}
        for avg in ["macro", "micro", "weighted"]:
            case[f"precision_{avg}"] = m.precision_score(y, p, average=avg)
            case[f"recall_{avg}"] = m.recall_score(y, p, average=avg)
            case[f"f1_{avg}"] = m.f1_score(y, p, average=avg)
        cases.append(case)
    reg = [
        ([1.0, 2.0, 3.0, 4.0, 5.0], [1.1, 1.9, 3.2, 3.8, 5.5]),
        ([3.0, 1.0, 2.0, 2.0, 5.0, 2.0], [1.0, 2.0, 2.0, 3.0, 3.0, 0.5]),   # ties in both
        ([0.5, -1.25, 3.0, 0.0, 2.0, 2.0, 7.5], [0.25, -1.0, 2.5, 0.5, 2.0, 1.0, 6.0]),
    ]
    reg.append((r.normal(size=300).tolist(), r.normal(size=300).tolist()))
    reg.append(([float(v) for v in r.integers(0, 5, 200)], [float(v) for v in r.integers(0, 5, 200)]))  # many ties
    for y, p in reg:
        cases.append({"kind": "regression", "labels": y, "predictions": p,
                      "mse": m.mean_squared_error(y, p), "mae": m.mean_absolute_error(y, p),
                      "pearson": float(stats.pearsonr(p, y)[0]), "spearman": float(stats.spearmanr(p, y)[0])})
    # Logits for EvalPrediction: argmax (first maximum on ties, as numpy's).
    logits = [[0.1, 2.0, -1.0], [3.0, 3.0, 0.0], [-0.5, -0.2, -0.1], [1.0, 0.0, 0.5]]
    labels = [1, 0, 1, 0]
    preds = list(np.argmax(np.array(logits), axis=1))
    cases.append({"kind": "logits", "logits": logits, "labels": labels, "argmax": [int(x) for x in preds],
                  "accuracy": m.accuracy_score(labels, preds),
                  "f1_macro": m.f1_score(labels, preds, average="macro")})
    return cases


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    fixtures = {"load": load_fixtures(), "collators": collator_fixtures(), "metrics": metric_fixtures()}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(fixtures, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
