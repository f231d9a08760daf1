#!/usr/bin/env bash
# The test suite's GPU step on machines without a GPU: builds the host emulator (NVRTC stand-in, so no CUDA
# toolkit is needed), then runs `swiftspeed selftest --device cuda` (every op forward + backward and gpt-mini
# training vs the CPU), the NCCL process group's collectives, ZeRO-3 and a 2-stage pipeline on 2 emulated GPUs vs one CPU process.
# Invariant: uses the release binary the suite just built ($SWIFTSPEED_BIN overrides) and a throw-away kernel cache; exits non-zero on a mismatch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

python3 scripts/cuda-emu/build.py --no-nvrtc > /tmp/swiftspeed-cuda-emu-build.log 2>&1 || {
    cat /tmp/swiftspeed-cuda-emu-build.log; echo "cuda-emu: the emulator did not build" >&2; exit 1; }
bin=${SWIFTSPEED_BIN:-$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/swiftspeed}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
export SWIFTSPEED_CUDA_LIB_PATH="$PWD/.build-emu/lib:$PWD/.build-emu/nvrtc-stand-in" SWIFTSPEED_KERNEL_CACHE="$cache" SSEMU_QUIET=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
"$bin" selftest --device cuda --quiet --steps 2
# bf16/fp16 attention above ran on the tensor-core kernels (flash); the SIMT kernels serve them before sm_80.
SWIFTSPEED_CUDA_ATTENTION=simt "$bin" selftest --device cuda --quiet --filter attention
if [ -e .build-emu/lib/libnccl.so.2 ]; then
    mpirun --oversubscribe -n 2 "$bin" comm-check --device cuda:0
fi

# ZeRO-3 on 2 ranks over NCCLProcessGroup (gathers, uneven reduce-scatters) against one CPU process: same losses,
# global grad norms within 1e-3 relative.
train() { "$@" --model gpt-mini --config configs/zero-stage3.json --synthetic --steps 2 --json; }
cpu=$(train "$bin" train --device cpu)
gpu=$(train mpirun --oversubscribe -n 2 "$bin" train --device cuda:0)
python3 - "$cpu" "$gpu" <<'PY'
import json, sys
rows = [[json.loads(l) for l in text.splitlines() if l.startswith("{")] for text in sys.argv[1:3]]
cpu, gpu = rows
assert len(cpu) == len(gpu) == 2, f"expected 2 steps each, got {len(cpu)} and {len(gpu)}"
for c, g in zip(cpu, gpu):
    rel = abs(c["grad_norm"] - g["grad_norm"]) / c["grad_norm"]
    assert c["loss"] == g["loss"] and rel < 1e-3, f"step {c['step']}: cpu {c['loss']} / {c['grad_norm']}, 2 emulated GPUs {g['loss']} / {g['grad_norm']}"
print(f"cuda-emu: ZeRO-3 on 2 emulated GPUs (NCCL) matches one CPU process: losses {[g['loss'] for g in gpu]}")
PY

# A 2-stage pipeline on 2 emulated GPUs: activations and gradients cross the stage boundary GPU to GPU (ncclSend /
# ncclRecv), the tied embedding's gradient is all-reduced over NCCL; same losses as one CPU process (1e-3 relative).
pipe() { "$@" --model gpt-mini --config configs/zero-stage1.json --synthetic --steps 2 --json; }
cpu=$(pipe "$bin" train --device cpu)
gpu=$(pipe mpirun --oversubscribe -n 2 "$bin" train --device cuda:0 --pipeline-stages 2)
python3 - "$cpu" "$gpu" <<'PY'
import json, sys
cpu, gpu = [[json.loads(l) for l in text.splitlines() if l.startswith("{")] for text in sys.argv[1:3]]
assert len(cpu) == len(gpu) == 2, f"expected 2 steps each, got {len(cpu)} and {len(gpu)}"
for c, g in zip(cpu, gpu):
    rel = abs(c["loss"] - g["loss"]) / c["loss"]
    assert rel < 1e-3, f"step {c['step']}: cpu loss {c['loss']}, 2-stage pipeline on 2 emulated GPUs {g['loss']}"
print(f"cuda-emu: a 2-stage pipeline on 2 emulated GPUs (NCCL send/receive) matches one CPU process: losses {[g['loss'] for g in gpu]}")
PY

# Tensor parallelism (AutoTP, configs/tensor-parallel-2.json) on 2 emulated GPUs: the column/row-parallel layers'
# all-reduces and the vocab-parallel embedding and cross-entropy over NCCL; same losses as one CPU process with the
# same global batch (the config without its tensor_parallel block; 1e-3 relative).
grep -v autotp_size configs/tensor-parallel-2.json | sed 's/"zero_optimization": {"stage": 1},/"zero_optimization": {"stage": 1}/' > "$cache/one-process.json"
cpu=$("$bin" train --device cpu --model gpt-mini --config "$cache/one-process.json" --synthetic --steps 2 --json)
gpu=$(mpirun --oversubscribe -n 2 "$bin" train --device cuda:0 --model gpt-mini --config configs/tensor-parallel-2.json --synthetic --steps 2 --json)
python3 - "$cpu" "$gpu" <<'PY'
import json, sys
cpu, gpu = [[json.loads(l) for l in text.splitlines() if l.startswith("{")] for text in sys.argv[1:3]]
assert len(cpu) == len(gpu) == 2, f"expected 2 steps each, got {len(cpu)} and {len(gpu)}"
for c, g in zip(cpu, gpu):
    rel = abs(c["loss"] - g["loss"]) / c["loss"]
    assert rel < 1e-3, f"step {c['step']}: cpu loss {c['loss']}, TP 2 on 2 emulated GPUs {g['loss']}"
print(f"cuda-emu: tensor parallelism (TP 2) on 2 emulated GPUs (NCCL) matches one CPU process: losses {[g['loss'] for g in gpu]}")
PY
