#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (the audit log's record reader, checkpoint and proof parsers,
# and its payload JSON check against nlohmann's; the model files' safetensors and GGUF readers) and runs
# each for FUZZ_SECONDS (default 180), starting from the committed corpus (tests/fuzz/corpus/<target>, tests/fuzz/model/corpus/<target>). New inputs go to a scratch
# corpus under the build tree; with MERGE=1 the interesting ones are merged (minimised) back.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-180}
build=build/fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DGREY_BUILD_FUZZERS=ON -DGREY_BUILD_TESTS=OFF -DGREY_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" -j "${JOBS:-2}" --target fuzz_record_reader fuzz_checkpoint fuzz_proof fuzz_json_check fuzz_safetensors fuzz_gguf
targets=${FUZZ_TARGETS:-"record_reader checkpoint proof json_check safetensors gguf"}
for target in $targets; do
  seeds=tests/fuzz/corpus/$target
  [ -d tests/fuzz/model/corpus/$target ] && seeds=tests/fuzz/model/corpus/$target
  work=$build/corpus/$target
  mkdir -p "$seeds" "$work"
  echo "== fuzz_$target for ${seconds}s"
  "$build/bin/fuzz_$target" -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/crash-$target-" "$work" "$seeds"
  if [ "${MERGE:-0}" = 1 ]; then
    "$build/bin/fuzz_$target" -merge=1 -max_len=8192 "$seeds" "$work"
  fi
done
