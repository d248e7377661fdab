#!/usr/bin/env python3
"""libgrey's float codec on the GPU beside nvCOMP, on the same real weights, in one run.

The weights: every F16 tensor of a safetensors file (tests/gpu/fetch-deps.sh puts all-MiniLM-L6-v2 in
.deps/model), converted to BF16 and repeated to --mib MiB: the bytes grey_gpu_codec_conformance measures
(it builds them the same way and prints its own row, which this script runs and repeats). For each
nvCOMP algorithm (64 KiB chunks, as libgrey's blocks): compression ratio and decode GB/s of decoded
bytes, best of --repeat synchronous decodes; beside them the order-0 bound of the same bytes (the
exponent byte's entropy plus that of the sign and mantissa) and a device-to-device copy.

  python3 bench/codec_gpu_bench.py --model FILE --conformance build/gpu/bin/grey_gpu_codec_conformance \\
      --backend-dir build/gpu/lib/grey [--mib 512] [--repeat 7] [--activations FILE]

--activations: post-ReLU activations of a real network on real input (bench/relu_activations.py writes
them) for the sparse codecs, each tensor taken as it is, not pruned.

Needs PyTorch with CUDA and the nvidia-nvcomp-cu13 + nvidia-libnvcomp-cu13 wheels.
"""
import argparse
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import safetensors_io as st  # noqa: E402


def f16_tensors(path):
    """Every F16 tensor of the file, in file order, as one array of uint16 bits."""
    tensors, _ = st.read(path)
    return np.concatenate([np.frombuffer(t.data, dtype=np.uint16) for t in tensors.values() if t.dtype == "F16"])


def order0_ratio(bits16):
    values = bits16.astype(np.int64)
    symbols = (values >> 7) & 0xFF
    rest = ((values >> 15) << 7) | (values & 0x7F)
    def entropy(x):
        counts = np.bincount(x)
        counts = counts[counts > 0].astype(np.float64)
        p = counts / counts.sum()
        return -(counts * np.log2(p)).sum()
    return 16.0 * len(values) / (entropy(symbols) + entropy(rest))


def best_seconds(repeat, body):
    best = math.inf
    for _ in range(repeat):
        torch.cuda.synchronize()
        start = time.perf_counter()
        body()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def nvcomp_decode(nvcomp, algorithm, options, data, repeat):
    """nvCOMP's compression ratio on `data` (uint8 on the GPU, 64 KiB chunks) and its best decode time,
    after checking that it decodes bit for bit."""
    codec = nvcomp.Codec(algorithm=algorithm, uncomp_chunk_size=65536, **options)
    compressed = codec.encode(nvcomp.as_array(data))
    torch.cuda.synchronize()
    back = torch.as_tensor(codec.decode(compressed), device="cuda").view(torch.uint8).reshape(-1)
    if not torch.equal(back[: data.numel()], data):
        raise RuntimeError("decoded bytes differ")
    return data.numel() / compressed.buffer_size, best_seconds(repeat, lambda: codec.decode(compressed))


def sparse_rows(nvcomp, bits, n, copy_s, repeat, suffix, zeros=None):
    """nvCOMP's codecs for sparse data on the 16-bit elements `bits` repeated to n elements: a row each."""
    data = torch.from_numpy(bits.view(np.int16).copy())
    data = data.repeat(n // data.numel() + 1)[:n].contiguous().cuda().view(torch.uint8)
    gb = data.numel() / 1e9
    zeros_text = "" if zeros is None else f" {zeros:>7.1%}"
    for algorithm, options in (("Cascaded", {"data_type": "<u2"}), ("Bitcomp", {"data_type": "<u2"}), ("ANS", {"data_type": "<f2"})):
        label = f"nvCOMP {algorithm} {options['data_type']} {suffix}"
        try:
            ratio, seconds = nvcomp_decode(nvcomp, algorithm, options, data, repeat)
            print(f"{label:<28}{zeros_text} {ratio:>7.3f}x {gb / seconds:>12.1f} {copy_s / seconds:>8.2f}")
        except Exception as error:  # an algorithm this build or GPU lacks is named, not fatal
            print(f"{label:<28} failed: {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--conformance", help="grey_gpu_codec_conformance, for libgrey's row")
    parser.add_argument("--backend-dir")
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--activations", help="F16 activations a network produced (bench/relu_activations.py): the sparse "
                        "codecs on each tensor as it is, beside libgrey's bitmask")
    args = parser.parse_args()

    from nvidia import nvcomp

    f16 = torch.from_numpy(f16_tensors(args.model).copy())
    bf16 = f16.view(torch.float16).to(torch.bfloat16).view(torch.int16)
    n = args.mib * (1 << 20) // 2
    data = bf16.repeat(n // bf16.numel() + 1)[:n].contiguous()
    bound = order0_ratio(data.numpy().view(np.uint16))
    device = data.cuda().view(torch.uint8)
    gb = device.numel() / 1e9
    copy_target = torch.empty_like(device)
    copy_s = best_seconds(args.repeat, lambda: copy_target.copy_(device))

    print(f"device: {torch.cuda.get_device_name()}; nvCOMP {nvcomp.__version__}; weights: {args.model}, "
          f"{f16.numel() * 2 / 2**20:.1f} MiB of F16 as BF16, repeated to {args.mib} MiB")
    print(f"order-0 bound (exponent byte + sign/mantissa): {bound:.3f}x; device copy {gb / copy_s:.1f} GB/s")
    print(f"{'codec':<22} {'ratio':>8} {'of bound':>9} {'decode GB/s':>12} {'x copy':>8}")
    rows = [("ANS", {"data_type": "<f2"}), ("ANS", {"data_type": "|u1"}), ("Bitcomp", {"data_type": "<u2"}),
            ("Cascaded", {"data_type": "<u2"}), ("GDeflate", {}), ("LZ4", {"data_type": "<u2"}), ("Zstd", {})]
    for algorithm, options in rows:
        label = "nvCOMP " + algorithm + (" " + options["data_type"] if "data_type" in options else "")
        try:
            ratio, seconds = nvcomp_decode(nvcomp, algorithm, options, device, args.repeat)
            print(f"{label:<22} {ratio:>7.3f}x {ratio / bound:>8.1%} {gb / seconds:>12.1f} {copy_s / seconds:>8.2f}")
        except Exception as error:  # an algorithm this build or GPU lacks is named, not fatal
            print(f"{label:<22} failed: {error}")
    print(f"\nsparse: the same BF16 weights with the smallest-magnitude 50% / 90% set to zero (magnitude pruning)")
    print(f"{'codec':<28} {'ratio':>8} {'decode GB/s':>12} {'x copy':>8}")
    base = bf16.numpy().view(np.uint16)
    for fraction in (0.5, 0.9):
        magnitudes = base & 0x7FFF
        threshold = np.partition(magnitudes, int(fraction * len(magnitudes)))[int(fraction * len(magnitudes))]
        sparse_rows(nvcomp, np.where(magnitudes < threshold, 0, base).astype(np.uint16), n, copy_s, args.repeat, f"{int(fraction * 100)}%")
    if args.activations:
        tensors, metadata = st.read(args.activations)
        pieces = {name: st.array(t).view(np.uint16) for name, t in tensors.items() if t.dtype == "F16"}
        pieces["all"] = np.concatenate(list(pieces.values()))
        print(f"\nactivations: {args.activations} ({metadata.get('source', '')}), each tensor as it is (F16), "
              f"repeated to {args.mib} MiB; zeros are the network's own")
        print(f"{'codec':<28} {'zeros':>7} {'ratio':>8} {'decode GB/s':>12} {'x copy':>8}")
        for name, bits in pieces.items():
            sparse_rows(nvcomp, bits, n, copy_s, args.repeat, name, zeros=float(np.mean(bits == 0)))
    sys.stdout.flush()
    if args.conformance and args.backend_dir:
        run = subprocess.run([args.conformance, "--bench-only", "--backend-dir", args.backend_dir, "--model", args.model]
                             + (["--activations", args.activations] if args.activations else []), capture_output=True, text=True)
        print("\nlibgrey's own table (grey_gpu_codec_conformance --bench-only, the same bytes):")
        table = run.stdout[run.stdout.find("real weights"):] if "real weights" in run.stdout else run.stdout
        print(table.rstrip())
        print("\nlibgrey beside nvCOMP:")
        for line in run.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[:2] == ["bf16", "float"]:
                ratio, decode = float(fields[2].rstrip("x")), float(fields[4])
                copy = float(fields[5])
                print(f"{'libgrey float (bf16)':<22} {ratio:>7.3f}x {ratio / bound:>8.1%} {decode:>12.1f} {decode / copy:>8.2f}"
                      "   (its own run: copy measured there)")
            elif len(fields) >= 8 and fields[:2] == ["f16", "bitmask"]:
                ratio, decode, copy = float(fields[3].rstrip("x")), float(fields[5]), float(fields[6])
                print(f"{'libgrey bitmask ' + fields[2]:<28} {fields[4]:>7} {ratio:>7.3f}x {decode:>12.1f} {decode / copy:>8.2f}"
                      "   (its own run: copy measured there)")
            elif len(fields) >= 7 and fields[:2] == ["bf16", "bitmask"]:
                ratio, decode, copy = float(fields[3].rstrip("x")), float(fields[5]), float(fields[6])
                print(f"{'libgrey bitmask ' + fields[2]:<28} {ratio:>7.3f}x {decode:>12.1f} {decode / copy:>8.2f}"
                      "   (its own run: copy measured there)")
        if run.returncode != 0:
            print("grey_gpu_codec_conformance failed:", run.stdout[-2000:], run.stderr[-2000:])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
