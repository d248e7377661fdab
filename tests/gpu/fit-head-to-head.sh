#!/usr/bin/env bash
# libgrey's planner against llama.cpp's `--fit` on one GPU (issue 19's goals): builds llama.cpp's CUDA
# tools from the source llama-cpp-python vendors, writes a mixture-of-experts GGUF in Qwen3-30B-A3B's layout
# and size with random weights (bench/fit_head_to_head.py model), limits the GPU's free memory to a budget
# smaller than the model (a PyTorch process holds the rest; no GPU setting is changed) and runs llama.cpp
# with `--fit on` and with the arguments `greyctl plan --emit llama-cpp` prints for the same budget:
# decode tokens/s of each (llama-bench), what llama.cpp allocated on the GPU for each, and the planner's
# predicted device memory beside it, in one table (bench/fit_head_to_head.py run); then one prompt of 512
# tokens with each (llama-bench -p 512 -n 0, one run): whether each loaded and ran without running out of
# memory, and its CUDA0 buffers. A prompt batch is where llama.cpp copies host-resident expert tensors to
# the GPU (op offload), the room the planner keeps for that.
#
#   bash tests/gpu/fit-head-to-head.sh            (from the repository root, on the GPU machine)
#   H2H_STEPS=build,model,run     any subset, in that order (default: all three). build: llama.cpp
#                                 (llama-bench, llama-completion) and, unless GREYCTL names one, a CPU-only
#                                 greyctl, concurrently with model; each is skipped when already there.
#                                 run is decode,pp: decode (llama-completion's allocations, then the decode
#                                 rounds) and pp (the prompt check after them); either alone is a step too
#                                 (H2H_STEPS=pp: the prompt check only)
#   H2H_BUDGET_GIB=20             the GPU free memory both runs get (default 20: the Q8_0 model is 30.25 GiB)
#   H2H_TYPE=q8_0|q4_0            the model's weights (default q8_0; q4_0 is 16.1 GiB: use a budget near 10)
#   H2H_ARGS="..."                more arguments for `fit_head_to_head.py run` (--n-gen, --depth, --reps,
#                                 --rounds, --pp, --threads, --kv-precision, --fit-llama-defaults; e.g.
#                                 "--depth 32768 --fit-llama-defaults --kv-precision int8": a plan with a
#                                 q8_0 cache against --fit with llama.cpp's f16 cache at a long context)
#   H2H_CUDA_FA=ON|OFF            build llama.cpp's CUDA flash-attention kernels (default ON, llama.cpp's
#                                 default; OFF halves the CUDA compile work, and -fa auto then runs without)
#   GREYCTL=PATH                  a greyctl to use instead of building one (e.g. build/gpu/bin/greyctl)
#   H2H_LLAMA_BIN=DIR             a llama.cpp build to use instead of building one
#   H2H_SCALE=full|tiny           the model's size (default full; tiny, with H2H_ARGS=--cpu-only and a CPU
#                                 build of llama.cpp, tests this script on a machine without a GPU)
#   H2H_MODEL=FILE                where the model is written (default: under H2H_DIR; 30.25 GiB for q8_0)
#   H2H_DIR=build/h2h             where the builds and the model live (ignored; kept while the machine is)
#   OUT=...                       if set, the table, the raw figures, the plan and the logs go there
#
# Needs (tests/gpu/fetch-deps.sh llama puts them in .deps): .deps/llama.cpp/llama.cpp-*.tar.gz (the
# llama.cpp that llama-cpp-python vendors, without its models, docs, tests and the other backends),
# .deps/wheels/gguf-*.whl, and, to build greyctl, .deps/usr. PyTorch, CUDA (nvcc), CMake and ninja come
# with the machine.
set -uo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_TIMEOUT=5 PIP_RETRIES=0
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
steps=${H2H_STEPS:-build,model,run}
want() { [[ ",$steps," == *",$1,"* ]]; }
for step in ${steps//,/ }; do
    case $step in build|model|run|decode|pp) ;; *) echo "FAIL: H2H_STEPS: unknown step '$step' (build, model, run, decode, pp)"; exit 2 ;; esac
done
dir=${H2H_DIR:-build/h2h}
out=${OUT:-$dir/out}
type=${H2H_TYPE:-q8_0}
budget=${H2H_BUDGET_GIB:-20}
mkdir -p "$dir/logs" "$out"
jobs=$(nproc)

archive=$(ls -t .deps/llama.cpp/llama.cpp-*.tar.gz 2>/dev/null | head -1)
llama=$dir/$(basename "${archive:-llama.cpp-none}" .tar.gz)
bin=${H2H_LLAMA_BIN:-$llama/build/bin}
greyctl=${GREYCTL:-$dir/grey/bin/greyctl}
scale=${H2H_SCALE:-full}
model=${H2H_MODEL:-$dir/model/qwen3moe-30b-a3b-layout-$scale-$type.gguf}
site=$(realpath -m "$dir/site")

# The gguf package (and nothing else: numpy comes with PyTorch; its yaml import is stubbed when missing).
if [ ! -d "$site/gguf" ]; then
    python3 -m pip install -q --no-index --no-deps --target "$site" .deps/wheels/gguf-*.whl || { echo "FAIL: no gguf wheel in .deps/wheels"; exit 1; }
fi
export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}

build_llama() {
    [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-completion" ] && { echo "llama.cpp: already built in $bin"; return 0; }
    [ -n "$archive" ] || { echo "FAIL: no .deps/llama.cpp/llama.cpp-*.tar.gz (tests/gpu/fetch-deps.sh llama)"; return 1; }
    mkdir -p "$llama/src"
    [ -f "$llama/src/CMakeLists.txt" ] || tar -xzf "$archive" -C "$llama/src" --strip-components=1
    # One architecture (Hopper), no flash-attention kernels for every quantized KV pair (the default, said
    # out loud), no NCCL (one GPU), no server, tests or examples: only the two programs, to keep the build
    # short. The CPU flags are those of bench/build-llama-cpp.sh (a native build has crashed on virtual
    # machines).
    cmake -G Ninja -S "$llama/src" -B "$llama/build" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_FA="${H2H_CUDA_FA:-ON}" -DGGML_CUDA_FA_ALL_QUANTS=OFF -DGGML_CUDA_NCCL=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON \
        -DGGML_F16C=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=OFF >"$dir/logs/llama-configure.log" 2>&1 &&
    cmake --build "$llama/build" -j "$jobs" --target llama-bench llama-completion >"$dir/logs/llama-build.log" 2>&1
}

build_greyctl() {
    [ -x "$greyctl" ] && { echo "greyctl: $greyctl"; return 0; }
    local prefix=()
    [ -d .deps/usr ] && prefix=(-DCMAKE_PREFIX_PATH="$root/.deps/usr")
    export PKG_CONFIG_PATH="$root/.deps/usr/lib/x86_64-linux-gnu/pkgconfig:$root/.deps/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    cmake -G Ninja -S . -B "$dir/grey" -DCMAKE_BUILD_TYPE=Release -DGREY_WITH_CUDA=OFF -DGREY_BUILD_TESTS=OFF \
        "${prefix[@]}" >"$dir/logs/grey-configure.log" 2>&1 &&
    cmake --build "$dir/grey" -j "$jobs" --target greyctl >"$dir/logs/grey-build.log" 2>&1
}

make_model() {
    [ -f "$model" ] && { echo "model: $model already written"; return 0; }
    mkdir -p "$(dirname "$model")"
    python3 bench/fit_head_to_head.py model --out "$model" --type "$type" --scale "$scale" >"$dir/logs/model.log" 2>&1
}

export LD_LIBRARY_PATH="$root/.deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
t0=$(date +%s)
pids=()
if want build; then
    build_llama & pids+=("$!:llama.cpp:$dir/logs/llama-build.log")
    build_greyctl & pids+=("$!:greyctl:$dir/logs/grey-build.log")
fi
want model && { make_model & pids+=("$!:model:$dir/logs/model.log"); }
for entry in "${pids[@]}"; do
    IFS=: read -r pid what log <<<"$entry"
    if wait "$pid"; then echo "ok: $what ($(( $(date +%s) - t0 )) s)"
    else echo "FAIL: $what (see $log)"; tail -30 "$log" 2>/dev/null; status=1; fi
done
cat "$dir/logs/model.log" 2>/dev/null
[ $status -eq 0 ] || exit $status

run_steps=
{ want run || want decode; } && run_steps=decode
{ want run || want pp; } && run_steps=${run_steps:+$run_steps,}pp
if [ -n "$run_steps" ]; then
    for f in "$bin/llama-bench" "$bin/llama-completion" "$greyctl" "$model"; do
        [ -e "$f" ] || { echo "FAIL: $f is missing (H2H_STEPS=build,model first)"; exit 1; }
    done
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,memory.free --format=csv
    # shellcheck disable=SC2086
    python3 bench/fit_head_to_head.py run --steps "$run_steps" --bin "$bin" --greyctl "$greyctl" --model "$model" \
        --budget-gib "$budget" --out "$out" ${H2H_ARGS:-}
    status=$?
fi
echo "total $(( $(date +%s) - t0 )) s"
exit $status
