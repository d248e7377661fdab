#!/usr/bin/env bash
# greyctl kv-bench on the host backend, small shapes: the report's structure and the attention error
# against float64 within bounds per format (never a timing), --hadamard-k, text output, bad arguments
# with their exit codes.
# Usage: kv_bench_test.sh GREYCTL
set -uo pipefail
greyctl=$1
passed=0
failed=0

# shellcheck source=check.sh
source "$(dirname "$0")/check.sh"

base=(--layers 2 --kv-heads 2 --context 100 --batch 3 --window 16 --iterations 2 --warmup 1)
small=("${base[@]}" --query-heads 4 --head-dim 64)
field() {  # field EXPRESSION ARGS...: the Python expression over the report `d`
  local expression=$1; shift
  "$greyctl" --no-env kv-bench "${small[@]}" --json "$@" | python3 -c "import json, sys; d = json.load(sys.stdin); print($expression)"
}

check structure 0 "^True$" -- field 'list(d) == ["backend", "device", "shape", "format", "hadamard_k", "group", "window", "block", "context", "batch", "seed", "timing", "cache", "error"] and d["backend"] == "host" and d["shape"] == {"layers": 2, "query_heads": 4, "kv_heads": 2, "head_dim": 64}' --format int8
check timing-fields 0 "^2 True True$" -- field 'd["timing"]["calls"], d["timing"]["median_us"] > 0 and d["timing"]["min_us"] <= d["timing"]["median_us"] <= d["timing"]["max_us"], d["timing"]["bytes_read_per_call"] == d["cache"]["bytes_used"] // 2' --format int8
# 100 tokens in blocks of 16 behind a 16-token window: blocks 0..4 of each of the 3 sequences are quantized.
check int8-error 0 "^True 15 None$" -- field 'd["error"]["vs_float64_input"]["rel_rmse"] < 0.02 and d["error"]["vs_float64_input"]["mean_cosine"] > 0.999, d["cache"]["blocks_compressed"], d["error"]["vs_host_reference"]' --format int8
check int4-error 0 "^True$" -- field '0.002 < d["error"]["vs_float64_input"]["rel_rmse"] < 0.2' --format int4
check fp8-error 0 "^True$" -- field 'd["error"]["vs_float64_input"]["rel_rmse"] < 0.08' --format fp8-e4m3
check int2-error 0 "^True$" -- field 'd["error"]["vs_float64_input"]["rel_rmse"] < 0.8' --format int2
check bf16-window-only 0 "^True 0 None$" -- field 'd["error"]["vs_float64_input"]["rel_rmse"] < 0.01, d["cache"]["blocks_compressed"], d["window"]' --format bf16
check hadamard-k 0 "^True True$" -- field 'd["hadamard_k"], d["error"]["vs_float64_input"]["rel_rmse"] < 0.2' --format int4 --hadamard-k
check same-seed-same-data 0 "^True$" -- field 'd["error"]["vs_float64_input"]["rel_rmse"] == '"$(field 'd["error"]["vs_float64_input"]["rel_rmse"]' --format int4)" --format int4
check text 0 "decode attention: median .* us per call .* GB/s" -- "$greyctl" --no-env kv-bench "${small[@]}" --format int4

check query-heads-not-a-multiple 2 "--query-heads 3 is not a multiple of --kv-heads 2" -- "$greyctl" --no-env kv-bench "${base[@]}" --query-heads 3
check unknown-format 2 "int3" -- "$greyctl" --no-env kv-bench --format int3
check hadamard-needs-power-of-two 3 "power of two" -- "$greyctl" --no-env kv-bench "${base[@]}" --query-heads 4 --head-dim 48 --hadamard-k
check hadamard-json-error 3 '"class": "bad_input"' -- "$greyctl" --no-env kv-bench "${base[@]}" --query-heads 4 --head-dim 48 --hadamard-k --json
check no-backend 4 "nosuch" -- "$greyctl" --no-env kv-bench "${small[@]}" --backend nosuch

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
