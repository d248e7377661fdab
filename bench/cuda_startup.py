#!/usr/bin/env python3
"""What a process pays before its first CUDA quantization, step by step on the host clock.

    python3 bench/cuda_startup.py LIBGREY.so BACKEND_DIR
    python3 bench/cuda_startup.py --driver       (the floor: the same steps straight on the driver and NVML)

Steps, each the first of its kind in a fresh process: loading libgrey, grey_context_create with the
CUDA backend (the loader, the plugin, device enumeration, one device spec), the first buffer on the GPU
(the backend's device runtime: primary context, memory pool, kernel modules), a second buffer, a 16 KiB
write, the first grey_quantize_buffer (int4-g128 of 4096 F32 values), then the same call again. The
difference between the last two is what the first call pays once.

`--driver` times what any CUDA program pays for the same steps, calling libcuda and NVML directly in a
fresh process: cuInit, device enumeration, nvmlInit and one device handle, retaining and setting the
primary context, the first cuMemAlloc, then releasing the context and shutting NVML down.
"""
import ctypes as C
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_gpu_bench import Grey, desc_of  # noqa: E402 - the benchmark's ctypes wrapper


class Steps:
    """Times each step on the host clock and prints them in order."""

    def __init__(self):
        self.steps = []

    def __call__(self, name, fn):
        begin = time.perf_counter()
        result = fn()
        self.steps.append((name, time.perf_counter() - begin))
        return result

    def print(self):
        for name, seconds in self.steps:
            print(f"{name:44} {seconds * 1e3:9.2f} ms")


def driver_floor():
    timed = Steps()

    def check(name, result):
        if result != 0:
            raise RuntimeError(f"{name} returned {result}")

    cuda = timed("dlopen libcuda.so.1", lambda: C.CDLL("libcuda.so.1"))
    timed("cuInit", lambda: check("cuInit", cuda.cuInit(0)))
    device, count = C.c_int(), C.c_int()
    timed("cuDeviceGetCount + cuDeviceGet", lambda: (check("cuDeviceGetCount", cuda.cuDeviceGetCount(C.byref(count))),
                                                  check("cuDeviceGet", cuda.cuDeviceGet(C.byref(device), 0))))
    nvml = timed("dlopen libnvidia-ml.so.1", lambda: C.CDLL("libnvidia-ml.so.1"))
    handle = C.c_void_p()
    timed("nvmlInit_v2 + one device handle", lambda: (check("nvmlInit_v2", nvml.nvmlInit_v2()),
                                                   check("nvmlDeviceGetHandleByIndex_v2",
                                                         nvml.nvmlDeviceGetHandleByIndex_v2(0, C.byref(handle)))))
    context = C.c_void_p()
    timed("cuDevicePrimaryCtxRetain", lambda: check("cuDevicePrimaryCtxRetain",
                                                    cuda.cuDevicePrimaryCtxRetain(C.byref(context), device)))
    timed("cuCtxSetCurrent", lambda: check("cuCtxSetCurrent", cuda.cuCtxSetCurrent(context)))
    pointer = C.c_uint64()
    timed("first cuMemAlloc 16 KiB", lambda: check("cuMemAlloc_v2", cuda.cuMemAlloc_v2(C.byref(pointer), C.c_size_t(16384))))
    timed("cuMemFree", lambda: check("cuMemFree_v2", cuda.cuMemFree_v2(pointer)))
    timed("cuDevicePrimaryCtxRelease", lambda: check("cuDevicePrimaryCtxRelease", cuda.cuDevicePrimaryCtxRelease_v2(device)))
    timed("nvmlShutdown", lambda: check("nvmlShutdown", nvml.nvmlShutdown()))
    timed.print()
    return 0


def main(argv):
    if argv[1:] == ["--driver"]:
        return driver_floor()
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    timed = Steps()

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
    timed.print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
