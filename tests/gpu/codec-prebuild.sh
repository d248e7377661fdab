#!/usr/bin/env bash
# Builds the CUDA plugin and the codec conformance program of one or more source trees here, on a machine
# without a GPU (nvcc is enough), so that tests/gpu/codec-ab.sh can measure them on the GPU machine without
# building there. The build is Release, sm_90 only (GREY_CUDA_GENCODES), stripped. Each goes to
# .deps/carry/NAME/bin and .deps/carry/NAME/grey, about 11 MB a tree.
#
#   bash tests/gpu/codec-prebuild.sh base=.deps/codec-base new=.      (from the repository root)
#
# Then carry .deps/usr, .deps/carry and the model file, and run CODEC_AB_PREBUILT=1 tests/gpu/codec-ab.sh.
# A tree whose backends/cuda/CMakeLists.txt predates GREY_CUDA_GENCODES builds every target (about
# 24 MB a plugin).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || { echo "usage: $0 NAME=SOURCE_TREE ..." >&2; exit 2; }
prefix=$(pwd)/.deps/usr
for pair in "$@"; do
    name=${pair%%=*}
    src=$(realpath "${pair#*=}")
    build=$src/build/prebuild-sm90
    mkdir -p "$src/build"
    echo "== $name: $src"
    cmake -G Ninja -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGREY_WITH_CUDA=ON -DGREY_BUILD_TESTS=OFF -DGREY_BUILD_GPU_TESTS=ON \
        -DGREY_BUILD_BENCH=OFF -DGREY_CUDA_GENCODES="arch=compute_90,code=sm_90" -DCMAKE_PREFIX_PATH="$prefix" >"$build.log" 2>&1 ||
        { tail -20 "$build.log"; exit 1; }
    cmake --build "$build" --target grey_backend_cuda grey_gpu_codec_conformance >>"$build.log" 2>&1 || { tail -30 "$build.log"; exit 1; }
    carry=.deps/carry/$name
    rm -rf "$carry"
    mkdir -p "$carry/bin" "$carry/grey"
    strip -o "$carry/bin/grey_gpu_codec_conformance" "$build/bin/grey_gpu_codec_conformance"
    strip -o "$carry/grey/libgrey-backend-cuda.so" "$build/lib/grey/libgrey-backend-cuda.so"
    # An archive unpacked inside this repository would otherwise report this repository's commit.
    cat "$src/.archive-commit" 2>/dev/null >"$carry/commit" || git -C "$src" rev-parse --short HEAD >"$carry/commit"
    du -sh "$carry"
done
