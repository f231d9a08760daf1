#!/bin/sh
# Builds the CUDA emulator into .build-emu/lib (see README.md); arguments go to build.py (--force, --no-nvrtc, -j N).
exec python3 "$(dirname "$0")/build.py" "$@"
