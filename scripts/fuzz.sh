#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (the audit log's record reader, checkpoint and proof parsers,
# payload JSON check and writer-on-a-hostile-tail; the model files' safetensors and GGUF readers; the
# codec layer's container decoder and encoders) and
# runs each for FUZZ_SECONDS (default 180), JOBS at a time (default: the number of cores), with the
# target's dictionary (tests/fuzz/dict/<target>.dict, tests/fuzz/model/dict/<target>.dict) when there is
# one, starting from the committed corpus (tests/fuzz/corpus/<target>, tests/fuzz/{model,codec}/corpus/<target>).
# New inputs go only to a scratch corpus under build/fuzz/corpus; the committed corpus is read, never
# written, unless MERGE=1 asks to merge (minimise) the interesting new inputs back into it. Exits
# non-zero when any target crashes, leaks, hangs or times out on an input; the input is kept as
# build/fuzz/crash-<target>-*. scripts/run-tests.sh runs this with FUZZ_SECONDS=10.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-180}
jobs=${JOBS:-$(nproc)}
build=build/fuzz
all_targets="record_reader checkpoint proof json_check writer_tail safetensors gguf codec"
targets=${FUZZ_TARGETS:-$all_targets}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DGREY_BUILD_FUZZERS=ON -DGREY_BUILD_TESTS=OFF -DGREY_BUILD_TOOLS=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" $(printf -- '--target fuzz_%s ' $targets) >/dev/null
# The writer target creates and syncs a log per input: on a memory file system that costs little.
if [ -z "${TMPDIR:-}" ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi

corpus_home() {  # corpus_home TARGET: the folder whose corpus/ and dict/ hold the target's seeds
  local sub
  for sub in model codec; do
    [ -d "tests/fuzz/$sub/corpus/$1" ] && { echo "tests/fuzz/$sub"; return; }
  done
  echo tests/fuzz
}

run_target() {  # run_target TARGET: fuzzes it for $seconds; its output goes to $build/TARGET.log
  local target=$1
  local dir=$(corpus_home "$target")
  local seeds=$dir/corpus/$target work=$build/corpus/$target dict=()
  [ -f "$dir/dict/$target.dict" ] && dict=("-dict=$dir/dict/$target.dict")
  mkdir -p "$work"
  "$build/bin/fuzz_$target" -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$build/crash-$target-" "$work" "$seeds" >"$build/$target.log" 2>&1
}

declare -A running=()
failed=()
finish_one() {  # waits for any running target and records whether it failed
  local pid status=0
  wait -n -p pid "${!running[@]}" || status=$?
  if [ "$status" -ne 0 ]; then
    failed+=("${running[$pid]}")
    echo "== fuzz_${running[$pid]} FAILED (exit $status): last lines of $build/${running[$pid]}.log"
    tail -n 30 "$build/${running[$pid]}.log"
  else
    echo "== fuzz_${running[$pid]}: $(grep -E '^Done [0-9]+ runs' "$build/${running[$pid]}.log" || echo done)"
  fi
  unset "running[$pid]"
}
for target in $targets; do
  while [ "${#running[@]}" -ge "$jobs" ]; do finish_one; done
  echo "== fuzz_$target for ${seconds}s"
  run_target "$target" &
  running[$!]=$target
done
while [ "${#running[@]}" -gt 0 ]; do finish_one; done

if [ "${MERGE:-0}" = 1 ]; then
  for target in $targets; do
    dir=$(corpus_home "$target")
    "$build/bin/fuzz_$target" -merge=1 -max_len=8192 "$dir/corpus/$target" "$build/corpus/$target"
  done
fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${failed[*]} failed; the inputs are in $build/crash-*" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
