#!/usr/bin/env bash
# greyctl simulate-ram end to end on a small synthetic model whose figures are known exactly: tenants
# sharing one domain or isolated, a zero tensor that costs nothing, compression (of a shared block once),
# quantization with its quality cost, the configured target, --proof into the audit log, bad input.
# Usage: simulate_ram_test.sh GREYCTL
set -uo pipefail
greyctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# shellcheck source=check.sh
source "$(dirname "$0")/check.sh"

# Four tensors of one 64 KiB block or less each: a.weight (32 KiB, random), b.weight (the same bytes),
# zeros (16 KiB of zeros) and c.weight (32 KiB of a few values, so that it compresses).
python3 - "$tmp/model.safetensors" <<'PY'
import json, struct, sys, random
random.seed(11)
a = struct.pack("<8192f", *[random.gauss(0, 1) for _ in range(8192)])
c = struct.pack("<8192f", *[random.choice([0.5, -0.5, 0.25]) for _ in range(8192)])
tensors = [("a.weight", [64, 128], a), ("b.weight", [64, 128], a), ("zeros", [64, 64], bytes(16384)), ("c.weight", [64, 128], c)]
header, blobs, offset = {}, [], 0
for name, shape, data in tensors:
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
    blobs.append(data); offset += len(data)
text = json.dumps(header).encode(); text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
PY
model=$tmp/model.safetensors
# The background scan is off, so that the compaction counted is the command's own.
printf 'targets:\n  ram_multiplier: 5.0\nmemory:\n  deduplication:\n    scan_interval_ms: 0\ndaemon:\n  proof_artifact_dir: %s/proofs\n' "$tmp" > "$tmp/cfg.yaml"
run() { "$greyctl" --no-env --config "$tmp/cfg.yaml" simulate-ram --model "$model" --json "$@"; }
field() {  # field EXPRESSION ARGS...: the Python expression over the report `d`
  local expression=$1; shift
  run "$@" | python3 -c "import json, sys; d = json.load(sys.stdin); print($expression)"
}

# Three tenants, one domain: a.weight's bytes once for all six copies, c.weight once, zeros never.
logical=$((3 * (32768 * 3 + 16384)))
check shared-logical 0 "^$logical$" -- field 'd["measured"]["logical_bytes"]' --tenants 3
check shared-physical 0 '^65536$' -- field 'd["measured"]["physical_bytes"]' --tenants 3
check shared-saved 0 "^$((logical - 65536)) 4 2$" -- field 'd["measured"]["saved_dedup_bytes"], d["measured"]["constant_blocks"] + 1, d["measured"]["shared_blocks"]' --tenants 3
check shared-multiplier-target 0 '^5.25 5.0 True$' -- field 'round(d["measured"]["effective_multiplier"], 6), d["target"]["ram_multiplier"], d["target"]["met"]' --tenants 3
check shared-per-tenant 0 '^\[21845, 21845, 21845\]$' -- field '[t["physical_bytes"] for t in d["per_tenant"]]' --tenants 3
check shared-verified 0 "^True $logical True$" -- field 'd["verification"]["bit_exact"], d["verification"]["bytes"], d["quality"]["lossless"]' --tenants 3
# Isolated tenants share nothing across tenants (a.weight and b.weight still within one).
check isolated-physical 0 "^$((3 * 65536)) False$" -- field 'd["measured"]["physical_bytes"], d["target"]["met"]' --tenants 3 --isolate-tenants
# One tenant with zstd on the host tier: c.weight shares nothing and gets a container of its own;
# a.weight and b.weight stay deduplicated and the block they share is compressed once (counted for the
# buffer whose compaction compressed it). Every byte moved to the host: 2 x 32 KiB of raw blocks there.
check compressed 0 '^2 0 True True 0$' -- field 'd["compaction"]["buffers_compressed"], d["measured"]["physical_device_bytes"], 0 < d["measured"]["physical_host_bytes"] < 65536, d["measured"]["saved_compression_bytes"] == 65536 - d["measured"]["physical_host_bytes"], d["measured"]["pinned_host_bytes"]' --codec zstd --tier host
# Quantization (every tensor here is two-dimensional, so all four are quantized): its quality cost is stated, logical bytes stay the source's, the saving is counted.
check quantized 0 '^False 4 0 True True$' -- field 'd["quality"]["lossless"], d["quality"]["tensors_quantized"], d["quality"]["tensors_kept"], d["measured"]["saved_quantization_bytes"] > 0, 0 < d["quality"]["rel_rmse"] < 0.2' --weights-format int8
check table 0 'effective multiplier \(logical / physical\): 5\.250x; target targets.ram_multiplier 5\.000x: met' -- \
  "$greyctl" --no-env --config "$tmp/cfg.yaml" simulate-ram --model "$model" --tenants 3
# --proof: the report goes into the audit log as a proof artifact that verifies.
mkdir "$tmp/proofs"
"$greyctl" audit keygen --out "$tmp/p" >/dev/null && mv "$tmp/p.writer" "$tmp/proofs/audit.key.writer"
check proof 0 'proof artifact' -- bash -c "'$greyctl' --no-env --config '$tmp/cfg.yaml' simulate-ram --model '$model' --tenants 2 --proof 2>&1 >/dev/null"
check proof-verifies 0 '' -- bash -c "'$greyctl' --no-env --config '$tmp/cfg.yaml' proof verify $tmp/proofs/*.json --key '$tmp/p'"
# Bad input.
check no-model 3 'simulate-ram|No such file|not found|does not exist' -- "$greyctl" --no-env simulate-ram --model "$tmp/missing.safetensors"
check bad-codec 2 'not in' -- "$greyctl" --no-env simulate-ram --model "$model" --codec brotli
check bad-tenants 2 'not in range' -- "$greyctl" --no-env simulate-ram --model "$model" --tenants 0
check no-backend 4 "backend 'nosuch' is not available" -- "$greyctl" --no-env simulate-ram --model "$model" --backend nosuch

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
