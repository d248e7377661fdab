#!/usr/bin/env python3
"""The KV cache: a cache of int4 blocks behind a bf16 window, a 40-token prompt and three decode steps
appended to one sequence, a fork that grows on its own while the original is truncated, decode attention
over both (4 query heads on 2 KV heads), K/V gathered back and compared with what was appended, and the
cache's statistics.

    python3 samples/python/kv.py

K, V and queries come from the LCG of samples/python/quantize.py, whose values are exact in float32, so
every kv sample in samples/ prints the same lines (pip install ./bindings/python first).
"""

import numpy as np

import grey

LAYERS, KV_HEADS, HEAD_DIM, QUERY_HEADS = 2, 2, 64, 4


class Synthetic:
    """An LCG whose values are exact in float32, so every language makes the same values."""

    def __init__(self) -> None:
        self.state = 12345

    def next(self, n: int) -> np.ndarray:
        values = np.empty(n, dtype=np.float32)
        for i in range(n):
            self.state = (self.state * 1664525 + 1013904223) & 0xFFFFFFFF
            values[i] = (np.float32(self.state >> 8) / np.float32(16777216) - np.float32(0.5)) / np.float32(16)
        return values


def append(cache, sequence, first_id, n, synthetic, record):
    """Appends n tokens (ids from first_id) with fresh K/V, [layer][token][kv_head][head_dim]; records layer 0."""
    ids = [first_id + (i * 7919) % 30000 for i in range(n)]
    shape = (LAYERS, n, KV_HEADS, HEAD_DIM)
    keys, values = synthetic.next(LAYERS * n * KV_HEADS * HEAD_DIM).reshape(shape), synthetic.next(LAYERS * n * KV_HEADS * HEAD_DIM).reshape(shape)
    cache.append(sequence, ids, keys, values)
    record[0].append(keys[0])
    record[1].append(values[0])


def max_abs_difference(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def main() -> int:
    with grey.Context() as ctx, grey.KvCache(ctx, LAYERS, KV_HEADS, HEAD_DIM, capacity_bytes=1 << 20, format="int4", tokens_per_block=16,
                                             window_tokens=16, group_size=32) as cache:
        print(f"kv cache: {LAYERS} layers, {KV_HEADS} KV heads, head_dim {HEAD_DIM}, blocks of 16 tokens, the newest 16 in bf16, "
              f"older ones int4 (V groups of 32)")
        synthetic = Synthetic()
        a = ([], [])
        seq_a = cache.sequence(0)
        append(cache, seq_a, 101, 40, synthetic, a)  # the prompt
        for step in range(3):
            append(cache, seq_a, 2000 + step, 1, synthetic, a)
        print(f"kv append: sequence A holds {cache.length(seq_a)} tokens (a 40-token prompt, then 3 decode steps)")

        seq_b = cache.fork(seq_a)
        b = (list(a[0]), list(a[1]))
        append(cache, seq_b, 3000, 2, synthetic, b)
        cache.truncate(seq_a, 38)
        print(f"kv fork: sequence B holds {cache.length(seq_b)} tokens (A's 43 and 2 of its own), A truncated to {cache.length(seq_a)}")

        queries = synthetic.next(2 * QUERY_HEADS * HEAD_DIM).reshape(2, QUERY_HEADS, HEAD_DIM)
        output = cache.attend(1, [seq_a, seq_b], queries)
        total = squares = 0.0
        for x in output.ravel().tolist():  # in order, as the other languages add
            total += x
            squares += x * x
        print(f"kv attend: layer 1, {QUERY_HEADS} query heads on {KV_HEADS} KV heads, batch of A and B: output sum {total:.6f}, "
              f"sum of squares {squares:.6f}")

        keys, values = cache.gather(seq_b, 0)
        appended_keys, appended_values = np.concatenate(b[0]), np.concatenate(b[1])
        print(f"kv gather: B layer 0, {len(appended_keys)} tokens: largest difference from what was appended "
              f"K {max_abs_difference(keys, appended_keys):.6f}, V {max_abs_difference(values, appended_values):.6f}")

        s = cache.stats()
        print(f"kv stats: {s.sequences} sequences, {s.tokens} tokens, {s.blocks_used} blocks ({s.blocks_compressed} quantized), "
              f"{s.bytes_used} bytes, {s.bytes_per_token:.2f} bytes per token, compression ratio {s.compression_ratio:.4f}")

        cache.free(seq_a)
        cache.free(seq_b)
        s = cache.stats()
        print(f"kv free: {s.sequences} sequences, {s.blocks_cached} full blocks kept as cached prefixes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
