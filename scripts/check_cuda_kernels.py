#!/usr/bin/env python3
"""Compiles every SpeedCUDA kernel program with NVRTC (no GPU needed) and fails on any error or warning.

A development tool, not run in CI. It reads Sources/SpeedCUDAKernels/<family>.cu and common.cuh, assembles the
programs exactly as `CUDAKernelSource.all` does (the family's `#include "common.cuh"` line replaced by the header,
with `#line` directives), compiles each for every requested architecture with `-std=c++17`, prints NVRTC's
log for anything that is not clean, and reports the entry points per family (read back from the PTX). ptxas runs
with -v, --warn-on-spills and --warn-on-local-memory-usage, so a register spill or a local-memory array fails the
check too; the attention kernels' dynamic shared-memory sizes are printed from the tile shapes in the source.

    python3 scripts/check_cuda_kernels.py                      # sm_90 and sm_80
    python3 scripts/check_cuda_kernels.py --arch sm_90 --list  # also list every entry point
    python3 scripts/check_cuda_kernels.py --resources          # ptxas registers / spills / shared memory per kernel
    python3 scripts/check_cuda_kernels.py --dump /tmp/kernels  # write each program as <family>.cu

libnvrtc is found through $NVRTC_LIBRARY, then /tmp/cudapkgs/nvrtc (the pip wheel unpacked:
`pip download --no-deps nvidia-cuda-nvrtc && python3 -m zipfile -e nvidia_cuda_nvrtc-*.whl nvrtc`),
then the usual CUDA locations and the loader's search path.
"""

import argparse
import ctypes
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "Sources", "SpeedCUDAKernels")
SOURCE_LIST = os.path.join(KERNELS, "CUDAKernelFiles.swift")
PROGRAM = re.compile(r'\(\s*"(\w+)"\s*,\s*PackageResources\.(\w+)_cu\s*\)')
INCLUDE = '#include "common.cuh"\n'
ENTRY = re.compile(r"\.entry\s+(\w+)\s*\(")


def assemble(source, file, common):
    """CUDAKernelSource.program(_:file:): the include line replaced by common.cuh, then `#line` back to `file`."""
    at = source.find(INCLUDE)
    if at < 0:
        return source
    line = source.count("\n", 0, at) + 1
    return source[:at] + '#line 1 "common.cuh"\n' + common + f'#line {line + 1} "{file}"\n' + source[at + len(INCLUDE):]


def extract_sources():
    """The programs of `CUDAKernelFiles.families` (= `CUDAKernelSource.all`), in order, as [(name, assembled source)]."""
    text = open(SOURCE_LIST, encoding="utf-8").read()
    all_decl = re.search(r"static\s+var\s+families\b[^{]*\{\s*\[(.*?)\]\s*\}", text, re.S)
    if not all_decl:
        sys.exit("error: CUDAKernelFiles.swift declares no `families` list")
    listed = PROGRAM.findall(all_decl.group(0))
    for name, resource in listed:
        if name != resource:
            sys.exit(f"error: CUDAKernelSource.all pairs \"{name}\" with PackageResources.{resource}_cu")
    files = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(KERNELS, "*.cu")))
    names = [name for name, _ in listed]
    if sorted(names) != files:
        sys.exit(f"error: CUDAKernelSource.all lists {sorted(names)}, Kernels/ holds {files}")
    common = open(os.path.join(KERNELS, "common.cuh"), encoding="utf-8").read()
    programs = []
    for name in names:
        source = open(os.path.join(KERNELS, name + ".cu"), encoding="utf-8").read()
        if source.count(INCLUDE) != 1 or not source.endswith("\n"):
            sys.exit(f"error: {name}.cu must include common.cuh once (a line of its own) and end with a newline")
        programs.append((name, assemble(source, name + ".cu", common)))
    return programs


def load_nvrtc():
    candidates = []
    if os.environ.get("NVRTC_LIBRARY"):
        candidates.append(os.environ["NVRTC_LIBRARY"])
    for pattern in ["/tmp/cudapkgs/nvrtc/nvidia/cu*/lib/libnvrtc.so*",
                    "/tmp/cudapkgs/nvrtc/nvidia/cuda_nvrtc/lib/libnvrtc.so*",
                    "/usr/local/cuda/lib64/libnvrtc.so*", "/usr/lib/x86_64-linux-gnu/libnvrtc.so*"]:
        candidates += sorted(p for p in glob.glob(pattern) if "builtins" not in p)
    candidates += ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        major, minor = ctypes.c_int(), ctypes.c_int()
        lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
        return lib, path, (major.value, minor.value)
    sys.exit("error: libnvrtc not found; set NVRTC_LIBRARY (see this script's docstring)")


def compile_program(lib, source, name, options):
    """Returns (status, log, ptx) for one NVRTC compilation."""
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
    if rc != 0:
        sys.exit(f"error: nvrtcCreateProgram: {lib.nvrtcGetErrorString(rc).decode()}")
    try:
        opts = [o.encode() for o in options]
        arr = (ctypes.c_char_p * len(opts))(*opts)
        status = lib.nvrtcCompileProgram(prog, len(opts), arr)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = buf.value.decode(errors="replace").strip()
        ptx = ""
        if status == 0:
            lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
            pbuf = ctypes.create_string_buffer(size.value)
            if lib.nvrtcGetPTX(prog, pbuf) == 0:
                ptx = pbuf.value.decode(errors="replace")
        return status, log, ptx
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


PTXAS_OPTIONS = ["--ptxas-options=-v", "--ptxas-options=--warn-on-spills",
                 "--ptxas-options=--warn-on-local-memory-usage"]
FUNCTION = re.compile(r"Compiling entry function '(\w+)'")
STACK = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers(?:, used (\d+) barriers)?(?:, (\d+) bytes smem)?")
ATT_TILES = re.compile(r"SS_ATT_D\(TN, T, (\d+), (\d+), (\d+), (\d+), (\d+), (\d+), (\d+)\)")


# Local memory that is known and harmless: libdevice's fp64 cos keeps a 40-byte array for the Payne-Hanek reduction
# of huge arguments, a path ss_random_* never takes (its argument is 2*pi*u in (0, 2*pi)). Spills are never allowed.
LOCAL_MEMORY_ALLOWED = re.compile(r"Local memory used for function 'ss_random_\w+', size of stack frame: 40 bytes")


def diagnostics(log):
    """The log's lines that are not ptxas's resource reports: NVRTC or ptxas warnings and errors."""
    keep = []
    for line in log.splitlines():
        text = line.strip()
        if not text or text.startswith("ptxas info") or re.match(r"ptxas\s+\.", text):
            continue
        if LOCAL_MEMORY_ALLOWED.search(text):
            continue
        keep.append(line)
    return keep


def resources(log):
    """Per entry point: registers, barriers, static shared bytes, stack frame and spill bytes (ptxas -v)."""
    table, current = {}, None
    for line in log.splitlines():
        m = FUNCTION.search(line)
        if m:
            current = m.group(1)
            table[current] = {"regs": 0, "barriers": 0, "smem": 0, "stack": 0, "spills": 0}
            continue
        if current is None:
            continue
        m = STACK.search(line)
        if m:
            table[current]["stack"] = int(m.group(1))
            table[current]["spills"] = int(m.group(2)) + int(m.group(3))
        m = USED.search(line)
        if m:
            table[current]["regs"] = int(m.group(1))
            table[current]["barriers"] = int(m.group(2) or 0)
            table[current]["smem"] = int(m.group(3) or 0)
    return table


def attention_shared_memory(source):
    """Dynamic shared memory (bytes) of each attention kernel, from the tile shapes its instantiations name."""
    rows = []
    for d, fbr, fbc, kbr, kbc, qbr, qbc in (tuple(map(int, t)) for t in ATT_TILES.findall(source)):
        ld = d + 1
        fwd = 4 * (fbr * ld + 2 * fbc * ld + fbr * (fbc + 1))
        dkdv = 4 * (2 * kbc * ld + 2 * kbr * ld + 2 * kbr * (kbc + 1) + 2 * kbr)
        dq = 4 * (2 * qbr * ld + 2 * qbc * ld + qbr * (qbc + 1) + 2 * qbr)
        rows.append((d, (fbr, fbc, fwd), (kbr, kbc, dkdv), (qbr, qbc, dq)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", action="append", help="sm_XY to compile for (repeatable; default sm_90 and sm_80)")
    parser.add_argument("--list", action="store_true", help="list every entry point")
    parser.add_argument("--resources", action="store_true", help="print ptxas registers / spills / shared memory per kernel")
    parser.add_argument("--dump", metavar="DIR", help="write each assembled program to DIR/<family>.cu")
    parser.add_argument("--option", action="append", default=[], help="extra NVRTC option (repeatable)")
    args = parser.parse_args()
    archs = args.arch or ["sm_90", "sm_80"]

    programs = extract_sources()
    lib, path, version = load_nvrtc()
    print(f"NVRTC {version[0]}.{version[1]} ({path})")
    print(f"  {'program':<12} {'arch':<6} {'result':<8} {'kernels':>7} {'lines':>6} {'max regs':>8} {'spills':>6}")
    failed = False
    entries, tables = {}, {}
    for family_name, source in programs:
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            with open(os.path.join(args.dump, family_name + ".cu"), "w") as f:
                f.write(source)
        for arch in archs:
            options = [f"--gpu-architecture={arch}", "-std=c++17"] + PTXAS_OPTIONS + args.option
            status, log, ptx = compile_program(lib, source, family_name + ".cu", options)
            names = ENTRY.findall(ptx)
            entries.setdefault(family_name, names)
            table = resources(log)
            tables[(family_name, arch)] = table
            problems = diagnostics(log)
            clean = status == 0 and not problems
            verdict = "ok" if clean else ("FAILED" if status != 0 else "WARNINGS")
            regs = max((r["regs"] for r in table.values()), default=0)
            spills = sum(r["spills"] for r in table.values())
            print(f"  {family_name:<12} {arch:<6} {verdict:<8} {len(names):7d} {source.count(chr(10)):6d} {regs:8d} {spills:6d}")
            if problems:
                print("    " + "\n    ".join(problems))
            failed = failed or not clean
    total = sum(len(v) for v in entries.values())
    print(f"{total} kernels in {len(entries)} programs: " + ", ".join(f"{k} {len(v)}" for k, v in entries.items()))
    if "attention" in dict(programs):
        print("attention tiles (BR x BC) and dynamic shared memory (bytes; above 49152 needs "
              "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES):")
        for d, fwd, dkdv, dq in attention_shared_memory(dict(programs)["attention"]):
            print(f"  d{d:<4} fwd {fwd[0]}x{fwd[1]} {fwd[2]:>6}   bwd_dkdv {dkdv[0]}x{dkdv[1]} {dkdv[2]:>6}   "
                  f"bwd_dq {dq[0]}x{dq[1]} {dq[2]:>6}")
    if args.resources:
        for (family_name, arch), table in tables.items():
            print(f"[{family_name} {arch}] kernel: registers, barriers, static shared bytes, stack bytes, spill bytes")
            for name in sorted(table):
                r = table[name]
                print(f"  {name:<44} {r['regs']:4d} {r['barriers']:2d} {r['smem']:6d} {r['stack']:5d} {r['spills']:5d}")
    if args.list:
        for family_name, names in entries.items():
            print(f"[{family_name}]")
            for name in sorted(names):
                print("  " + name)
    if failed:
        print("FAILED: NVRTC or ptxas reported errors or warnings (spills and local memory count as warnings)")
        return 1
    print("all programs compile cleanly: no errors, no warnings, no spills, no local memory (beyond the allowlist)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
