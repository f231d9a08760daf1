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

# The main job. For now: benchmark B1 (gpt-mini forward + backward on the CPU).
# A later change replaces this one line with a real training run on the fortunes corpus
# (/usr/share/games/fortunes/fortunes, installed by setup.sh).
MAIN_JOB=(swift run -c release swiftspeed bench cpu-step)

echo "demo: ${MAIN_JOB[*]} $*"
exec "${MAIN_JOB[@]}" "$@"
