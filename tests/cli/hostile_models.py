#!/usr/bin/env python3
"""Writes small hostile model files (sparse where a size must be large) into DIR, for the CLI tests.

    hostile_models.py DIR
"""

import json
import os
import struct
import sys


def gguf(tensors, entries, body=b""):
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, entries) + body


def text(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def entry_u32(key, value):
    return text(key) + struct.pack("<II", 4, value)


def tensor_info(name, shape, offset, ggml_type=0):  # shape outermost first, as safetensors
    return text(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in reversed(shape)) + struct.pack("<IQ", ggml_type, offset)


def pad(b, alignment=32):
    return b + b"\0" * (-len(b) % alignment)


def safetensors(header_text, data=b""):
    h = header_text.encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def write(directory, name, data, size=None):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
        if size is not None:
            f.truncate(size)  # sparse: the rest reads as zeros and takes no disk


def main():
    d = sys.argv[1]
    weights = f32([0.25 * ((i * 7) % 13 - 6) for i in range(64)])
    # general.alignment = 2^31 in a 57-byte file: used to be accepted, and written back padded to 2 GiB.
    write(d, "align31.gguf", gguf(0, 1, entry_u32("general.alignment", 1 << 31)))
    # 2^24 empty strings in one array (128 MiB, sparse): used to cost 1.2 GB of memory.
    head = gguf(0, 1, text("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1 << 24))
    write(d, "strings.gguf", head, len(head) + 8 * (1 << 24))
    # 307 M metadata entries claimed by a 4 GiB (sparse) file: used to report "out of memory".
    write(d, "entries.gguf", gguf(0, 307_000_000), 4 << 30)
    # Two tensors sharing their bytes.
    write(d, "overlap.gguf", pad(gguf(2, 0, tensor_info("a", [2, 32], 0) + tensor_info("b", [2, 32], 0))) + weights)
    info = {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, 256]}
    # Duplicate keys: last-one-wins used to decide which tensor or value a reader saw.
    write(d, "duplicate-tensor.safetensors", safetensors('{"w":%s,"w":%s}' % (json.dumps(info), json.dumps(info)), weights))
    write(d, "duplicate-metadata.safetensors", safetensors('{"__metadata__":{"k":"a","k":"b"},"w":%s}' % json.dumps(info), weights))
    # A 50,000-character tensor name: used to crash `quantize --skip '.*bias'` (std::regex recursion).
    long_name = "layer." * 8333 + "ab"
    write(d, "long-name.safetensors", safetensors(json.dumps({long_name: info}), weights))
    write(d, "long-name.gguf", pad(gguf(1, 0, tensor_info(long_name, [2, 32], 0))) + weights)
    # A name within the limit that makes a backtracking regex engine take exponential time.
    second = dict(info, data_offsets=[256, 512])
    write(d, "redos.safetensors", safetensors(json.dumps({"a" * 200: info, "w": second}), weights + weights))


if __name__ == "__main__":
    main()
