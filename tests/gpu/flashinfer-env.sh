# shellcheck shell=bash disable=SC2034  # flashinfer_env is read by the scripts that source this file
# Sourced by the GPU scripts that run bench/kv_gpu_bench.py: sets flashinfer_env, a command prefix that
# puts FlashInfer on PYTHONPATH where tests/gpu/fetch-deps.sh flashinfer built .deps/flashinfer (and it
# travelled), with its JIT workspace (kernels it compiles when no prebuilt one fits) under /tmp rather
# than in a home folder; empty where it did not. Use it as ${flashinfer_env[@]+"${flashinfer_env[@]}"} python3 ...
flashinfer_env=()
flashinfer_site=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.deps/flashinfer
if [ -d "$flashinfer_site" ]; then
    flashinfer_env=(env PYTHONPATH="$flashinfer_site${PYTHONPATH:+:$PYTHONPATH}" FLASHINFER_WORKSPACE_BASE="${TMPDIR:-/tmp}/flashinfer-jit")
fi
unset flashinfer_site
