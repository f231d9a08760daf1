#!/usr/bin/env python3
"""Builds the CUDA emulator (libcuda.so.1, libcublasLt.so.13) into .build-emu/lib; see README.md.

One non-obvious invariant: the kernels are the CUDA C of Sources/SpeedCUDAKernels as it is when this runs, so
rebuild after editing a kernel. Each step is redone only when its inputs (sources, flags, compiler) changed.

    scripts/cuda-emu/build.sh              # or: python3 scripts/cuda-emu/build.py
    scripts/cuda-emu/build.sh --force      # rebuild everything
    scripts/cuda-emu/build.sh --no-nvrtc   # kernel names from the preprocessed source; no launch-bound/register checks
"""

import argparse
import concurrent.futures
import ctypes
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, ".build-emu")
OBJ = os.path.join(OUT, "obj")
LIB = os.path.join(OUT, "lib")
CSPEED_INCLUDE = os.path.join(ROOT, "Sources", "CSpeedCUDA", "include")
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import check_cuda_kernels as chk  # noqa: E402  (extract_sources, load_nvrtc, resources)

CXX = os.environ.get("CXX", "g++")
# Kernels: IEEE rounding of every operation (no FMA contraction, as the kernels' own __fmul_rn etc. promise).
# -march=native only vectorises; with -ffp-contract=off and no -ffast-math the results are the same bits.
MARCH = os.environ.get("SSEMU_MARCH", "native")
KERNEL_FLAGS = ["-std=c++20", "-O2", f"-march={MARCH}", "-fPIC", "-fno-strict-aliasing", "-ffp-contract=off",
                "-fno-math-errno", "-fvisibility=hidden", "-fstack-clash-protection", "-w"]
RUNTIME_FLAGS = ["-std=c++20", "-O2", "-fPIC", "-fvisibility=hidden", "-ffp-contract=off", "-Wall", "-Wextra",
                 "-Wno-unused-parameter", "-I" + CSPEED_INCLUDE, "-I" + HERE]
NVRTC_OPTIONS = ["--gpu-architecture=sm_90", "-std=c++17"]   # what CUDABackend compiles with on an sm_90 device
DYNAMIC_SMEM = re.compile(r"extern\s+__shared__\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;")
ENTRY_DECL = re.compile(r'extern\s+"C"\s+void\s+(\w+)\s*\(')


def digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write_if_changed(path, text):
    if os.path.exists(path) and read(path) == text:
        return
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def step(output, key, command, log):
    """Runs `command` unless `output` exists and was made from the same `key`; returns whether it ran."""
    stamp = os.path.join(OBJ, os.path.basename(output) + ".stamp")
    if os.path.exists(output) and os.path.exists(stamp) and read(stamp) == key:
        return False
    log(f"  {os.path.basename(output)}")
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(shlex.quote(c) for c in command)}\n{result.stdout}")
    with open(stamp, "w") as f:
        f.write(key)
    return True


def compiler_id():
    return subprocess.run([CXX, "--version"], stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()[0]


# ----- NVRTC: entry-point names, launch bounds, registers, image checksums -----

def nvrtc_compile(lib, source, name, options):
    """(PTX text, cubin bytes, log) of one compilation; exits with NVRTC's log on failure."""
    prog = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None) != 0:
        raise SystemExit("error: nvrtcCreateProgram failed")
    try:
        opts = [o.encode() for o in options]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        log = log.value.decode(errors="replace")
        if status != 0:
            raise SystemExit(f"error: NVRTC cannot compile {name}:\n{log}")
        lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetPTX(prog, ptx)
        lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
        cubin = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetCUBIN(prog, cubin)
        return ptx.value.decode(), cubin.raw[:size.value], log
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def nvrtc_metadata(nvrtc, family, source, log):
    """Per program: kernel names, .maxntid and ptxas registers per kernel, CRC-32 of the cubin and PTX the backend
    would load. Cached in obj/<family>.nvrtc.json by source and NVRTC version."""
    lib, path, version = nvrtc
    cache = os.path.join(OBJ, family + ".nvrtc.json")
    key = digest("nvrtc-meta-v1", version, NVRTC_OPTIONS, source)
    if os.path.exists(cache):
        meta = json.loads(read(cache))
        if meta.get("key") == key:
            return meta
    log(f"  NVRTC {family}.cu")
    ptx, _, ptxas_log = nvrtc_compile(lib, source, family + ".cu", NVRTC_OPTIONS + ["--ptxas-options=-v"])
    _, cubin, _ = nvrtc_compile(lib, source, family + ".cu", NVRTC_OPTIONS)   # -v changes the cubin's bytes
    names, bounds = [], {}
    for chunk in ptx.split(".entry")[1:]:
        name = re.match(r"\s*(\w+)", chunk).group(1)
        names.append(name)
        m = re.search(r"\.maxntid\s+(\d+)\s*,\s*(\d+)\s*,\s*(\d+)", chunk.split("{", 1)[0])
        bounds[name] = int(m.group(1)) * int(m.group(2)) * int(m.group(3)) if m else 0
    regs = {name: r["regs"] for name, r in chk.resources(ptxas_log).items()}
    meta = {"key": key, "names": names, "max_threads": bounds, "registers": regs,
            "cubin_crc": zlib.crc32(cubin), "ptx_crc": zlib.crc32(ptx.encode())}
    write_if_changed(cache, json.dumps(meta, indent=1))
    return meta


def names_from_preprocessor(host_path):
    """Entry points without NVRTC: every extern "C" function of the preprocessed kernel source."""
    out = subprocess.run([CXX, "-std=c++20", "-E", "-P", "-I" + HERE, host_path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: preprocessing {host_path}:\n{out.stderr}")
    kernels = out.stdout.split("namespace ssemu_kernels_begin {}", 1)[-1]
    kernels = kernels.split("namespace ssemu_kernels_end {}", 1)[0]
    return list(dict.fromkeys(ENTRY_DECL.findall(kernels)))


# ----- Host translation of one program -----

def host_source(source):
    """The CUDA C as C++ for emu.h: dynamic shared memory becomes a pointer to the launch's buffer."""
    return DYNAMIC_SMEM.sub(lambda m: f"{m.group(1)}* {m.group(2)} = ({m.group(1)}*)emu_dyn_smem;", source)


def registration(family, names, meta):
    lines = ["", "namespace ssemu_kernels_end {}", "namespace {", "struct Registration {", "    Registration() {",
             f'        emu_register_program("{family}", {meta.get("cubin_crc", 0)}u, {meta.get("ptx_crc", 0)}u);']
    for n in names:
        bound = meta.get("max_threads", {}).get(n, 0)
        regs = meta.get("registers", {}).get(n, 0)
        lines.append(f'        emu_register(EmuKernel{{"{n}", "{family}", [](void** p) {{ emu_call_packed(&{n}, p); }}, '
                     f"emu_kinds(&{n}), emu_sizes(&{n}), {bound}, {regs}}});")
    lines += ["    }", "} registration;", "}  // namespace", ""]
    return "\n".join(lines)


def build_program(family, source, nvrtc, headers_key, log):
    """NVRTC metadata, the generated host C++ and its object file for one program; returns the object path."""
    cpp = os.path.join(OBJ, family + ".cpp")
    head = '#include "emu.h"\nnamespace ssemu_kernels_begin {}\n'
    body = host_source(source)
    if nvrtc:
        meta = nvrtc_metadata(nvrtc, family, source, log)
        names = meta["names"]
    else:
        meta = {}
        write_if_changed(cpp, head + body + "\nnamespace ssemu_kernels_end {}\n")
        names = names_from_preprocessor(cpp)
    write_if_changed(cpp, head + body + registration(family, names, meta))
    obj = os.path.join(OBJ, family + ".o")
    command = [CXX] + KERNEL_FLAGS + ["-I" + HERE, "-c", cpp, "-o", obj]
    step(obj, digest(command, headers_key, read(cpp)), command, log)
    return obj, len(names)


def build_nccl(cuda, headers_key, log):
    """libnccl.so.2 over MPI, when an MPI compiler wrapper is installed (OpenMPI's mpicc); else None."""
    try:
        compile_flags = subprocess.run(["mpicc", "--showme:compile"], stdout=subprocess.PIPE, text=True, check=True)
        link_flags = subprocess.run(["mpicc", "--showme:link"], stdout=subprocess.PIPE, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        print("note: no mpicc (OpenMPI), so no libnccl.so.2", file=sys.stderr)
        return None
    obj = os.path.join(OBJ, "nccl.o")
    source = os.path.join(HERE, "nccl.cpp")
    command = [CXX] + RUNTIME_FLAGS + shlex.split(compile_flags.stdout) + ["-c", source, "-o", obj]
    step(obj, digest(command, headers_key, read(source)), command, log)
    nccl_map = os.path.join(OBJ, "libnccl.map")
    write_if_changed(nccl_map, "{\n  global:\n    nccl*;\n  local: *;\n};\n")
    lib = os.path.join(LIB, "libnccl.so.2")
    command = [CXX, "-shared", "-Wl,-soname,libnccl.so.2", "-Wl,-z,defs", f"-Wl,--version-script={nccl_map}",
               "-Wl,-rpath,$ORIGIN", "-o", lib, obj, cuda] + shlex.split(link_flags.stdout) + ["-ldl"]
    step(lib, digest(command, read(obj, "rb"), read(cuda, "rb")), command, log)
    return lib


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild everything")
    parser.add_argument("--no-nvrtc", action="store_true", help="do not use NVRTC even when it is available")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 2, help="parallel compilations")
    args = parser.parse_args()
    os.makedirs(OBJ, exist_ok=True)
    os.makedirs(LIB, exist_ok=True)
    if args.force:
        for name in os.listdir(OBJ):
            if name.endswith(".stamp") or name.endswith(".nvrtc.json"):
                os.remove(os.path.join(OBJ, name))

    lock = threading.Lock()

    def log(text):
        with lock:
            print(text, flush=True)

    programs = chk.extract_sources()
    nvrtc = None
    if not args.no_nvrtc:
        try:
            nvrtc = chk.load_nvrtc()
        except SystemExit:
            print("warning: libnvrtc not found, so kernel names come from the preprocessed sources and launches are "
                  "not checked against __launch_bounds__ or register counts. To use NVRTC: `pip download --no-deps "
                  "nvidia-cuda-nvrtc && python3 -m zipfile -e nvidia_cuda_nvrtc-*.whl /tmp/cudapkgs/nvrtc` (or set "
                  "NVRTC_LIBRARY)", file=sys.stderr)
    if nvrtc:
        print(f"NVRTC {nvrtc[2][0]}.{nvrtc[2][1]} ({nvrtc[1]})")
    driver_version = nvrtc[2][0] * 1000 + nvrtc[2][1] * 10 if nvrtc else 13000
    tool = compiler_id()
    headers_key = digest(tool, read(os.path.join(HERE, "emu.h")))
    runtime_headers = digest(tool, *(read(os.path.join(HERE, h)) for h in ("emu.h", "emu_runtime.h")),
                             read(os.path.join(CSPEED_INCLUDE, "CSpeedCUDA.h")))

    print(f"building {len(programs)} kernel programs and the runtime into {os.path.relpath(LIB, ROOT)}/")
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for family, source in programs:
            jobs.append(pool.submit(build_program, family, source, nvrtc, headers_key, log))
        runtime = []
        for src, extra in (("emu.cpp", []), ("driver.cpp", [f"-DSSEMU_DRIVER_VERSION={driver_version}"]),
                           ("cublaslt.cpp", ["-O3"])):
            obj = os.path.join(OBJ, src.replace(".cpp", ".o"))
            command = [CXX] + RUNTIME_FLAGS + extra + ["-c", os.path.join(HERE, src), "-o", obj]
            runtime.append(obj)
            jobs.append(pool.submit(step, obj, digest(command, runtime_headers, read(os.path.join(HERE, src))),
                                    command, log))
        results = [j.result() for j in jobs]
    kernel_objs = [r[0] for r in results[:len(programs)]]
    count = sum(r[1] for r in results[:len(programs)])

    def version_script(name, patterns):
        path = os.path.join(OBJ, name)
        write_if_changed(path, "{\n  global:\n" + "".join(f"    {p};\n" for p in patterns) + "  local: *;\n};\n")
        return path

    cuda_map = version_script("libcuda.map", ["cu*", "ssemu_*"])
    cuda = os.path.join(LIB, "libcuda.so.1")
    objs = [runtime[0], runtime[1]] + kernel_objs
    command = [CXX, "-shared", "-Wl,-soname,libcuda.so.1", "-Wl,-z,defs", f"-Wl,--version-script={cuda_map}", "-o",
               cuda] + objs + ["-lpthread"]
    step(cuda, digest(command, *(read(o, "rb") for o in objs)), command, log)
    lt_map = version_script("libcublasLt.map", ["cublasLt*"])
    cublas = os.path.join(LIB, "libcublasLt.so.13")
    command = [CXX, "-shared", "-Wl,-soname,libcublasLt.so.13", "-Wl,-z,defs", f"-Wl,--version-script={lt_map}",
               "-Wl,-rpath,$ORIGIN", "-o", cublas, runtime[2], cuda, "-lpthread"]
    step(cublas, digest(command, read(runtime[2], "rb"), read(cuda, "rb")), command, log)
    built = [cuda, cublas]
    # The NVRTC stand-in goes to its own directory: put it on SWIFTSPEED_CUDA_LIB_PATH only where no real NVRTC is.
    stand_in_dir = os.path.join(os.path.dirname(LIB), "nvrtc-stand-in")
    os.makedirs(stand_in_dir, exist_ok=True)
    stand_in = os.path.join(stand_in_dir, "libnvrtc.so.13")
    src = os.path.join(HERE, "nvrtc.cpp")
    command = [CXX, "-std=c++17", "-O1", "-fPIC", "-shared", "-Wl,-soname,libnvrtc.so.13", "-o", stand_in, src]
    step(stand_in, digest(command, read(src)), command, log)
    built.append(stand_in)
    nccl = build_nccl(cuda, runtime_headers, log)
    if nccl:
        built.append(nccl)
    print(f"done: {count} kernels; " + ", ".join(os.path.relpath(p, ROOT) for p in built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
