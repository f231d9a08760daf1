#!/usr/bin/env bash
# The test suite's GPU step on machines without a GPU: builds the host emulator (NVRTC stand-in, so no CUDA
# toolkit is needed), then runs `swiftspeed selftest --device cuda` (every op forward + backward and gpt-mini
# training vs the CPU) and the NCCL process group's collectives on 2 ranks, all on the emulated device.
# Invariant: uses the release binary the suite just built and a throw-away kernel cache; exits non-zero on a mismatch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

python3 scripts/cuda-emu/build.py --no-nvrtc > /tmp/swiftspeed-cuda-emu-build.log 2>&1 || {
    cat /tmp/swiftspeed-cuda-emu-build.log; echo "cuda-emu: the emulator did not build" >&2; exit 1; }
bin=$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/swiftspeed
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
export SWIFTSPEED_CUDA_LIB_PATH="$PWD/.build-emu/lib:$PWD/.build-emu/nvrtc-stand-in" SWIFTSPEED_KERNEL_CACHE="$cache" SSEMU_QUIET=1
"$bin" selftest --device cuda --quiet --steps 2
if [ -e .build-emu/lib/libnccl.so.2 ]; then
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
        mpirun --oversubscribe -n 2 "$bin" comm-check --device cuda:0
fi
