# shellcheck shell=bash
# Sourced by tests/gpu/kv-ab.sh and kv-variants.sh: kv_conformance BUILD LOG runs BUILD's KV conformance
# program against the host reference into LOG, prints its failures (the first ten) and its summary line,
# and returns its exit status.
kv_conformance() {
    "$1/bin/grey_gpu_kv_conformance" --backend-dir "$1/lib/grey" >"$2" 2>&1
    local rc=$?
    grep -E "^FAIL" "$2" | head -10
    tail -1 "$2"
    return $rc
}
