#!/usr/bin/env python3
"""The runtime's CPU time building decode attention's block tables, without torch or a GPU: 8 sequences of
32,768 tokens in 16-token blocks (16,384 blocks, one KV head of 32 channels so that the fake CUDA driver's
host stand-ins of the kernels stay quick), then 40 grey_kv_attend calls over the same batch ("same": the
cache keeps its tables) or over the batch in two alternating orders ("alternate": rebuilt every call).
Run it under perf and compare KvCache::make_attend_job's samples in the two modes:

  FAKE_CUDA_KV_KERNELS=1 LD_LIBRARY_PATH=<build>/tests/cuda/fake/full perf record -F 20000 -o same.data \
      python3 bench/kv_attend_tables_profile.py <build>/lib/libgrey.so <build>/lib/grey same
  perf report -i same.data --no-children -n --sort sym --stdio | grep make_attend_job
"""
import ctypes as C
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.modules.setdefault('torch', types.ModuleType('torch'))  # kv_gpu_bench's ctypes structures only; no torch call is made
import kv_gpu_bench as kb  # noqa: E402

BATCH, CONTEXT, TOKENS_PER_BLOCK, HEAD_DIM, CHUNK = 8, 32768, 16, 32, 4096


def filled_cache(grey):
    """A cache of BATCH sequences of CONTEXT tokens (int4, V groups of 32); returns it and the sequences."""
    config = kb.KvCacheConfig(C.sizeof(kb.KvCacheConfig), 1, 1, HEAD_DIM, TOKENS_PER_BLOCK, 128, kb.DTYPE_BF16,
                              kb.KV_FORMATS["int4"], 32, 0, 4 * HEAD_DIM * (CONTEXT + 64) * BATCH)
    cache = C.c_void_p()
    grey.call("grey_kv_cache_create", grey.context, C.c_uint32(grey.gpu), C.byref(config), C.byref(cache))
    sequences = (C.c_uint64 * BATCH)()
    kv = np.random.default_rng(1).standard_normal((CHUNK, 1, HEAD_DIM), dtype=np.float32)
    for b in range(BATCH):
        grey.call("grey_kv_sequence_create", cache, C.c_uint64(b + 1), C.byref(sequences, b * 8))
        for done in range(0, CONTEXT, CHUNK):
            ids = np.arange(done, done + CHUNK, dtype=np.int32)
            grey.call("grey_kv_append", cache, C.c_uint64(sequences[b]), ids.ctypes.data_as(C.c_void_p), C.c_uint32(CHUNK),
                      C.c_int32(kb.DTYPE_F32), kv.ctypes.data_as(C.c_void_p), kv.ctypes.data_as(C.c_void_p), C.c_uint64(kv.nbytes))
    return cache, sequences


def main():
    lib_path, backend_dir, mode = sys.argv[1:4]
    grey = kb.Grey(lib_path, backend_dir)
    try:
        cache, sequences = filled_cache(grey)
        reversed_order = (C.c_uint64 * BATCH)(*reversed(list(sequences)))
        orders = [sequences] if mode == "same" else [sequences, reversed_order]
        params = kb.AttendParams(C.sizeof(kb.AttendParams), 0, 1, 0, 0.0, 0)
        queries = np.random.default_rng(2).standard_normal((BATCH, 1, HEAD_DIM), dtype=np.float32)
        output = np.empty_like(queries)
        for i in range(40):
            grey.call("grey_kv_attend", cache, C.byref(params), orders[i % len(orders)], C.c_uint32(BATCH),
                      queries.ctypes.data_as(C.c_void_p), output.ctypes.data_as(C.c_void_p), C.c_uint64(queries.nbytes))
        grey.lib.grey_kv_cache_destroy(cache)
    finally:
        grey.close()


if __name__ == "__main__":
    main()
