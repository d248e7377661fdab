"""safetensors files for the project's test, benchmark and GPU scripts: read and written here once, with
the standard library (and NumPy only where an array is asked for), so that no script parses the format
itself. Not part of libgrey, which reads the format in runtime/model.

    import safetensors_io as st
    tensors, metadata = st.read("model.safetensors")       # {name: Tensor(dtype, shape, data)}
    st.write("copy.safetensors", [(name, t.dtype, t.shape, t.data) for name, t in tensors.items()])
"""
import json
import os
import struct
from collections import namedtuple

# Bytes an element takes, by safetensors dtype name.
ELEMENT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
# The NumPy type of each (BF16 as its uint16 bits: NumPy has no bfloat16).
NUMPY_TYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
               "I8": "i1", "U8": "u1", "BOOL": "?"}

Tensor = namedtuple("Tensor", "dtype shape data")  # data: the tensor's bytes as stored


def read(path):
    """The tensors of `path` in file order, {name: Tensor}, and its __metadata__ ({} when it has none)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        tensors[name] = Tensor(info["dtype"], list(info["shape"]), raw[base + begin:base + end])
    return tensors, metadata


def array(tensor):
    """A read-only NumPy view of a Tensor's bytes in its shape (BF16 as uint16 bits)."""
    import numpy as np
    return np.frombuffer(tensor.data, dtype=NUMPY_TYPES[tensor.dtype]).reshape(tensor.shape)


def nbytes(dtype, shape):
    size = ELEMENT_BYTES[dtype]
    for d in shape:
        size *= d
    return size


def write(path, tensors, metadata=None, sync=False):
    """Writes `tensors`, (name, dtype, shape, data) in file order. `data` is bytes, or a callable giving
    them when the tensor is written, so that a file larger than memory streams; its size must be what
    dtype and shape say. With `sync` the file is on disk when this returns."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    entries = list(tensors)
    for name, dtype, shape, _ in entries:
        size = nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name, dtype, shape, data in entries:
            chunk = data() if callable(data) else data
            if len(chunk) != nbytes(dtype, shape):
                raise ValueError(f"{name}: {len(chunk)} bytes for {dtype} {list(shape)}")
            f.write(chunk)
        if sync:
            f.flush()
            os.fsync(f.fileno())
