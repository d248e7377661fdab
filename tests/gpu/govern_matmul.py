#!/usr/bin/env python3
"""A fixed amount of GPU matmul work, for greyctl validate-performance --workload (one run = one unit)."""
import argparse
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=2.0)
ap.add_argument("--size", type=int, default=8192)
args = ap.parse_args()
a = torch.randn(args.size, args.size, device="cuda", dtype=torch.bfloat16)
b = torch.randn(args.size, args.size, device="cuda", dtype=torch.bfloat16)
end = time.perf_counter() + args.seconds
while time.perf_counter() < end:
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
