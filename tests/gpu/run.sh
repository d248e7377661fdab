#!/usr/bin/env bash
# The CUDA backend on a real NVIDIA GPU: build, conformance against the host reference (buffers and
# quantization), buffer mapping checked through the CUDA driver, the kernels under compute-sanitizer
# memcheck and racecheck, `greyctl detect` against nvidia-smi, the pool benchmark, the launch-shape
# benchmark, the quantization benchmark, the stream benchmark (issue 16 goals), whole-model quantization
# speed beside the file read speed (issue 15), the governor's admission call (issue 20) and a model 1.4x
# the working-set cache streamed layer by layer beside the same model resident, with map latency (issue 17).
# Prints a summary last; exits non-zero if any step failed.
#
#   bash tests/gpu/run.sh            (from the repository root)
#   GREY_GPU_STEPS=...               comma-separated subset of: conformance, quant, cli, mapping,
#                                    memcheck, racecheck, detect, bench, grid-bench, quant-bench,
#                                    stream-bench, startup, model-throughput, admit-bench, kv, kv-bench, kv-sdpa, wheel,
#                                    layer-stream (needs GREY_GPU_MODEL, a safetensors file: its F16 weights fill the layers),
#                                    codec (its speed table needs GREY_GPU_MODEL), codec-profile (ncu of
#                                    the decode kernel on GREY_GPU_MODEL; not in the default list), codec-nvcomp (needs
#                                    .deps/nvcomp from tests/gpu/fetch-deps.sh; not in the default list: its
#                                    wheels and the full model are more than one run can carry)
#                                    kv-bench measures FlashInfer too where .deps/flashinfer exists
#                                    (tests/gpu/fetch-deps.sh flashinfer; carry it with .deps/usr)
#                                    (default: all; the build always runs; cli, model-throughput and
#                                    layer-stream need GREY_GPU_MODEL)
#   GREY_GPU_SANITIZE="P1 P2"        the programs memcheck and racecheck run (default: all four conformance
#                                    programs for memcheck, the three with shared-memory kernels for racecheck)
#   GREY_GPU_MODEL=FILE              a safetensors/GGUF file whose tensors the quantization conformance
#                                    also compares (real weights)
#   GREY_GPU_CLI_MODELS="F1 F2"      the models greyctl quantizes on both backends (default: GREY_GPU_MODEL;
#                                    tests/gpu/fetch-deps.sh puts a transformer and a conv net in .deps/model)
#   GREY_GPU_BENCH_ARGS=...          extra arguments for bench/quant_gpu_bench.py (e.g. --no-compile,
#                                    --repeat 21); it always reports device time (CUPTI) beside wall clock
#   GREY_GPU_THROUGHPUT_ARGS=...     extra arguments for bench/model_quant_throughput.py (e.g. "--layout llm
#                                    --matrix 4096" for a file of a large language model's matrix sizes)
#   GREY_GPU_BASELINE_REV=REV        model-throughput also times a greyctl built from git revision REV (its host
#                                    code; the same CUDA backend plugin), alternating with this tree's, rows "baseline"
#   GREY_GPU_LAYER_STREAM_ARGS=...   extra arguments for bench/layer_stream_gpu_bench.py (they override the
#                                    step's --tier both, e.g. "--tier device --passes 3" for a shorter run)
#   GREY_GPU_BUILD_DIR=...           build directory (default build/gpu)
#   GREY_GPU_TARGETS="t1 t2"         build only these CMake targets (default: everything), to spend less of a
#                                    short device lease on the build, e.g. "grey_backend_cuda greyctl
#                                    grey_gpu_kv_conformance" for the kv, kv-bench and kv-sdpa steps
#   GREY_DEPS_PREFIX=...             extra prefix for the libraries the machine lacks (CLI11, nlohmann_json,
#                                    RE2, ...; default: .deps/usr if it exists, which
#                                    tests/gpu/fetch-deps.sh prepares)
#   OUT=...                          if set, logs and the detect JSON are also written there
#
# Read-only towards the GPU's settings: it never changes clocks, power limits, compute mode or
# persistence mode and never resets the GPU (nvidia-smi is only queried).
set -uo pipefail
# The machine reaches no package index: pip must not ask one whether it is out of date, nor wait long for
# any connection (where packets are dropped rather than refused, each question waits out its timeouts and
# retries for minutes).
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_TIMEOUT=5 PIP_RETRIES=0
cd "$(dirname "$0")/../.."
root=$(pwd)
build=${GREY_GPU_BUILD_DIR:-build/gpu}
out=${OUT:-$build/out}
logs=$build/logs  # build logs stay in the build tree; $out gets what a reader needs
mkdir -p "$out" "$logs"
declare -a summary
status=0
steps=${GREY_GPU_STEPS:-conformance,quant,kv,codec,cli,mapping,wheel,memcheck,racecheck,detect,bench,grid-bench,quant-bench,stream-bench,startup,model-throughput,admit-bench,kv-bench,kv-sdpa,layer-stream}
want() { [[ ",$steps," == *",$1,"* ]]; }
# run_bench NAME FILE DETAIL COMMAND...: runs a benchmark, its table on the screen and in $out/FILE.txt, its
# errors in $logs/FILE.err; records NAME as INFO (DETAIL follows the device), or FAIL with the errors' end.
run_bench() {
    local name=$1 file=$2 detail=$3
    shift 3
    if PYTHONUNBUFFERED=1 "$@" 2>"$logs/$file.err" | tee "$out/$file.txt"; then
        record "$name" INFO "device: $device$detail; table above and in $out/$file.txt"
    else
        tail -20 "$logs/$file.err"
        record "$name" FAIL "$(tail -c 300 "$logs/$file.err")"
    fi
}

record() {  # record NAME RESULT [DETAIL]
    summary+=("$(printf '%-28s %-6s %s' "$1" "$2" "${3:-}")")
    [ "$2" = PASS ] || [ "$2" = INFO ] || status=1
}

echo "== GPU"
if ! command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi not found: this script needs a machine with an NVIDIA GPU and driver"
    exit 2
fi
nvidia-smi --query-gpu=index,name,driver_version,memory.total,pci.bus_id --format=csv
device=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

echo "== build ($build)"
prefix=${GREY_DEPS_PREFIX:-}
[ -z "$prefix" ] && [ -d .deps/usr ] && prefix=$root/.deps/usr
cmake_args=(-G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGREY_WITH_CUDA=ON -DGREY_BUILD_TESTS=OFF
            -DGREY_BUILD_GPU_TESTS=ON -DGREY_BUILD_BENCH=ON -DGREY_CUDA_EXTRA_FLAGS=-lineinfo)
if [ -n "$prefix" ]; then  # tests/gpu/fetch-deps.sh unpacks there what the machine lacks
    cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix")
    export PKG_CONFIG_PATH="$prefix/lib/x86_64-linux-gnu/pkgconfig:$prefix/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export LD_LIBRARY_PATH="$prefix/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if cmake "${cmake_args[@]}" >"$logs/configure.log" 2>&1 && cmake --build "$build" -j "$(nproc)" ${GREY_GPU_TARGETS:+--target $GREY_GPU_TARGETS} >"$logs/build.log" 2>&1; then
    record build PASS "release build with nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
else
    tail -n 40 "$logs/configure.log" "$logs/build.log"
    record build FAIL "see $logs/build.log"
    printf '%s\n' "== summary" "${summary[@]}"
    exit 1
fi
plugin_dir=$build/lib/grey

if want conformance; then
echo "== conformance (CUDA vs host reference, fresh random inputs)"
"$build/bin/grey_gpu_conformance" --backend-dir "$plugin_dir" | tee "$out/conformance.log"
if [ "${PIPESTATUS[0]}" -eq 0 ]; then record conformance PASS "$(tail -1 "$out/conformance.log")"
else record conformance FAIL "$(tail -1 "$out/conformance.log")"; grep FAIL "$out/conformance.log" | head -20; fi
fi

if want quant; then
echo "== quantization conformance (CUDA kernels vs host reference: random inputs${GREY_GPU_MODEL:+ and $GREY_GPU_MODEL})"
model_args=()
[ -n "${GREY_GPU_MODEL:-}" ] && model_args=(--model "$GREY_GPU_MODEL")
"$build/bin/grey_gpu_quant_conformance" --backend-dir "$plugin_dir" "${model_args[@]}" >"$out/quant_conformance.log" 2>&1
rc=$?
grep -E "^(INFO|FAIL)|last error" "$out/quant_conformance.log" | head -40
tail -1 "$out/quant_conformance.log"
if [ $rc -eq 0 ]; then record quant-conformance PASS "$(tail -1 "$out/quant_conformance.log")"
else record quant-conformance FAIL "$(tail -1 "$out/quant_conformance.log")"; fi
fi

if want cli && [ -n "${GREY_GPU_MODEL:-}" ]; then
cli_failures=0
cli_formats=(int8 int8-token int4-g32 int4-g128 int4-sym-g128 fp8-e4m3 nf4 q8_0 q4_0 q4_1)
cli_models=(${GREY_GPU_CLI_MODELS:-$GREY_GPU_MODEL})
for model in "${cli_models[@]}"; do
echo "== greyctl quantize --backend cuda against --backend host on $model (same file; same report within the summation bound)"
tag=$(basename "$model" .safetensors)
for format in "${cli_formats[@]}"; do
    for backend in host cuda; do
        "$build/bin/greyctl" --backend-dir "$plugin_dir" quantize --input "$model" --format "$format" \
            --backend "$backend" --json --force --output "$logs/quantized_${tag}_${format}_$backend.gguf" \
            >"$logs/quantize_${tag}_${format}_$backend.json" 2>"$logs/quantize_${tag}_${format}_$backend.err" || cli_failures=$((cli_failures + 1))
    done
    # The written models must be identical; the reports equal, but for the last bits of the error sums,
    # which the GPU measures on the device in another order (compare_quantize_reports.py says how far).
    if cmp -s "$logs/quantized_${tag}_${format}_host.gguf" "$logs/quantized_${tag}_${format}_cuda.gguf" &&
       python3 tests/gpu/compare_quantize_reports.py "$logs/quantize_${tag}_${format}_host.json" "$logs/quantize_${tag}_${format}_cuda.json" \
           >"$logs/quantize_${tag}_${format}_compare.txt"; then
        echo "same: $tag $format"
    else
        echo "DIFFERENT: $tag $format"; head -c 300 "$logs/quantize_${tag}_${format}_compare.txt" "$logs/quantize_${tag}_${format}_cuda.err"
        cli_failures=$((cli_failures + 1))
    fi
done
done
if [ $cli_failures -eq 0 ]; then record greyctl-quantize-cuda PASS "${#cli_models[@]} models x ${#cli_formats[@]} formats: identical files, reports within the summation bound"
else record greyctl-quantize-cuda FAIL "$cli_failures differences or failures"; fi
fi

if want mapping; then
echo "== grey_buffer_map: the address is the buffer's device memory, on the named CUDA ordinal"
python3 tests/gpu/check_mapping.py "$build/lib/libgrey.so" "$plugin_dir" | tee "$out/mapping.log"
if [ "${PIPESTATUS[0]}" -eq 0 ]; then record buffer-mapping PASS "$(tail -1 "$out/mapping.log")"
else record buffer-mapping FAIL "$(tail -1 "$out/mapping.log")"; grep FAIL "$out/mapping.log" | head -20; fi
fi

# sanitize TOOL PROGRAM NAME: runs PROGRAM --quick under compute-sanitizer's TOOL and records NAME.
sanitize() {
    local tool=$1 program=$2 name=$3
    local log="$out/${tool}_$program.log" rc summary_line
    compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 20 \
        "$build/bin/$program" --quick --backend-dir "$plugin_dir" >"$log" 2>&1
    rc=$?
    tail -3 "$log"
    summary_line=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1)
    if [ $rc -eq 0 ]; then record "$name" PASS "${summary_line:-no summary line}"
    else record "$name" FAIL "exit $rc; ${summary_line:-see $log}"; fi
}

if want kv; then
echo "== KV cache conformance (CUDA vs host reference: gathered bytes, attention)"
"$build/bin/grey_gpu_kv_conformance" --backend-dir "$plugin_dir" >"$out/kv_conformance.log" 2>&1
rc=$?
grep -E "^(INFO|FAIL)|last error" "$out/kv_conformance.log" | head -40
tail -1 "$out/kv_conformance.log"
if [ $rc -eq 0 ]; then record kv-conformance PASS "$(tail -1 "$out/kv_conformance.log")"
else record kv-conformance FAIL "$(tail -1 "$out/kv_conformance.log")"; fi
fi

if want codec; then
echo "== codec conformance (CUDA container decoder and block hash vs the host; float codec speed on real weights)"
"$build/bin/grey_gpu_codec_conformance" --backend-dir "$plugin_dir" ${GREY_GPU_MODEL:+--model "$GREY_GPU_MODEL"} >"$out/codec_conformance.log" 2>&1
rc=$?
grep -E "^FAIL|last error" "$out/codec_conformance.log" | head -40
sed -n '/^real weights/,$p' "$out/codec_conformance.log"
if [ $rc -eq 0 ]; then record codec-conformance PASS "$(tail -1 "$out/codec_conformance.log")"
else record codec-conformance FAIL "$(tail -1 "$out/codec_conformance.log")"; fi
fi

if want codec-profile; then
echo "== profile (ncu: the first BF16 decode of the codec speed table on real weights)"
if ! command -v ncu >/dev/null; then record codec-profile FAIL "ncu not found"
elif [ -z "${GREY_GPU_MODEL:-}" ]; then record codec-profile FAIL "needs GREY_GPU_MODEL"
elif ncu --kernel-name grey_codec_decode --launch-count 1 --set full --import-source yes -f -o "$out/codec_decode" \
        "$build/bin/grey_gpu_codec_conformance" --bench-only --backend-dir "$plugin_dir" --model "$GREY_GPU_MODEL" >"$logs/ncu.log" 2>&1; then
    ncu --import "$out/codec_decode.ncu-rep" --page details >"$out/codec_profile.txt" 2>&1
    ncu --import "$out/codec_decode.ncu-rep" --page source --csv --print-source sass >"$out/codec_profile_sass.csv" 2>&1
    grep -E "Duration|Registers|Achieved Occupancy|Theoretical Occupancy|Warp Cycles Per Issued|Issue Slots Busy|Executed Ipc|Memory Throughput|DRAM Throughput|Compute \(SM\)|Stall|Block Limit" "$out/codec_profile.txt" | head -40
    record codec-profile INFO "device: $device; details in $out/codec_profile.txt, per-instruction in $out/codec_profile_sass.csv"
else
    tail -20 "$logs/ncu.log"
    record codec-profile FAIL "$(tail -c 300 "$logs/ncu.log")"
fi
fi

if want memcheck; then
echo "== compute-sanitizer memcheck (kernels: fill, copy, checksum, quantization, KV cache, codecs)"
if command -v compute-sanitizer >/dev/null; then
    for program in ${GREY_GPU_SANITIZE:-grey_gpu_conformance grey_gpu_quant_conformance grey_gpu_kv_conformance grey_gpu_codec_conformance}; do
        sanitize memcheck "$program" "memcheck $program"
    done
else
    record compute-sanitizer FAIL "compute-sanitizer not found"
fi
fi

if want racecheck; then
echo "== compute-sanitizer racecheck (quantization kernels: shared-memory staging; KV attention; codec tables)"
if command -v compute-sanitizer >/dev/null; then
    for program in ${GREY_GPU_SANITIZE:-grey_gpu_quant_conformance grey_gpu_kv_conformance grey_gpu_codec_conformance}; do
        sanitize racecheck "$program" "racecheck $program"
    done
else record compute-sanitizer FAIL "compute-sanitizer not found"; fi
fi

if want detect; then
echo "== greyctl detect vs nvidia-smi"
if [ -x "$build/bin/greyctl" ]; then
    "$build/bin/greyctl" --backend-dir "$plugin_dir" detect --json --telemetry --backend cuda >"$out/detect.json" 2>"$logs/detect.err"
    nvidia-smi --query-gpu="$(python3 tests/gpu/compare_detect.py --query)" --format=csv,noheader,nounits >"$out/smi.csv"
    nvidia-smi -q -d TEMPERATURE >"$out/smi_temperature.txt"
    sed -n '/Temperature/,$p' "$out/smi_temperature.txt" | head -14
    python3 tests/gpu/compare_detect.py "$out/detect.json" "$out/smi.csv" "$out/smi_temperature.txt" | tee "$out/compare.log"
    if [ "${PIPESTATUS[0]}" -eq 0 ]; then record detect-vs-nvidia-smi PASS "$(tail -1 "$out/compare.log")"
    else record detect-vs-nvidia-smi FAIL "$(tail -1 "$out/compare.log"); $(head -c 300 "$logs/detect.err")"; fi
    "$build/bin/greyctl" --backend-dir "$plugin_dir" detect --debug --all >"$logs/detect_debug.txt" 2>&1 || true
else
    record detect-vs-nvidia-smi FAIL "greyctl was not built (CLI11/nlohmann_json missing?)"
fi

fi

if want bench; then
echo "== benchmark (memory pool)"
if "$build/bin/grey_bench_cuda_pool" >"$out/bench.md" 2>"$logs/bench.err"; then
    cat "$out/bench.md"
    record bench INFO "device: $device; table above and in $out/bench.md"
else
    cat "$logs/bench.err"
    record bench FAIL "$(head -c 300 "$logs/bench.err")"
fi

fi

if want grid-bench; then
echo "== benchmark (launch shapes of a streaming kernel vs cudaMemcpy)"
if "$build/bin/grey_bench_cuda_grid" >"$out/grid_bench.txt" 2>"$logs/grid_bench.err"; then
    cat "$out/grid_bench.txt"
    record grid-bench INFO "device: $device; table above and in $out/grid_bench.txt"
else
    cat "$logs/grid_bench.err"
    record grid-bench FAIL "$(head -c 300 "$logs/grid_bench.err")"
fi
fi

if want quant-bench; then
echo "== benchmark (quantization: libgrey vs cudaMemcpy, PyTorch eager and torch.compile, bitsandbytes)"
# shellcheck disable=SC2086
run_bench quant-bench quant_bench "" python3 bench/quant_gpu_bench.py --lib "$build/lib/libgrey.so" --backend-dir "$plugin_dir" \
    --device-time --json "$out/quant_bench.json" ${GREY_GPU_BENCH_ARGS:-}
fi

if want stream-bench; then
echo "== benchmark (streams: host enqueue cost, 1000 small quantizations vs torch.compile, copy/kernel overlap)"
enqueue_bench=()
[ -x "$build/bin/grey_stream_enqueue_bench" ] && enqueue_bench=(--enqueue-bench "$build/bin/grey_stream_enqueue_bench")
run_bench stream-bench stream_bench "" python3 bench/stream_gpu_bench.py --lib "$build/lib/libgrey.so" --backend-dir "$plugin_dir" \
    "${enqueue_bench[@]}" --json "$out/stream_bench.json"
fi

if want wheel; then
echo "== the Python wheel (pip wheel ./bindings/python, the CUDA plugin inside) in PyTorch's Python"
# swig and scikit-build-core come as wheels in .deps/wheels (tests/gpu/fetch-deps.sh); DLPack's header in .deps/usr.
# No venv: the machine's python3 is itself a venv (the one holding PyTorch and numpy), and a venv made from it
# would see neither. The build tools and the wheel go into folders of their own on PYTHONPATH instead.
# Absolute: pip runs CMake in another directory, where a relative PATH entry would find no swig. The wheel
# takes the CUDA fatbins this script's build made (GREY_DEVICE_CODE_FROM) rather than compiling them again.
tools=$(realpath -m "$build/wheel-tools") site=$(realpath -m "$build/wheel-site")
rm -rf "$site" "$build/wheelhouse"
if python3 -m pip install -q --no-index --find-links .deps/wheels --target "$tools" --upgrade swig scikit-build-core >"$logs/wheel.log" 2>&1 &&
   PATH="$tools/bin:$PATH" PYTHONPATH="$tools" python3 -m pip wheel -q --no-index --find-links .deps/wheels --no-build-isolation --no-deps \
       -w "$build/wheelhouse" -C build-dir="$build/wheel-build" -C cmake.define.GREY_WITH_CUDA=ON \
       -C cmake.define.GREY_DEVICE_CODE_FROM="$(realpath "$build")" \
       ${prefix:+-C cmake.define.CMAKE_PREFIX_PATH="$prefix"} ./bindings/python >>"$logs/wheel.log" 2>&1 &&
   python3 -m pip install -q --no-index --no-deps --target "$site" "$build"/wheelhouse/grey-*.whl >>"$logs/wheel.log" 2>&1; then
    (cd "$build" && PYTHONPATH="$site" python3 "$root/tests/gpu/check_wheel.py") | tee "$out/wheel.log"
    if [ "${PIPESTATUS[0]}" -eq 0 ]; then record wheel PASS "$(tail -1 "$out/wheel.log")"
    else record wheel FAIL "$(grep FAIL "$out/wheel.log" | head -3)"; fi
else
    tail -20 "$logs/wheel.log"
    record wheel FAIL "building or installing the wheel failed (see above)"
fi
fi

if want startup; then
echo "== CUDA start-up, step by step: libgrey's, then the driver's own floor for the same steps (fresh processes, twice)"
run_bench startup startup "" bash -c 'for i in 1 2; do python3 bench/cuda_startup.py "$1" "$2" && python3 bench/cuda_startup.py --driver || exit; echo; done' \
    startup "$build/lib/libgrey.so" "$plugin_dir"
fi

if want model-throughput && [ -n "${GREY_GPU_MODEL:-}" ]; then
echo "== whole-model quantization (greyctl, >= 1 GB of real weights) beside the sequential file read speed"
baseline=()
if [ -n "${GREY_GPU_BASELINE_REV:-}" ]; then
    # The earlier revision's greyctl and libgrey only (no kernels to build): the backend plugin is this tree's.
    base_src=$build/baseline-src
    rm -rf "$base_src" && mkdir -p "$base_src"
    base_args=(-G Ninja -S "$base_src" -B "$build/baseline" -DCMAKE_BUILD_TYPE=Release -DGREY_WITH_CUDA=OFF -DGREY_BUILD_TESTS=OFF)
    [ -n "$prefix" ] && base_args+=(-DCMAKE_PREFIX_PATH="$prefix")
    if git archive "$GREY_GPU_BASELINE_REV" | tar -x -C "$base_src" && cmake "${base_args[@]}" >"$logs/baseline-configure.log" 2>&1 &&
        cmake --build "$build/baseline" -j "$(nproc)" --target greyctl >"$logs/baseline-build.log" 2>&1; then
        baseline=(--baseline "$build/baseline/bin/greyctl")
        record baseline-build PASS "greyctl of $(git rev-parse --short "$GREY_GPU_BASELINE_REV")"
    else
        tail -n 20 "$logs/baseline-configure.log" "$logs/baseline-build.log" 2>/dev/null
        record baseline-build FAIL "see $logs/baseline-build.log"
    fi
fi
# shellcheck disable=SC2086
run_bench model-throughput model_throughput "" python3 bench/model_quant_throughput.py --greyctl "$build/bin/greyctl" \
    --backend-dir "$plugin_dir" --source "$GREY_GPU_MODEL" --workdir "$build/throughput" "${baseline[@]}" ${GREY_GPU_THROUGHPUT_ARGS:-}
fi

if want admit-bench; then
echo "== benchmark (the governor's admission call, 1 and 16 threads)"
if [ ! -x "$build/bin/govern_admit_bench" ] && [ ! -x "$build/bench/govern_admit_bench" ]; then
    record admit-bench FAIL "govern_admit_bench was not built (Google Benchmark missing?)"
else
    admit=$build/bin/govern_admit_bench; [ -x "$admit" ] || admit=$build/bench/govern_admit_bench
    run_bench admit-bench admit_bench " ($(nproc) CPUs)" "$admit" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
fi
fi

if want kv-bench; then
echo "== benchmark (KV cache decode attention: libgrey's formats vs PyTorch SDPA and FlashInfer on bf16)"
. "$root/tests/gpu/flashinfer-env.sh"  # FlashInfer beside SDPA where .deps/flashinfer travelled
run_bench kv-bench kv_bench "" ${flashinfer_env[@]+"${flashinfer_env[@]}"} python3 bench/kv_gpu_bench.py \
    --lib "$build/lib/libgrey.so" --backend-dir "$plugin_dir" --json "$out/kv_bench.json"
fi

if want codec-nvcomp; then
echo "== benchmark (the float codec's device decode vs nvCOMP on the same real BF16 weights)"
nvcomp_model=${GREY_GPU_CODEC_MODEL:-.deps/nvcomp/minilm-f16-12mib.safetensors}
activations=()  # real ReLU activations for the bitmask rows (tests/gpu/fetch-deps.sh nvcomp writes them)
[ -f .deps/nvcomp/silero-relu-activations.safetensors ] && activations=(--activations .deps/nvcomp/silero-relu-activations.safetensors)
if python3 -m pip install -q --no-index --no-deps --target "$build/nvcomp" .deps/nvcomp/*.whl >"$logs/nvcomp.log" 2>&1; then
    run_bench codec-nvcomp codec_nvcomp "" env PYTHONPATH="$build/nvcomp${PYTHONPATH:+:$PYTHONPATH}" \
        python3 bench/codec_gpu_bench.py --model "$nvcomp_model" --conformance "$build/bin/grey_gpu_codec_conformance" \
        --backend-dir "$plugin_dir" "${activations[@]}"
else
    record codec-nvcomp FAIL "the nvCOMP wheels did not install (tests/gpu/fetch-deps.sh puts them in .deps/nvcomp): $(tail -c 300 "$logs/nvcomp.log")"
fi
fi

if want kv-sdpa; then
echo "== benchmark (greyctl kv-bench on cuda, every format with and without --hadamard-k, beside PyTorch SDPA on bf16)"
run_bench kv-sdpa kv_bench_sdpa "" python3 bench/kv_bench_sdpa.py --greyctl "$build/bin/greyctl" --backend-dir "$plugin_dir" \
    --backend cuda --hadamard --json "$out/kv_bench_sdpa.json"
fi

if want layer-stream && [ -n "${GREY_GPU_MODEL:-}" ]; then
echo "== benchmark (a model 1.4x the working-set cache streamed layer by layer, device and host tiers, beside it resident; map latency)"
# shellcheck disable=SC2086
run_bench layer-stream layer_stream "" python3 bench/layer_stream_gpu_bench.py --lib "$build/lib/libgrey.so" --backend-dir "$plugin_dir" \
    --source "$GREY_GPU_MODEL" --tier both --json "$out/layer_stream.json" ${GREY_GPU_LAYER_STREAM_ARGS:-}
fi

echo
echo "== summary ($device)"
printf '%s\n' "${summary[@]}"
exit $status
