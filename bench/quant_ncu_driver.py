#!/usr/bin/env python3
"""One libgrey quantize and dequantize per format on 64M F32 elements (16384 x 4096), nothing else: a
program for Nsight Compute to profile the CUDA kernels in isolation, e.g.

  ncu --clock-control none --kernel-name regex:"grey_quant|grey_dequant" --section SpeedOfLight \\
      --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis \\
      python3 bench/quant_ncu_driver.py build/gpu/lib/libgrey.so build/gpu/lib/grey int8,int4-g128,q8_0
"""
import ctypes as C
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quant_gpu_bench as bench  # noqa: E402  (the ctypes view of grey.h)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    library, backend_dir, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    grey = bench.Grey(library, backend_dir)
    shape = (16384, 4096)
    n = shape[0] * shape[1]
    source, plain_out = grey.buffer(4 * n), grey.buffer(4 * n)
    values = torch.randn(shape).numpy()
    grey.call("grey_buffer_write", source, C.c_uint64(0), values.ctypes.data_as(C.c_void_p), C.c_uint64(4 * n))
    for name in names:
        desc, params = bench.desc_of("F32", shape), grey.params(name)
        size = C.c_uint64()
        grey.call("grey_quant_size", C.byref(desc), C.byref(params), C.byref(size))
        quantized = grey.buffer(size.value)
        grey.call("grey_quantize_buffer", C.byref(desc), source, C.c_uint64(0), C.byref(params), quantized, C.c_uint64(0), None)
        grey.call("grey_dequantize_buffer", C.byref(desc), C.byref(params), quantized, C.c_uint64(0), plain_out, C.c_uint64(0))
        grey.destroy(quantized)
    grey.close(source, plain_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
