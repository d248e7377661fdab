#!/usr/bin/env python3
"""greyctl's 4-bit grouped quantization error against an independent round-to-nearest reference.

For every tensor greyctl quantizes, the reference groups the weight as rows = its first dimension and
row length = the product of the others, with a ragged last group per row, and rounds to nearest with
float64 scales (no fp16 storage of scales, no clipping search):

  int4-gG      asymmetric: scale = (max - min) / 15, q = round((x - min) / scale) in 0..15, x' = min + q*scale
  int4-sym-gG  symmetric:  scale = absmax / 7,       q = round(x / scale) in -8..7,    x' = q*scale
  nf4          QLoRA's 16 normal-float levels times the block's absmax, blocks of 64

It then runs greyctl with --calibration rtn and --calibration mse on the same file and prints, side by
side, the whole-model rel RMSE (sqrt(sum err^2 / sum x^2) over the quantized tensors) of the reference,
of greyctl rtn and of greyctl mse. Only numpy is needed.

  python3 bench/quant_reference_rmse.py --greyctl build/default/bin/greyctl MODEL.safetensors [...]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import safetensors_io as st  # noqa: E402 - the project's one safetensors reader and writer

NF4_LEVELS = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0])

FORMATS = {  # name: (kind, group)
    "int4-g32": ("asym", 32), "int4-g64": ("asym", 64), "int4-g128": ("asym", 128),
    "int4-sym-g128": ("sym", 128), "nf4": ("nf4", 64),
}


def float_tensors(path):
    """The model's float tensors as float64 arrays in their shapes."""
    tensors, _ = st.read(path)
    out = {}
    for name, t in tensors.items():
        if t.dtype == "BF16":
            out[name] = (st.array(t).astype(np.uint32) << 16).view("<f4").astype(np.float64)
        elif t.dtype in ("F32", "F16"):
            out[name] = st.array(t).astype(np.float64)
    return out


def grouped(tensor, group):
    """Yields (row-major) groups of one row each, the last of each row ragged."""
    rows = tensor.shape[0]
    matrix = tensor.reshape(rows, -1)
    length = matrix.shape[1]
    for begin in range(0, length, group):
        yield matrix[:, begin:min(begin + group, length)]


def reference_error(tensor, kind, group):
    """Sum of squared errors of the reference quantization of one tensor."""
    total = 0.0
    for block in grouped(tensor, group):
        if kind == "asym":
            low = block.min(axis=1, keepdims=True)
            high = block.max(axis=1, keepdims=True)
            scale = (high - low) / 15.0
            safe = np.where(scale > 0, scale, 1.0)
            q = np.clip(np.floor((block - low) / safe + 0.5), 0, 15)
            restored = low + q * scale
        elif kind == "sym":
            scale = np.abs(block).max(axis=1, keepdims=True) / 7.0
            safe = np.where(scale > 0, scale, 1.0)
            q = np.clip(np.round(block / safe), -8, 7)
            restored = q * scale
        else:
            absmax = np.abs(block).max(axis=1, keepdims=True)
            safe = np.where(absmax > 0, absmax, 1.0)
            nearest = np.abs((block / safe)[..., None] - NF4_LEVELS).argmin(axis=-1)
            restored = NF4_LEVELS[nearest] * absmax
        total += float(((block - restored) ** 2).sum())
    return total


def greyctl_report(greyctl, model, fmt, calibration, workdir):
    out = os.path.join(workdir, f"{fmt}-{calibration}.gguf")
    result = subprocess.run([greyctl, "quantize", "--input", model, "--format", fmt, "--calibration",
                             calibration, "--json", "--force", "--output", out],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--greyctl", required=True)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()

    print(f"{'model':28} {'format':14} {'tensors':>7} {'reference':>10} {'rtn':>10} {'rtn/ref':>8} "
          f"{'mse':>10} {'mse vs ref':>10}")
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        for model in args.models:
            tensors = float_tensors(model)
            for fmt in args.formats.split(","):
                kind, group = FORMATS[fmt]
                rtn = greyctl_report(args.greyctl, model, fmt, "rtn", workdir)
                mse = greyctl_report(args.greyctl, model, fmt, "mse", workdir)
                names = [t["name"] for t in rtn["tensors"]]
                error = sum(reference_error(tensors[n], kind, group) for n in names)
                energy = sum(float((tensors[n] ** 2).sum()) for n in names)
                reference = (error / energy) ** 0.5
                ours, calibrated = rtn["total"]["rel_rmse"], mse["total"]["rel_rmse"]
                within = abs(ours / reference - 1) <= 0.02
                below = calibrated <= 0.95 * reference
                failures += (not within) + (not below)
                print(f"{os.path.basename(model)[:28]:28} {fmt:14} {len(names):7} {reference:10.5f} "
                      f"{ours:10.5f} {ours / reference:8.4f} {calibrated:10.5f} "
                      f"{calibrated / reference - 1:+10.1%}{'' if within and below else '  (goal not met)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
