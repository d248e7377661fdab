#!/usr/bin/env python3
"""`greyctl kv-bench` beside PyTorch SDPA on the same shapes.

Runs `greyctl kv-bench --json` for each --formats entry (with and without --hadamard-k when
--hadamard is given) on --backend, then, when torch imports and sees a CUDA device,
torch.nn.functional.scaled_dot_product_attention on bf16 tensors already on the GPU (queries
[batch, query_heads, 1, head_dim], K/V [batch, kv_heads, context, head_dim], GQA), with each SDPA backend
that has a kernel for the shapes, timed the way greyctl times a call (wall time of one call and a
synchronize, the median of --iterations after --warmup). Without torch or CUDA the SDPA column is
skipped and the reason printed; greyctl's figures are still printed. Every figure is measured in the
run; with --json every one is written.

  python3 bench/kv_bench_sdpa.py --greyctl build/gpu/bin/greyctl --backend cuda [--backend-dir DIR]
                                 [--context 32768] [--batch 8] [--formats int8,int4,int2,fp8-e4m3,bf16]
                                 [--hadamard] [--json out.json]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time


def greyctl_figures(args, fmt, rotate):
    command = [args.greyctl, "--no-env"] + (["--backend-dir", args.backend_dir] if args.backend_dir else []) + [
        "kv-bench", "--json", "--backend", args.backend, "--format", fmt, "--layers", "1", "--query-heads", str(args.query_heads),
        "--kv-heads", str(args.kv_heads), "--head-dim", str(args.head_dim), "--context", str(args.context), "--batch", str(args.batch),
        "--window", str(args.window), "--group", str(args.group), "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    if rotate:
        command.append("--hadamard-k")
    run = subprocess.run(command, capture_output=True, text=True)
    # A failed run's JSON is {"error": {"message": ...}}; a successful one also has an "error" key (the
    # accuracy report), so only the exit status tells them apart.
    if run.returncode != 0:
        document = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
        return {"failed": document.get("error", {}).get("message", run.stderr.strip())}
    return json.loads(run.stdout)


def sdpa_figures(args):
    """Median wall microseconds of SDPA per backend, or the reason it could not run."""
    try:
        import torch
    except ImportError as error:
        return {"skipped": f"torch does not import ({error})"}
    if not torch.cuda.is_available():
        return {"skipped": "torch sees no CUDA device"}
    from torch.nn.attention import SDPBackend, sdpa_kernel
    device = torch.device("cuda")
    q = torch.randn(args.batch, args.query_heads, 1, args.head_dim, device=device, dtype=torch.bfloat16)
    k = torch.randn(args.batch, args.kv_heads, args.context, args.head_dim, device=device, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    figures = {}
    for label, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                           ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)):
        def call():
            with sdpa_kernel(backend):
                torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            torch.cuda.synchronize()
        try:
            call()
        except Exception as error:  # no kernel of this backend for these shapes
            figures[label] = {"error": str(error).splitlines()[0][:120]}
            continue
        for _ in range(args.warmup):
            call()
        times = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e6)
        figures[label] = {"median_us": statistics.median(times)}
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--greyctl", required=True)
    parser.add_argument("--backend", default="cuda")
    parser.add_argument("--backend-dir")
    parser.add_argument("--query-heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--formats", default="int8,int4,int2,fp8-e4m3,bf16")
    parser.add_argument("--hadamard", action="store_true", help="also measure every quantized format with --hadamard-k")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()

    print(f"decode attention: batch {args.batch}, {args.query_heads} query heads / {args.kv_heads} KV heads, head_dim {args.head_dim}, "
          f"context {args.context}; greyctl kv-bench on {args.backend}")
    sdpa = sdpa_figures(args)
    best = min((f["median_us"] for f in sdpa.values() if isinstance(f, dict) and "median_us" in f), default=None)
    results = {"shape": vars(args), "greyctl": {}, "sdpa_bf16": sdpa}
    failed = False
    for fmt in args.formats.split(","):
        for rotate in ((False, True) if args.hadamard and fmt != "bf16" else (False,)):
            label = fmt + (" + hadamard-k" if rotate else "")
            g = greyctl_figures(args, fmt, rotate)
            results["greyctl"][label] = g
            if "failed" in g:
                failed = True
                print(f"  greyctl {label:22s} FAILED: {g['failed']}")
                continue
            t, e = g["timing"], g["error"]["vs_float64_input"]
            ratio = f", {best / t['median_us']:.2f}x the best SDPA" if best else ""
            print(f"  greyctl {label:22s} {t['median_us']:10.1f} us ({t['gb_per_s']:7.1f} GB/s){ratio}; rel RMSE {e['rel_rmse']:.2e}, "
                  f"{g['cache']['bytes_per_token']:.1f} bytes per token")
    if "skipped" in sdpa:
        print(f"  SDPA skipped: {sdpa['skipped']}")
    else:
        for label, f in sdpa.items():
            print(f"  SDPA bf16 {label:20s} " + (f"{f['median_us']:10.1f} us" if "median_us" in f else f"no kernel: {f['error']}"))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
