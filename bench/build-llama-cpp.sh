#!/usr/bin/env bash
# Builds llama.cpp's CPU tools (llama-quantize, llama-completion, llama-simple) from the source distribution
# that llama-cpp-python vendors, into a cache folder, and prints the folder holding the programs. Used by
# the llama.cpp comparison in bench/ and by the planner's llama.cpp load test (LLAMA_CPP_CLI). The server
# is not built, and with it llama-cli (which needs it); llama-completion is the classic generator.
#
#   bash bench/build-llama-cpp.sh [VERSION]     (default: the newest llama-cpp-python on PyPI)
#
# GGML_NATIVE stays off: a native build has crashed on virtual machines whose CPU advertises features
# the hypervisor does not run; AVX2/FMA/F16C are what the x86-64 machines this runs on have.
set -euo pipefail
version=${1:-}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/libgrey/llama.cpp
mkdir -p "$cache/src"
spec=llama-cpp-python${version:+==$version}
if [ -z "$version" ] || ! ls "$cache/src"/llama_cpp_python-"$version".tar.gz >/dev/null 2>&1; then
    python3 -m pip download --quiet --no-deps --no-binary :all: "$spec" -d "$cache/src" >&2
fi
archive=$(ls -t "$cache/src"/llama_cpp_python-${version:-*}.tar.gz | head -1)
name=$(basename "$archive" .tar.gz)
root=$cache/$name
if [ ! -x "$root/build/bin/llama-quantize" ] || [ ! -x "$root/build/bin/llama-completion" ]; then
    if [ ! -d "$root/vendor/llama.cpp" ]; then
        mkdir -p "$root"
        tar -xzf "$archive" -C "$root" --strip-components=1
    fi
    cmake -S "$root/vendor/llama.cpp" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON \
        -DGGML_F16C=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
    cmake --build "$root/build" -j "$(nproc)" --target llama-quantize llama-completion llama-simple >&2
fi
echo "$root/build/bin"
