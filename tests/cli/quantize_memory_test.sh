#!/usr/bin/env bash
# greyctl quantize streams: its peak memory is the largest tensor, plus that tensor quantized, plus a
# fixed margin, however many tensors the model has. The model (256 MiB + 128 MiB of F32 weights) is a
# sparse file, so it takes no disk. Usage: quantize_memory_test.sh GREYCTL
set -uo pipefail
greyctl=$1
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# shellcheck source=check.sh
source "$here/check.sh"

python3 - "$tmp/big.safetensors" <<'PY'
import json, struct, sys
tensors = [("big.weight", [8192, 8192]), ("second.weight", [4096, 8192]), ("big.bias", [8192])]
header, offset = {}, 0
for name, shape in tensors:
    size = 4
    for d in shape:
        size *= d
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
    offset += size
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    f.truncate(8 + len(text) + offset)  # all-zero weights, as holes
PY

# The program's own footprint (its libraries; far more in the asan build), measured on a model of one
# small tensor.
python3 - "$tmp/small.safetensors" <<'PY'
import json, struct, sys
data = struct.pack("<64f", *range(64))
text = json.dumps({"w": {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, 256]}}).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + data)
PY
program_mib=$(python3 "$here/peak_rss.py" 100000 -- "$greyctl" --no-env quantize --input "$tmp/small.safetensors" --format int8 \
    --output "$tmp/small.gguf" 2>&1 >/dev/null | sed -n 's/^peak_rss_mib \([0-9]*\).*/\1/p')
echo "the program alone: $program_mib MiB"
# The largest tensor (256 MiB), its int8 form (64 MiB and 32 KiB of scales), the program, and a fixed
# 24 MiB (scratch buffers; the sanitizers' shadow of the int8 buffer in the asan build).
limit_mib=$((256 + 64 + program_mib + 24))
for out in out.safetensors out.gguf; do
  check "peak-memory $out" 0 "wrote .*$out" -- python3 "$here/peak_rss.py" "$limit_mib" -- \
      "$greyctl" --no-env quantize --input "$tmp/big.safetensors" --format int8 --output "$tmp/$out"
  check "read-back $out" 0 'total +int8 +0 ' -- "$greyctl" --no-env quantize --input "$tmp/$out" --format int8 --allow-empty
  rm -f "$tmp/$out"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
