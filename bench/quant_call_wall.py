#!/usr/bin/env python3
"""Where a synchronous libgrey call's wall time goes beyond its kernels, by format, on 2^28 F32 elements
(65536 x 4096) in one libgrey context: the wall time of a call (min, median and max of 31, after 3
warm-up calls), the device time of its kernels (CUPTI through torch.profiler, over 9 calls) and the
host-side events the profiler records during those 9 calls (its own activity-buffer requests among them).

    python3 bench/quant_call_wall.py build/gpu/lib/libgrey.so build/gpu/lib/grey q8_0,int8,q4_0,fp8-e4m3
"""
import ctypes as C
import os
import statistics
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_gpu_bench import Grey, desc_of  # noqa: E402 - the benchmark's ctypes wrapper

ELEMENTS, COLUMNS, WARMUP, WALL_CALLS, PROFILED_CALLS = 1 << 28, 4096, 3, 31, 9


def measure(fn):
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    walls = []
    for _ in range(WALL_CALLS):
        start = time.perf_counter()
        fn()  # returns once its kernels have finished
        walls.append(time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(PROFILED_CALLS):
            fn()
    device_us, host = 0.0, {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            device_us += event.device_time
        else:
            host[event.name] = host.get(event.name, 0.0) + event.cpu_time_total
    return walls, device_us / PROFILED_CALLS, sorted(host.items(), key=lambda kv: -kv[1])[:6]


def main():
    library, backend_dir, formats = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    grey = Grey(library, backend_dir)
    plain_bytes = ELEMENTS * 4
    source, plain_out = grey.buffer(plain_bytes), grey.buffer(plain_bytes)
    host = torch.randn(ELEMENTS).numpy()
    grey.call("grey_buffer_write", source, C.c_uint64(0), host.ctypes.data_as(C.c_void_p), C.c_uint64(plain_bytes))
    del host
    desc = desc_of("F32", (ELEMENTS // COLUMNS, COLUMNS))
    for name in formats:
        params = grey.params(name)
        size = C.c_uint64()
        grey.call("grey_quant_size", C.byref(desc), C.byref(params), C.byref(size))
        quantized = grey.buffer(size.value)
        calls = {
            "quantize": lambda: grey.call("grey_quantize_buffer", C.byref(desc), source, C.c_uint64(0), C.byref(params),
                                          quantized, C.c_uint64(0), None),
            "dequantize": lambda: grey.call("grey_dequantize_buffer", C.byref(desc), C.byref(params), quantized, C.c_uint64(0),
                                            plain_out, C.c_uint64(0)),
        }
        for op, fn in calls.items():
            walls, device_us, host_events = measure(fn)
            print(f"{name:<10} {op:<10} wall min {min(walls) * 1e6:6.1f} med {statistics.median(walls) * 1e6:6.1f} "
                  f"max {max(walls) * 1e6:6.1f} us; kernels {device_us:6.1f} us; host events a call: " +
                  ", ".join(f"{k} {v / PROFILED_CALLS:.1f}" for k, v in host_events), flush=True)
        grey.destroy(quantized)
    grey.close(source, plain_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
