#!/usr/bin/env bash
# The float codec's device decode of this tree beside a baseline tree, in one call on the GPU machine:
# builds both at once (tests/gpu/codec-probe.sh's build) or takes them prebuilt, checks this tree (codec
# conformance against the host decoder, compute-sanitizer memcheck and racecheck), then alternates the
# two trees' speed tables (--bench-only on real weights) and profiles each tree's first decode launches
# under ncu.
#
#   CODEC_BASE=DIR GREY_GPU_MODEL=FILE bash tests/gpu/codec-ab.sh      (from the repository root)
#   CODEC_BASE          the baseline's source, e.g. .deps/codec-base from
#                       `git archive --prefix=codec-base/ COMMIT | tar -x -C .deps` (and the commit in
#                       .deps/codec-base/.archive-commit)
#   CODEC_AB_PREBUILT=1 take both trees from .deps/carry/base and .deps/carry/new, which
#                       tests/gpu/codec-prebuild.sh builds on a machine without a GPU: no build here
#                       (about 240 s less on the GPU machine) and no ncu step; CODEC_BASE is not needed
#   CODEC_AB_ROUNDS=2   speed tables per tree, alternating base, this tree, base, ...
#   CODEC_AB_CHECK=1    the checks of this tree (0: none)
#   CODEC_PROBE_LAUNCHES=16   decode launches ncu profiles per tree (0: none)
#   OUT=DIR             where everything goes (default: build/codec-ab/out)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
model=$(realpath "${GREY_GPU_MODEL:?GREY_GPU_MODEL: a safetensors file with F16 tensors}")
out=$(realpath -m "${OUT:-build/codec-ab/out}")
mkdir -p "$out"
export LD_LIBRARY_PATH=$(pwd)/.deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
prebuilt=${CODEC_AB_PREBUILT:-0}
probe() { GREY_GPU_MODEL=$model bash tests/gpu/codec-probe.sh; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader 2>/dev/null | sed 's/^/device: /'

declare -A program plugins source
if [ "$prebuilt" = 1 ]; then
    for tree in base new; do
        program[$tree]=.deps/carry/$tree/bin/grey_gpu_codec_conformance
        plugins[$tree]=.deps/carry/$tree/grey
        echo "$tree: prebuilt from $(cat ".deps/carry/$tree/commit" 2>/dev/null || echo '?')"
    done
else
    source[base]=$(realpath "${CODEC_BASE:?CODEC_BASE: the baseline source tree}")
    source[new]=$(pwd)
    for tree in base new; do
        program[$tree]=${source[$tree]}/build/gpu-probe/bin/grey_gpu_codec_conformance
        plugins[$tree]=${source[$tree]}/build/gpu-probe/lib/grey
    done
    echo "== build (both trees at once)"
    CODEC_SRC=${source[base]} OUT=$out/base CODEC_PROBE_STEPS=build probe >"$out/build-base.log" 2>&1 &
    base_build=$!
    CODEC_SRC=. OUT=$out/new CODEC_PROBE_STEPS=build probe >"$out/build-new.log" 2>&1
    new_rc=$?
    wait "$base_build"
    base_rc=$?
    tail -n 2 "$out/build-base.log" "$out/build-new.log"
    [ $base_rc -eq 0 ] && [ $new_rc -eq 0 ] || exit 1
fi

if [ "${CODEC_AB_CHECK:-1}" != 0 ]; then
    echo "== codec conformance of this tree"
    "${program[new]}" --backend-dir "${plugins[new]}" >"$out/conformance.log" 2>&1
    echo "exit $?: $(tail -1 "$out/conformance.log")"
    grep -E "^FAIL" "$out/conformance.log" | head -20
    for tool in memcheck racecheck; do
        echo "== compute-sanitizer $tool (--quick)"
        compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 20 "${program[new]}" --quick --backend-dir "${plugins[new]}" \
            >"$out/$tool.log" 2>&1
        echo "exit $?: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/$tool.log" | tail -1)"
    done
fi

for round in $(seq 1 "${CODEC_AB_ROUNDS:-2}"); do
    for tree in base new; do
        echo "== round $round: $tree"
        "${program[$tree]}" --bench-only --backend-dir "${plugins[$tree]}" --model "$model" >"$out/table-$tree-$round.txt" 2>&1
        grep -E "^(dtype|bf16|f16) " "$out/table-$tree-$round.txt"
    done
done

if [ "$prebuilt" != 1 ] && [ "${CODEC_PROBE_LAUNCHES:-16}" -gt 0 ]; then
    for tree in base new; do
        echo "== ncu: $tree"
        CODEC_SRC=${source[$tree]} OUT=$out/$tree-ncu CODEC_PROBE_STEPS=ncu CODEC_PROBE_LAUNCHES=${CODEC_PROBE_LAUNCHES:-16} probe
    done
fi
