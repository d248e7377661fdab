#!/usr/bin/env python3
"""Streams and events on an NVIDIA GPU: the three goals of issue 16, side by side in one process.

  1. Host cost to enqueue: the median wall time of one grey_quantize_buffer_async (int8-token, 4,096
     elements) and of one grey_buffer_write_async (64 KiB from grey_host_alloc memory) on a stream, the
     stream synchronised only every --batch calls; beside them a tiny PyTorch kernel launch and a launch
     followed by torch.cuda.synchronize(), measured in the same run.
  2. 1,000 quantizations of 4,096-element tensors (int8 per row, 1 x 4096) enqueued on one stream and
     synchronised once, against the same work in torch.compile'd PyTorch on one stream (and eager).
  3. Overlap: a host-to-device copy on one stream and a long kernel (a fill of --overlap-bytes) on another,
     timed with events: each alone, then both at once. Overlap = (copy + kernel - both) / min(copy, kernel),
     1.0 being the ideal.

Every figure is the median of --repeat runs after --warmup runs. Prints a table and, with --json, writes
the figures. It reports what it measured, goals met or not; tests/gpu/run.sh runs it (step stream-bench).

  python3 bench/stream_gpu_bench.py --lib build/gpu/lib/libgrey.so --backend-dir build/gpu/lib/grey [--json out.json]
"""
import argparse
import ctypes as C
import json
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_gpu_bench import Grey, desc_of, torch_formats  # noqa: E402


class Streams:
    """The stream and event calls of grey.h through ctypes, on the GPU of a quant_gpu_bench.Grey."""

    def __init__(self, grey):
        self.grey = grey
        self.lib = grey.lib
        self.lib.grey_event_elapsed_ms.argtypes = [C.c_void_p, C.c_void_p, C.POINTER(C.c_double)]

    def stream(self):
        handle = C.c_void_p()
        self.grey.call("grey_stream_create", self.grey.context, C.c_uint32(self.grey.gpu), C.byref(handle))
        return handle

    def event(self):
        handle = C.c_void_p()
        self.grey.call("grey_event_create", self.grey.context, C.c_uint32(self.grey.gpu), C.byref(handle))
        return handle

    def host(self, size):
        pointer = C.c_void_p()
        self.grey.call("grey_host_alloc", self.grey.context, C.c_uint32(self.grey.gpu), C.c_uint64(size), C.byref(pointer))
        return pointer

    def sync(self, stream):
        self.grey.call("grey_stream_synchronize", stream)

    def elapsed_ms(self, start, end):
        ms = C.c_double()
        self.grey.call("grey_event_elapsed_ms", start, end, C.byref(ms))
        return ms.value


def median_us(samples):
    return statistics.median(samples) * 1e6


def enqueue_cost(grey, streams, args):
    """Goal 1: per-call host time of the async calls, against a tiny torch launch (+ sync)."""
    stream = streams.stream()
    desc = desc_of("F32", [1, 4096])
    params = grey.params("int8-token")
    quant_bytes = C.c_uint64()
    grey.call("grey_quant_size", C.byref(desc), C.byref(params), C.byref(quant_bytes))
    source = grey.buffer(4096 * 4)
    grey.call("grey_buffer_fill", source, C.c_uint64(0), C.c_uint8(0x3C), C.c_uint64(4096 * 4))
    destination = grey.buffer(quant_bytes.value)
    copy_bytes = 64 << 10
    host = streams.host(copy_bytes)
    target = grey.buffer(copy_bytes)

    def per_call(enqueue):
        samples = []
        for _ in range(args.warmup):
            enqueue()
        streams.sync(stream)
        for _ in range(args.repeat):
            for _ in range(args.batch):
                t0 = time.perf_counter()
                enqueue()
                samples.append(time.perf_counter() - t0)
            streams.sync(stream)
        return median_us(samples)

    quantize = per_call(lambda: grey.call("grey_quantize_buffer_async", C.byref(desc), source, C.c_uint64(0), C.byref(params),
                                          destination, C.c_uint64(0), stream))
    write = per_call(lambda: grey.call("grey_buffer_write_async", target, C.c_uint64(0), host, C.c_uint64(copy_bytes), stream))
    # What the interpreter and ctypes add to any call: a grey.h call that does almost nothing, made the same way.
    count = C.c_uint32()
    ctypes_floor = per_call(lambda: grey.call("grey_device_count", grey.context, C.byref(count)))
    x = torch.ones(4096, device="cuda")
    samples, synced = [], []
    for i in range(args.warmup + args.repeat * args.batch):
        t0 = time.perf_counter()
        x.mul_(1.0)
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        if i >= args.warmup:
            samples.append(t1 - t0)
            synced.append(t2 - t0)
    for handle in (source, destination, target):
        grey.destroy(handle)
    grey.call("grey_host_free", grey.context, host)
    grey.lib.grey_stream_destroy(stream)
    # The peer's cost of marking a stream: a CUDA event record with and without timing, through torch.
    event_us = {}
    for timing in (True, False):
        event = torch.cuda.Event(enable_timing=timing)
        marks = []
        for i in range(args.warmup + args.repeat * args.batch):
            t0 = time.perf_counter()
            event.record()
            if i >= args.warmup:
                marks.append(time.perf_counter() - t0)
        torch.cuda.synchronize()
        event_us["timed" if timing else "untimed"] = median_us(marks)
    return {"quantize_async_us": quantize, "write_async_us": write, "ctypes_floor_us": ctypes_floor, "torch_launch_us": median_us(samples),
            "torch_launch_sync_us": median_us(synced), "torch_event_record_us": event_us}


def enqueue_cost_native(args):
    """Goal 1 without the interpreter: bench/stream_enqueue_bench.cpp, the same calls made from C++."""
    if not args.enqueue_bench:
        return None
    run = subprocess.run([args.enqueue_bench, "--backend-dir", args.backend_dir, "--backend", "cuda", "--json"],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{args.enqueue_bench} failed: {run.stderr.strip()}")
    return json.loads(run.stdout)


def many_small(grey, streams, args):
    """Goal 2: 1,000 int8 quantizations of 1 x 4096 on one stream, one synchronize, vs torch.compile."""
    count = args.count
    stream = streams.stream()
    desc = desc_of("F32", [1, 4096])
    params = grey.params("int8-token")
    quant_bytes = C.c_uint64()
    grey.call("grey_quant_size", C.byref(desc), C.byref(params), C.byref(quant_bytes))
    torch.manual_seed(0)
    inputs = torch.randn(count, 4096, device="cuda")
    sources = [grey.buffer(4096 * 4) for _ in range(count)]
    destinations = [grey.buffer(quant_bytes.value) for _ in range(count)]
    staged = inputs.cpu().numpy()
    for i, handle in enumerate(sources):
        row = staged[i]
        grey.call("grey_buffer_write", handle, C.c_uint64(0), row.ctypes.data_as(C.c_void_p), C.c_uint64(row.nbytes))

    def grey_run():
        for s, d in zip(sources, destinations):
            grey.call("grey_quantize_buffer_async", C.byref(desc), s, C.c_uint64(0), C.byref(params), d, C.c_uint64(0), stream)
        streams.sync(stream)

    quantize_rows = torch_formats("cuda")["int8-token"][0]
    rows = [inputs[i:i + 1] for i in range(count)]
    compiled = torch.compile(quantize_rows)

    def torch_run(fn):
        for r in rows:
            fn(r)
        torch.cuda.synchronize()

    def timed(run):
        for _ in range(args.warmup):
            run()
        samples = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            run()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1e3

    result = {"count": count, "grey_ms": timed(grey_run), "torch_eager_ms": timed(lambda: torch_run(quantize_rows))}
    result["torch_compile_ms"] = timed(lambda: torch_run(compiled)) if not args.no_compile else None
    if result["torch_compile_ms"]:
        result["grey_over_torch_compile"] = result["grey_ms"] / result["torch_compile_ms"]
    for handle in sources + destinations:
        grey.destroy(handle)
    grey.lib.grey_stream_destroy(stream)
    return result


def overlap(grey, streams, args):
    """Goal 3: a copy on one stream beside a kernel on another, timed with events."""
    size = args.overlap_bytes
    copy_stream, kernel_stream = streams.stream(), streams.stream()
    host = streams.host(size)
    copy_target, fill_target = grey.buffer(size), grey.buffer(size)
    start, copied, filled, end = (streams.event() for _ in range(4))
    fills = args.fills

    def copy(stream):
        grey.call("grey_buffer_write_async", copy_target, C.c_uint64(0), host, C.c_uint64(size), stream)

    def kernel(stream):
        for _ in range(fills):
            grey.call("grey_buffer_fill_async", fill_target, C.c_uint64(0), C.c_uint8(7), C.c_uint64(size), stream)

    def alone(work):
        samples = []
        for i in range(args.warmup + args.repeat):
            grey.call("grey_event_record", start, copy_stream)
            work(copy_stream)
            grey.call("grey_event_record", end, copy_stream)
            streams.sync(copy_stream)
            if i >= args.warmup:
                samples.append(streams.elapsed_ms(start, end))
        return statistics.median(samples)

    def both():
        samples = []
        for i in range(args.warmup + args.repeat):
            grey.call("grey_event_record", start, copy_stream)
            grey.call("grey_stream_wait_event", kernel_stream, start)
            copy(copy_stream)
            kernel(kernel_stream)
            grey.call("grey_event_record", copied, copy_stream)
            grey.call("grey_event_record", filled, kernel_stream)
            streams.sync(copy_stream)
            streams.sync(kernel_stream)
            if i >= args.warmup:
                samples.append(max(streams.elapsed_ms(start, copied), streams.elapsed_ms(start, filled)))
        return statistics.median(samples)

    copy_ms, kernel_ms, both_ms = alone(copy), alone(kernel), both()
    ideal = min(copy_ms, kernel_ms)
    result = {"bytes": size, "copy_ms": copy_ms, "kernel_ms": kernel_ms, "both_ms": both_ms,
              "overlap": (copy_ms + kernel_ms - both_ms) / ideal if ideal > 0 else None}
    for handle in (copy_target, fill_target):
        grey.destroy(handle)
    grey.call("grey_host_free", grey.context, host)
    for handle in (start, copied, filled, end):
        grey.lib.grey_event_destroy(handle)
    for handle in (copy_stream, kernel_stream):
        grey.lib.grey_stream_destroy(handle)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lib", required=True)
    parser.add_argument("--backend-dir", required=True)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="async calls between two synchronizes (goal 1)")
    parser.add_argument("--count", type=int, default=1000, help="quantizations in goal 2")
    parser.add_argument("--overlap-bytes", type=int, default=256 << 20)
    parser.add_argument("--fills", type=int, default=4, help="fills of --overlap-bytes making the kernel side of goal 3")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--enqueue-bench", help="grey_stream_enqueue_bench: goal 1 measured from C++ as well")
    parser.add_argument("--json")
    args = parser.parse_args()

    grey = Grey(args.lib, args.backend_dir)
    streams = Streams(grey)
    device = torch.cuda.get_device_name()
    results = {"device": device, "enqueue": enqueue_cost(grey, streams, args), "enqueue_native": enqueue_cost_native(args),
               "many_small": many_small(grey, streams, args), "overlap": overlap(grey, streams, args)}
    e, n, m, o = results["enqueue"], results["enqueue_native"], results["many_small"], results["overlap"]
    print(f"device: {device}")
    print("| goal | figure | measured | target |")
    print("|---|---|---|---|")
    print(f"| 1 host enqueue | grey_quantize_buffer_async, median | {e['quantize_async_us']:.2f} us | <= 5 us |")
    print(f"| 1 host enqueue | grey_buffer_write_async 64 KiB pinned, median | {e['write_async_us']:.2f} us | <= 5 us |")
    print(f"| 1 host enqueue | ctypes floor: grey_device_count through the same wrapper, median | {e['ctypes_floor_us']:.2f} us | - |")
    if n is not None:
        for key, what in (("quantize_async_us", "grey_quantize_buffer_async"), ("write_async_us", "grey_buffer_write_async 64 KiB pinned"),
                          ("fill_async_us", "grey_buffer_fill_async 64 KiB"), ("event_record_us", "grey_event_record")):
            f = n[key]
            target = "<= 5 us" if key in ("quantize_async_us", "write_async_us") else "-"
            print(f"| 1 host enqueue, from C++ | {what}, median (p10-p90) | {f['median']:.2f} us ({f['p10']:.2f}-{f['p90']:.2f}) | {target} |")
    print(f"| 1 host enqueue | torch tiny launch / launch + sync | {e['torch_launch_us']:.2f} / {e['torch_launch_sync_us']:.2f} us | (peer) |")
    t = e["torch_event_record_us"]
    print(f"| 1 host enqueue | torch event record, timed / untimed | {t['timed']:.2f} / {t['untimed']:.2f} us | (peer) |")
    compile_ms = f"{m['torch_compile_ms']:.2f} ms" if m["torch_compile_ms"] else "not run"
    ratio = f"{m['grey_over_torch_compile']:.2f}x" if m.get("grey_over_torch_compile") else "-"
    print(f"| 2 {m['count']} x int8 1x4096, one stream | libgrey / torch.compile / eager | {m['grey_ms']:.2f} ms / {compile_ms} / "
          f"{m['torch_eager_ms']:.2f} ms ({ratio}) | <= 1.2x torch.compile |")
    overlap_text = f"{o['overlap']:.2f}" if o["overlap"] is not None else "-"
    print(f"| 3 overlap | copy {o['copy_ms']:.3f} ms, kernel {o['kernel_ms']:.3f} ms, both {o['both_ms']:.3f} ms | "
          f"{overlap_text} of ideal | >= 0.90 |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    grey.close()


if __name__ == "__main__":
    main()
