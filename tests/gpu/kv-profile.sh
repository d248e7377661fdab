#!/usr/bin/env bash
# Decode attention on the GPU in one call: build the CUDA backend, the KV conformance (CUDA against the
# host reference), bench/kv_gpu_bench.py (tensor cores, then the SIMT kernel with
# GREY_CUDA_KV_TENSOR_CORES=0, then the library's default block and group sizes), and ncu's summary of
# one int4 launch (KV_PROFILE_FULL=1: the full set and the SASS with its source lines). Outputs under $OUT.
set -u
export LD_LIBRARY_PATH=$PWD/.deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/kv-profile}
mkdir -p "$OUT"
GREY_GPU_TARGETS="grey_shared grey_backend_cuda greyctl grey_gpu_kv_conformance" GREY_GPU_STEPS=kv bash tests/gpu/run.sh >"$OUT/build.txt" 2>&1 ||
    { tail -30 "$OUT/build.txt"; exit 1; }
grep -E "kv conformance|FAIL" "$OUT/build.txt" | head -20
bench=(python3 bench/kv_gpu_bench.py --lib build/gpu/lib/libgrey.so --backend-dir build/gpu/lib/grey)
"${bench[@]}" --repeat 30 --json "$OUT/kv_bench.json" 2>/dev/null | grep -E "SDPA cudnn|SDPA flash|libgrey"
echo "-- SIMT kernel (GREY_CUDA_KV_TENSOR_CORES=0)"
GREY_CUDA_KV_TENSOR_CORES=0 "${bench[@]}" --formats int4,int8 --repeat 30 2>/dev/null | grep -E "libgrey"
echo "-- library defaults: 16 tokens a block, V groups of 32"
"${bench[@]}" --formats int4,int8 --tokens-per-block 16 --group 32 --repeat 30 2>/dev/null | grep -E "libgrey"
sections=(--section SpeedOfLight --section WarpStateStats --section Occupancy --section InstructionStats --section LaunchStats)
[ "${KV_PROFILE_FULL:-0}" = 1 ] && sections=(--set full --import-source yes)
ncu --kernel-name regex:grey_kv_attend_mma --launch-skip 3 --launch-count 1 "${sections[@]}" -f -o "$OUT/mma" \
    "${bench[@]}" --formats int4 --repeat 3 --warmup 1 >"$OUT/ncu.log" 2>&1
ncu --import "$OUT/mma.ncu-rep" --page details >"$OUT/mma_details.txt" 2>&1
[ "${KV_PROFILE_FULL:-0}" = 1 ] && ncu --import "$OUT/mma.ncu-rep" --page source --csv --print-source sass >"$OUT/mma_sass.csv" 2>&1
rm -f "$OUT/mma.ncu-rep"
grep -E "Duration|Registers Per|Achieved Occupancy|Executed Instructions  |Issued Ipc|DRAM Throughput|Warp Cycles Per Issued|One or More" "$OUT/mma_details.txt" | head -20
