#!/usr/bin/env bash
# Everything issue #5/#6 need from a lent GPU machine, in one call: report, the self-test, gpt2-small training on the
# GPU at every ZeRO stage (+ offload) against the CPU run of the same seed, the B3 benchmark with its per-kernel
# profile, and tensor-core vs SIMT attention (speed, and 50 training steps). Outputs go to $OUT.
# Invariant: needs only .gpu/bundle.tar.xz (built here by `scripts/gpu-session.sh --build`), no Swift there.
#
#   scripts/gpu-session.sh --build          # on the build machine: .gpu/swiftspeed (static stdlib)
#   bash scripts/gpu-session.sh [steps]     # on the GPU machine (the device tool's `run`, carry [".gpu"])
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--build" ]]; then
    # The device tool carries at most 64 MiB: ship a stripped binary plus the BLAS it links (the GPU machine has
    # OpenMPI and CUDA but no OpenBLAS), xz-compressed (~25 MiB).
    swift build -c release --static-swift-stdlib --product swiftspeed || exit 1
    stage=$(mktemp -d)
    mkdir -p "$stage/lib" .gpu
    cp "$(swift build -c release --static-swift-stdlib --show-bin-path)/swiftspeed" "$stage/" && strip "$stage/swiftspeed"
    for l in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do cp -L "/lib/x86_64-linux-gnu/$l" "$stage/lib/"; done
    rm -f .gpu/swiftspeed && tar -C "$stage" -cJf .gpu/bundle.tar.xz swiftspeed lib && rm -rf "$stage"
    grep -qx '.gpu/' .git/info/exclude 2>/dev/null || echo '.gpu/' >> .git/info/exclude
    ls -l .gpu/
    exit 0
fi

STEPS=${1:-5}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
RUN=/tmp/swiftspeed-gpu
mkdir -p $RUN && tar -C $RUN -xJf .gpu/bundle.tar.xz || { echo "no .gpu/bundle.tar.xz: run --build and carry .gpu" >&2; exit 1; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:$RUN/lib
export SWIFTSPEED_KERNEL_CACHE=${SWIFTSPEED_KERNEL_CACHE:-/tmp/swiftspeed-kernels}
BIN=$RUN/swiftspeed
log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/session.log"; }

log "nvidia-smi"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$OUT/session.log"
log "report"; $BIN report 2>&1 | tee "$OUT/report.txt"
log "selftest"; $BIN selftest --device cuda --quiet --steps 3 > "$OUT/selftest.txt" 2>&1
status=$?
echo "selftest exit $status" | tee -a "$OUT/session.log"; tail -5 "$OUT/selftest.txt" | tee -a "$OUT/session.log"
if [[ $status != 0 ]]; then
    # Tell a tensor-core attention problem (flash, mma.sync) from the rest: the same comparisons on the SIMT kernels.
    log "selftest, attention on the SIMT kernels"
    SWIFTSPEED_CUDA_ATTENTION=simt $BIN selftest --device cuda --quiet --steps 3 > "$OUT/selftest-simt.txt" 2>&1
    echo "selftest (simt) exit $?" | tee -a "$OUT/session.log"; tail -3 "$OUT/selftest-simt.txt" | tee -a "$OUT/session.log"
fi

# gpt2-small, same seed on both devices: mb 2, no accumulation, bf16, AdamW, clipping (the loss-curve check).
cat > "$OUT/gpt2-check.json" <<'EOF'
{"train_batch_size": 2, "train_micro_batch_size_per_gpu": 2, "gradient_clipping": 1.0, "bf16": {"enabled": true},
 "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "weight_decay": 0.1}}, "zero_optimization": {"stage": 2}}
EOF
log "train gpt2-small cpu (reference)"
timeout 900 $BIN train --device cpu --model gpt2-small --config "$OUT/gpt2-check.json" --synthetic --steps "$STEPS" --json \
    > "$OUT/train-gpt2-cpu.jsonl" 2>&1
for stage in 0 1 2 3; do
    for offload in "" "-offload"; do
        [[ $stage == 0 && -n $offload ]] && continue
        sed "s/\"stage\": 2/\"stage\": $stage/" "$OUT/gpt2-check.json" > "$OUT/cfg.json"
        [[ -n $offload ]] && sed -i 's/"stage": \([0-9]\)}/"stage": \1, "offload_optimizer": {"device": "cpu", "pin_memory": true}}/' "$OUT/cfg.json"
        log "train gpt2-small cuda stage $stage$offload"
        timeout 600 $BIN train --device cuda --model gpt2-small --config "$OUT/cfg.json" --synthetic --steps "$STEPS" --json \
            > "$OUT/train-gpt2-cuda-z$stage$offload.jsonl" 2>&1
        echo "exit $?" >> "$OUT/session.log"
    done
done
python3 - "$OUT" <<'EOF' | tee -a "$OUT/session.log"
import json, sys, glob, os
out = sys.argv[1]
def losses(p):
    r = []
    for l in open(p):
        try: r.append(json.loads(l))
        except Exception: pass
    return r
ref = losses(f"{out}/train-gpt2-cpu.jsonl")
print("cpu      ", [round(x["loss"], 4) for x in ref])
for p in sorted(glob.glob(f"{out}/train-gpt2-cuda-*.jsonl")):
    g = losses(p)
    name = os.path.basename(p)[len("train-gpt2-cuda-"):-6]
    worst = max((abs(a["loss"] - b["loss"]) / max(abs(b["loss"]), 1e-9) for a, b in zip(g, ref)), default=float("nan"))
    print(f"{name:9}", [round(x["loss"], 4) for x in g], f"max rel diff {worst:.2e}",
          f"peak {g[-1]['peak_mem_bytes'] / 2**30:.2f} GiB, {g[-1]['tokens_per_s']:.0f} tok/s" if g else open(p).read()[-400:])
EOF

for args in "--stage 2 --profile" "--stage 3" "--stage 2 --offload"; do
    log "bench gpu-step $args"
    timeout 300 $BIN bench gpu-step $args --json 2>&1 | tee -a "$OUT/bench.jsonl"
done
log "bench gpu-step --stage 2, attention on the SIMT kernels (for comparison)"
SWIFTSPEED_CUDA_ATTENTION=simt timeout 300 $BIN bench gpu-step --stage 2 --json 2>&1 | tee -a "$OUT/bench-simt.jsonl"
# #6's convergence check: the fast path's losses against the SIMT attention's for 50 steps (gpt2-small, mb 4).
sed 's/"train_batch_size": 2, "train_micro_batch_size_per_gpu": 2/"train_batch_size": 4, "train_micro_batch_size_per_gpu": 4/' \
    "$OUT/gpt2-check.json" > "$OUT/cfg50.json"
log "train gpt2-small 50 steps: tensor-core attention vs SIMT"
timeout 600 $BIN train --device cuda --model gpt2-small --config "$OUT/cfg50.json" --synthetic --steps 50 --json \
    > "$OUT/train50-flash.jsonl" 2>&1
SWIFTSPEED_CUDA_ATTENTION=simt timeout 600 $BIN train --device cuda --model gpt2-small --config "$OUT/cfg50.json" \
    --synthetic --steps 50 --json > "$OUT/train50-simt.jsonl" 2>&1
python3 - "$OUT" <<'EOF' | tee -a "$OUT/session.log"
import json, sys
out = sys.argv[1]
def losses(p): return [json.loads(l)["loss"] for l in open(p) if l.startswith("{")]
a, b = losses(f"{out}/train50-flash.jsonl"), losses(f"{out}/train50-simt.jsonl")
worst = max((abs(x - y) / abs(y) for x, y in zip(a, b)), default=float("nan"))
print(f"50 steps: flash {a[-1] if a else None}, simt {b[-1] if b else None}, max rel diff {worst:.3e} over {min(len(a), len(b))} steps")
EOF
log "done"
