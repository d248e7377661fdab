#!/usr/bin/env bash
# greyctl quantize end to end on a small synthetic model: exit codes, the JSON's exact shape, outputs in
# both formats read back, --skip, malformed inputs and the CUDA backend's honest refusal.
# Usage: quantize_test.sh GREYCTL
set -uo pipefail
greyctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# shellcheck source=check.sh
source "$(dirname "$0")/check.sh"

# A small model: two 2-D F32 weights, a bias, an int64 tensor.
python3 - "$tmp/model.safetensors" <<'PY'
import json, struct, sys, random
random.seed(7)
tensors = [("enc.weight", "F32", [8, 128]), ("head.weight", "F32", [4, 64]), ("enc.bias", "F32", [8]), ("ids", "I64", [1, 4])]
header, blobs, offset = {}, [], 0
for name, dtype, shape in tensors:
    n = 1
    for d in shape: n *= d
    data = struct.pack(f"<{n}q", *range(n)) if dtype == "I64" else struct.pack(f"<{n}f", *[random.gauss(0, 1) for _ in range(n)])
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
    blobs.append(data); offset += len(data)
text = json.dumps(header).encode(); text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
PY
model=$tmp/model.safetensors

check json-shape 0 '^ok$' -- bash -c "'$greyctl' quantize --input '$model' --format int4-g64 --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert list(d) == [\"format\", \"calibration\", \"tensors\", \"kept\", \"total\"], list(d)
assert (d[\"format\"], d[\"calibration\"]) == (\"int4-g64\", \"rtn\"), d
assert d[\"kept\"] == [{\"name\": \"enc.bias\", \"dtype\": \"F32\", \"shape\": [8], \"reason\": \"one-dimensional (bias or norm)\"},
                     {\"name\": \"ids\", \"dtype\": \"I64\", \"shape\": [1, 4], \"reason\": \"not a float tensor (I64)\"}], d[\"kept\"]
assert [list(t) for t in d[\"tensors\"]] == [[\"name\", \"format\", \"elements\", \"bits_per_weight\", \"rel_rmse\", \"sqnr_db\", \"max_abs_err\"]] * 2
assert list(d[\"total\"]) == [\"elements\", \"bits_per_weight\", \"rel_rmse\", \"sqnr_db\", \"bytes_in\", \"bytes_out\"]
t = d[\"total\"]
assert t[\"elements\"] == 8 * 128 + 4 * 64 and t[\"bits_per_weight\"] == 4.5 and t[\"bytes_in\"] == 4 * t[\"elements\"]
rows = d[\"tensors\"]
assert 0.05 < t[\"rel_rmse\"] < 0.15, t
print(\"ok\")'"
check table 0 'total +int4-g128' -- "$greyctl" quantize --input "$model" --format int4-g128 --calibration mse
check kept-reasons 0 'kept 1: one-dimensional.*kept 1: not a float tensor \(I64\)|kept 1: not a float tensor \(I64\).*' -- bash -c "'$greyctl' quantize --input '$model' --format q8_0 | tr '\n' ' '"
check skip 0 '"elements": 1024' -- bash -c "'$greyctl' quantize --input '$model' --format int8 --skip '^head\.' --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[\"total\"]))'"
check write-gguf 0 'wrote .*out.gguf' -- "$greyctl" quantize --input "$model" --format q4_0 --output "$tmp/out.gguf"
# Re-quantizing a quantized file finds nothing to quantize: an error unless --allow-empty, and no file.
check already-quantized 3 'nothing to quantize in .*out.gguf: none of its 4 tensors .*--allow-empty' -- \
    "$greyctl" quantize --input "$tmp/out.gguf" --format q8_0 --output "$tmp/again.gguf"
check already-quantized-wrote-nothing 0 '^absent$' -- bash -c "[ -e '$tmp/again.gguf' ] && echo present || echo absent"
check reread-gguf 0 'total +q8_0' -- "$greyctl" quantize --input "$tmp/out.gguf" --format q8_0 --allow-empty
check write-safetensors 0 'wrote' -- "$greyctl" quantize --input "$model" --format nf4 --output "$tmp/out.safetensors"
check reread-safetensors 0 'grey.quant.enc.weight' -- python3 -c "
import json, struct; b = open('$tmp/out.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
assert h['enc.weight']['dtype'] == 'U8' and h['enc.weight']['shape'] == [8 * 128 // 2 + 4 * 8 * 128 // 64]
print(list(h['__metadata__']))"
check bad-format 2 'not in' -- "$greyctl" quantize --input "$model" --format int3
check bad-output 3 'must end in .gguf or .safetensors' -- "$greyctl" quantize --input "$model" --format int8 --output "$tmp/x.bin"
check bad-regex 3 'not a valid regular expression' -- "$greyctl" quantize --input "$model" --format int8 --skip '('
head -c 100 "$model" > "$tmp/truncated.safetensors"
check truncated 3 'corrupt data: .*truncated.safetensors: safetensors: the JSON header needs' -- "$greyctl" quantize --input "$tmp/truncated.safetensors" --format int8
printf 'GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f\x00\x00\x00\x00\x00\x00\x00\x00' > "$tmp/bad.gguf"
check bad-gguf 3 'corrupt data: .*9223372036854775807 tensors \(at most 1048576\)' -- "$greyctl" quantize --input "$tmp/bad.gguf" --format int8
# A weight too large for fp16 scales (an outlier of 1e7): q4_0 refuses it naming the tensor and the
# group; int8 (fp32 scales) quantizes it, and --skip keeps it.
python3 - "$tmp/outlier.safetensors" <<'PY'
import json, struct, sys
data = struct.pack("<64f", *([0.5] * 40 + [1e7] + [0.25] * 23))
text = json.dumps({"big.weight": {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, len(data)]}}).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + data)
PY
check too-large 3 'invalid argument: tensor big.weight: elements 32 to 63 \(one scale group\) are too large for q4_0' -- "$greyctl" quantize --input "$tmp/outlier.safetensors" --format q4_0
check too-large-int8 0 'total +int8' -- "$greyctl" quantize --input "$tmp/outlier.safetensors" --format int8
check too-large-skip 0 "kept 1: matches keep pattern '\\^big'" -- "$greyctl" quantize --input "$tmp/outlier.safetensors" --format q4_0 --skip '^big' --allow-empty

# The policy: critical layers kept with their reason, overridable by pattern; formats by pattern.
python3 - "$tmp/critical.safetensors" <<'PY'
import json, struct, sys
tensors = [("model.embed_tokens.weight", [16, 64]), ("conv_in.weight", [8, 3, 3, 3]), ("layers.0.mlp.weight", [64, 64]),
           ("layers.0.attn.weight", [32, 64]), ("conv_out.weight", [4, 8, 1, 1]), ("lm_head.weight", [16, 64])]
header, blobs, offset = {}, [], 0
for i, (name, shape) in enumerate(tensors):
    n = 1
    for d in shape: n *= d
    data = struct.pack(f"<{n}f", *[((i + 1) * (k % 17) - 8) / 16.0 for k in range(n)])
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
    blobs.append(data); offset += len(data)
text = json.dumps(header).encode(); text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
PY
critical=$tmp/critical.safetensors
cat > "$tmp/check_critical.py" <<'PY'
import json, sys
d = json.load(sys.stdin)
assert [t["name"] for t in d["tensors"]] == ["layers.0.mlp.weight", "layers.0.attn.weight"], d["tensors"]
assert {k["name"]: k["reason"] for k in d["kept"]} == {
    "model.embed_tokens.weight": "embedding (critical layer)", "conv_in.weight": "first convolution (critical layer)",
    "conv_out.weight": "last convolution (critical layer)", "lm_head.weight": "output layer (critical layer)"}, d["kept"]
print("ok")
PY
check critical-kept 0 '^ok$' -- bash -c "'$greyctl' quantize --input '$critical' --format int4-g64 --json | python3 '$tmp/check_critical.py'"
check critical-table 0 'kept 1: embedding \(critical layer\) \(model.embed_tokens.weight\)' -- "$greyctl" quantize --input "$critical" --format int8
cat > "$tmp/check_overrides.py" <<'PY'
import json, sys
d = json.load(sys.stdin)
assert {t["name"]: t["format"] for t in d["tensors"]} == {"layers.0.attn.weight": "int8", "lm_head.weight": "int4-g64"}, d["tensors"]
assert {k["name"]: k["reason"] for k in d["kept"]}["layers.0.mlp.weight"] == "matches keep pattern 'mlp'", d["kept"]
print("ok")
PY
check critical-overrides 0 '^ok$' -- bash -c "'$greyctl' quantize --input '$critical' --format int4-g64 --quantize '^lm_head' --format-for 'attn=int8' --format-for '^conv=q8_0' --skip mlp --json | python3 '$tmp/check_overrides.py'"
check no-keep-critical 0 '6 tensor\(s\) quantized .*; 0 kept' -- "$greyctl" quantize --input "$critical" --format int8 --no-keep-critical
check bad-format-for 3 "invalid argument: unknown quantization format name 'int3' in format override 'x=int3'" -- "$greyctl" quantize --input "$critical" --format int8 --format-for 'x=int3'
check bad-quantize-pattern 3 "invalid argument: quantize pattern '\(' is not a valid regular expression" -- "$greyctl" quantize --input "$critical" --format int8 --quantize '('
check nothing-fits 3 'nothing to quantize in .*critical.safetensors: none of its 6 tensors .*2 matches keep pattern .*--allow-empty' -- "$greyctl" quantize --input "$critical" --format int8 --skip layers
check nothing-fits-allowed 0 'note: no tensor of .*critical.safetensors was quantized' -- "$greyctl" quantize --input "$critical" --format int8 --skip layers --allow-empty

# dequantize: back to a full-precision safetensors file, in F32 or BF16.
check dequantize-write 0 'wrote .*critical-q.safetensors' -- "$greyctl" quantize --input "$critical" --format int4-g32 --output "$tmp/critical-q.safetensors"
check dequantize 0 "wrote .*restored.safetensors" -- "$greyctl" dequantize --input "$tmp/critical-q.safetensors" --output "$tmp/restored.safetensors"
check dequantize-gguf 0 "wrote .*restored-gguf.safetensors" -- bash -c "'$greyctl' quantize --input '$critical' --format q4_0 --output '$tmp/critical-q.gguf' >/dev/null && '$greyctl' dequantize --input '$tmp/critical-q.gguf' --output '$tmp/restored-gguf.safetensors' --dtype bf16"
cat > "$tmp/check_restored.py" <<'PY'
import json, struct, sys
def read(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", {})
    return meta, {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
_, original = read(sys.argv[1])
meta, restored = read(sys.argv[2])
assert not any(k.startswith("grey.quant") for k in meta), meta
assert {k: v[:2] for k, v in restored.items()} == {k: v[:2] for k, v in original.items()}, restored
for name in ("model.embed_tokens.weight", "conv_in.weight", "lm_head.weight"):
    assert restored[name][2] == original[name][2], name  # kept: the same bytes
for name in ("layers.0.mlp.weight", "layers.0.attn.weight"):
    a = struct.unpack(f"<{len(original[name][2]) // 4}f", original[name][2])
    b = struct.unpack(f"<{len(restored[name][2]) // 4}f", restored[name][2])
    err = (sum((x - y) ** 2 for x, y in zip(a, b)) / sum(x * x for x in a)) ** 0.5
    assert a != b and err < 0.15, (name, err)
_, bf16 = read(sys.argv[3])
assert bf16["layers.0.mlp.weight"][0] == "BF16" and bf16["layers.0.mlp.weight"][1] == [64, 64], bf16["layers.0.mlp.weight"][:2]
assert bf16["model.embed_tokens.weight"][0] == "F32"
print("ok")
PY
check dequantize-contents 0 '^ok$' -- python3 "$tmp/check_restored.py" "$critical" "$tmp/restored.safetensors" "$tmp/restored-gguf.safetensors"
check dequantize-not-quantized 3 'invalid argument: .*critical.safetensors holds no tensor libgrey quantized.*nothing to dequantize' -- "$greyctl" dequantize --input "$critical" --output "$tmp/never.safetensors"
check dequantize-no-overwrite 3 "already exists; pass --force" -- "$greyctl" dequantize --input "$tmp/critical-q.safetensors" --output "$tmp/restored.safetensors"
check dequantize-bad-dtype 2 'not in' -- "$greyctl" dequantize --input "$tmp/critical-q.safetensors" --output "$tmp/x.safetensors" --dtype int8
python3 - "$tmp/critical-q.safetensors" "$tmp/cut.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
h["__metadata__"]["grey.quant.layers.0.mlp.weight"] = h["__metadata__"]["grey.quant.layers.0.mlp.weight"][:30]
text = json.dumps(h).encode(); text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + b[8 + n:])
PY
check dequantize-truncated-metadata 3 'corrupt data: .*grey.quant.layers.0.mlp.weight is not the description' -- "$greyctl" dequantize --input "$tmp/cut.safetensors" --output "$tmp/x.safetensors"
check dequantize-wrote-nothing 0 '^absent$' -- bash -c "[ -e '$tmp/x.safetensors' ] || [ -e '$tmp/never.safetensors' ] && echo present || echo absent"

# The output is never the input, never replaces a file without --force, and appears only when complete.
cp "$model" "$tmp/source.safetensors"
ln -s source.safetensors "$tmp/link.safetensors"
ln "$tmp/source.safetensors" "$tmp/hard.safetensors"
before=$(sha256sum < "$tmp/source.safetensors")
for out in source.safetensors link.safetensors hard.safetensors; do
  check "output-is-input $out" 3 "invalid argument: output '.*$out' is the input file" -- \
      "$greyctl" quantize --input "$tmp/source.safetensors" --format int8 --output "$tmp/$out" --force
done
check input-unchanged 0 '^same$' -- bash -c "[ \"\$(sha256sum < '$tmp/source.safetensors')\" = '$before' ] && echo same"
check no-overwrite 3 "'.*out.gguf' already exists; pass --force to replace it" -- \
    "$greyctl" quantize --input "$model" --format q8_0 --output "$tmp/out.gguf"
check force 0 'wrote .*out.gguf' -- "$greyctl" quantize --input "$model" --format q8_0 --output "$tmp/out.gguf" --force
check force-replaced 0 'total +q8_0' -- "$greyctl" quantize --input "$tmp/out.gguf" --format q8_0 --allow-empty
mkdir "$tmp/outdir"
check failure-writes-nothing 3 'too large for q4_0' -- "$greyctl" quantize --input "$tmp/outlier.safetensors" --format q4_0 --output "$tmp/outdir/x.gguf"
check failure-leaves-nothing 0 '^empty$' -- bash -c "[ -z \"\$(ls -A '$tmp/outdir')\" ] && echo empty"
check missing-directory 3 "cannot .*$tmp/nodir/x.gguf" -- "$greyctl" quantize --input "$model" --format int8 --output "$tmp/nodir/x.gguf"

# A conv net's weights ([out, in, kh, kw], 1-D [out, in, k], pointwise [out, in, 1, 1]) and a matrix whose
# rows are not whole groups: the grouped formats quantize every one as [out, -1] rows with a ragged last
# group and state the rows in the metadata; q4_0 keeps ggml's rule and says why a tensor is kept.
python3 - "$tmp/conv.safetensors" <<'PY'
import json, struct, sys, random
random.seed(11)
tensors = [("conv.weight", [8, 3, 3, 3]), ("conv1d.weight", [4, 5, 3]), ("pw.weight", [16, 4, 1, 1]), ("fc.weight", [6, 10]), ("fc2.weight", [4, 64])]
header, blobs, offset = {}, [], 0
for name, shape in tensors:
    n = 1
    for d in shape: n *= d
    data = struct.pack(f"<{n}f", *[random.gauss(0, 1) for _ in range(n)])
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
    blobs.append(data); offset += len(data)
text = json.dumps(header).encode(); text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
PY
check conv-int4 0 '5 tensor\(s\) quantized .* 0 kept in their precision' -- "$greyctl" quantize --no-keep-critical --input "$tmp/conv.safetensors" --format int4-g32 --output "$tmp/conv-int4.safetensors"
check conv-int4-rows 0 '^ok$' -- python3 -c "
import json, struct; b = open('$tmp/conv-int4.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
m = {k[len('grey.quant.'):]: json.loads(v) for k, v in h['__metadata__'].items() if k.startswith('grey.quant.')}
want = {'conv.weight': (8, 27, 27), 'conv1d.weight': (4, 15, 15), 'pw.weight': (16, 4, 4), 'fc.weight': (6, 10, 10), 'fc2.weight': (4, 64, 0)}
for name, (rows, length, tail) in want.items():
    d = m[name]
    assert (d['rows'], d['row_length'], d['group'], d['ragged_tail']) == (rows, length, 32, tail), (name, d)
    groups = -(-length // 32)
    assert h[name]['shape'] == [rows * ((length + 1) // 2) + rows * groups * 4], (name, h[name])
print('ok')"
check conv-q4_0-kept 0 'kept 1: q4_0 cannot hold it: q4_0: the innermost dimension 10 is not a multiple of 32 .*kept 2: q4_0 cannot hold it: q4_0: the innermost dimension 3 is not a multiple of 32 ' -- \
    bash -c "'$greyctl' quantize --no-keep-critical --input '$tmp/conv.safetensors' --format q4_0 | tr '\n' ' '"

check cuda 4 "unsupported: (backend 'cuda' is not available|the cuda backend has no quantization kernels yet)" -- "$greyctl" --no-env quantize --input "$model" --format int8 --backend cuda
# --backend takes whatever the loader finds, not a fixed list; the library says why a name is not there.
check backend-unknown 4 "unsupported: backend 'nosuch' is not available: requested, but no libgrey-backend-nosuch.so" -- "$greyctl" --no-env quantize --input "$model" --format int8 --backend nosuch

# --progress (the default on a terminal): bytes done and elapsed time on stderr, ending at 100% of the
# input's tensor bytes with the sizes and the time; standard output is the same report as without it.
check progress 0 '\[100\.0%\] quantize .* MiB / .* MiB, [0-9.]+ s .*quantize: input size  = [0-9.]+ MiB .*quantize: output size = [0-9.]+ MiB .*quantize: total time  = [0-9.]+ ms' -- \
    bash -c "'$greyctl' --no-env quantize --input '$model' --format int8 --output '$tmp/progress.safetensors' --progress --json 2>&1 >/dev/null | tr '\n' ' '"
check progress-json-unchanged 0 '' -- bash -c "cmp <('$greyctl' --no-env quantize --input '$model' --format int8 --json --progress 2>/dev/null) <('$greyctl' --no-env quantize --input '$model' --format int8 --json)"
check no-progress-off-a-terminal 0 '' -- bash -c "test -z \"\$('$greyctl' --no-env quantize --input '$model' --format int8 --json 2>&1 >/dev/null)\""
check dequantize-progress 0 '\[100\.0%\] dequantize .*dequantize: total time  = ' -- \
    bash -c "'$greyctl' --no-env dequantize --input '$tmp/progress.safetensors' --output '$tmp/progress-r.safetensors' --progress 2>&1 >/dev/null | tr '\n' ' '"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
