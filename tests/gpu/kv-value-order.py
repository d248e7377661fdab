#!/usr/bin/env python3
"""The index arithmetic of kernels/cuda/kv_attend_mma.cuh's value_spans, emulated on the host: a staged chunk
of V codes read by ldmatrix.x4/x2.trans as the lanes address it, each register's codes taken as code_pair
takes them, placed in the m16n8k16 A fragment (a0: row g, columns 2t and 2t+1; a1: row g + 8; a2 and a3:
columns + 8), and every A row compared with V's column for the channel ChannelOrder gives it; then every
channel below head_dim must be some m-tile's row. For 8-, 4- and 2-bit codes and head_dim 16 to 128.
Exits 1 on any mismatch. It checks the mapping, not the instructions' arithmetic (the GPU conformance
program does that).

    python3 tests/gpu/kv-value-order.py
"""
import sys

import numpy as np
rng = np.random.default_rng(0)

def check(bits, dim, KS):
    codes = 16 // bits; per_span = codes // 2; kSpans = KS // per_span
    spans = (dim * bits + 127) // 128
    row_bytes = max(dim * bits // 8, 4)
    stride_bytes = ((row_bytes // 4) + ((4 - (row_bytes // 4) % 8) + 8) % 8) * 4
    V = rng.integers(0, 1 << bits, size=(16, dim))
    # staged rows: codes packed little-endian, channel c at bit (c*bits) of the row's bit string; padding random
    mem = rng.integers(0, 256, size=16 * stride_bytes + 256, dtype=np.int64)
    for tok in range(16):
        row = np.zeros(stride_bytes, dtype=np.int64)
        for c in range(dim):
            byte, shift = divmod(c * bits, 8)
            row[byte] |= V[tok, c] << shift
        mem[tok * stride_bytes: tok * stride_bytes + row_bytes] = row[:row_bytes]
    def b16(tok, span, col):  # b16 element col of span `span` of token row
        at = tok * stride_bytes + 16 * span + 2 * col
        return int(mem[at]) | int(mem[at + 1]) << 8
    def lane_address(lane, pair):  # row address given by lane for tile lane//8
        row = 8 * ((lane // 8) % 2) + lane % 8
        return row, 2 * pair + lane // 16  # token, span
    def ldmatrix(pair, x):
        # tile i: rows given by lanes 8i..8i+7; lane (g,t) gets column g of rows 2t, 2t+1
        regs = {}
        for lane in range(32):
            g, t = divmod(lane, 4)
            out = []
            for i in range(x):
                rows = [lane_address(8 * i + r, pair) for r in range(8)]
                (t0, s0), (t1, s1) = rows[2 * t], rows[2 * t + 1]
                out.append(b16(t0, s0, g) | b16(t1, s1, g) << 16)
            regs[lane] = out
        return regs
    def field(w, j):  # code j of both halves
        lo, hi = w & 0xffff, w >> 16
        m = (1 << bits) - 1
        return ((lo >> (j * bits)) & m, (hi >> (j * bits)) & m)
    def low(mt, g):
        half = codes // 2
        return 8 * codes * (mt // half) + codes * g + 2 * (mt % half)
    bad = 0; tiles = 0
    for pair in range((kSpans + 1) // 2):
        if 2 * pair >= spans: break
        x = 4 if (2 * pair + 1 < kSpans and 2 * pair + 1 < spans) else 2
        regs = ldmatrix(pair, x)
        for k in range(2):
            s = 2 * pair + k
            if s >= kSpans or s >= spans: break
            for p in range(per_span):
                mt = s * per_span + p; tiles += 1
                A = np.full((16, 16), -1)
                for lane in range(32):
                    g, t = divmod(lane, 4)
                    lw, hw = regs[lane][2 * k], regs[lane][2 * k + 1]
                    a = [field(lw, 2 * p), field(lw, 2 * p + 1), field(hw, 2 * p), field(hw, 2 * p + 1)]
                    for (r, c0), v in zip([(g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8)], a):
                        A[r, c0], A[r, c0 + 1] = v
                for g in range(8):
                    for row, ch in ((g, low(mt, g)), (g + 8, low(mt, g) + 1)):
                        if ch < dim and not np.array_equal(A[row], V[:, ch]): bad += 1
    # every channel < dim covered by some (mt, row) with mt's span < spans
    covered = {low(mt, g) + d for mt in range(KS) if mt // per_span < spans for g in range(8) for d in (0, 1)}
    missing = [c for c in range(dim) if c not in covered]
    return bad, tiles, missing

failures = 0
for bits in (8, 4, 2):
    for dim, KS in ((16, 4), (32, 4), (48, 4), (64, 4), (80, 8), (96, 8), (112, 8), (128, 8)):
        bad, tiles, missing = check(bits, dim, KS)
        print(f"bits {bits} dim {dim:3} KS {KS}: m-tiles {tiles}, wrong rows {bad}, channels missing {missing}")
        failures += bad + len(missing)
sys.exit(1 if failures else 0)
