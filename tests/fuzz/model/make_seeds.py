#!/usr/bin/env python3
"""Writes the hand-made seeds of the model fuzzers' corpora: one small file per class of hostile input
that the readers must refuse (or accept) cleanly, so that every fuzzing run starts next to them.

    python3 tests/fuzz/model/make_seeds.py    # rewrites corpus/{gguf,safetensors}/seed-*
"""

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def gguf(tensors, entries, body=b""):
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, entries) + body


def text(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def entry_u32(key, value):
    return text(key) + struct.pack("<II", 4, value)


def info(name, shape, offset, ggml_type=0):
    return text(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in reversed(shape)) + struct.pack("<IQ", ggml_type, offset)


def pad(b, alignment=32):
    return b + b"\0" * (-len(b) % alignment)


def safetensors(header, data=b""):
    h = header.encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


T = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
U = {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}

SEEDS = {
    "gguf": {
        "huge-tensor-count": gguf(1 << 60, 0),
        "huge-entry-count": gguf(0, 307_000_000),
        "alignment-2-31": gguf(0, 1, entry_u32("general.alignment", 1 << 31)),
        "alignment-max": pad(gguf(1, 1, entry_u32("general.alignment", 65536) + info("t", [2], 0)), 65536)[:64] + b"\0" * 8,
        "alignment-3": gguf(0, 1, entry_u32("general.alignment", 3)),
        "overlap": pad(gguf(2, 0, info("a", [16], 0) + info("b", [16], 32))) + b"\0" * 128,
        "duplicate-key": gguf(0, 2, entry_u32("k", 1) + entry_u32("k", 2)),
        "duplicate-tensor": pad(gguf(2, 0, info("t", [8], 0) + info("t", [8], 32))) + b"\0" * 64,
        "long-name": pad(gguf(1, 0, info("n" * 1025, [8], 0))) + b"\0" * 32,
        "negative-dimension": pad(gguf(1, 0, info("t", [0, 1 << 63], 0))),
        "string-array-count": gguf(0, 1, text("tokens") + struct.pack("<IIQ", 9, 8, 1 << 40)),
        "nested-arrays": gguf(0, 1, text("deep") + b"".join(struct.pack("<IQ", 9, 1) for _ in range(10)) + struct.pack("<IQ", 0, 0)),
        "string-array": gguf(0, 1, text("tokens") + struct.pack("<IIQ", 9, 8, 3) + text("a") + text("") + text("[CLS]")),
    },
    "safetensors": {
        "duplicate-tensor": safetensors('{"t":%s,"t":%s}' % (json.dumps(T), json.dumps(T)), b"\0" * 8),
        "duplicate-metadata": safetensors('{"__metadata__":{},"__metadata__":{}}'),
        "duplicate-metadata-key": safetensors('{"__metadata__":{"k":"a","k":"b"}}'),
        "duplicate-field": safetensors('{"t":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8),
        "overlap": safetensors(json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}), b"\0" * 8),
        "long-name": safetensors(json.dumps({"n" * 1025: T}), b"\0" * 8),
        "long-shape": safetensors('{"t":{"dtype":"F32","data_offsets":[0,8],"shape":[%s]}}' % ",".join(["1"] * 600), b"\0" * 8),
        "deep-unknown-field": safetensors('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":%s%s}}' % ("[" * 200, "]" * 200), b"\0" * 8),
        "huge-header-length": struct.pack("<Q", 1 << 62) + b"{}",
        "two-tensors": safetensors(json.dumps({"__metadata__": {"format": "pt"}, "a": T, "b": U}), b"\0" * 16),
    },
}


def main():
    for target, seeds in SEEDS.items():
        directory = os.path.join(HERE, "corpus", target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            assert len(data) <= 8192, name
            with open(os.path.join(directory, "seed-" + name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
