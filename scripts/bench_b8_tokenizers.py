#!/usr/bin/env python3
"""B8 anchor: Hugging Face tokenizers' encode_batch over a corpus's non-empty lines, as `swiftspeed bench tokenize`.

    RAYON_NUM_THREADS=2 python3 scripts/bench_b8_tokenizers.py --tokenizer Tests/SpeedTokenizersTests/Fixtures/bert \
        --corpus fortunes.txt

--tokenizer is a tokenizer.json, a folder with one, or a folder with GPT-2's vocab.json + merges.txt (built as
scripts/make_tokenizer_fixtures.py builds GPT-2). Prints one JSON line like the Swift command's --json.
"""
import argparse, json, os, sys, time

from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_fixtures import gpt2  # noqa: E402


def load(path):
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "tokenizer.json")):
        return gpt2(os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt"))
    t = Tokenizer.from_file(os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path)
    t.no_padding(); t.no_truncation()
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    tok = load(a.tokenizer)
    lines = [l for l in open(a.corpus, encoding="utf-8").read().split("\n") if l]
    tok.encode_batch(lines)
    best, tokens = float("inf"), 0
    for _ in range(max(1, a.repeats)):
        t0 = time.perf_counter()
        out = tok.encode_batch(lines)
        best = min(best, time.perf_counter() - t0)
        tokens = sum(len(e.ids) for e in out)
    print(json.dumps({"case": "B8-hf", "tokenizer": a.tokenizer, "lines": len(lines), "tokens": tokens,
                      "threads": os.environ.get("RAYON_NUM_THREADS"), "seconds": best, "tokens_per_s": tokens / best}))


if __name__ == "__main__":
    main()
