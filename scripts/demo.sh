#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine with Swift: installs what is missing (scripts/setup.sh: OpenBLAS,
# OpenMPI, the pretrained all-MiniLM-L6-v2 and the Rotten Tomatoes sentiment set), builds in release, and runs the
# seed's Trainer program: the pretrained BERT fine-tuned with ZeRO-2 on real labelled text, eval accuracy printed
# before and after (about 4-5 minutes on 2 cores after the build).
#
#   bash scripts/demo.sh                     # the main job (Examples/HFTrainer)
#   bash scripts/demo.sh --gpt-mini [ARGS]   # the second example: gpt-mini trained on Debian's fortunes; ARGS are
#                                            # appended to its `swiftspeed train` command (e.g. --json)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

if [ "${1:-}" = "--gpt-mini" ]; then
    shift
    echo "demo: building swiftspeed (release)"
    swift build -c release --product swiftspeed
    # gpt-mini (byte-level) on the fortunes corpus for 300 optimizer steps with configs/gpt-mini-fortunes.json
    # (AdamW, warmup + decay, clipping, CSV + TensorBoard monitors under runs/), checkpointed to
    # checkpoints/fortunes, with a generated sample at the end.
    JOB=(.build/release/swiftspeed train --model gpt-mini --config configs/gpt-mini-fortunes.json
         --data /usr/share/games/fortunes/fortunes --steps 300 --save-dir checkpoints/fortunes)
    echo "demo: ${JOB[*]} $*"
    exec "${JOB[@]}" "$@"
fi

echo "demo: building HFTrainerExample (release)"
swift build -c release --product HFTrainerExample
echo "demo: .build/release/HFTrainerExample $*"
exec .build/release/HFTrainerExample "$@"
