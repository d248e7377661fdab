#!/usr/bin/env python3
"""Decode attention over libgrey's quantized KV cache against PyTorch SDPA on bf16, side by side in one run
(issue 18's goals: batch 8, 32 query heads, 8 KV heads, head dim 128, 32k context).

For each cache format (int8, int4, int2, fp8-e4m3, and the cache kept whole in bf16) it fills a CUDA
grey_kv_cache with --batch sequences of --context tokens (one layer, distinct tenants so nothing is
shared), then times grey_kv_attend: the median wall time of one call, which includes uploading the
queries and block tables, both kernels and reading the output back. Beside it, on the same shapes,
torch.nn.functional.scaled_dot_product_attention on bf16 tensors already on the GPU, with each backend
that runs GQA (flash, cuDNN, math), timed the same way (wall time of one call and a synchronize) and by
CUDA events (kernel time only); libgrey's device time (kernels and copies of one call) comes from CUPTI
through torch.profiler. It prints bytes per token and the speed ratios, and with --json writes
every figure. FlashInfer is measured when the `flashinfer` package imports.

  python3 bench/kv_gpu_bench.py --lib build/gpu/lib/libgrey.so --backend-dir build/gpu/lib/grey [--json out.json]
"""
import argparse
import ctypes as C
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_gpu_bench import Grey, device_seconds  # noqa: E402

KV_FORMATS = {"int8": 0, "int4": 1, "int2": 2, "fp8-e4m3": 3}
DTYPE_F32, DTYPE_BF16 = 0, 2
WINDOW_ALL = 0xFFFFFFFF


class KvCacheConfig(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("layers", C.c_uint32), ("kv_heads", C.c_uint32), ("head_dim", C.c_uint32),
                ("tokens_per_block", C.c_uint32), ("window_tokens", C.c_uint32), ("window_dtype", C.c_int32),
                ("format", C.c_int32), ("group_size", C.c_uint32), ("flags", C.c_uint32), ("capacity_bytes", C.c_uint64)]


class KvStats(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("sequences", C.c_uint32), ("tokens", C.c_uint64), ("blocks_used", C.c_uint64),
                ("blocks_cached", C.c_uint64), ("blocks_compressed", C.c_uint64), ("blocks_free", C.c_uint64),
                ("bytes_used", C.c_uint64), ("capacity_bytes", C.c_uint64), ("prefix_hits", C.c_uint64),
                ("evictions", C.c_uint64), ("bytes_per_token", C.c_double), ("compression_ratio", C.c_double)]


class AttendParams(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("layer", C.c_uint32), ("query_heads", C.c_uint32),
                ("sliding_window", C.c_uint32), ("scale", C.c_float), ("reserved0", C.c_uint32)]


def median_wall(call, warmup, repeat):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grey_figures(grey, args, name, kv, queries):
    """Fills a cache of format `name` and times grey_kv_attend; returns its figures."""
    lib = grey.lib
    config = KvCacheConfig(C.sizeof(KvCacheConfig), 1, args.kv_heads, args.head_dim, args.tokens_per_block,
                           WINDOW_ALL if name == "bf16" else args.window, DTYPE_BF16,
                           KV_FORMATS.get(name, 1), args.group, 0, 0)
    dense_per_token = 4 * args.kv_heads * args.head_dim
    config.capacity_bytes = dense_per_token * (args.context + 2 * args.tokens_per_block) * args.batch
    cache = C.c_void_p()
    grey.call("grey_kv_cache_create", grey.context, C.c_uint32(grey.gpu), C.byref(config), C.byref(cache))
    try:
        chunk = min(args.chunk, args.context)
        keys, values = kv
        sequences = (C.c_uint64 * args.batch)()
        append_seconds = 0.0
        for b in range(args.batch):
            grey.call("grey_kv_sequence_create", cache, C.c_uint64(b + 1), C.byref(sequences, b * 8))
            done = 0
            while done < args.context:
                n = min(chunk, args.context - done)
                ids = np.arange(done, done + n, dtype=np.int32)
                start = time.perf_counter()
                grey.call("grey_kv_append", cache, C.c_uint64(sequences[b]), ids.ctypes.data_as(C.c_void_p), C.c_uint32(n),
                          C.c_int32(DTYPE_F32), keys.ctypes.data_as(C.c_void_p), values.ctypes.data_as(C.c_void_p),
                          C.c_uint64(n * args.kv_heads * args.head_dim * 4))
                append_seconds += time.perf_counter() - start
                done += n
        stats = KvStats()
        stats.struct_size = C.sizeof(KvStats)
        grey.call("grey_kv_cache_stats_get", cache, C.byref(stats))
        params = AttendParams(C.sizeof(AttendParams), 0, args.query_heads, 0, 0.0, 0)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        out = np.empty_like(q)

        def attend():
            grey.call("grey_kv_attend", cache, C.byref(params), sequences, C.c_uint32(args.batch), q.ctypes.data_as(C.c_void_p),
                      out.ctypes.data_as(C.c_void_p), C.c_uint64(q.nbytes))

        seconds = median_wall(attend, args.warmup, args.repeat)
        device, kernels = device_seconds(attend, args.repeat)
        return {"format": name, "attend_us": seconds * 1e6, "device_us": device * 1e6,
                "device_us_by_kernel": kernels, "bytes_per_token": stats.bytes_per_token,
                "bf16_bytes_per_token": dense_per_token, "memory_ratio": stats.bytes_per_token / dense_per_token,
                "append_gbps_f32_in": args.batch * args.context * 2 * args.kv_heads * args.head_dim * 4 / append_seconds / 1e9,
                "output": out.copy()}
    finally:
        lib.grey_kv_cache_destroy(cache)


def sdpa_figures(args, queries):
    """PyTorch SDPA on bf16 (queries [B, Hq, 1, D], K/V [B, Hkv, T, D]) with each backend that takes GQA."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    device = torch.device("cuda")
    q = torch.from_numpy(queries).to(device, torch.bfloat16).unsqueeze(2)
    k = torch.randn(args.batch, args.kv_heads, args.context, args.head_dim, device=device, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    figures = {}
    for label, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                           ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)):
        def run():
            with sdpa_kernel(backend):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        try:
            run()
            torch.cuda.synchronize()
        except Exception as error:  # a backend that has no kernel for these shapes
            figures[label] = {"error": str(error).splitlines()[0][:120]}
            continue

        def wall():
            run()
            torch.cuda.synchronize()
        seconds = median_wall(wall, args.warmup, args.repeat)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.repeat):
            run()
        end.record()
        torch.cuda.synchronize()
        figures[label] = {"wall_us": seconds * 1e6, "kernel_us": start.elapsed_time(end) * 1e3 / args.repeat}
    return figures


def flashinfer_figures(args, queries):
    try:
        import flashinfer  # noqa: F401
    except Exception as error:
        return {"error": f"flashinfer not importable: {str(error).splitlines()[0][:100]}"}
    try:
        device = torch.device("cuda")
        q = torch.from_numpy(queries).to(device, torch.bfloat16)
        k = torch.randn(args.batch, args.context, args.kv_heads, args.head_dim, device=device, dtype=torch.bfloat16)
        v = torch.randn_like(k)

        def run():
            return [flashinfer.single_decode_with_kv_cache(q[b], k[b], v[b]) for b in range(args.batch)]

        def wall():
            run()
            torch.cuda.synchronize()
        return {"wall_us": median_wall(wall, args.warmup, args.repeat) * 1e6,
                "note": "single_decode_with_kv_cache per sequence (NHD layout)"}
    except Exception as error:
        return {"error": str(error).splitlines()[0][:160]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--backend-dir", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--query-heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--tokens-per-block", type=int, default=64)
    parser.add_argument("--group", type=int, default=128, help="V's group size along head_dim")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=4096, help="tokens per grey_kv_append while filling")
    parser.add_argument("--formats", default="bf16,int8,fp8-e4m3,int4,int2")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json")
    args = parser.parse_args()

    rng = np.random.default_rng(18)
    queries = rng.standard_normal((args.batch, args.query_heads, args.head_dim), dtype=np.float32)
    sdpa = sdpa_figures(args, queries)
    torch.cuda.empty_cache()
    flashinfer_result = flashinfer_figures(args, queries)
    torch.cuda.empty_cache()
    # One chunk of K/V, appended again and again (the same for every format, so their outputs compare).
    chunk = min(args.chunk, args.context)
    keys = rng.standard_normal((chunk, args.kv_heads, args.head_dim), dtype=np.float32)
    keys[:, :, ::17] *= 8.0  # outlier channels, as real keys have
    values = rng.standard_normal((chunk, args.kv_heads, args.head_dim), dtype=np.float32)
    grey = Grey(args.lib, args.backend_dir)
    ours = []
    try:
        for name in args.formats.split(","):
            ours.append(grey_figures(grey, args, name, (keys, values), queries))
    finally:
        grey.close()

    print(f"decode attention: batch {args.batch}, {args.query_heads} query heads on {args.kv_heads} KV heads, head dim "
          f"{args.head_dim}, context {args.context}, {args.tokens_per_block} tokens a block, V groups of {args.group}, "
          f"window {args.window}; median of {args.repeat}")
    best_wall = min((f["wall_us"] for f in sdpa.values() if "wall_us" in f), default=None)
    best_kernel = min((f["kernel_us"] for f in sdpa.values() if "kernel_us" in f), default=None)
    for label, f in sdpa.items():
        if "error" in f:
            print(f"  SDPA {label:9s} not run: {f['error']}")
        else:
            print(f"  SDPA {label:9s} bf16    {f['wall_us']:9.1f} us a call (wall)   {f['kernel_us']:9.1f} us kernel time")
    if "error" in flashinfer_result:
        print(f"  FlashInfer       not run: {flashinfer_result['error']}")
    else:
        print(f"  FlashInfer       bf16    {flashinfer_result['wall_us']:9.1f} us a call (wall; {flashinfer_result['note']})")
    reference = next((f["output"] for f in ours if f["format"] == "bf16"), None)
    for f in ours:
        ratio = best_wall / f["attend_us"] if best_wall else float("nan")
        kernel_ratio = best_kernel / f["device_us"] if best_kernel else float("nan")
        line = (f"  libgrey {f['format']:8s} {f['attend_us']:9.1f} us a call (wall)   {ratio:5.2f}x the best SDPA wall time   "
                f"{f['device_us']:8.1f} us device time = {kernel_ratio:5.2f}x SDPA's   "
                f"{f['bytes_per_token']:8.1f} bytes/token = {f['memory_ratio']:.3f} of bf16   append {f['append_gbps_f32_in']:.2f} GB/s of F32 input")
        if reference is not None and f["format"] != "bf16":
            error = np.linalg.norm(f["output"] - reference) / np.linalg.norm(reference)
            f["relative_error_vs_bf16_cache"] = float(error)
            line += f"   output error vs the bf16 cache {error:.2e} (random K/V)"
        print(line)
    if best_kernel:
        print(f"  (best SDPA kernel time {best_kernel:.1f} us; libgrey's figures are whole calls, transfers included)")
    if args.json:
        for f in ours:
            f.pop("output", None)
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "sdpa": sdpa, "flashinfer": flashinfer_result, "libgrey": ours}, out, indent=2)


if __name__ == "__main__":
    main()
