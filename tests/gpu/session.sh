#!/usr/bin/env bash
# One GPU call for this tree's device work: the CUDA backend built, the KV and codec conformance programs,
# the codec speed table beside nvCOMP (.deps/nvcomp), and decode attention beside PyTorch SDPA (and
# FlashInfer where .deps/flashinfer travelled) with the tensor-core and SIMT kernels and the library's
# default block and group sizes. GPU_SESSION_STEPS picks a subset (build kv codec kv-bench sanitize).
# Outputs under $OUT.
set -u
export LD_LIBRARY_PATH=$PWD/.deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
steps=" ${GPU_SESSION_STEPS:-build kv codec kv-bench} "
has() { [[ $steps == *" $1 "* ]]; }
targets="grey_shared grey_backend_cuda greyctl grey_gpu_kv_conformance grey_gpu_codec_conformance"
run_steps() { GREY_GPU_TARGETS="$targets" GREY_GPU_STEPS=$1 bash tests/gpu/run.sh >"$OUT/$2.txt" 2>&1; sed -n '/== summary/,$p' "$OUT/$2.txt"; }
has build && { run_steps none build || { tail -30 "$OUT/build.txt"; exit 1; }; }
has kv && run_steps kv kv
has codec && { run_steps codec,codec-nvcomp codec; grep -iE "bitmask|copy|float|GB/s" "$OUT/codec.txt" | head -40; }
if has kv-bench; then
    # FlashInfer beside SDPA in every run below where .deps/flashinfer travelled; its errors, if any, in
    # $OUT/kv_bench.err.
    . tests/gpu/flashinfer-env.sh
    bench=(${flashinfer_env[@]+"${flashinfer_env[@]}"} python3 bench/kv_gpu_bench.py --lib build/gpu/lib/libgrey.so
           --backend-dir build/gpu/lib/grey)
    "${bench[@]}" --repeat 30 --json "$OUT/kv_bench.json" 2>"$OUT/kv_bench.err" |
        grep -E "decode attention|SDPA cudnn|SDPA flash|FlashInfer|best bf16|libgrey"
    echo "-- SIMT kernel (GREY_CUDA_KV_TENSOR_CORES=0)"
    GREY_CUDA_KV_TENSOR_CORES=0 "${bench[@]}" --formats int8,int4,int2 --repeat 30 2>/dev/null | grep -E "libgrey"
    echo "-- library defaults: 16 tokens a block, V groups of 32 (tensor cores, then SIMT)"
    "${bench[@]}" --formats int4,int8 --tokens-per-block 16 --group 32 --repeat 30 2>/dev/null | grep -E "libgrey"
    GREY_CUDA_KV_TENSOR_CORES=0 "${bench[@]}" --formats int4,int8 --tokens-per-block 16 --group 32 --repeat 30 2>/dev/null | grep -E "libgrey"
fi
has sanitize && GREY_GPU_SANITIZE="grey_gpu_kv_conformance grey_gpu_codec_conformance" run_steps memcheck,racecheck sanitize
exit 0
