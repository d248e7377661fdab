#!/usr/bin/env bash
# greyctl on hostile inputs: model files that claim huge counts, alignments or names, share bytes or
# repeat keys; configuration and model paths that are directories, FIFOs or devices. Each must be
# refused with a clear message, promptly and in bounded memory. Usage: hostile_inputs_test.sh GREYCTL
set -uo pipefail
greyctl=$1
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# shellcheck source=check.sh
source "$here/check.sh"

python3 "$here/hostile_models.py" "$tmp"
q() { timeout 60 "$greyctl" --no-env quantize --format int8 "$@"; }

check alignment 3 'corrupt data: .*align31.gguf: GGUF: general.alignment 2147483648 is not a power of two of at most 65536' -- \
    q --input "$tmp/align31.gguf" --output "$tmp/align31-out.gguf" --allow-empty
check alignment-nothing-written 0 '^none$' -- bash -c "ls '$tmp' | grep -c align31-out || echo none"
# 2^24 empty strings in a 128 MiB sparse file: the mapping and one copy of the metadata, plus the
# program (it used to take 1.2 GB). 480 MiB leaves room for the ASan build's own overhead (403 MiB
# measured there, with the library's streams and policy code linked in).
check string-array-memory 3 'nothing to quantize' -- python3 "$here/peak_rss.py" 480 -- "$greyctl" --no-env quantize --format int8 --input "$tmp/strings.gguf"
check entries 3 'corrupt data: .*307000000 metadata entries \(at most 65536\)' -- q --input "$tmp/entries.gguf"
check overlap 3 "corrupt data: .*tensors 'a' and 'b' overlap" -- q --input "$tmp/overlap.gguf"
check duplicate-tensor 3 "corrupt data: .*tensor 'w' appears twice" -- q --input "$tmp/duplicate-tensor.safetensors"
check duplicate-metadata 3 "corrupt data: .*__metadata__ key 'k' appears twice" -- q --input "$tmp/duplicate-metadata.safetensors"
for f in long-name.safetensors long-name.gguf; do
  check "$f" 3 'corrupt data: .*a tensor name of 50000 bytes \(at most 1024\)' -- q --input "$tmp/$f" --skip '.*bias'
done
# RE2 matches in linear time: a pattern that backtracks exponentially in ECMAScript engines is instant.
check regex-linear-time 0 'kept 1: matches keep pattern' -- q --input "$tmp/redos.safetensors" --skip '^(a|aa)*c$' --skip 'aaaa$'

mkfifo "$tmp/fifo"
mkdir "$tmp/dir"
for path in "$tmp/dir" "$tmp/fifo" /dev/zero; do
  check "config-validate $path" 3 "is not a regular file" -- timeout 20 "$greyctl" --no-env config validate "$path"
  check "--config $path" 3 "is not a regular file" -- timeout 20 "$greyctl" --no-env --config "$path" config show
  check "quantize --input $path" 3 "is not a regular file" -- timeout 20 "$greyctl" --no-env quantize --format int8 --input "$path"
done
truncate -s 2M "$tmp/big.yaml"
check config-too-large 1 "larger than the limit of 1048576 bytes" -- timeout 20 "$greyctl" --no-env config validate "$tmp/big.yaml"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
