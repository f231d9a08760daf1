#!/usr/bin/env python3
"""Smoke test of the CUDA emulator's libcuda.so.1 and libcublasLt.so.13 (ctypes + numpy); run build.sh first.

One non-obvious invariant: device pointers are host addresses, but this test only reaches device memory through
cuMemcpy (as SwiftSpeed does); the SSEMU_CHECK and fault-handler checks run in child processes, because the
emulator reads its SSEMU_* settings once per process.

    python3 scripts/cuda-emu/smoke.py            # libraries from .build-emu/lib (or $SSEMU_LIB_DIR)
    python3 scripts/cuda-emu/smoke.py -v         # also show the emulator's explanation of each expected failure
"""

import ctypes
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LIB_DIR = os.environ.get("SSEMU_LIB_DIR", os.path.join(os.path.dirname(os.path.dirname(HERE)), ".build-emu", "lib"))
u64, i64, i32, u32, f32, f64, vp = (ctypes.c_uint64, ctypes.c_int64, ctypes.c_int32, ctypes.c_uint32, ctypes.c_float,
                                    ctypes.c_double, ctypes.c_void_p)
FAILS = []
TIMES = []
if "-v" not in sys.argv:
    os.environ.setdefault("SSEMU_QUIET", "1")   # the emulator explains every failing call on stderr; -v shows them


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        FAILS.append(name)


# ----- Loading -----

cu = ctypes.CDLL(os.path.join(LIB_DIR, "libcuda.so.1"))
lt = ctypes.CDLL(os.path.join(LIB_DIR, "libcublasLt.so.13"))
cu.cuLaunchKernel.argtypes = [vp] + [ctypes.c_uint] * 7 + [vp, vp, vp]
cu.cuMemAlloc_v2.argtypes = [ctypes.POINTER(u64), ctypes.c_size_t]
cu.cuMemFree_v2.argtypes = [u64]
cu.cuMemcpyHtoD_v2.argtypes = [u64, vp, ctypes.c_size_t]
cu.cuMemcpyDtoH_v2.argtypes = [vp, u64, ctypes.c_size_t]
cu.cuMemcpyDtoD_v2.argtypes = [u64, u64, ctypes.c_size_t]
cu.cuMemsetD8_v2.argtypes = [u64, ctypes.c_ubyte, ctypes.c_size_t]
cu.cuModuleGetFunction.argtypes = [ctypes.POINTER(vp), vp, ctypes.c_char_p]
cu.cuFuncSetAttribute.argtypes = [vp, ctypes.c_int, ctypes.c_int]
cu.cuModuleLoadData.argtypes = [ctypes.POINTER(vp), ctypes.c_char_p]
cu.cuEventElapsedTime_v2.argtypes = [ctypes.POINTER(f32), vp, vp]
for name in ("cuEventRecord", "cuEventSynchronize", "cuEventDestroy_v2"):
    getattr(cu, name).argtypes = [vp] + ([vp] if name == "cuEventRecord" else [])
lt.cublasLtMatmulDescSetAttribute.argtypes = [vp, ctypes.c_int, vp, ctypes.c_size_t]
lt.cublasLtMatrixLayoutCreate.argtypes = [ctypes.POINTER(vp), ctypes.c_int, u64, u64, i64]
lt.cublasLtMatrixLayoutSetAttribute.argtypes = [vp, ctypes.c_int, vp, ctypes.c_size_t]
lt.cublasLtMatmulPreferenceSetAttribute.argtypes = [vp, ctypes.c_int, vp, ctypes.c_size_t]
lt.cublasLtMatmulAlgoGetHeuristic.argtypes = [vp] * 7 + [ctypes.c_int, vp, ctypes.POINTER(ctypes.c_int)]
lt.cublasLtMatmul.argtypes = [vp, vp, vp, u64, vp, u64, vp, vp, u64, vp, u64, vp, vp, vp, ctypes.c_size_t, vp]
lt.cublasLtMatmulDescCreate.argtypes = [ctypes.POINTER(vp), ctypes.c_int, ctypes.c_int]


def ok(rc, what):
    if rc != 0:
        raise SystemExit(f"FAIL {what}: status {rc}")


class Dev:
    """A device buffer holding a numpy array's bytes."""

    def __init__(self, array=None, nbytes=None):
        self.nbytes = array.nbytes if array is not None else nbytes
        self.ptr = u64()
        ok(cu.cuMemAlloc_v2(ctypes.byref(self.ptr), self.nbytes), "cuMemAlloc_v2")
        if array is not None:
            ok(cu.cuMemcpyHtoD_v2(self.ptr, np.ascontiguousarray(array).ctypes.data, self.nbytes), "cuMemcpyHtoD_v2")

    def get(self, dtype, shape):
        out = np.empty(shape, dtype)
        ok(cu.cuMemcpyDtoH_v2(out.ctypes.data, self.ptr, out.nbytes), "cuMemcpyDtoH_v2")
        return out

    def free(self):
        ok(cu.cuMemFree_v2(self.ptr), "cuMemFree_v2")


FUNCTIONS = {}


def function(name):
    if name not in FUNCTIONS:
        f = vp()
        ok(cu.cuModuleGetFunction(ctypes.byref(f), MODULE, name.encode()), f"cuModuleGetFunction({name})")
        FUNCTIONS[name] = f
    return FUNCTIONS[name]


def launch(name, grid, block, args, smem=0):
    """cuLaunchKernel with `args` as ctypes values (a Dev passes its device pointer); returns the CUresult."""
    values = [u64(a.ptr.value) if isinstance(a, Dev) else a for a in args]
    params = (vp * len(values))(*[ctypes.cast(ctypes.pointer(v), vp) for v in values])
    grid, block = tuple(grid) + (1,) * (3 - len(grid)), tuple(block) + (1,) * (3 - len(block))
    return cu.cuLaunchKernel(function(name), *grid, *block, smem, None, params, None)


def bf16(x):
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7fff + ((u >> 16) & 1)) >> 16) & 0xffff).astype(np.uint16)


def from_bf16(h):
    return (np.asarray(h, np.uint16).astype(np.uint32) << 16).view(np.float32)


def child(code, **env):
    """Runs `code` (after this file's setup) in a fresh process with extra environment; returns (rc, stderr)."""
    script = (f"__file__ = {__file__!r}\n" + open(__file__).read().split("# ===== CHILD" + "-SPLIT =====")[0]
              + "\nsetup()\n" + code)
    r = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    return r.returncode, r.stderr


MODULE = vp()


def setup():
    ok(cu.cuInit(0), "cuInit")
    ctx = vp()
    ok(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), 0), "cuDevicePrimaryCtxRetain")
    ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    # The emulator cannot run PTX or SASS: any image will do, and names come from the host-compiled registry.
    ok(cu.cuModuleLoadData(ctypes.byref(MODULE), b".version 9.5\n.target sm_90\n"), "cuModuleLoadData")
    return ctx

# ===== CHILD-SPLIT =====


def test_driver():
    print("== driver")
    count = ctypes.c_int()
    check("calls before cuInit fail with CUDA_ERROR_NOT_INITIALIZED", cu.cuDeviceGetCount(ctypes.byref(count)) == 3)
    ctx = setup()
    ok(cu.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    name = ctypes.create_string_buffer(256)
    ok(cu.cuDeviceGetName(name, 256, 0), "cuDeviceGetName")
    major, minor, sms, optin = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    for attr, v in ((75, major), (76, minor), (16, sms), (97, optin)):
        ok(cu.cuDeviceGetAttribute(ctypes.byref(v), attr, 0), "cuDeviceGetAttribute")
    total, free, tot2 = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
    ok(cu.cuDeviceTotalMem_v2(ctypes.byref(total), 0), "cuDeviceTotalMem_v2")
    check("device query", count.value == 1 and name.value == b"SwiftSpeed CUDA emulator" and (major.value, minor.value)
          == (9, 0) and sms.value == 2 and optin.value == 232448 and total.value == 8 << 30,
          f"{name.value.decode()}, sm_{major.value}{minor.value}, {sms.value} SMs, {total.value >> 30} GiB")
    check("cuDeviceGet of ordinal 1 fails with CUDA_ERROR_INVALID_DEVICE", cu.cuDeviceGet(ctypes.byref(count), 1) == 101)
    text = ctypes.c_char_p()
    ok(cu.cuGetErrorName(701, ctypes.byref(text)), "cuGetErrorName")
    check("cuGetErrorName", text.value == b"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES")
    ok(cu.cuGetErrorString(3, ctypes.byref(text)), "cuGetErrorString")
    check("cuGetErrorString", text.value == b"initialization error")
    version = ctypes.c_int()
    ok(cu.cuDriverGetVersion(ctypes.byref(version)), "cuDriverGetVersion")
    check("cuDriverGetVersion", version.value >= 12000, str(version.value))

    ok(cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(tot2)), "cuMemGetInfo_v2")
    d = Dev(nbytes=1 << 20)
    free2 = ctypes.c_size_t()
    ok(cu.cuMemGetInfo_v2(ctypes.byref(free2), ctypes.byref(tot2)), "cuMemGetInfo_v2")
    check("cuMemGetInfo counts live bytes", free.value - free2.value == 1 << 20 and tot2.value == total.value)
    check("cuMemAlloc is 256-byte aligned", d.ptr.value % 256 == 0)
    x = np.arange(1 << 18, dtype=np.float32)
    ok(cu.cuMemcpyHtoD_v2(d.ptr, x.ctypes.data, x.nbytes), "HtoD")
    e = Dev(nbytes=1 << 20)
    ok(cu.cuMemcpyDtoD_v2(e.ptr, d.ptr, x.nbytes), "DtoD")
    ok(cu.cuMemsetD8_v2(u64(e.ptr.value + 4), 0, 4), "memset")
    y = e.get(np.float32, x.shape)
    check("HtoD, DtoD, memset, DtoH round trip", y[1] == 0 and np.array_equal(np.delete(y, 1), np.delete(x, 1)))
    check("a copy past the end of a block fails with CUDA_ERROR_INVALID_VALUE",
          cu.cuMemcpyDtoH_v2(y.ctypes.data, u64(d.ptr.value + 16), 1 << 20) == 1)
    check("cuMemFree of an unknown pointer fails with CUDA_ERROR_INVALID_VALUE",
          cu.cuMemFree_v2(u64(d.ptr.value + 256)) == 1)
    d.free()
    e.free()
    check("cuMemFree twice fails", cu.cuMemFree_v2(d.ptr) == 1)

    results = []
    t = threading.Thread(target=lambda: results.append(cu.cuMemAlloc_v2(ctypes.byref(u64()), 16)))
    t.start()
    t.join()
    check("a thread with no current context gets CUDA_ERROR_INVALID_CONTEXT", results == [201])

    start, end = vp(), vp()
    ok(cu.cuEventCreate(ctypes.byref(start), 0), "cuEventCreate")
    ok(cu.cuEventCreate(ctypes.byref(end), 0), "cuEventCreate")
    ok(cu.cuEventRecord(start, None), "cuEventRecord")
    time.sleep(0.02)
    ok(cu.cuEventRecord(end, None), "cuEventRecord")
    ok(cu.cuEventSynchronize(end), "cuEventSynchronize")
    ms = f32()
    ok(cu.cuEventElapsedTime_v2(ctypes.byref(ms), start, end), "cuEventElapsedTime_v2")
    check("cuEventElapsedTime_v2 measures host time", 15 < ms.value < 500, f"{ms.value:.1f} ms for a 20 ms sleep")
    ok(cu.cuEventDestroy_v2(start), "cuEventDestroy_v2")
    ok(cu.cuEventDestroy_v2(end), "cuEventDestroy_v2")
    stream = vp()
    ok(cu.cuStreamCreate(ctypes.byref(stream), 1), "cuStreamCreate")
    ok(cu.cuStreamSynchronize(stream), "cuStreamSynchronize")
    ok(cu.cuStreamDestroy_v2(stream), "cuStreamDestroy_v2")
    check("destroyed stream is an invalid handle", cu.cuStreamSynchronize(stream) == 400)
    return ctx


def test_kernels():
    print("== kernels")
    f = vp()
    check("cuModuleGetFunction of an unknown name fails with CUDA_ERROR_NOT_FOUND",
          cu.cuModuleGetFunction(ctypes.byref(f), MODULE, b"ss_no_such_kernel") == 500)

    # fill: exact, and nothing written past n
    n = 1000
    out = Dev(np.full(n + 24, 7, np.uint32))
    bits = np.float32(1.5).view(np.uint32)
    ok(launch("ss_fill_b32", (1,), (256,), [out, i64(n), u32(bits)]), "launch ss_fill_b32")
    got = out.get(np.uint32, n + 24)
    check("ss_fill_b32", np.all(got[:n] == bits) and np.all(got[n:] == 7))

    # unary exp against numpy (libm vs numpy: within 2 ulp)
    rs = np.random.RandomState(0)
    x = rs.uniform(-20, 20, 5000).astype(np.float32)
    dx, dy = Dev(x), Dev(nbytes=x.nbytes)
    ok(launch("ss_unary_exp_f32", (5,), (256,), [dx, dy, i64(x.size), f64(0), f64(0)]), "launch ss_unary_exp_f32")
    y = dy.get(np.float32, x.shape)
    ulps = np.abs(y.view(np.int32).astype(np.int64) - np.exp(x).view(np.int32).astype(np.int64))
    check("ss_unary_exp_f32", ulps.max() <= 2, f"max {ulps.max()} ulp vs numpy")

    # attention forward (d = 64: 66560 bytes of dynamic shared memory, so the opt-in is required)
    B, H, T, D = 2, 3, 100, 64
    q, k, v = (rs.randn(B, H, T, D).astype(np.float32) for _ in range(3))
    dq, dk, dv = Dev(q), Dev(k), Dev(v)
    dout, dlse = Dev(nbytes=q.nbytes), Dev(nbytes=B * H * T * 4)
    smem = 4 * (64 * 65 + 2 * 64 * 65 + 64 * 65)
    scale = 1.0 / np.sqrt(D)
    args = [dq, dk, dv, dout, dlse, i64(B * H), i32(T), i32(D), f32(scale), i32(1)]
    grid = ((T + 63) // 64, B * H)
    check("66560 B of dynamic shared memory without the opt-in fails with CUDA_ERROR_INVALID_VALUE",
          launch("ss_attention_fwd_f32_d64", grid, (256,), args, smem) == 1)
    f = function("ss_attention_fwd_f32_d64")
    check("an opt-in above sm_90's 232448 B fails", cu.cuFuncSetAttribute(f, 8, 232448 + 1024) == 1)
    ok(cu.cuFuncSetAttribute(f, 8, smem), "cuFuncSetAttribute")
    # Resource checks need the build's NVRTC metadata; the probes do no work (bh = 0, rows = 0) if they do launch.
    idle = args[:5] + [i64(0)] + args[6:]
    bounded = launch("ss_attention_fwd_f32_d64", grid, (512,), idle, smem)
    if bounded == 0:
        print("SKIP launch-bounds and register checks: the emulator was built without NVRTC")
    else:
        check("more threads than __launch_bounds__(256) fail with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", bounded == 701)
    ok(launch("ss_attention_fwd_f32_d64", grid, (256,), args, smem), "launch ss_attention_fwd_f32_d64")
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k.astype(np.float64)) * np.float64(np.float32(scale))
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    m = s.max(-1, keepdims=True)
    p = np.exp(s - m)
    l = p.sum(-1, keepdims=True)
    ref, ref_lse = (p / l) @ v.astype(np.float64), (m + np.log(l))[..., 0]
    o, lse = dout.get(np.float32, q.shape), dlse.get(np.float32, (B, H, T))
    err = np.abs(o - ref).max()
    check("ss_attention_fwd_f32_d64 (causal)", err < 1e-5 and np.abs(lse - ref_lse).max() < 1e-5, f"max abs err {err:.2g}")

    # launch-configuration checks an H100 makes
    check("block of 1025 threads fails", launch("ss_fill_b32", (1,), (1025,), [out, i64(0), u32(0)]) == 1)
    check("grid.y of 65536 fails", launch("ss_fill_b32", (1, 65536), (32,), [out, i64(0), u32(0)]) == 1)
    check("a zero grid dimension fails", launch("ss_fill_b32", (0,), (32,), [out, i64(0), u32(0)]) == 1)
    values = [u64(out.ptr.value), i64(0), u32(0)]
    params = (vp * 3)(*[ctypes.cast(ctypes.pointer(v), vp) for v in values])
    extra = (vp * 1)()
    check("`extra` fails with CUDA_ERROR_INVALID_VALUE",
          cu.cuLaunchKernel(function("ss_fill_b32"), 1, 1, 1, 32, 1, 1, 0, None, params, extra) == 1)
    # ss_layernorm_bwd_f64 has no __launch_bounds__ and 68 registers on sm_90: 1024 threads do not fit 64K registers.
    ln = [u64(0)] * 8 + [i64(0), i64(0)]
    if bounded != 0:
        check("a block too big for the kernel's registers fails with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
              launch("ss_layernorm_bwd_f64", (1,), (1024,), ln) == 701)

    # per-launch overhead (ctypes call included)
    values = [u64(out.ptr.value), i64(0), u32(0)]
    params = (vp * 3)(*[ctypes.cast(ctypes.pointer(v), vp) for v in values])
    fill = function("ss_fill_b32")
    timings = {}
    for threads in (32, 256, 1024):
        reps = 2000 if threads < 1024 else 500
        t0 = time.perf_counter()
        for _ in range(reps):
            cu.cuLaunchKernel(fill, 1, 1, 1, threads, 1, 1, 0, None, params, None)
        timings[threads] = (time.perf_counter() - t0) / reps * 1e6
    print("     launch overhead, 1 block, no work: " + ", ".join(f"{t} threads {us:.1f} us" for t, us in timings.items()))
    for d in (out, dx, dy, dq, dk, dv, dout, dlse):
        d.free()


# ----- cuBLASLt -----

def layout(dtype, rows, cols, ld, order=0, batch=1, stride=0):
    h = vp()
    ok(lt.cublasLtMatrixLayoutCreate(ctypes.byref(h), dtype, rows, cols, ld), "cublasLtMatrixLayoutCreate")
    if order:
        ok(lt.cublasLtMatrixLayoutSetAttribute(h, 1, ctypes.byref(i32(order)), 4), "ORDER")
    if batch != 1:
        ok(lt.cublasLtMatrixLayoutSetAttribute(h, 5, ctypes.byref(i32(batch)), 4), "BATCH_COUNT")
        ok(lt.cublasLtMatrixLayoutSetAttribute(h, 6, ctypes.byref(i64(stride)), 8), "STRIDED_BATCH_OFFSET")
    return h


def stored(op, order):
    """How a logical row-major matrix `op` (already transposed when trans) is laid out as (rows, cols, buffer)."""
    return op if order == 1 else op.T   # ROW: row-major as is; COL: column-major = row-major of the transpose


def matmul(handle, m, n, k, ta, tb, dtype, order=0, batch=1, broadcast_a=False, alpha=1.0, beta=0.0, alias=False,
           bias=False, rs=np.random.RandomState(1)):
    """One cublasLtMatmul on random data; returns (D from the emulator, fp32 k-order reference, float64 reference)."""
    np_t = np.float32 if dtype == 0 else np.uint16
    enc = (lambda a: a.astype(np.float32)) if dtype == 0 else bf16
    dec = (lambda a: a) if dtype == 0 else from_bf16
    ab = 1 if broadcast_a else batch
    A = dec(enc(rs.randn(ab, m, k)))          # logical op(A): m x k
    Bm = dec(enc(rs.randn(batch, k, n)))      # logical op(B): k x n
    C = dec(enc(rs.randn(batch, m, n)))
    bias_v = dec(enc(rs.randn(m)))

    def pack(mats, trans):
        """Stores each logical matrix (transposed back when `trans`) in `order`; returns (buffer, rows, cols, ld)."""
        store = [mt.T if trans else mt for mt in mats]        # what is stored: op^-1
        rows, cols = store[0].shape
        ld = (cols if order == 1 else rows) + 3               # padded leading dimension
        buf = np.zeros((len(mats), (rows if order == 1 else cols), ld), np.float32)
        for i, s in enumerate(store):
            phys = s if order == 1 else s.T                   # row-major view of the memory
            buf[i, :, :phys.shape[1]] = phys
        return buf, rows, cols, ld

    abuf, ar, ac, ald = pack(A, ta)
    bbuf, br, bc, bld = pack(Bm, tb)
    cbuf, cr, cc, cld = pack(C, False)
    dA, dB, dC = Dev(enc(abuf)), Dev(enc(bbuf)), Dev(enc(cbuf))
    dD = dC if alias else Dev(nbytes=cbuf.size * np.dtype(np_t).itemsize)
    dBias = Dev(enc(bias_v))
    desc = vp()
    ok(lt.cublasLtMatmulDescCreate(ctypes.byref(desc), 68, 0), "cublasLtMatmulDescCreate")
    ok(lt.cublasLtMatmulDescSetAttribute(desc, 3, ctypes.byref(i32(int(ta))), 4), "TRANSA")
    ok(lt.cublasLtMatmulDescSetAttribute(desc, 4, ctypes.byref(i32(int(tb))), 4), "TRANSB")
    if bias:
        ok(lt.cublasLtMatmulDescSetAttribute(desc, 7, ctypes.byref(u32(4)), 4), "EPILOGUE")
        ok(lt.cublasLtMatmulDescSetAttribute(desc, 8, ctypes.byref(u64(dBias.ptr.value)), 8), "BIAS_POINTER")
    la = layout(dtype, ar, ac, ald, order, batch, 0 if broadcast_a else abuf[0].size)
    lb = layout(dtype, br, bc, bld, order, batch, bbuf[0].size)
    lc = layout(dtype, cr, cc, cld, order, batch, cbuf[0].size)
    pref = vp()
    ok(lt.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "cublasLtMatmulPreferenceCreate")
    ok(lt.cublasLtMatmulPreferenceSetAttribute(pref, 1, ctypes.byref(u64(1 << 22)), 8), "MAX_WORKSPACE_BYTES")
    result = (ctypes.c_byte * 96)()
    count = ctypes.c_int()
    ok(lt.cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1, result, ctypes.byref(count)), "heuristic")
    assert count.value == 1
    t0 = time.perf_counter()
    ok(lt.cublasLtMatmul(handle, desc, ctypes.byref(f32(alpha)), dA.ptr.value, la, dB.ptr.value, lb,
                         ctypes.byref(f32(beta)), dC.ptr.value, lc, dD.ptr.value, lc, result, None, 0, None),
       "cublasLtMatmul")
    TIMES.append(time.perf_counter() - t0)
    out = dD.get(np_t, cbuf.shape)
    got = np.stack([dec(out[i])[:m, :n] if order == 1 else dec(out[i])[:n, :m].T for i in range(batch)])
    # fp32 model of the emulator: k-order accumulation of rounded products, alpha/beta/bias each rounded
    acc = np.zeros((batch, m, n), np.float32)
    Ab = np.broadcast_to(A, (batch, m, k)).astype(np.float32)
    for kk in range(k):
        acc = acc + Ab[:, :, kk:kk + 1] * Bm[:, kk:kk + 1, :].astype(np.float32)
    model = np.float32(alpha) * acc
    if beta != 0:
        model = model + np.float32(beta) * C.astype(np.float32)
    if bias:
        model = model + bias_v.astype(np.float32)[None, :, None]
    model = dec(enc(model))
    exact = alpha * np.matmul(np.broadcast_to(A, (batch, m, k)).astype(np.float64), Bm.astype(np.float64)) + beta * C
    if bias:
        exact = exact + bias_v[None, :, None]
    for h in (la, lb, lc):
        lt.cublasLtMatrixLayoutDestroy(h)
    lt.cublasLtMatmulPreferenceDestroy(pref)
    lt.cublasLtMatmulDescDestroy(desc)
    for dbuf in {id(x): x for x in (dA, dB, dC, dD, dBias)}.values():
        dbuf.free()
    return got, model, exact


def test_cublaslt():
    print("== cuBLASLt")
    handle = vp()
    ok(lt.cublasLtCreate(ctypes.byref(handle)), "cublasLtCreate")
    cases = []
    for dtype, tname in ((0, "fp32"), (14, "bf16")):
        for ta in (0, 1):
            for tb in (0, 1):
                cases.append((f"{tname} {'NT'[ta]}{'NT'[tb]} col", dict(dtype=dtype, ta=ta, tb=tb)))
        cases.append((f"{tname} NN row order", dict(dtype=dtype, ta=0, tb=0, order=1)))
        cases.append((f"{tname} TN row order", dict(dtype=dtype, ta=1, tb=0, order=1)))
        cases.append((f"{tname} batched 3, A broadcast (stride 0)", dict(dtype=dtype, ta=0, tb=1, batch=3, broadcast_a=True)))
        cases.append((f"{tname} alpha 0.5, beta 2", dict(dtype=dtype, ta=1, tb=0, alpha=0.5, beta=2.0)))
        cases.append((f"{tname} C aliasing D, beta 1", dict(dtype=dtype, ta=0, tb=0, beta=1.0, alias=True)))
        cases.append((f"{tname} bias epilogue, batched", dict(dtype=dtype, ta=0, tb=1, batch=2, bias=True)))
    for name, kw in cases:
        m, n, k = 37, 29, 53
        got, model, exact = matmul(handle, m, n, k, **kw)
        err = np.abs(got - exact).max() / max(1.0, np.abs(exact).max())
        tol = 1e-5 if kw["dtype"] == 0 else 1e-2
        check(f"cublasLtMatmul {name}", np.array_equal(got, model) and err < tol,
              f"bit-equal to the fp32 k-order model, rel err {err:.1g} vs float64")

    # shape and type mismatches
    desc, pref = vp(), vp()
    ok(lt.cublasLtMatmulDescCreate(ctypes.byref(desc), 68, 0), "desc")
    ok(lt.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "pref")
    la, lb, lc = layout(0, 4, 5, 4), layout(0, 6, 3, 6), layout(0, 4, 3, 4)
    result, count = (ctypes.c_byte * 96)(), ctypes.c_int()
    check("heuristic rejects k mismatch with CUBLAS_STATUS_INVALID_VALUE",
          lt.cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1, result, ctypes.byref(count)) == 7
          and count.value == 0)
    lh = layout(2, 4, 5, 4)
    check("heuristic rejects fp16 A with fp32 B with CUBLAS_STATUS_NOT_SUPPORTED",
          lt.cublasLtMatmulAlgoGetHeuristic(handle, desc, lh, la, lc, lc, pref, 1, result, ctypes.byref(count)) == 15)
    ldbad = layout(0, 4, 5, 3)
    check("ld < rows is CUBLAS_STATUS_INVALID_VALUE",
          lt.cublasLtMatmulAlgoGetHeuristic(handle, desc, ldbad, layout(0, 5, 3, 5), lc, lc, pref, 1, result,
                                            ctypes.byref(count)) == 7)

    for size in (512, 1024):
        matmul(handle, size, size, size, 0, 1, 0)
        print(f"     {size}x{size}x{size} fp32 cublasLtMatmul: {TIMES[-1] * 1e3:.0f} ms")
    ok(lt.cublasLtDestroy(handle), "cublasLtDestroy")


def test_checks():
    print("== SSEMU_CHECK and faults (child processes)")
    code = ("d = Dev(nbytes=4000)\n"
            "ok(launch('ss_fill_b32', (1,), (256,), [d, i64(1008), u32(1)]), 'fill')\n"
            "ok(cu.cuCtxSynchronize(), 'sync')\n")
    rc, err = child(code, SSEMU_CHECK="1")
    check("SSEMU_CHECK reports a kernel writing past its block", rc == 0 and "written out of bounds" in err
          and "ss_fill_b32" in err, err.strip().splitlines()[-1] if err.strip() else "no report")
    rc, err = child("launch('ss_fill_b32', (1,), (32,), [u64(64), i64(32), u32(1)])\n", SSEMU_QUIET="1")
    check("a kernel fault names the kernel, block and thread", rc != 0 and "SIGSEGV in kernel ss_fill_b32" in err,
          err.strip().splitlines()[0] if err.strip() else f"rc {rc}")
    rc, err = child("d = Dev(nbytes=1 << 20)\n"
                    "launch('ss_attention_fwd_f32_d32', (1, 1), (256,), [d, d, d, d, d, i64(1), i32(64), i32(32), "
                    "f32(1), i32(0)], 4096)\n")
    check("a kernel running off its dynamic shared memory faults with a clear message",
          rc != 0 and "past the end of the launch's 4096 bytes of dynamic shared memory" in err)
    rc, err = child("ok(launch('ss_fill_b32', (1,), (32,), [Dev(nbytes=64), i64(1), u32(1)]), 'fill')\n", SSEMU_TRACE="1")
    check("SSEMU_TRACE=1 prints launches", rc == 0 and "ssemu: launch ss_fill_b32 grid (1,1,1) block (32,1,1) smem 0" in err)


def test_modules():
    print("== module images (NVRTC, child process)")
    sys.path.insert(0, os.path.dirname(HERE))
    sys.dont_write_bytecode = True
    import check_cuda_kernels
    try:
        check_cuda_kernels.load_nvrtc()
    except SystemExit:
        print("SKIP no libnvrtc (see build.py)")
        return
    code = (f"sys.path[:0] = [{HERE!r}, {os.path.dirname(HERE)!r}]\nsys.dont_write_bytecode = True\n" + r'''
import build, check_cuda_kernels as chk
lib = chk.load_nvrtc()[0]
src = dict(chk.extract_sources())["optim"]
ptx, cubin, _ = build.nvrtc_compile(lib, src, "optim.cu", build.NVRTC_OPTIONS)
def load(image):
    m = vp()
    return cu.cuModuleLoadData(ctypes.byref(m), image), m
rc, m = load(cubin)
f = vp()
print("cubin", rc, cu.cuModuleGetFunction(ctypes.byref(f), m, b"ss_adam_f32"),
      cu.cuModuleGetFunction(ctypes.byref(f), m, b"ss_fill_b32"), flush=True)
rc, m = load(ptx.encode() + b"\0")
print("ptx", rc, cu.cuModuleGetFunction(ctypes.byref(f), m, b"ss_adam_bf16"), flush=True)
sys.stderr.write("--- edited\n"); sys.stderr.flush()
edited = build.nvrtc_compile(lib, src + 'extern "C" __global__ void ss_extra_kernel(float* x) { x[0] = 1; }\n',
                             "optim.cu", build.NVRTC_OPTIONS)[1]
print("edited", load(edited)[0], flush=True)
old = build.nvrtc_compile(lib, 'extern "C" __global__ void k(float* x) { x[0] = 1; }', "k.cu",
                          ["--gpu-architecture=sm_80"])[1]
print("sm_80", load(old)[0], flush=True)
''')
    script = (f"__file__ = {__file__!r}\n" + open(__file__).read().split("# ===== CHILD" + "-SPLIT =====")[0]
              + "\nsetup()\n" + code)
    r = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SSEMU_QUIET": "0"}, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=300)
    if r.returncode != 0:
        print(f"     child exited with {r.returncode}: {r.stderr.strip()[-2000:]}")
    out = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines())
    before, _, after = r.stderr.partition("--- edited")
    check("the optim cubin loads; its kernels resolve, other programs' do not (CUDA_ERROR_NOT_FOUND)",
          out.get("cubin") == "0 0 500" and "warning" not in before, out.get("cubin", "") + " " + before.strip()[-400:])
    check("the optim PTX loads", out.get("ptx") == "0 0")
    check("an image built from edited sources loads with a warning", out.get("edited") == "0" and "differs" in after)
    check("an sm_80 cubin fails with CUDA_ERROR_NO_BINARY_FOR_GPU", out.get("sm_80") == "209")


def nccl_worker():
    """One rank under mpirun: collectives on device buffers against numpy; prints `rank R ok` or the failures."""
    setup()
    nc = ctypes.CDLL(os.path.join(LIB_DIR, "libnccl.so.2"))   # RTLD_LOCAL, as SwiftSpeed's loader opens it
    class UniqueId(ctypes.Structure):   # passed by value: a Structure, not an array (ctypes passes arrays as pointers)
        _fields_ = [("internal", ctypes.c_char * 128)]
    nc.ncclCommInitRank.argtypes = [ctypes.POINTER(vp), ctypes.c_int, UniqueId, ctypes.c_int]
    for name in ("ncclAllReduce", "ncclReduceScatter"):
        getattr(nc, name).argtypes = [u64, u64, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, vp, vp]
    nc.ncclAllGather.argtypes = [u64, u64, ctypes.c_size_t, ctypes.c_int, vp, vp]
    nc.ncclBroadcast.argtypes = [u64, u64, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, vp, vp]
    rank, size = int(os.environ["OMPI_COMM_WORLD_RANK"]), int(os.environ["OMPI_COMM_WORLD_SIZE"])
    uid = UniqueId(b"smoke-test-id")   # any bytes, the same on every rank
    comm = vp()
    ok(nc.ncclCommInitRank(ctypes.byref(comm), size, uid, rank), "ncclCommInitRank")
    bad = []
    data = [np.arange(10, dtype=np.float32) * (r + 1) for r in range(size)]
    d = Dev(data[rank])
    ok(nc.ncclAllReduce(d.ptr.value, d.ptr.value, 10, 7, 0, comm, None), "ncclAllReduce")   # in place, f32 sum
    if not np.array_equal(d.get(np.float32, 10), sum(data)):
        bad.append("allreduce f32 sum")
    h = [bf16(np.linspace(-1, 1, 8) * (r + 2)) for r in range(size)]
    db, out = Dev(h[rank]), Dev(nbytes=16)
    ok(nc.ncclAllReduce(db.ptr.value, out.ptr.value, 8, 9, 4, comm, None), "ncclAllReduce")   # bf16 avg
    want = bf16(sum(from_bf16(x) for x in h) / np.float32(size))
    if not np.array_equal(out.get(np.uint16, 8), want):
        bad.append("allreduce bf16 avg")
    di = Dev(np.array([rank, -rank, 7], np.int32))
    ok(nc.ncclAllReduce(di.ptr.value, di.ptr.value, 3, 2, 2, comm, None), "ncclAllReduce")   # i32 max
    if not np.array_equal(di.get(np.int32, 3), [size - 1, 0, 7]):
        bad.append("allreduce i32 max")
    full = [np.arange(4 * size, dtype=np.float64) + 100 * r for r in range(size)]
    dr, piece = Dev(full[rank]), Dev(nbytes=32)
    ok(nc.ncclReduceScatter(dr.ptr.value, piece.ptr.value, 4, 8, 0, comm, None), "ncclReduceScatter")
    if not np.array_equal(piece.get(np.float64, 4), sum(full)[4 * rank:4 * rank + 4]):
        bad.append("reduce-scatter f64")
    gathered = Dev(np.zeros(3 * size, np.float32))
    mine = u64(gathered.ptr.value + 12 * rank)
    ok(cu.cuMemcpyHtoD_v2(mine, np.full(3, rank, np.float32).ctypes.data, 12), "HtoD")
    ok(nc.ncclAllGather(mine.value, gathered.ptr.value, 3, 7, comm, None), "ncclAllGather")   # in place
    if not np.array_equal(gathered.get(np.float32, 3 * size), np.repeat(np.arange(size, dtype=np.float32), 3)):
        bad.append("allgather in place")
    dbc = Dev(np.full(5, rank, np.int64))
    ok(nc.ncclBroadcast(dbc.ptr.value, dbc.ptr.value, 5, 4, 1, comm, None), "ncclBroadcast")
    if not np.array_equal(dbc.get(np.int64, 5), np.full(5, 1)):
        bad.append("broadcast from rank 1")
    host = np.zeros(4, np.float32)
    if nc.ncclAllReduce(host.ctypes.data, host.ctypes.data, 4, 7, 0, comm, None) != 4:
        bad.append("host buffers are rejected")
    ok(nc.ncclCommDestroy(comm), "ncclCommDestroy")
    print(f"rank {rank} " + ("ok" if not bad else "FAILED " + ", ".join(bad)), flush=True)


def test_nccl():
    print("== NCCL over MPI (mpirun -np 2)")
    if not os.path.exists(os.path.join(LIB_DIR, "libnccl.so.2")):
        print("SKIP no libnccl.so.2 (build.py builds it when OpenMPI's mpicc is installed)")
        return
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    r = subprocess.run(["mpirun"] + root + ["--oversubscribe", "-np", "2", sys.executable, os.path.abspath(__file__),
                        "--nccl-worker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    passed = sorted(re.findall(r"rank (\d+) ok", r.stdout))   # mpirun may interleave the ranks' lines
    check("allreduce (f32 sum in place, bf16 avg, i32 max), reduce-scatter, allgather in place, broadcast; "
          "host buffers rejected", r.returncode == 0 and passed == ["0", "1"] and "FAILED" not in r.stdout,
          f"ranks ok: {', '.join(passed)}" if passed else (r.stdout + r.stderr).strip()[-500:])


def main():
    if "--nccl-worker" in sys.argv:
        nccl_worker()
        return 0
    print(f"libraries: {LIB_DIR}")
    test_driver()
    test_kernels()
    test_cublaslt()
    test_checks()
    test_modules()
    test_nccl()
    print(f"\n{len(FAILS)} failed: {', '.join(FAILS)}" if FAILS else "\nALL PASSED")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
