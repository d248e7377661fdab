#!/usr/bin/env bash
# Decode attention from two builds of the CUDA kernels, side by side on one warm machine: build/gpu as
# tests/gpu/run.sh (or session.sh) left it, and build/gpu-ab, the same sources with more nvcc flags for the
# kernels (KV_AB_FLAGS, a ;-list, e.g. -DGREY_KV_MMA_BLOCKS_WIDE=4). The variant is first checked against
# the host reference (the KV conformance program), then bench/kv_gpu_bench.py runs each build in turn,
# KV_AB_ROUNDS times, with the SDPA baseline (and FlashInfer's, where .deps/flashinfer travelled) in every
# run. KV_AB_SRC names another source tree for the variant instead (an earlier commit unpacked by
# `git archive --prefix=NAME/ REV | tar -x -C .deps`), so that a change to the kernels is measured beside
# the tree it changes.
#
#   KV_AB_FLAGS="-DGREY_KV_MMA_BLOCKS_WIDE=4" bash tests/gpu/kv-ab.sh     (after session.sh's build step)
#   KV_AB_SRC=.deps/base bash tests/gpu/kv-ab.sh
#   KV_AB_ROUNDS=2   KV_AB_BENCH_ARGS="--formats int8,int4,int2"   KV_AB_CHECK=0   OUT=...
#   KV_AB_BUILD_ONLY=1 KV_AB_JOBS=8   the variant's build alone (tests/gpu/kv-change.sh runs it while build/gpu builds)
#   KV_AB_DIR=build/kv-x              the variant's build directory (default build/gpu-ab; tests/gpu/kv-variants.sh)
set -u
src=${KV_AB_SRC:-.}
[ -n "${KV_AB_SRC:-}" ] || : "${KV_AB_FLAGS:?KV_AB_FLAGS: nvcc flags for the variant, a ;-list (or KV_AB_SRC: its source tree)}"
flags=${KV_AB_FLAGS:-}
OUT=${OUT:-/tmp/kv-ab}
dir=${KV_AB_DIR:-build/gpu-ab}
mkdir -p "$OUT"
prefix=$PWD/.deps/usr
export LD_LIBRARY_PATH=$prefix/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
[ "${KV_AB_BUILD_ONLY:-0}" != 0 ] || [ -f build/gpu/lib/libgrey.so ] ||
    { echo "FAIL: build/gpu has no libgrey.so: run tests/gpu/session.sh's build step first"; exit 2; }
echo "== variant build ($dir): $src $flags"
if ! { cmake -G Ninja -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGREY_WITH_CUDA=ON -DGREY_BUILD_TESTS=OFF \
        -DGREY_BUILD_GPU_TESTS=ON -DGREY_BUILD_BENCH=ON "-DGREY_CUDA_EXTRA_FLAGS=-lineinfo;$flags" \
        -DCMAKE_PREFIX_PATH="$prefix" &&
       cmake --build "$dir" -j "${KV_AB_JOBS:-$(nproc)}" --target grey_shared grey_backend_cuda grey_gpu_kv_conformance; } \
       >"$OUT/ab-build-${dir##*/}.txt" 2>&1; then
    tail -30 "$OUT/ab-build-${dir##*/}.txt"
    exit 1
fi
[ "${KV_AB_BUILD_ONLY:-0}" = 0 ] || exit 0
. tests/gpu/flashinfer-env.sh  # FlashInfer beside SDPA in every run where .deps/flashinfer travelled
# KV_AB_CHECK=0: no conformance run of the variant (a KV_AB_SRC tree that was main, checked when it was).
if [ "${KV_AB_CHECK:-1}" != 0 ]; then
    echo "== variant against the host reference"
    . tests/gpu/kv-check.sh
    kv_conformance "$dir" "$OUT/ab-kv-conformance.txt" || exit 1
fi
for round in $(seq 1 "${KV_AB_ROUNDS:-2}"); do
    for build in build/gpu "$dir"; do
        echo "-- round $round: $build"
        ${flashinfer_env[@]+"${flashinfer_env[@]}"} python3 bench/kv_gpu_bench.py --lib "$build/lib/libgrey.so" --backend-dir "$build/lib/grey" --repeat 30 \
            ${KV_AB_BENCH_ARGS:---formats int8,int4,int2} --json "$OUT/ab-${build##*/}-$round.json" 2>/dev/null |
            grep -E "SDPA cudnn|FlashInfer|best bf16|libgrey"
    done
done
