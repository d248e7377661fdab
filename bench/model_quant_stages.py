#!/usr/bin/env python3
"""Where whole-model quantization on a GPU spends its time, stage by stage, in one process.

    python3 bench/model_quant_stages.py LIBGREY.so BACKEND_DIR MODEL.safetensors [FORMAT]

Walks the model as grey_model_quantize does (two device buffers made for the largest tensor, then for
each F32/F16/BF16 tensor of rank >= 2: grey_buffer_write from the mapped file, grey_quantize_buffer with
its error report, grey_buffer_read of the result) and sums the host time of each call. Pass a file whose
pages were dropped from the page cache to see the disk in the write column. Standard library only.
"""
import ctypes as C
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_gpu_bench import Grey, TensorDesc  # noqa: E402 - the benchmark's ctypes wrapper


class ModelTensor(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("file_type", C.c_uint32), ("name", C.c_char_p), ("data", C.c_void_p),
                ("size_bytes", C.c_uint64), ("desc", TensorDesc)]


class QuantReport(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("calibration", C.c_int32), ("elements", C.c_uint64), ("bytes", C.c_uint64)] + \
               [(n, C.c_double) for n in ("bits_per_weight", "rel_rmse", "sqnr_db", "max_abs_err", "sum_squared_error",
                                          "sum_squared_signal")]


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    fmt = argv[4] if len(argv) == 5 else "int4-g128"
    begin = time.perf_counter()
    grey = Grey(argv[1], argv[2])
    start_up = time.perf_counter() - begin
    model = C.c_void_p()
    grey.call("grey_model_create", argv[3].encode(), C.byref(model))
    count = C.c_uint64()
    grey.call("grey_model_tensor_count", model, C.byref(count))
    params = grey.params(fmt)
    tensors = []
    for i in range(count.value):
        t = ModelTensor()
        t.struct_size = C.sizeof(ModelTensor)
        grey.call("grey_model_tensor_get", model, C.c_uint64(i), C.byref(t))
        if t.desc.dtype in (0, 1, 2) and t.desc.rank >= 2:
            size = C.c_uint64()
            if grey.lib.grey_quant_size(C.byref(t.desc), C.byref(params), C.byref(size)) == 0:
                tensors.append((t, size.value))
    source = grey.buffer(max(t.size_bytes for t, _ in tensors))
    destination = grey.buffer(max(s for _, s in tensors))
    out = (C.c_ubyte * max(s for _, s in tensors))()
    spent = {"grey_buffer_write": 0.0, "grey_quantize_buffer": 0.0, "grey_buffer_read": 0.0}
    total_in = 0
    walk = time.perf_counter()
    for t, size in tensors:
        report = QuantReport()
        report.struct_size = C.sizeof(QuantReport)
        for name, args in (("grey_buffer_write", (source, C.c_uint64(0), C.c_void_p(t.data), C.c_uint64(t.size_bytes))),
                           ("grey_quantize_buffer", (C.byref(t.desc), source, C.c_uint64(0), C.byref(params), destination,
                                                     C.c_uint64(0), C.byref(report))),
                           ("grey_buffer_read", (destination, C.c_uint64(0), out, C.c_uint64(size)))):
            t0 = time.perf_counter()
            grey.call(name, *args)
            spent[name] += time.perf_counter() - t0
        total_in += t.size_bytes
    walk = time.perf_counter() - walk
    print(f"{len(tensors)} tensors, {total_in / 1e9:.3f} GB in, {fmt}; start-up (context + specs) {start_up * 1e3:.0f} ms")
    for name, seconds in spent.items():
        print(f"  {name:22} {seconds:7.3f} s  {total_in / seconds / 1e9 if name == 'grey_buffer_write' else 0:6.2f} GB/s"
              f"  {seconds / len(tensors) * 1e6:8.1f} us a tensor")
    print(f"  {'walk in all':22} {walk:7.3f} s  {total_in / walk / 1e9:6.2f} GB/s")
    grey.lib.grey_model_destroy(model)
    grey.close(source, destination)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
