"""The host side of KV appends from a device buffer, for a profiler: the fill loop of kv_gpu_bench.py's
append_buffer_figures (--context tokens into a fresh sequence, --chunk a call, each fill under a new salt
and freed after, so that each evicts the one before), without torch, on any libgrey build and backend
(the CUDA plugin over the fake driver, whose host stand-ins of the kernels take the device's place).
Prints each fill's wall time; run it under `perf record` and count the samples in libgrey and the plugin.

  FAKE_CUDA_KV_KERNELS=1 LD_LIBRARY_PATH=build/release/tests/cuda/fake/full perf record -F 20000 \\
      python3 bench/kv_fill_profile.py --lib build/release/lib/libgrey.so --backend-dir build/release/lib/grey
"""
import argparse
import ctypes as C
import os
import statistics
import sys
import types

import numpy as np

sys.modules.setdefault("torch", types.ModuleType("torch"))  # the benches import torch; nothing here uses it
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_gpu_bench import DTYPE_BF16, KV_FORMATS, KvCacheConfig, add_fill_arguments, cache_and_kv_buffer, fill_sequence  # noqa: E402
from quant_gpu_bench import Grey  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--backend-dir", required=True)
    parser.add_argument("--fills", type=int, default=10)
    add_fill_arguments(parser)
    parser.add_argument("--format", default="int4", choices=sorted(KV_FORMATS))
    args = parser.parse_args()

    grey = Grey(args.lib, args.backend_dir)
    config = KvCacheConfig(C.sizeof(KvCacheConfig), 1, args.kv_heads, args.head_dim, args.tokens_per_block, args.window, DTYPE_BF16,
                           KV_FORMATS[args.format], args.group, 0, 0)
    config.capacity_bytes = 4 * args.kv_heads * args.head_dim * (args.context + 2 * args.tokens_per_block)  # the bench's: one fill
    chunk = min(args.chunk, args.context)
    data = np.random.default_rng(18).integers(0x3C00, 0x3F00, size=2 * chunk * args.kv_heads * args.head_dim, dtype=np.uint16)
    half = data.nbytes // 2
    with cache_and_kv_buffer(grey, config, data) as (cache, buffer):
        ids = np.arange(args.context, dtype=np.int32)
        walls = []
        for fill in range(args.fills):
            sequence, seconds = fill_sequence(grey, cache, 100 + fill, buffer, half, ids, args)
            walls.append(seconds)
            grey.call("grey_kv_sequence_free", cache, sequence)
        print("fill wall ms:", " ".join(f"{w * 1e3:.1f}" for w in walls), f"(median {statistics.median(walls) * 1e3:.1f})")


if __name__ == "__main__":
    main()
