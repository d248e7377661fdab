#!/usr/bin/env bash
# A change to the KV kernels measured beside the commit it changes, in one GPU call: this tree built and
# checked against the host reference (the KV conformance program) while the base tree (KV_BASE, default
# .deps/base, from `git archive --prefix=base/ REV | tar -x -C .deps`) builds beside it, then
# tests/gpu/kv-ab.sh runs bench/kv_gpu_bench.py with each build in turn (KV_AB_ROUNDS, KV_AB_BENCH_ARGS),
# PyTorch SDPA and, where .deps/flashinfer travelled, FlashInfer in every run. Outputs under $OUT.
#
#   KV_BASE=.deps/base KV_AB_ROUNDS=2 bash tests/gpu/kv-change.sh      (carry .deps/usr, the base, .deps/flashinfer)
set -u
OUT=${OUT:-/tmp/kv-change}
mkdir -p "$OUT"
base=${KV_BASE:-.deps/base}
# The base builds by kv-ab.sh's own rule, on half the cores, while this tree builds on all of them; its
# run below then finds nothing left to build.
KV_AB_SRC=$base KV_AB_BUILD_ONLY=1 KV_AB_JOBS=$(( $(nproc) / 2 )) OUT=$OUT bash tests/gpu/kv-ab.sh >"$OUT/base-build.txt" 2>&1 &
GREY_GPU_TARGETS="grey_shared grey_backend_cuda grey_gpu_kv_conformance" GREY_GPU_STEPS=kv bash tests/gpu/run.sh >"$OUT/this-tree.txt" 2>&1
rc=$?
sed -n '/== summary/,$p' "$OUT/this-tree.txt"
wait $! || { cat "$OUT/base-build.txt"; exit 1; }
[ $rc -eq 0 ] || { tail -20 "$OUT/this-tree.txt"; exit 1; }
KV_AB_SRC=$base KV_AB_CHECK=0 OUT=$OUT bash tests/gpu/kv-ab.sh
