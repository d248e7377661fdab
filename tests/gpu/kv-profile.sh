#!/usr/bin/env bash
# ncu's summary of one int4 decode-attention launch (bench/kv_gpu_bench.py's shapes) after the CUDA
# backend is built by tests/gpu/session.sh (which also runs the conformance and the speed tables);
# KV_PROFILE_FULL=1: the full set and the SASS with its source lines; KV_PROFILE_ARGS: more arguments for
# the bench (e.g. "--tokens-per-block 16 --group 32", the library's defaults); KV_PROFILE_DIR: the build
# to profile (build/gpu; tests/gpu/kv-variants.sh leaves build/kv-NAME). Outputs under $OUT.
set -u
export LD_LIBRARY_PATH=$PWD/.deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/kv-profile}
mkdir -p "$OUT"
# KV_PROFILE_BUILD=0: a build already there (a warm machine after session.sh) is profiled as it is.
[ "${KV_PROFILE_BUILD:-1}" = 0 ] || GPU_SESSION_STEPS="build kv" OUT="$OUT" bash tests/gpu/session.sh || exit 1
dir=${KV_PROFILE_DIR:-build/gpu}
bench=(python3 bench/kv_gpu_bench.py --lib "$dir/lib/libgrey.so" --backend-dir "$dir/lib/grey")
sections=(--section SpeedOfLight --section WarpStateStats --section Occupancy --section InstructionStats --section LaunchStats)
[ "${KV_PROFILE_FULL:-0}" = 1 ] && sections=(--set full --import-source yes)
ncu --kernel-name regex:grey_kv_attend_mma --launch-skip 3 --launch-count 1 "${sections[@]}" -f -o "$OUT/mma" \
    "${bench[@]}" --formats int4 --repeat 3 --warmup 1 ${KV_PROFILE_ARGS:-} >"$OUT/ncu.log" 2>&1
ncu --import "$OUT/mma.ncu-rep" --page details >"$OUT/mma_details.txt" 2>&1
[ "${KV_PROFILE_FULL:-0}" = 1 ] && ncu --import "$OUT/mma.ncu-rep" --page source --csv --print-source sass >"$OUT/mma_sass.csv" 2>&1
rm -f "$OUT/mma.ncu-rep"
grep -E "Duration|Registers Per|Achieved Occupancy|Executed Instructions  |Issued Ipc|DRAM Throughput|Warp Cycles Per Issued|One or More" "$OUT/mma_details.txt" | head -20
