#!/usr/bin/env python3
"""Writes the legacy-format reference vectors in this directory with gguf-py's numpy quantizers.

Run once (gguf 0.19.0, numpy 1.26): `python make_vectors.py`. The outputs are committed; the
tests read them and never run Python. See README.md for the file list.
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS, COLS = 8, 256


def inputs():
    rng = np.random.default_rng(20250220)
    x = np.zeros((ROWS, COLS), dtype=np.float32)
    x[0] = rng.standard_normal(COLS)                                  # activations
    x[1] = 0.02 * rng.standard_normal(COLS)                           # weights
    x[2] = 100 * rng.standard_normal(COLS) * np.where(rng.random(COLS) < 0.05, 30, 1)  # outliers
    x[3] = rng.uniform(-1, 1, COLS)
    b = x[4].reshape(8, 32)                                            # one case per block
    b[0] = 0.0                                                         # all zero
    b[1] = 0.5                                                         # constant
    b[2, 17] = -3.0                                                    # one value
    b[3] = -rng.uniform(0.1, 2.0, 32)                                  # all negative
    b[4] = rng.uniform(0.1, 2.0, 32)                                   # all positive
    b[5] = np.where(np.arange(32) % 2 == 0, 1000.0, -999.0) * rng.uniform(0.9, 1.0, 32)
    b[6] = 1e-5 * rng.standard_normal(32)                              # f16-subnormal scales
    b[7, :16] = 7.0
    b[7, 16:] = -7.0                                                   # equal |max| of both signs
    x[5] = 10.0 ** rng.uniform(-8, -3, COLS) * rng.choice([-1, 1], COLS)
    x[6] = rng.integers(-40, 41, COLS) / 2.0                           # halves: rounding ties
    bf = (rng.standard_normal(COLS).astype(np.float32) * 0.02).view(np.uint32)
    x[7] = ((bf + 0x8000) & 0xFFFF0000).view(np.float32)               # bf16-exact, like mixtral
    return x


def specials():
    """Values that test f32 -> f16 / bf16 rounding: ties, overflow, subnormals, inf, NaN."""
    v = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan,
         1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-11 + 2**-20, -(1 + 2**-11),
         65504.0, 65519.99, 65520.0, 1e10, -1e10, 3.4e38,
         2**-14, 2**-24, 2**-25, 2**-25 * 1.0001, 3 * 2**-25, 2**-26, 1e-8, 6.1e-5, 1e-40, -1e-45,
         float(np.float32(1 + 2**-8)), float(np.float32(1 + 3 * 2**-8)),
         float(np.float32(1 + 2**-8 + 2**-20)), float(np.float32(3.3895314e38)), 0.1, -0.3, 1 / 3]
    rng = np.random.default_rng(7)
    v += list(rng.standard_normal(64 - len(v)) * 10.0 ** rng.uniform(-6, 6, 64 - len(v)))
    return np.array(v, dtype=np.float32)


def write(name, arr):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(np.ascontiguousarray(arr).tobytes())


def main():
    x = inputs()
    write("input.f32.bin", x)
    for t in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        q = quants.quantize(x, t)
        write(f"{t.name.lower()}.bin", q)
        write(f"{t.name.lower()}.dequant.f32.bin", quants.dequantize(q, t).astype(np.float32))
    s = specials()
    write("specials.f32.bin", s)
    write("specials.f16.bin", quants.quantize(s, T.F16))
    write("specials.bf16.bin", quants.quantize(s, T.BF16))
    write("input.f16.bin", quants.quantize(x, T.F16))
    write("input.bf16.bin", quants.quantize(x, T.BF16))


if __name__ == "__main__":
    main()
