#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine with Swift: installs what is missing
# (scripts/setup.sh), builds the `swiftspeed` CLI in release, and runs it.
#
#   bash scripts/demo.sh              # extra arguments are appended to the main job's command
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

echo "demo: building swiftspeed (release)"
swift build -c release --product swiftspeed

# The main job: train gpt-mini (byte-level) on Debian's fortunes corpus for 300 optimizer steps with
# configs/gpt-mini-fortunes.json (AdamW, warmup + decay, clipping, CSV + TensorBoard monitors under
# runs/), checkpoint it to checkpoints/fortunes, and print a generated sample at the end.
MAIN_JOB=(.build/release/swiftspeed train --model gpt-mini --config configs/gpt-mini-fortunes.json
          --data /usr/share/games/fortunes/fortunes --steps 300 --save-dir checkpoints/fortunes)

echo "demo: ${MAIN_JOB[*]} $*"
exec "${MAIN_JOB[@]}" "$@"
