#!/usr/bin/env bash
# Runs the whole test suite (Swift Testing and XCTest) on a fresh Debian 12 machine with Swift:
# installs what is missing (scripts/setup.sh), then builds and tests in release.
#
#   bash scripts/test.sh                  # everything
#   bash scripts/test.sh --filter GPT     # extra arguments go to `swift test`
#
# Release, because the numeric code (gradient checks, model tests) is 10-100x slower in debug;
# -enable-testing keeps `@testable import` working in a release build. No --parallel: the
# 2-core machines cannot take several test processes at once. Then, for the whole suite, the CUDA
# backend's self-test on the host emulator (scripts/cuda-emu/selftest.sh: no GPU needed) and the
# dependency-by-version check (scripts/check-dependency.sh: a scratch package that depends on the committed
# HEAD by URL and version, builds in debug and trains; about 1-1.5 minutes). Exits non-zero if any fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

# Everything the suite needs is installed now: a test that needs mpirun runs and fails if it is missing,
# instead of being skipped (Tests/SpeedTestSupport/Requirements.swift).
export SWIFTSPEED_REQUIRE_ALL=1
swift test -c release -Xswiftc -enable-testing "$@"
if [ $# -eq 0 ]; then
    bash scripts/cuda-emu/selftest.sh
    bash scripts/check-dependency.sh
fi
