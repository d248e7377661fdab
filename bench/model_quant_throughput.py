#!/usr/bin/env python3
"""Whole-model quantization speed beside the machine's sequential file read speed, in one run.

Builds a safetensors file of at least --gigabytes from a real model's tensors (each copy scaled by its
own factor, so no two copies hold the same bytes) in each --layout: `copies` repeats the whole model, its
embeddings too (half of MiniLM's bytes, which the policy keeps and copies); `llm` writes the embeddings
and 1-D tensors once and repeats the layers' matrices, the make-up of a language model of many layers.
Then measures, in each, cold (the file's pages dropped from the page cache with posix_fadvise) and warm
(the file read once before):

  read      a sequential read of the whole file in 16 MiB chunks (what any loader must at least pay);
  greyctl   `greyctl quantize --backend B --format F --output OUT` of the same file.

and prints each greyctl time as a fraction of the read speed of the same state, then the time of the
same command on the small source model (what a run costs beyond its bytes). Times are medians of
--repeats runs. Only numpy is needed.

  python3 bench/model_quant_throughput.py --greyctl build/gpu/bin/greyctl --backend-dir build/gpu/lib/grey \
      --source MODEL.safetensors --workdir /tmp/throughput [--gigabytes 1.1] [--backend cuda,host]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import safetensors_io as st  # noqa: E402 - the project's one safetensors reader and writer


def repeated(name, t, layout):
    """Whether a tensor is written once per copy: every tensor in `copies`; in `llm`, only the matrices of
    the layers, as a language model of many layers has one embedding table (10-20% of its bytes, which the
    policy keeps and so copies) and its norms beside many layers of matrices (which it quantizes)."""
    return layout == "copies" or (len(t.shape) >= 2 and "embed" not in name)


def tile(source, target, gigabytes, layout, matrix=0):
    """Writes the file of `layout`; with `matrix` N > 0 (llm only), the repeated tensors are N x N F16
    matrices filled with the source's own rank-2 F16 values end to end (each from its own offset, scaled by
    its own factor), the size of a large language model's projections rather than the source's."""
    tensors, _ = st.read(source)
    once = [(name, t.dtype, t.shape, t.data) for name, t in tensors.items() if not repeated(name, t, layout)]
    once_bytes = sum(len(t.data) for name, t in tensors.items() if not repeated(name, t, layout))

    def scaled(values, factor):
        return lambda: (values * values.dtype.type(factor)).astype(values.dtype).tobytes()

    if matrix > 0:
        pool = np.concatenate([st.array(t).ravel() for name, t in tensors.items()
                               if repeated(name, t, layout) and t.dtype == "F16"])
        elements = matrix * matrix
        copies = max(1, int(-(-(gigabytes * 1e9 - once_bytes) // (2 * elements))))

        def filled(c):
            start = (c * 1_000_003) % len(pool)
            return pool[(start + np.arange(elements)) % len(pool)].reshape(matrix, matrix)
        layers = [(f"layers.{c}.weight", "F16", [matrix, matrix], scaled(filled(c), 1.0 + c / 64.0))
                  for c in range(copies)]
    else:
        copy_bytes = sum(len(t.data) for name, t in tensors.items() if repeated(name, t, layout))
        copies = max(1, int(-(-(gigabytes * 1e9 - once_bytes) // copy_bytes)))
        layers = [(f"copy{c}.{name}", t.dtype, t.shape,
                   scaled(st.array(t), 1.0 + c / 64.0) if t.dtype in ("F32", "F16") else t.data)
                  for c in range(copies) for name, t in tensors.items() if repeated(name, t, layout)]
    st.write(target, once + layers, sync=True)
    return copies, os.path.getsize(target)


def drop_from_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed_read(path):
    begin = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        chunk = bytearray(16 << 20)
        view = memoryview(chunk)
        while f.readinto(view):
            pass
    return time.perf_counter() - begin


def timed_quantize(args, backend, model, output, greyctl=None):
    command = [greyctl or args.greyctl, "--backend-dir", args.backend_dir, "quantize", "--input", model, "--format",
               args.format, "--backend", backend, "--json", "--force", "--output", output]
    begin = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - begin
    if result.returncode != 0:
        sys.exit(f"greyctl failed ({result.returncode}): {result.stderr.strip()}")
    total = json.loads(result.stdout)["total"]
    return seconds, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--greyctl", required=True)
    parser.add_argument("--baseline", default="",
                        help="another greyctl (an earlier build, same backend directory) timed in the same loop, "
                             "alternating with --greyctl, in rows of its own")
    parser.add_argument("--backend-dir", required=True)
    parser.add_argument("--source", required=True, help="a real model's safetensors file (F32 or F16)")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--gigabytes", type=float, default=1.1)
    parser.add_argument("--format", default="int4-g128")
    parser.add_argument("--backend", default="cuda,host")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layout", default="copies,llm",
                        help="comma-separated: copies (the whole source repeated, its embeddings too) and/or llm "
                             "(the embeddings and 1-D tensors once, the layers' matrices repeated)")
    parser.add_argument("--matrix", type=int, default=0,
                        help="with llm: the repeated tensors are N x N F16 matrices of the source's values "
                             "(e.g. 4096, a 7B model's projections) instead of the source's own shapes")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    for layout in args.layout.split(","):
        measure(args, layout)
    # What a run costs beyond its bytes (process start, the backend's and the device's initialisation):
    # the same command on the one-copy source, warm.
    output = os.path.join(args.workdir, "tiled.gguf")
    source_size = os.path.getsize(args.source)
    for backend in args.backend.split(","):
        timed_read(args.source)
        seconds, _ = timed_quantize(args, backend, args.source, output)
        print(f"{'warm':6} {'greyctl ' + backend:14} {seconds:8.3f}  on the source alone ({source_size / 1e6:.0f} MB): "
              f"the fixed cost of a run")
    if os.path.exists(output):
        os.remove(output)
    return 0


def measure(args, layout):
    model = os.path.join(args.workdir, "tiled.safetensors")
    output = os.path.join(args.workdir, "tiled.gguf")
    copies, size = tile(args.source, model, args.gigabytes, layout, args.matrix if layout == "llm" else 0)
    name = os.path.basename(args.source)
    if layout == "copies":
        what = f"{copies} copies of {name}"
    elif layout == "llm" and args.matrix:
        what = (f"the embeddings and 1-D tensors of {name} once, {copies} F16 matrices of "
                f"{args.matrix} x {args.matrix} of its values")
    else:
        what = f"the embeddings and 1-D tensors of {name} once, its layers' matrices {copies} times"
    print(f"model ({layout}): {what}, {size / 1e9:.3f} GB; format {args.format}")
    print(f"{'state':6} {'what':14} {'seconds':>8} {'GB/s':>7} {'x read':>7}  (median of {args.repeats})")
    for state in ("cold", "warm"):
        def prepare():
            if state == "cold":
                drop_from_cache(model)
            else:
                timed_read(model)
        read_times = []
        for _ in range(args.repeats):
            prepare()
            read_times.append(timed_read(model))
        read = sorted(read_times)[len(read_times) // 2]
        print(f"{state:6} {'read':14} {read:8.3f} {size / read / 1e9:7.2f} {1.0:7.2f}")
        programs = [("greyctl", args.greyctl)] + ([("baseline", args.baseline)] if args.baseline else [])
        for backend in args.backend.split(","):
            times = {label: [] for label, _ in programs}
            totals = {}
            for _ in range(args.repeats):
                for label, program in programs:  # alternating, so that a drift of the machine falls on both
                    prepare()
                    if os.path.exists(output):
                        os.remove(output)
                    seconds, totals[label] = timed_quantize(args, backend, model, output, program)
                    times[label].append(seconds)
            for label, _ in programs:
                seconds, total = sorted(times[label])[len(times[label]) // 2], totals[label]
                print(f"{state:6} {label + ' ' + backend:14} {seconds:8.3f} {size / seconds / 1e9:7.2f} "
                      f"{read / seconds:7.2f}  ({total['bytes_in'] / 1e9:.3f} GB quantized to {total['bytes_out'] / 1e6:.0f} MB, "
                      f"the rest copied; rel RMSE {total['rel_rmse']:.5f})")
    os.remove(model)
    if os.path.exists(output):
        os.remove(output)


if __name__ == "__main__":
    sys.exit(main())
