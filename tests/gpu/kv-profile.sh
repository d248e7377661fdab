#!/usr/bin/env bash
# ncu's summary of one int4 decode-attention launch (bench/kv_gpu_bench.py's shapes) after the CUDA
# backend is built by tests/gpu/session.sh (which also runs the conformance and the speed tables);
# KV_PROFILE_FULL=1: the full set, the SASS with its source lines, and the instructions a chunk by part
# of the kernel (tests/gpu/kv-sass-lines.py, into mma_parts.txt); KV_PROFILE_ARGS: more arguments for
# the bench (e.g. "--tokens-per-block 16 --group 32", the library's defaults); KV_PROFILE_DIR: the build
# to profile (build/gpu; tests/gpu/kv-variants.sh leaves build/kv-NAME); KV_PROFILE_KERNEL: another
# kernel's launch instead (a regex, e.g. grey_kv_compress; the full set's parts are the attention's).
# ncu leaves the clocks as they are (--clock-control none). Outputs under $OUT.
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
ncu --clock-control none --kernel-name "regex:${KV_PROFILE_KERNEL:-grey_kv_attend_mma}" --launch-skip 3 --launch-count 1 "${sections[@]}" -f -o "$OUT/mma" \
    "${bench[@]}" --formats int4 --repeat 3 --warmup 1 ${KV_PROFILE_ARGS:-} >"$OUT/ncu.log" 2>&1
ncu --import "$OUT/mma.ncu-rep" --page details >"$OUT/mma_details.txt" 2>&1
[ "${KV_PROFILE_FULL:-0}" = 1 ] && ncu --import "$OUT/mma.ncu-rep" --page source --csv --print-source sass >"$OUT/mma_sass.csv" 2>&1
rm -f "$OUT/mma.ncu-rep"
grep -E "Duration|Registers Per|Achieved Occupancy|Executed Instructions  |Issued Ipc|DRAM Throughput|Memory Throughput|SM Frequency|Warp Cycles Per Issued|One or More|Grid Size|Stall" "$OUT/mma_details.txt" | head -30

# With the full set: the profiled kernel's SASS with its source lines (nvdisasm -gi of the build's cubin
# for this GPU), and the instructions a 16-token chunk by part of the kernel (tests/gpu/kv-sass-lines.py;
# KV_PROFILE_CHUNKS: the launch's chunks, 131,072 for the bench's default shapes).
[ "${KV_PROFILE_FULL:-0}" = 1 ] || exit 0
kernel=$(head -1 "$OUT/mma_sass.csv" | cut -d, -f2 | tr -d '"')
arch=sm_$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
cubins=$(mktemp -d) fatbin=$(realpath "$dir/backends/cuda/grey_cuda_kv_fatbin.fatbin")
(cd "$cubins" && cuobjdump -xelf all "$fatbin" >/dev/null 2>&1)
cubin=$(ls "$cubins"/*."$arch".cubin 2>/dev/null | head -1)
index=$([ -n "$cubin" ] && cuobjdump -elf "$cubin" | sed -n '/\.section \.symtab/,/^$/p' | awk -v k="$kernel" '$NF == k {print $1}')
if [ -n "$index" ] && nvdisasm -gi -fun "$index" "$cubin" >"$OUT/mma.sass" 2>/dev/null; then
    python3 tests/gpu/kv-sass-lines.py "$OUT/mma_sass.csv" "$OUT/mma.sass" --kernel "$kernel" --source kernels/cuda/kv_attend_mma.cuh \
        --per "${KV_PROFILE_CHUNKS:-131072}" --functions load_queries,value_products,attend_chunk,stage_rows,stage_chunk,open,advance,attend |
        tee "$OUT/mma_parts.txt"
else
    echo "no SASS listing of $kernel for $arch (cuobjdump/nvdisasm, or the fatbin under $dir): parts not counted"
fi
rm -rf "$cubins"
