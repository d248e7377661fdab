#!/usr/bin/env python3
"""Decode attention over libgrey's quantized KV cache against PyTorch SDPA on bf16, side by side in one run
(issue 18's goals: batch 8, 32 query heads, 8 KV heads, head dim 128, 32k context).

For each cache format (int8, int4, int2, fp8-e4m3, and the cache kept whole in bf16) it fills a CUDA
grey_kv_cache with --batch sequences of --context tokens (one layer, distinct tenants so nothing is
shared), then times grey_kv_attend: the median wall time of one call, which includes uploading the
queries and block tables, both kernels and reading the output back; then grey_kv_attend_buffer, the
queries and the output in GPU buffers (only the block tables uploaded), and grey_kv_attend_async, the
same queued on a stream (the host's time to queue a call, and a call's time when many are queued in a
row), whose outputs must be the same bit for bit. Beside it, on the same shapes,
torch.nn.functional.scaled_dot_product_attention on bf16 tensors already on the GPU, with each backend
that runs GQA (flash, cuDNN, math), timed the same way (wall time of one call and a synchronize) and by
CUDA events (kernel time only); libgrey's device time (kernels and copies of one call) comes from CUPTI
through torch.profiler. FlashInfer's BatchDecodeWithPagedKVCacheWrapper runs on a paged bf16 cache of
the same shapes (CUDA-core and tensor-core kernels), timed the same two ways plus CUPTI, its output checked
against SDPA's math backend in float32, when the `flashinfer` package imports (tests/gpu/fetch-deps.sh
flashinfer builds .deps/flashinfer, a trimmed site folder, for a machine without a registry; put it on
PYTHONPATH). libgrey's ratios are to the best bf16 baseline: the fastest of SDPA's backends and FlashInfer's
kernels, by wall time and by kernel time apart, each named. It prints bytes per token and the speed ratios,
and with --json writes every figure.

  python3 bench/kv_gpu_bench.py --lib build/gpu/lib/libgrey.so --backend-dir build/gpu/lib/grey [--json out.json]
"""
import argparse
import contextlib
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
        # A library built before grey_kv_attend_buffer (an older tree timed beside this one) has no such figures.
        buffered = (grey_buffer_figures(grey, cache, params, sequences, args.batch, q, out, args.warmup, args.repeat)
                    if hasattr(lib, "grey_kv_attend_buffer") else {})
        # K/V appended from a GPU buffer: a cache of one sequence's room, beside this one.
        appended = {}
        if hasattr(lib, "grey_kv_append_buffer"):
            one = KvCacheConfig.from_buffer_copy(config)
            one.capacity_bytes = dense_per_token * (args.context + 2 * args.tokens_per_block)
            appended = append_buffer_figures(grey, args, one, kv)
        return {"format": name, "attend_us": seconds * 1e6, "device_us": device * 1e6,
                "device_us_by_kernel": kernels, **buffered, **appended, "bytes_per_token": stats.bytes_per_token,
                "bf16_bytes_per_token": dense_per_token, "memory_ratio": stats.bytes_per_token / dense_per_token,
                "append_gbps_f32_in": args.batch * args.context * 2 * args.kv_heads * args.head_dim * 4 / append_seconds / 1e9,
                "output": out.copy()}
    finally:
        lib.grey_kv_cache_destroy(cache)


def add_fill_arguments(parser):
    """The cache's shape and how a sequence is filled: the arguments fill_sequence reads."""
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--tokens-per-block", type=int, default=64)
    parser.add_argument("--group", type=int, default=128, help="V's group size along head_dim")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=4096, help="tokens per grey_kv_append while filling")


def fill_sequence(grey, cache, salt, buffer, half, ids, args):
    """A new sequence of tenant salt `salt` holding --context tokens (ids from `ids`) appended from the GPU
    buffer (BF16 K at offset 0, V at `half`, a chunk's worth each), --chunk tokens a call. Returns the
    sequence and the append calls' own wall time in seconds."""
    sequence = C.c_uint64()
    grey.call("grey_kv_sequence_create", cache, C.c_uint64(salt), C.byref(sequence))
    chunk = min(args.chunk, args.context)
    start = time.perf_counter()
    for done in range(0, args.context, chunk):
        n = min(chunk, args.context - done)
        grey.call("grey_kv_append_buffer", cache, sequence, ids[done:].ctypes.data_as(C.c_void_p), C.c_uint32(n), C.c_int32(DTYPE_BF16),
                  buffer, C.c_uint64(0), buffer, C.c_uint64(half), C.c_uint64(n * args.kv_heads * args.head_dim * 2))
    return sequence, time.perf_counter() - start


@contextlib.contextmanager
def cache_and_kv_buffer(grey, config, data):
    """A cache of `config` on the GPU and a buffer there holding `data` (an append's K then V), both
    destroyed when the block ends."""
    cache, buffer = C.c_void_p(), C.c_void_p()
    grey.call("grey_kv_cache_create", grey.context, C.c_uint32(grey.gpu), C.byref(config), C.byref(cache))
    try:
        grey.call("grey_buffer_create", grey.context, C.c_uint32(grey.gpu), C.c_uint64(data.nbytes), C.byref(buffer))
        grey.call("grey_buffer_write", buffer, C.c_uint64(0), data.ctypes.data_as(C.c_void_p), C.c_uint64(data.nbytes))
        yield cache, buffer
    finally:
        if buffer:
            grey.lib.grey_buffer_destroy(buffer)
        grey.lib.grey_kv_cache_destroy(cache)


def append_buffer_figures(grey, args, config, kv):
    """K/V appended from a GPU buffer holding them in BF16 (grey_kv_append_buffer: the store kernel reads,
    converts and checks them there): --context tokens into a fresh sequence, --chunk tokens a call, the
    blocks quantized as they leave the window, then the sequence freed (each fill under a new salt, so
    that nothing is shared with the fill before). GB/s of the BF16 K/V read, by wall time (the whole fill,
    and the append calls alone), and by device time (CUPTI), the whole fill; and the compression apart (the issue's figure for an append: finished
    blocks quantized): GB/s of window-form BF16 read by the compression kernels' device time, for the
    blocks a fill compressed (the cache's blocks_compressed before the first fill's sequence is freed)."""
    keys, values = kv
    chunk = min(args.chunk, args.context)

    def bf16(a):
        return (np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16).ravel()

    data = np.concatenate([bf16(keys[:chunk]), bf16(values[:chunk])])
    half = data.nbytes // 2
    with cache_and_kv_buffer(grey, config, data) as (cache, buffer):
        ids = np.arange(args.context, dtype=np.int32)
        salt = [100]
        compressed = []  # blocks in the quantized form at the end of the first fill
        append_walls = []  # the append calls' own wall time in each fill (no sequence creation or free)

        def fill():
            salt[0] += 1
            sequence, seconds = fill_sequence(grey, cache, salt[0], buffer, half, ids, args)
            append_walls.append(seconds)
            if not compressed:  # the first fill, into an empty cache: its blocks alone
                stats = KvStats()
                stats.struct_size = C.sizeof(KvStats)
                grey.call("grey_kv_cache_stats_get", cache, C.byref(stats))
                compressed.append(stats.blocks_compressed)
            grey.call("grey_kv_sequence_free", cache, sequence)

        repeat = min(args.repeat, 10)
        seconds = median_wall(fill, 1, repeat)
        appends_only = statistics.median(append_walls[1:])  # the timed fills, without the warm-up
        device, kernels = device_seconds(fill, repeat)
        read = args.context * 2 * args.kv_heads * args.head_dim * 2
        # Window-form bytes of a block (every layer's K and V in BF16), each read once by the compression.
        window_block = config.layers * config.kv_heads * config.tokens_per_block * config.head_dim * 2 * 2
        # grey_kv_compress, or grey_kv_compress_warps where the plan takes it (blocks of up to 16 tokens);
        # builds before them (compared side by side) had grey_kv_params then grey_kv_codes.
        compression = ("grey_kv_compress", "grey_kv_compress_warps", "grey_kv_params", "grey_kv_codes")
        compress_us = sum(t for name, t in kernels.items() if name in compression)
        figures = {"append_buffer_gbps_bf16_in": read / seconds / 1e9, "append_buffer_calls_gbps_bf16_in": read / appends_only / 1e9,
                   "append_buffer_device_gbps_bf16_in": read / device / 1e9,
                   "append_buffer_device_us_by_kernel": kernels, "blocks_compressed_per_fill": compressed[0]}
        if compress_us > 0:
            figures["compress_device_gbps_bf16_in"] = compressed[0] * window_block / compress_us / 1e3
        return figures


def memcpy_figures(args):
    """The device-to-device copy of one chunk's K and V in bf16 (torch's copy_), the bandwidth an append
    from device memory is held against: GB/s of the bytes read, by kernel time."""
    x = torch.randn(2 * min(args.chunk, args.context) * args.kv_heads * args.head_dim, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    t = torch_timings(lambda: y.copy_(x), args)
    return {"bytes": x.numel() * 2, "gbps": x.numel() * 2 / t["kernel_us"] / 1e3}


def grey_buffer_figures(grey, cache, params, sequences, batch, q, expected, warmup=5, repeat=30):
    """The same attention by grey_kv_attend_buffer, the queries and the output in buffers on the GPU: only
    the block tables cross to the device. Its output must be grey_kv_attend's, bit for bit."""
    lib, io = grey.lib, C.c_uint64(q.nbytes)
    q_buffer, out_buffer = C.c_void_p(), C.c_void_p()
    grey.call("grey_buffer_create", grey.context, C.c_uint32(grey.gpu), io, C.byref(q_buffer))
    try:
        grey.call("grey_buffer_create", grey.context, C.c_uint32(grey.gpu), io, C.byref(out_buffer))
        grey.call("grey_buffer_write", q_buffer, C.c_uint64(0), q.ctypes.data_as(C.c_void_p), io)

        def attend():
            grey.call("grey_kv_attend_buffer", cache, C.byref(params), sequences, C.c_uint32(batch), q_buffer, C.c_uint64(0),
                      out_buffer, C.c_uint64(0), io)

        seconds = median_wall(attend, warmup, repeat)
        device, kernels = device_seconds(attend, repeat)
        got = np.empty_like(expected)
        grey.call("grey_buffer_read", out_buffer, C.c_uint64(0), got.ctypes.data_as(C.c_void_p), io)
        if not np.array_equal(got, expected):
            raise RuntimeError("grey_kv_attend_buffer's output differs from grey_kv_attend's")
        figures = {"buffer_attend_us": seconds * 1e6, "buffer_device_us": device * 1e6, "buffer_device_us_by_kernel": kernels}
        # A library built before grey_kv_attend_async has no such figures.
        if hasattr(lib, "grey_kv_attend_async"):
            figures.update(grey_async_figures(grey, cache, params, sequences, batch, q_buffer, out_buffer, io, expected, warmup, repeat))
        return figures
    finally:
        lib.grey_buffer_destroy(out_buffer)
        lib.grey_buffer_destroy(q_buffer)


def grey_async_figures(grey, cache, params, sequences, batch, q_buffer, out_buffer, io, expected, warmup, repeat):
    """grey_kv_attend_async on a stream of libgrey's: the host's time to queue one call (median), and the
    time a call takes when `repeat` of them are queued back to back and the stream then synchronized (as a
    decode loop queues a layer's attention after another: the figure to hold against a PyTorch kernel's
    time over calls in a row). Its output must be grey_kv_attend's, bit for bit."""
    lib = grey.lib
    stream = C.c_void_p()
    grey.call("grey_stream_create", grey.context, C.c_uint32(grey.gpu), C.byref(stream))
    try:
        def queue():
            grey.call("grey_kv_attend_async", cache, C.byref(params), sequences, C.c_uint32(batch), q_buffer, C.c_uint64(0),
                      out_buffer, C.c_uint64(0), io, stream)

        def synchronize():
            grey.call("grey_stream_synchronize", stream)

        for _ in range(warmup):
            queue()
        synchronize()
        queue_seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            queue()
            queue_seconds.append(time.perf_counter() - start)
            synchronize()
        start = time.perf_counter()
        for _ in range(repeat):
            queue()
        synchronize()
        in_a_row = (time.perf_counter() - start) / repeat
        got = np.empty_like(expected)
        grey.call("grey_buffer_read", out_buffer, C.c_uint64(0), got.ctypes.data_as(C.c_void_p), io)
        if not np.array_equal(got, expected):
            raise RuntimeError("grey_kv_attend_async's output differs from grey_kv_attend's")
        return {"async_queue_us": statistics.median(queue_seconds) * 1e6, "async_in_a_row_us": in_a_row * 1e6}
    finally:
        lib.grey_stream_destroy(stream)


def torch_timings(run, args):
    """A PyTorch call timed as every baseline here is: the median wall time of one call and a synchronize,
    and its kernels' time by CUDA events around --repeat calls in a row."""
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
    return {"wall_us": seconds * 1e6, "kernel_us": start.elapsed_time(end) * 1e3 / args.repeat}


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

        figures[label] = torch_timings(run, args)
    return figures


def flashinfer_inputs(args, queries):
    """The queries [B, Hq, D], a paged K and V cache ([pages, page, Hkv, D] each, NHD; sequence b owns pages
    b * pages_per_sequence onwards, in order; K and V apart, with equal strides, as a serving engine's
    per-layer caches are) in bf16, and the reference output: SDPA's math backend in float32 on the same
    values, one sequence at a time (GQA repeats K and V 4x)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    device = torch.device("cuda")
    page = args.tokens_per_block
    pages_per_sequence = args.context // page
    q = torch.from_numpy(queries).to(device, torch.bfloat16)
    k_cache = torch.randn(args.batch * pages_per_sequence, page, args.kv_heads, args.head_dim, device=device,
                          dtype=torch.bfloat16)
    v_cache = torch.randn_like(k_cache)
    reference = torch.empty(args.batch, args.query_heads, args.head_dim, device=device, dtype=torch.float32)
    with sdpa_kernel(SDPBackend.MATH):
        for b in range(args.batch):
            pages = slice(b * pages_per_sequence, (b + 1) * pages_per_sequence)
            k = k_cache[pages].reshape(args.context, args.kv_heads, args.head_dim)
            v = v_cache[pages].reshape(args.context, args.kv_heads, args.head_dim)
            reference[b] = torch.nn.functional.scaled_dot_product_attention(
                q[b].float().unsqueeze(1), k.float().transpose(0, 1), v.float().transpose(0, 1),
                enable_gqa=True).squeeze(1)
    return q, k_cache, v_cache, reference


def flashinfer_figures(args, queries):
    """FlashInfer's BatchDecodeWithPagedKVCacheWrapper on a paged bf16 cache (NHD, --tokens-per-block tokens a
    page, every sequence's pages in order, K and V random normal as in sdpa_figures), planned once, then its run
    timed as SDPA is (wall time of one call and a synchronize, CUDA events over repeated calls) and by CUPTI
    (device_seconds), with the CUDA-core kernel (use_tensor_cores=False) and the tensor-core one (True). Each
    output is checked against SDPA's math backend in float32 on the same q, K and V."""
    try:
        import flashinfer
    except Exception as error:
        return {"error": f"flashinfer not importable: {str(error).splitlines()[0][:100]}"}
    page = args.tokens_per_block
    if args.context % page:
        return {"error": f"context {args.context} is not a whole number of {page}-token pages"}
    try:
        q, k_cache, v_cache, reference = flashinfer_inputs(args, queries)
    except Exception as error:  # out of memory, say: SDPA's figures and libgrey's still stand
        return {"error": f"FlashInfer's inputs: {type(error).__name__}: {str(error).splitlines()[0][:160]}"}
    device = q.device
    pages_per_sequence = args.context // page
    indptr = torch.arange(0, args.batch + 1, dtype=torch.int32, device=device) * pages_per_sequence
    indices = torch.arange(args.batch * pages_per_sequence, dtype=torch.int32, device=device)
    last_page_len = torch.full((args.batch,), page, dtype=torch.int32, device=device)
    result = {"version": getattr(flashinfer, "__version__", "unknown"), "from": os.path.dirname(flashinfer.__file__),
              "page_size": page, "layout": "NHD",
              "reference": "SDPA math backend, float32, same q/K/V", "entries": {}}
    for label, tensor_cores in (("cuda-cores", False), ("tensor-cores", True)):
        entry = result["entries"][label] = {"use_tensor_cores": tensor_cores}
        try:
            workspace = torch.zeros(128 << 20, dtype=torch.uint8, device=device)
            wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD", use_tensor_cores=tensor_cores)
            start = time.perf_counter()
            wrapper.plan(indptr, indices, last_page_len, args.query_heads, args.kv_heads, args.head_dim, page,
                         q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
            torch.cuda.synchronize()
            # The first plan loads (or JIT-compiles) the kernel module: seconds, not a per-call cost.
            entry["first_plan_s"] = time.perf_counter() - start
            # backend="auto" resolves per machine (cuDNN where its Python frontend imports, else FlashInfer's
            # own FA2 kernels): which one ran is part of the figure.
            entry["backend"] = getattr(wrapper, "resolved_backend", "auto")
            out = torch.empty_like(q)

            def run():
                return wrapper.run(q, (k_cache, v_cache), out=out)
            run()
            torch.cuda.synchronize()
            difference = (out.float() - reference).abs().max().item()
            scale = reference.abs().max().item()
            entry["max_abs_error"] = difference
            entry["max_relative_error"] = difference / scale  # to the reference's largest magnitude
            entry["norm_relative_error"] = ((out.float() - reference).norm() / reference.norm()).item()
            if not entry["max_relative_error"] < 0.05:  # bf16 output rounding is ~0.4%
                entry["error"] = f"output differs from the reference: max relative error {entry['max_relative_error']:.3g}"
                continue

            entry.update(torch_timings(run, args))
            try:
                seconds, kernels = device_seconds(run, args.repeat)
                entry["device_us"], entry["device_us_by_kernel"] = seconds * 1e6, kernels
            except Exception as error:  # CUPTI unavailable: the CUDA-event figure stands
                entry["device_time_error"] = str(error).splitlines()[0][:160]
        except Exception as error:
            entry["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        finally:
            torch.cuda.synchronize()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--backend-dir", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--query-heads", type=int, default=32)
    add_fill_arguments(parser)
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
    memcpy = memcpy_figures(args)
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
    # The bf16 baseline libgrey is measured against: the fastest of SDPA's backends and FlashInfer's kernels,
    # by wall time and by kernel time separately (a different one may win each).
    baselines = [(f"SDPA {label}", f) for label, f in sdpa.items()]
    baselines += [(f"FlashInfer {label}", f) for label, f in flashinfer_result.get("entries", {}).items()]
    walls = [(f["wall_us"], name) for name, f in baselines if "wall_us" in f and "error" not in f]
    kernels = [(f["kernel_us"], name) for name, f in baselines if "kernel_us" in f and "error" not in f]
    best_wall, best_wall_name = min(walls, default=(None, None))
    best_kernel, best_kernel_name = min(kernels, default=(None, None))
    for label, f in sdpa.items():
        if "error" in f:
            print(f"  SDPA {label:9s} not run: {f['error']}")
        else:
            print(f"  SDPA {label:9s} bf16    {f['wall_us']:9.1f} us a call (wall)   {f['kernel_us']:9.1f} us kernel time")
    if "error" in flashinfer_result:
        print(f"  FlashInfer       not run: {flashinfer_result['error']}")
    for label, f in flashinfer_result.get("entries", {}).items():
        if "wall_us" not in f:
            print(f"  FlashInfer {label:12s} no figure: {f.get('error')}")
            continue
        device = f" {f['device_us']:9.1f} us device time (CUPTI)" if "device_us" in f else ""
        print(f"  FlashInfer {label:12s} bf16 {f['wall_us']:9.1f} us a call (wall)   {f['kernel_us']:9.1f} us kernel time  "
              f"{device}   max relative error {f['max_relative_error']:.1e} vs SDPA math in f32   "
              f"({flashinfer_result['version']}, backend {f['backend']}, paged NHD, {flashinfer_result['page_size']} "
              "tokens a page)")
    if best_wall is not None:
        print(f"  best bf16 baseline: {best_wall:.1f} us a call (wall, {best_wall_name}), "
              f"{best_kernel:.1f} us kernel time ({best_kernel_name})")
    reference = next((f["output"] for f in ours if f["format"] == "bf16"), None)
    for f in ours:
        ratio = best_wall / f["attend_us"] if best_wall else float("nan")
        kernel_ratio = best_kernel / f["device_us"] if best_kernel else float("nan")
        line = (f"  libgrey {f['format']:8s} {f['attend_us']:9.1f} us a call (wall)   {ratio:5.2f}x the best bf16 wall time   "
                f"{f['device_us']:8.1f} us device time = {kernel_ratio:5.2f}x the best bf16 kernel time   "
                f"{f['bytes_per_token']:8.1f} bytes/token = {f['memory_ratio']:.3f} of bf16   append {f['append_gbps_f32_in']:.2f} GB/s of F32 input")
        if reference is not None and f["format"] != "bf16":
            error = np.linalg.norm(f["output"] - reference) / np.linalg.norm(reference)
            f["relative_error_vs_bf16_cache"] = float(error)
            line += f"   output error vs the bf16 cache {error:.2e} (random K/V)"
        print(line)
        if "append_buffer_gbps_bf16_in" in f:
            print(f"  libgrey {f['format']:8s} append from a GPU buffer (BF16, {min(args.chunk, args.context)} tokens a call): "
                  f"{f['append_buffer_gbps_bf16_in']:.1f} GB/s (wall; {f['append_buffer_calls_gbps_bf16_in']:.1f} by the append calls' "
                  f"wall time alone), {f['append_buffer_device_gbps_bf16_in']:.1f} GB/s by device time "
                  f"= {f['append_buffer_device_gbps_bf16_in'] / memcpy['gbps']:.2f}x the device-to-device copy of the same bytes "
                  f"({memcpy['gbps']:.1f} GB/s)")
            if "compress_device_gbps_bf16_in" in f:
                print(f"  libgrey {f['format']:8s} compression of the fill's {f['blocks_compressed_per_fill']} finished blocks alone: "
                      f"{f['compress_device_gbps_bf16_in']:.1f} GB/s of window-form BF16 read, by kernel time "
                      f"= {f['compress_device_gbps_bf16_in'] / memcpy['gbps']:.2f}x the copy")
        if "buffer_attend_us" not in f:
            continue
        ratio = best_wall / f["buffer_attend_us"] if best_wall else float("nan")
        kernel_ratio = best_kernel / f["buffer_device_us"] if best_kernel else float("nan")
        print(f"  libgrey {f['format']:8s} {f['buffer_attend_us']:9.1f} us a call (wall)   {ratio:5.2f}x the best bf16 wall time   "
              f"{f['buffer_device_us']:8.1f} us device time = {kernel_ratio:5.2f}x the best bf16 kernel time   "
              "(queries and output in device buffers: grey_kv_attend_buffer)")
        if "async_in_a_row_us" in f:
            ratio = best_kernel / f["async_in_a_row_us"] if best_kernel else float("nan")
            print(f"  libgrey {f['format']:8s} {f['async_in_a_row_us']:9.1f} us a call, {args.repeat} queued in a row on a stream "
                  f"(wall) = {ratio:5.2f}x the best bf16 kernel time over calls in a row   {f['async_queue_us']:6.1f} us to queue one "
                  "(grey_kv_attend_async)")
    if best_kernel:
        print(f"  (best bf16 kernel time {best_kernel:.1f} us, {best_kernel_name}; libgrey's figures are whole calls, "
              "transfers included: of the queries, the block tables and the output from host arrays, of the block "
              "tables alone from device buffers)")
    if args.json:
        for f in ours:
            f.pop("output", None)
        baseline = {"wall_us": best_wall, "wall_from": best_wall_name, "kernel_us": best_kernel, "kernel_from": best_kernel_name}
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "sdpa": sdpa, "flashinfer": flashinfer_result, "best_bf16_baseline": baseline, "memcpy": memcpy,
                       "libgrey": ours}, out, indent=2)


if __name__ == "__main__":
    main()
