#!/usr/bin/env python3
"""Checks libgrey against llama.cpp's own Python package `gguf`:

  * Q8_0, Q4_0 and Q4_1 blocks written by `greyctl quantize` equal, bit for bit, what gguf.quants
    (numpy ports of ggml's quantize_row_*_ref) makes of the same float32 weights;
  * the GGUF file `greyctl quantize` writes is read back by gguf.GGUFReader with the same tensors
    (names, types, shapes, bytes) and the metadata carried over.

Usage: gguf_compat.py GREYCTL [MODEL.safetensors]
Without a model it makes a synthetic safetensors file (random weights with outliers, an F16 and a BF16
tensor, a bias and an int64 tensor); with one (the realdata test) it uses the real weights.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.quants import quantize

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import safetensors_io as st  # noqa: E402 - the project's one safetensors reader and writer

FORMATS = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1}


def write_safetensors(path, tensors):
    st.write(path, [(name, dtype, array.shape, array.tobytes()) for name, array, dtype in tensors], {"source": "gguf_compat.py"})


def read_safetensors(path):
    tensors, _ = st.read(path)
    return {name: (t.dtype, st.array(t)) for name, t in tensors.items()}


def synthetic(path):
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    weights = rng.standard_normal((48, 256)).astype(np.float32)
    weights[::7, ::13] *= 6.0
    weights[3, :32] = 0.0  # an all-zero block
    weights[4, :32] = 0.5  # a constant block
    weights[5, 32:64] = -weights[5, 32:64]
    halves = (rng.standard_normal((8, 64)) * 0.02).astype(np.float16)
    bf16 = (rng.standard_normal((4, 32)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    write_safetensors(path, [
        ("layer.weight", weights, "F32"),
        ("layer.bias", rng.standard_normal(48).astype(np.float32), "F32"),
        ("half.weight", halves, "F16"),
        ("bf16.weight", bf16, "BF16"),
        ("position_ids", np.arange(16, dtype=np.int64).reshape(1, 16), "I64"),
    ])


def as_float32(dtype, array):
    if dtype == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32)


def main():
    greyctl = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        source = sys.argv[2] if len(sys.argv) > 2 else os.path.join(tmp, "synthetic.safetensors")
        if len(sys.argv) <= 2:
            synthetic(source)
        inputs = read_safetensors(source)
        for name, qtype in FORMATS.items():
            out = os.path.join(tmp, name + ".gguf")
            # --no-keep-critical: every 2-D float tensor, embeddings and output layer too, is compared.
            subprocess.run([greyctl, "quantize", "--input", source, "--format", name, "--output", out, "--json", "--no-keep-critical"],
                           check=True, stdout=subprocess.DEVNULL)
            reader = GGUFReader(out)
            got = {t.name: t for t in reader.tensors}
            if set(got) != set(inputs):
                print(f"FAIL {name}: tensors differ: {sorted(set(got) ^ set(inputs))}")
                failures += 1
                continue
            checked = 0
            for tname, (dtype, array) in inputs.items():
                tensor = got[tname]
                if list(reversed([int(d) for d in tensor.shape])) != list(array.shape):
                    print(f"FAIL {name} {tname}: shape {list(tensor.shape)} vs {array.shape}")
                    failures += 1
                    continue
                quantized = tensor.tensor_type == qtype
                if array.ndim >= 2 and dtype in ("F32", "F16", "BF16"):
                    if not quantized:
                        print(f"FAIL {name} {tname}: stored as {tensor.tensor_type!r}, expected {qtype!r}")
                        failures += 1
                        continue
                    expected = quantize(as_float32(dtype, array), qtype)
                    if expected.tobytes() != np.asarray(tensor.data).tobytes():
                        a = np.frombuffer(expected.tobytes(), np.uint8)
                        b = np.frombuffer(np.asarray(tensor.data).tobytes(), np.uint8)
                        print(f"FAIL {name} {tname}: {int((a != b).sum())} of {a.size} bytes differ from gguf.quants")
                        failures += 1
                    checked += 1
                elif np.asarray(tensor.data).tobytes() != array.tobytes():
                    print(f"FAIL {name} {tname}: a tensor kept in its precision changed")
                    failures += 1
            if "grey.quantization" not in reader.fields:
                print(f"FAIL {name}: the grey.quantization metadata is missing")
                failures += 1
            print(f"{name}: {checked} quantized tensor(s) bit-identical to gguf.quants; {len(inputs)} read back by GGUFReader")
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
