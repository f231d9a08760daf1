#!/usr/bin/env python3
"""Writes Tests/SpeedIOTests/Fixtures/python_tiny.safetensors with the reference safetensors library.

SafetensorsTests reads it and checks every value bit for bit, so SwiftSpeed's reader is pinned to what
Hugging Face's writer produces (header layout, padding, tensor order, BF16). CI does not run this script;
rerun it by hand only to change the fixture, then update the expected values in the test:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install "safetensors>=0.8" numpy
    /tmp/st/bin/python scripts/make_safetensors_fixture.py
"""
import os

import numpy as np
from safetensors import TensorSpec, serialize_file

# numpy has no bfloat16, so BF16 values are given as raw bit patterns:
# 1.0, -2.0, 1.5, 3.140625, +inf, the smallest normal (2^-126)
BF16_BITS = np.array([0x3F80, 0xC000, 0x3FC0, 0x4049, 0x7F80, 0x0080], dtype="<u2")

ARRAYS = {
    "f32": (np.array([[1.5, -2.25, 3.0e38], [0.0, -0.0, np.inf]], dtype="<f4"), "float32"),
    "bf16": (BF16_BITS.reshape(2, 3), "bfloat16"),
    "f16": (np.array([[0.5, -1.0], [65504.0, 2.0**-24]], dtype="<f2"), "float16"),
    "f64": (np.array([1.0 / 3.0, -1e300, 2.5], dtype="<f8"), "float64"),
    "i64": (np.array([-9007199254740993, 2**62], dtype="<i8"), "int64"),
    "i32": (np.array([[-1], [0], [2147483647]], dtype="<i4"), "int32"),
    "scalar": (np.array(42.0, dtype="<f4"), "float32"),
    "empty": (np.zeros((0, 4), dtype="<f4"), "float32"),
}

METADATA = {"format": "pt", "source": "scripts/make_safetensors_fixture.py"}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "Tests", "SpeedIOTests", "Fixtures", "python_tiny.safetensors")
    specs = {
        name: TensorSpec(dtype=dtype, shape=list(array.shape), data_ptr=array.ctypes.data, data_len=array.nbytes)
        for name, (array, dtype) in ARRAYS.items()
    }
    serialize_file(specs, out, metadata=METADATA)  # ARRAYS keeps the buffers alive during the call
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
