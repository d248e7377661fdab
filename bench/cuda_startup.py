#!/usr/bin/env python3
"""What a process pays before its first CUDA quantization, step by step on the host clock.

    python3 bench/cuda_startup.py LIBGREY.so BACKEND_DIR

Steps, each the first of its kind in a fresh process: loading libgrey, grey_context_create with the
CUDA backend (the loader, the plugin, device enumeration, one device spec), the first buffer on the GPU
(the backend's device runtime: primary context, memory pool, kernel modules), a second buffer, a 16 KiB
write, the first grey_quantize_buffer (int4-g128 of 4096 F32 values), then the same call again. The
difference between the last two is what the first call pays once.
"""
import ctypes as C
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_gpu_bench import Grey, desc_of  # noqa: E402 - the benchmark's ctypes wrapper


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    steps = []

    def timed(name, fn):
        begin = time.perf_counter()
        result = fn()
        steps.append((name, time.perf_counter() - begin))
        return result

    grey = timed("grey_context_create (cuda) + device specs", lambda: Grey(argv[1], argv[2]))
    source = timed("first grey_buffer_create on the GPU", lambda: grey.buffer(16384))
    destination = timed("second grey_buffer_create", lambda: grey.buffer(16384))
    data = (C.c_float * 4096)(*[((i * 37) % 101 - 50) / 50.0 for i in range(4096)])
    timed("grey_buffer_write 16 KiB", lambda: grey.call("grey_buffer_write", source, C.c_uint64(0), data, C.c_uint64(16384)))
    desc, params = desc_of("F32", (1, 4096)), grey.params("int4-g128")

    def quantize():
        grey.call("grey_quantize_buffer", C.byref(desc), source, C.c_uint64(0), C.byref(params), destination,
                  C.c_uint64(0), None)
    timed("first grey_quantize_buffer int4-g128 4096", quantize)
    timed("second grey_quantize_buffer", quantize)
    timed("third grey_quantize_buffer", quantize)
    timed("grey_context_destroy", lambda: grey.close(source, destination))
    for name, seconds in steps:
        print(f"{name:44} {seconds * 1e3:9.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
