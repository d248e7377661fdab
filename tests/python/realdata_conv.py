#!/usr/bin/env python3
"""A real convolutional network (Silero VAD, scripts/fetch-model.sh silero-vad) through
`greyctl quantize` in every grouped format, and back through `greyctl dequantize`:

  * every tensor is in the report exactly once, quantized or kept with a reason, and every weight of
    rank >= 2 is accounted for: quantized, or kept as a critical layer or because the format cannot
    hold its shape (a conv row that is not a whole number of groups, until grouping fits every tensor);
  * what is quantized round-trips: the restored file holds every tensor in its shape, kept tensors
    byte for byte, and each quantized tensor's error measured on the restored values is the error the
    report states;
  * at least the LSTM matrices are quantized in every format.

    realdata_conv.py GREYCTL MODEL.safetensors
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import safetensors_io as st  # noqa: E402 - the project's one safetensors reader and writer

GROUPED = ["int4-g32", "int4-g64", "int4-g128", "int4-sym-g128", "nf4", "q8_0", "q4_0", "q4_1"]
CRITICAL = {"stft_conv.weight": "first convolution (critical layer)", "final_conv.weight": "last convolution (critical layer)"}
ALWAYS_QUANTIZED = {"lstm_cell.weight_ih", "lstm_cell.weight_hh"}
NUMPY = {"F32": np.float32, "F16": np.float16}


def main():
    greyctl, model = sys.argv[1], sys.argv[2]
    original, _ = st.read(model)  # {name: (dtype, shape, bytes)}
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        for fmt in GROUPED:
            quantized = Path(tmp) / f"{fmt}.safetensors"
            restored = Path(tmp) / f"{fmt}.restored.safetensors"
            report = json.loads(subprocess.run([greyctl, "quantize", "--input", model, "--format", fmt, "--output", str(quantized), "--json"],
                                               check=True, capture_output=True, text=True).stdout)
            subprocess.run([greyctl, "dequantize", "--input", str(quantized), "--output", str(restored)], check=True, capture_output=True)
            rows = {row["name"]: row for row in report["tensors"]}
            kept = {row["name"]: row["reason"] for row in report["kept"]}
            names = [row["name"] for row in report["tensors"]] + [row["name"] for row in report["kept"]]
            check(sorted(names) == sorted(original), f"{fmt}: the report lists {sorted(names)}, the model has {sorted(original)}")
            check(ALWAYS_QUANTIZED <= set(rows), f"{fmt}: {sorted(ALWAYS_QUANTIZED - set(rows))} not quantized")
            for name, reason in CRITICAL.items():
                check(kept.get(name) == reason, f"{fmt}: {name} kept as {kept.get(name)!r}, expected {reason!r}")
            back, _ = st.read(restored)
            check(sorted(back) == sorted(original), f"{fmt}: the restored file holds {sorted(back)}")
            for name, (dtype, shape, raw) in original.items():
                if len(shape) >= 2 and name not in rows:
                    why = kept.get(name, "")
                    check(why.endswith("(critical layer)") or f"{fmt} cannot hold it" in why,
                          f"{fmt}: {name} {shape} is neither quantized nor kept for a reason of the policy: {why!r}")
                if name not in back:
                    continue
                got_dtype, got_shape, got_raw = back[name]
                check(got_shape == shape, f"{fmt}: {name} restored as {got_shape}, was {shape}")
                if name not in rows:
                    check((got_dtype, got_raw) == (dtype, raw), f"{fmt}: {name} was kept but its bytes changed")
                    continue
                x = np.frombuffer(raw, NUMPY[dtype]).astype(np.float64)
                y = np.frombuffer(got_raw, np.float32).astype(np.float64)
                rel_rmse = float(np.sqrt(np.sum((x - y) ** 2) / np.sum(x * x)))
                stated = rows[name]["rel_rmse"]
                check(abs(rel_rmse - stated) <= 1e-9 + 1e-6 * stated,
                      f"{fmt}: {name} restored with rel_rmse {rel_rmse:.8f}, the report says {stated:.8f}")
                check(0 < rel_rmse < 0.2, f"{fmt}: {name} rel_rmse {rel_rmse:.5f}")
            print(f"{fmt}: {len(rows)} quantized, {len(kept)} kept ({sum(len(original[k][1]) >= 2 for k in kept)} of rank >= 2); "
                  f"total rel_rmse {report['total']['rel_rmse']:.5f}; restored")
    for f in failures:
        print("FAIL", f)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
