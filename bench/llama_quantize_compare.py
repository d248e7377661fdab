#!/usr/bin/env python3
"""`greyctl quantize --backend host` against llama.cpp's `llama-quantize` on the same GGUF, side by side.

Writes a llama-architecture GGUF (F16 or F32) of TinyLlama-1.1B's tensor shapes (--layers of them) whose
values are a real model's weights (all-MiniLM-L6-v2's, from scripts/fetch-model.sh, tiled into the shapes
with a different offset and scale for each tensor), then quantizes it with both tools to each ggml format
asked for, on the same number of threads (libgrey's host.threads, llama-quantize's nthread), alternating
the two tools --repeat times after one warm-up run each (the input stays in the page cache). It prints the
median wall time of each and their ratio, and compares the outputs tensor by tensor: every tensor that
both store in the same type must have the same bytes. llama-quantize runs with --pure (one type for every
tensor, no k-quant mixture) and greyctl with --no-keep-critical, so both quantize the same tensors.

  python3 bench/llama_quantize_compare.py --greyctl build/release/bin/greyctl \
      --llama-bin "$(bash bench/build-llama-cpp.sh)" [--threads N] [--layers 8] [--dtype f16] [--formats q4_0,q8_0]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import safetensors_io as st  # noqa: E402 - the project's one safetensors reader and writer

LLAMA_TYPES = {"q4_0": "Q4_0", "q8_0": "Q8_0", "q4_1": "Q4_1"}


def real_values(path):
    """Every value of the model's weight matrices, as float32 (the pool the tensors are tiled from)."""
    tensors, _ = st.read(path)
    parts = [st.array(t).astype(np.float32).ravel() for t in tensors.values() if t.dtype in ("F32", "F16") and len(t.shape) == 2]
    return np.concatenate(parts)


def write_model(path, pool, layers, dtype, hidden=2048, ffn=5632, heads=32, kv_heads=4, vocab=32000):
    kv_width = kv_heads * hidden // heads
    shapes = [("token_embd.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"blk.{i}."
        shapes += [(p + "attn_norm.weight", (hidden,)), (p + "attn_q.weight", (hidden, hidden)), (p + "attn_k.weight", (kv_width, hidden)),
                   (p + "attn_v.weight", (kv_width, hidden)), (p + "attn_output.weight", (hidden, hidden)),
                   (p + "ffn_norm.weight", (hidden,)), (p + "ffn_gate.weight", (ffn, hidden)), (p + "ffn_up.weight", (ffn, hidden)),
                   (p + "ffn_down.weight", (hidden, ffn))]
    shapes += [("output_norm.weight", (hidden,)), ("output.weight", (vocab, hidden))]
    w = GGUFWriter(path, "llama")
    w.add_block_count(layers)
    w.add_context_length(2048)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1 if dtype == "f16" else 0)
    for index, (name, shape) in enumerate(shapes):
        count = int(np.prod(shape))
        if len(shape) == 1:  # norms stay F32, as llama.cpp's converters write them
            w.add_tensor(name, np.ones(shape, dtype=np.float32))
            continue
        start = (index * 7919 * 1024) % len(pool)
        values = np.resize(np.roll(pool, -start), count).reshape(shape) * np.float32(1.0 + (index % 17) / 32.0)
        w.add_tensor(name, values.astype(np.float16 if dtype == "f16" else np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def timed(command, env=None):
    start = time.perf_counter()
    r = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"{command[0]} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return elapsed


def tensors_of(path):
    return {t.name: (int(t.tensor_type), bytes(t.data.tobytes())) for t in GGUFReader(path).tensors}


def compare(llama_out, grey_out):
    ours, theirs = tensors_of(grey_out), tensors_of(llama_out)
    same = differ = other_type = 0
    first_difference = None
    for name, (kind, data) in theirs.items():
        if name not in ours:
            other_type += 1
            continue
        our_kind, our_data = ours[name]
        if our_kind != kind:
            other_type += 1
        elif our_data == data:
            same += 1
        else:
            differ += 1
            first_difference = first_difference or name
    return {"identical": same, "different": differ, "not_compared": other_type, "first_difference": first_difference,
            "tensors": len(theirs)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--greyctl", required=True)
    parser.add_argument("--llama-bin", required=True, help="folder holding llama-quantize (bench/build-llama-cpp.sh prints it)")
    parser.add_argument("--source", help="model whose weights fill the tensors (default: scripts/fetch-model.sh)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--dtype", choices=("f16", "f32"), default="f16")
    parser.add_argument("--formats", default="q4_0,q8_0")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json")
    args = parser.parse_args()

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    source = args.source or subprocess.run(["bash", os.path.join(root, "scripts/fetch-model.sh")], check=True, capture_output=True,
                                           text=True).stdout.strip()
    work = args.workdir or tempfile.mkdtemp(prefix="grey-llama-quantize-")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, f"tinyllama-{args.layers}l-{args.dtype}.gguf")
    if not os.path.exists(model):
        write_model(model, real_values(source), args.layers, args.dtype)
    size = os.path.getsize(model)
    config = os.path.join(work, "threads.yaml")
    with open(config, "w") as f:
        f.write(f"host:\n  threads: {args.threads}\n")
    quantize = os.path.join(args.llama_bin, "llama-quantize")
    version = subprocess.run([os.path.join(args.llama_bin, "llama-completion"), "--version"], capture_output=True, text=True)
    version = (version.stdout + version.stderr).strip().splitlines()
    print(f"model: {model} ({size / 1e9:.3f} GB, {args.dtype.upper()}, {args.layers} layers of TinyLlama-1.1B's shapes, "
          f"values from {os.path.basename(source)}); {args.threads} threads")
    print(f"llama.cpp: {version[0] if version else 'unknown version'}")
    with open(model, "rb") as f:  # into the page cache, for both tools alike
        while f.read(1 << 24):
            pass
    results = {"model_bytes": size, "threads": args.threads, "dtype": args.dtype, "llama_cpp": version[:1], "formats": {}}
    for fmt in args.formats.split(","):
        llama_out, grey_out = os.path.join(work, f"llama-{fmt}.gguf"), os.path.join(work, f"grey-{fmt}.gguf")
        llama_cmd = [quantize, "--pure", model, llama_out, LLAMA_TYPES[fmt], str(args.threads)]
        grey_cmd = [args.greyctl, "--no-env", "--config", config, "quantize", "--input", model, "--format", fmt, "--no-keep-critical",
                    "--backend", "host", "--output", grey_out, "--force"]
        times = {"llama-quantize": [], "greyctl": []}
        for run in range(args.repeat + 1):
            for name, command in (("llama-quantize", llama_cmd), ("greyctl", grey_cmd)) if run % 2 == 0 else \
                    (("greyctl", grey_cmd), ("llama-quantize", llama_cmd)):
                elapsed = timed(command)
                if run > 0:  # the first round warms both up
                    times[name].append(elapsed)
        medians = {name: statistics.median(values) for name, values in times.items()}
        bytes_check = compare(llama_out, grey_out)
        ratio = medians["llama-quantize"] / medians["greyctl"]
        print(f"  {fmt}: llama-quantize {medians['llama-quantize']:.3f} s ({size / medians['llama-quantize'] / 1e9:.2f} GB/s), "
              f"greyctl {medians['greyctl']:.3f} s ({size / medians['greyctl'] / 1e9:.2f} GB/s): greyctl {ratio:.2f}x llama-quantize's "
              f"speed; tensors identical {bytes_check['identical']}/{bytes_check['tensors']}, different {bytes_check['different']}"
              + (f" (first: {bytes_check['first_difference']})" if bytes_check["different"] else "")
              + f", stored in other types {bytes_check['not_compared']}")
        results["formats"][fmt] = {"seconds": times, "median_seconds": medians, "speed_ratio": ratio, **bytes_check}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if all(r["different"] == 0 for r in results["formats"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
