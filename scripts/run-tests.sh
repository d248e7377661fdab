#!/usr/bin/env bash
# Everything `make test` runs: the CTest suite under the default and asan presets, the governor tests,
# the stream and the host worker pool tests under tsan, a short run of every libFuzzer target (clang), the two CMake consumer samples (installed
# and vendored), the language bindings when they exist, then the documentation's examples.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

# Real weights for the realdata tests, fetched once up front rather than by two tests at the same time.
bash scripts/fetch-model.sh >/dev/null
bash scripts/fetch-model.sh silero-vad >/dev/null

for preset in default asan; do
  echo "== configure + build ($preset)"
  # The ASan build takes the default build's device code (fatbins, AMD code objects), which a host
  # sanitizer does not change, instead of compiling it again (cmake/GreyDeviceCode.cmake).
  device_code=""
  if [ "$preset" != default ]; then device_code="$PWD/build/default"; fi
  cmake --preset "$preset" -DGREY_DEVICE_CODE_FROM="$device_code" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== ctest ($preset)"
  ctest --preset "$preset" -j "$jobs"
done

# The governor, the scheduler, the streams, the host worker pool and the audit log's threads once more under ThreadSanitizer (only their test binaries
# are built).
echo "== configure + build (tsan: governor, scheduler, stream, KV cache, host worker pool, audit thread, background scan, async map and Level Zero stream tests)"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
echo "== ctest (tsan)"
ctest --preset tsan -j "$jobs"

# Every fuzz target for a bounded time, from its committed corpus (new inputs go to build/fuzz only);
# any crash fails the run. scripts/fuzz.sh with a larger FUZZ_SECONDS fuzzes in earnest.
echo "== fuzz (clang libFuzzer, ${FUZZ_SECONDS:-10}s a target)"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash scripts/fuzz.sh

bash scripts/test-consumers.sh

if [ -x scripts/test-bindings.sh ]; then
  bash scripts/test-bindings.sh
fi

# The examples of README.md and docs/ that are marked to run, against the installed tree and package.
bash scripts/test-doc-examples.sh
