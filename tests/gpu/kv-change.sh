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
prefix=$PWD/.deps/usr
export LD_LIBRARY_PATH=$prefix/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
targets="grey_shared grey_backend_cuda grey_gpu_kv_conformance"
# The base as kv-ab.sh configures its variant, so that its build step there finds nothing to do.
{ cmake -G Ninja -S "$base" -B build/gpu-ab -DCMAKE_BUILD_TYPE=Release -DGREY_WITH_CUDA=ON -DGREY_BUILD_TESTS=OFF \
      -DGREY_BUILD_GPU_TESTS=ON -DGREY_BUILD_BENCH=ON "-DGREY_CUDA_EXTRA_FLAGS=-lineinfo;" -DCMAKE_PREFIX_PATH="$prefix" &&
  cmake --build build/gpu-ab -j "$(( $(nproc) / 2 ))" --target $targets; } >"$OUT/base-build.txt" 2>&1 &
GREY_GPU_TARGETS="$targets" GREY_GPU_STEPS=kv bash tests/gpu/run.sh >"$OUT/this-tree.txt" 2>&1
rc=$?
sed -n '/== summary/,$p' "$OUT/this-tree.txt"
wait
[ $rc -eq 0 ] || { tail -20 "$OUT/this-tree.txt"; exit 1; }
if [ -d .deps/flashinfer ]; then
    export PYTHONPATH=$PWD/.deps/flashinfer${PYTHONPATH:+:$PYTHONPATH} FLASHINFER_WORKSPACE_BASE=${TMPDIR:-/tmp}/flashinfer-jit
fi
KV_AB_SRC=$base KV_AB_CHECK=0 OUT=$OUT bash tests/gpu/kv-ab.sh
