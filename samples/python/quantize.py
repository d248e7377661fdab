#!/usr/bin/env python3
"""Quantizes one real weight matrix in every format libgrey knows and prints each format's error.

    python3 samples/python/quantize.py [MODEL.safetensors|MODEL.gguf]

The input is the first two-dimensional F32, F16 or BF16 tensor whose rows are a multiple of 128 long
(so that every format can hold it) of the model named on the command line, or else of the
all-MiniLM-L6-v2 weights scripts/fetch-model.sh caches. Without either, a deterministic synthetic
256 x 512 tensor stands in, and the sample says so. Every sample in samples/ picks the same input the
same way and prints the same lines (pip install ./bindings/python first).
"""

import os
import sys
from pathlib import Path

import numpy as np

import grey


def default_model() -> Path:
    """$GREY_CACHE_DIR, else $XDG_CACHE_HOME/libgrey, else ~/.cache/libgrey (as scripts/fetch-model.sh)."""
    if os.environ.get("GREY_CACHE_DIR"):
        cache = Path(os.environ["GREY_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        cache = Path(os.environ["XDG_CACHE_HOME"]) / "libgrey"
    else:
        cache = Path(os.environ.get("HOME", ".")) / ".cache" / "libgrey"
    return cache / "all-minilm-l6-v2" / "model.safetensors"


def synthetic(rows: int, cols: int) -> np.ndarray:
    """An LCG whose values are exact in float32, so every language makes the same tensor."""
    state, values = 12345, np.empty(rows * cols, dtype=np.float32)
    for i in range(values.size):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        values[i] = (np.float32(state >> 8) / np.float32(16777216) - np.float32(0.5)) / np.float32(16)
    return values.reshape(rows, cols)


def report_every_format(tensor) -> None:
    for name in grey.quant_formats():
        r = grey.quantize(tensor, name).report
        print(f"quantize {name}: bits_per_weight {r.bits_per_weight:.4f} rel_rmse {r.rel_rmse:.8f} "
              f"sqnr_db {r.sqnr_db:.4f} max_abs_err {r.max_abs_err:.8f}")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else default_model()
    try:
        if len(argv) <= 1 and not path.exists():
            print(f"note: no model at {path} (scripts/fetch-model.sh fetches one): using a synthetic tensor")
            print("input: synthetic [256, 512] F32")
            report_every_format(synthetic(256, 512))
            return 0
        with grey.Model(path) as model:
            for t in model:
                if t.dtype in ("F32", "F16", "BF16") and len(t.shape) == 2 and t.shape[1] % 128 == 0:
                    print(f"input: {t.name} [{t.shape[0]}, {t.shape[1]}] {t.dtype} of {path}")
                    report_every_format(t)  # quantized straight from the mapped file
                    return 0
        print(f"quantize: {path} has no 2-D float tensor with rows a multiple of 128", file=sys.stderr)
        return 1
    except grey.Error as err:
        print(f"quantize: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
