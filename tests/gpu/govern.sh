#!/usr/bin/env bash
# The governor on the GPU (issue 20's thermal goal and validate-performance). Run on the GPU machine
# after tests/gpu/run.sh has built build/gpu (or set GREY_GPU_BUILD_DIR):
#
#   bash tests/gpu/govern.sh                       (about 8 minutes of device time)
#   GREY_GOVERN_SCALE=0.5 bash tests/gpu/govern.sh (every phase half as long)
#   GREY_GOVERN_TUNINGS="0:0:0 0:0:0:0:20"        governed runs with these KP:TI_S:HORIZON_S[:BURST_MS[:SLICE_MS]]
#                                                  (0: the library's default), one after another
#   OUT=DIR                                        where govern.csv, govern.png, govern.json and
#                                                  validate.json go (default build/gpu/out/govern)
#
# Steps: tests/gpu/govern.py (idle, constant-duty sweep, governed run; CSV and PNG), then greyctl
# validate-performance with a PyTorch matmul command as the workload. Read-only towards the GPU's
# settings: it never changes clocks, power limits, compute mode or persistence mode.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${GREY_GPU_BUILD_DIR:-build/gpu}
out=${OUT:-$build/out}/govern
scale=${GREY_GOVERN_SCALE:-1.0}
mkdir -p "$out"
tunings=()
for t in ${GREY_GOVERN_TUNINGS:-}; do tunings+=(--tuning "$t"); done
python3 tests/gpu/govern.py --lib "$build/lib/libgrey.so" --out "$out" --scale "$scale" "${tunings[@]}" | tee "$out/govern.log"
duration=$(python3 -c "print(max(5, 25 * $scale))")
cooldown=$(python3 -c "print(max(2, 10 * $scale))")
"$build/bin/greyctl" --no-env --backend-dir "$build/lib/grey" validate-performance --device 1 \
  --workload "python3 tests/gpu/govern_matmul.py --seconds 3" --duration "$duration" --repeats 2 \
  --cooldown "$cooldown" --json --no-proof > "$out/validate.json"
python3 - "$out/validate.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("\n".join(r["verdicts"]))
PY
echo "govern: results in $out (govern.csv, govern.png, govern.json, validate.json)"
