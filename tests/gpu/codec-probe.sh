#!/usr/bin/env bash
# The float and bitmask codecs' device decode from one source tree (this one, or a branch's `git archive`
# unpacked under .deps), measured and profiled in one go: builds the CUDA backend and the codec conformance
# program there, runs its speed table on real weights (--bench-only), then runs it once more under ncu,
# collecting for every decode launch its duration, L1 and L2 hit rates, DRAM bytes, instructions and the
# stalls that say whether a lane waits for memory. The bench calls each row's decode 8 times (one check,
# 7 timed), so launches 8k..8k+7 are the table's row k.
#
#   GREY_GPU_MODEL=FILE bash tests/gpu/codec-probe.sh       (from the repository root, on the GPU machine)
#   CODEC_SRC=DIR       the source tree to build (default: this one), e.g. .deps/floatlanes from
#                       `git archive --prefix=floatlanes/ BRANCH | tar -x -C .deps` (with the commit in
#                       .deps/floatlanes/.archive-commit, which the build line prints)
#   CODEC_PROBE_LAUNCHES=48   how many decode launches ncu profiles (0: none)
#   OUT=DIR             where the table, the profile and the build log go (default: $CODEC_SRC/build/gpu-probe/out)
#   CODEC_PROBE_STEPS="build table ncu"   the steps to run (tests/gpu/codec-ab.sh builds two trees at once,
#                       then measures them in turn)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
src=$(realpath "${CODEC_SRC:-.}")
model=$(realpath "${GREY_GPU_MODEL:?GREY_GPU_MODEL: a safetensors file with F16 tensors}")
build=$src/build/gpu-probe
out=${OUT:-$build/out}
mkdir -p "$out"
prefix=$root/.deps/usr
export LD_LIBRARY_PATH=$prefix/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$prefix/lib/x86_64-linux-gnu/pkgconfig:$prefix/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
steps=" ${CODEC_PROBE_STEPS:-build table ncu} "
want() { [[ $steps == *" $1 "* ]]; }
program=("$build/bin/grey_gpu_codec_conformance" --bench-only --backend-dir "$build/lib/grey" --model "$model")
if want build; then
# An archive unpacked inside this repository would otherwise report this repository's commit.
echo "== build ($src at $(cat "$src/.archive-commit" 2>/dev/null || git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?'))"
t0=$(date +%s)
if ! { cmake -G Ninja -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGREY_WITH_CUDA=ON -DGREY_BUILD_TESTS=OFF \
        -DGREY_BUILD_GPU_TESTS=ON -DGREY_BUILD_BENCH=OFF -DGREY_CUDA_EXTRA_FLAGS=-lineinfo -DCMAKE_PREFIX_PATH="$prefix" &&
       cmake --build "$build" -j "$(nproc)" --target grey_backend_cuda grey_gpu_codec_conformance; } >"$out/build.txt" 2>&1; then
    tail -30 "$out/build.txt"
    exit 1
fi
echo "built in $(( $(date +%s) - t0 )) s"
fi
if want table; then
echo "== speed table"
"${program[@]}" | tee "$out/table.txt" || exit 1
fi
launches=${CODEC_PROBE_LAUNCHES:-48}
want ncu && [ "$launches" -gt 0 ] || exit 0
command -v ncu >/dev/null || { echo "FAIL: ncu not found"; exit 1; }
echo "== ncu: the first $launches decode launches (row = launch / 8)"
metrics=gpu__time_duration.sum,l1tex__t_sector_hit_rate.pct,lts__t_sector_hit_rate.pct,dram__bytes_read.sum,smsp__inst_executed.sum
metrics+=,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio
metrics+=,smsp__average_warps_issue_stalled_lg_throttle_per_issue_active.ratio,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum
if ! ncu --kernel-name grey_codec_decode --launch-count "$launches" --metrics "$metrics" --csv --page raw --print-units base \
        "${program[@]}" >"$out/ncu.csv" 2>"$out/ncu.err"; then
    tail -20 "$out/ncu.err"
    exit 1
fi
python3 - "$out/ncu.csv" <<'EOF'
import csv, sys
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
head, rows = rows[0], [r for r in rows[1:] if r and r[0].isdigit()]
short = {"gpu__time_duration.sum": "us", "l1tex__t_sector_hit_rate.pct": "L1 hit%", "lts__t_sector_hit_rate.pct": "L2 hit%",
         "dram__bytes_read.sum": "DRAM rd MB", "smsp__inst_executed.sum": "warp inst M",
         "sm__warps_active.avg.pct_of_peak_sustained_active": "occup%",
         "smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio": "long-sb",
         "smsp__average_warps_issue_stalled_lg_throttle_per_issue_active.ratio": "lg-thr",
         "l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum": "ld sectors M"}
cols = [(head.index(k), v) for k, v in short.items() if k in head]
print("launch row " + " ".join(f"{v:>12}" for _, v in cols))
for i, r in enumerate(rows):
    vals = []
    for c, name in cols:
        x = float(r[c].replace(",", "")) if r[c] else float("nan")
        x /= {"us": 1e3, "DRAM rd MB": 1e6, "warp inst M": 1e6, "ld sectors M": 1e6}.get(name, 1)  # base units: ns, bytes
        vals.append(f"{x:12.2f}")
    print(f"{i:6d} {i // 8:3d} " + " ".join(vals))
EOF
