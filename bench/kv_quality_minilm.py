#!/usr/bin/env python3
"""Attention error of the KV cache's formats on a real model's K, V and queries (all-MiniLM-L6-v2).

Runs all-MiniLM-L6-v2 (6 layers, 12 heads of 32 channels; weights and WordPiece vocabulary from
scripts/fetch-model.sh) in float64 NumPy over real English text (this repository's README.md and docs,
in --tokens-long chunks), keeps every layer's K, V and Q, and stores each chunk's K/V in a host
grey.KvCache of each format. Every query of the chunk then attends to the whole chunk (the model is an
encoder: each token attends to all), through grey_kv_attend, and is compared with float64 attention on
the unquantized K/V. The window-form cache (bf16, nothing quantized) is measured the same way, as the
floor the 16-bit storage alone sets. Every format is measured twice: K stored as it is, and K rotated by
the normalized Walsh-Hadamard matrix before quantizing (hadamard_k, GREY_KV_HADAMARD_K). Reported per
setting: the relative RMS error of the outputs (over all layers, heads and queries; and the worst layer),
the mean cosine similarity of each output vector to the reference, bytes per token per layer and head,
and the ratio to bf16.

  python3 bench/kv_quality_minilm.py [--chunks 6] [--tokens 256] [--window 16] [--group 32] [--json out.json]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import unicodedata

import numpy as np

import grey

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import safetensors_io as st  # noqa: E402 - the project's one safetensors reader and writer


def fetch(what):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts/fetch-model.sh"), what], check=True, capture_output=True,
                          text=True).stdout.strip()


class WordPiece:
    """BERT's uncased tokenizer: lower case, accents stripped, split on spaces and punctuation, then
    greedy longest-match WordPiece with '##' continuations (tokenizer.json's vocabulary)."""

    def __init__(self, path):
        with open(path) as f:
            self.vocab = json.load(f)["model"]["vocab"]
        self.unk = self.vocab["[UNK]"]

    def words(self, text):
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        return re.findall(r"\w+|[^\w\s]", text)

    def ids(self, text):
        out = []
        for word in self.words(text):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start and (("##" if start else "") + word[start:end]) not in self.vocab:
                    end -= 1
                if end == start:
                    pieces = [self.unk]
                    break
                pieces.append(self.vocab[("##" if start else "") + word[start:end]])
                start = end
            out += pieces
        return out


def layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def erf(x):
    """Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), vectorized."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def minilm_qkv(weights, ids):
    """Every layer's Q, K, V ([tokens][heads][32], float64) for one chunk of token ids."""
    w = {name: st.array(t).astype(np.float64) for name, t in weights.items() if t.dtype in ("F32", "F16")}
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] + \
        w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    layers = []
    for i in range(6):
        p = f"encoder.layer.{i}."
        q, k, v = ((x @ w[p + f"attention.self.{m}.weight"].T + w[p + f"attention.self.{m}.bias"]).reshape(n, 12, 32)
                   for m in ("query", "key", "value"))
        layers.append((q, k, v))
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(32.0)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = np.einsum("hqk,khd->qhd", probs, v).reshape(n, 384)
        x = layer_norm(x + context @ w[p + "attention.output.dense.weight"].T + w[p + "attention.output.dense.bias"],
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        hidden = gelu(x @ w[p + "intermediate.dense.weight"].T + w[p + "intermediate.dense.bias"])
        x = layer_norm(x + hidden @ w[p + "output.dense.weight"].T + w[p + "output.dense.bias"], w[p + "output.LayerNorm.weight"],
                       w[p + "output.LayerNorm.bias"])
    return layers


def reference(q, k, v):
    scores = np.einsum("qhd,khd->qhk", q, k) / np.sqrt(q.shape[-1])
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.einsum("qhk,khd->qhd", probs, v)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=256, help="tokens a chunk (at most 512, the model's positions)")
    parser.add_argument("--window", type=int, default=16, help="tokens kept in bf16 at the end of each chunk")
    parser.add_argument("--block", type=int, default=16, help="tokens a block")
    parser.add_argument("--group", type=int, default=32, help="V's group size (32, 64 or 128; one head is 32 channels)")
    parser.add_argument("--json")
    args = parser.parse_args()

    weights, _ = st.read(fetch("minilm"))
    tokenizer = WordPiece(fetch("minilm-tokenizer"))
    docs = [os.path.join(ROOT, "README.md")] + sorted(os.path.join(ROOT, "docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
                                                    if f.endswith(".md"))
    ids = []
    for path in docs:
        with open(path, encoding="utf-8") as f:
            ids += tokenizer.ids(f.read())
    stride = max(1, (len(ids) - args.tokens) // max(1, args.chunks - 1))
    chunks = [ids[i * stride:i * stride + args.tokens] for i in range(args.chunks)]
    print(f"all-MiniLM-L6-v2 on {len(ids)} tokens of README.md and docs/*.md: {args.chunks} chunks of {args.tokens} tokens; "
          f"6 layers x 12 heads x 32 channels; blocks of {args.block} tokens, the last {args.window} in bf16")
    activations = [minilm_qkv(weights, chunk) for chunk in chunks]

    formats = [("bf16 (window only)", None), ("int8", "int8"), ("fp8-e4m3", "fp8-e4m3"), ("int4", "int4"), ("int2", "int2")]
    results = {}
    settings = [(label + (" + hadamard-k" if rotate else ""), fmt, rotate) for label, fmt in formats for rotate in (False, True)]
    with grey.Context() as ctx:
        for label, fmt, rotate in settings:
            squared_error = squared_signal = 0.0
            cosines = []
            per_layer = np.zeros(6)
            per_layer_signal = np.zeros(6)
            bytes_per_token = None
            for layers in activations:
                n = layers[0][1].shape[0]
                keys = np.stack([k for _, k, _ in layers]).astype(np.float32)
                values = np.stack([v for _, _, v in layers]).astype(np.float32)
                with grey.KvCache(ctx, 6, 12, 32, format=fmt or "int8", tokens_per_block=args.block,
                                  window_tokens=grey.WINDOW_ALL if fmt is None else args.window, group_size=args.group,
                                  hadamard_k=rotate, capacity_bytes=1 << 28) as cache:
                    seq = cache.sequence()
                    cache.append(seq, range(n), keys, values)
                    stats = cache.stats()
                    bytes_per_token = stats.bytes_per_token / (6 * 12)
                    for layer, (q, k, v) in enumerate(layers):
                        out = cache.attend(layer, [seq] * n, q.astype(np.float32))
                        ref = reference(q, k, v)
                        e, s = float(((out - ref) ** 2).sum()), float((ref ** 2).sum())
                        dots = (out * ref).sum(-1) / (np.linalg.norm(out, axis=-1) * np.linalg.norm(ref, axis=-1))
                        cosines.append(dots.ravel())
                        per_layer[layer] += e
                        per_layer_signal[layer] += s
                        squared_error += e
                        squared_signal += s
            rel = (squared_error / squared_signal) ** 0.5
            worst = float(np.max((per_layer / per_layer_signal) ** 0.5))
            cosine = float(np.concatenate(cosines).mean())
            results[label] = {"rel_rmse": rel, "worst_layer_rel_rmse": worst, "mean_cosine": cosine,
                              "bytes_per_token_per_head_layer": bytes_per_token}
            print(f"  {label:32s} rel RMSE {rel:.2e} (worst layer {worst:.2e})  cosine {cosine:.6f}  {bytes_per_token:6.2f} bytes "
                  f"per token, layer and head = {bytes_per_token / 128:.3f} of bf16")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
