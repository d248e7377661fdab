#!/usr/bin/env bash
# Several versions of the KV kernels side by side in one GPU call. KV_VARIANTS lists them as NAME=SOURCE:
# SOURCE is a source tree (this one is ".") or a patch (`git diff` output) applied to a copy of this tree,
# so that three or four variants travel as a few kilobytes. Every variant is built by tests/gpu/kv-ab.sh's
# rule into build/kv-NAME, all at once; each build is checked against the host reference (the KV
# conformance program; with KV_VARIANTS_SANITIZE=1 also its --quick cases under compute-sanitizer's
# memcheck and racecheck, or with KV_VARIANTS_SANITIZE="NAME ..." for those variants only); then
# bench/kv_gpu_bench.py runs the builds in turn, KV_VARIANTS_ROUNDS times,
# for each ;-separated argument set of KV_VARIANTS_BENCH, SDPA (and FlashInfer where .deps/flashinfer
# travelled) in every run, and a table of medians closes the output. A variant that fails its checks is
# left out of the timings. KV_VARIANTS_STEPS picks a subset of "build check bench" (a call's ten minutes
# hold four variants' builds and checks; their timings can follow in a second call on the warm machine).
# Outputs under $OUT, packed into one archive at the end.
#
#   git diff main kv-x > .deps/kv-x.patch      # here; carry .deps/usr and the patches
#   KV_VARIANTS="main=. x=.deps/kv-x.patch" KV_VARIANTS_SANITIZE=1 \
#   KV_VARIANTS_BENCH="--formats int8,int4,int2;--formats int4 --tokens-per-block 16 --group 32" bash tests/gpu/kv-variants.sh
set -u
OUT=${OUT:-/tmp/kv-variants}
mkdir -p "$OUT"
# The device tool brings back at most eight files from $OUT: this run's logs and timings go back as one
# archive, kv-variants-<steps>.tgz (files already there, from a run before, are left as they are, but
# for an archive of the same name, which this one replaces).
before=$(mktemp) && ls -A "$OUT" >"$before"
pack() {
    local archive="kv-variants-${KV_VARIANTS_STEPS:-all}.tgz" new
    archive=${archive// /-}
    new=$(ls -A "$OUT" | grep -vxF -f "$before")
    if [ -n "$new" ]; then
        (cd "$OUT" && tar -czf "$archive.part" $new && rm -rf $new && mv "$archive.part" "$archive")
    fi
    rm -f "$before"
}
trap pack EXIT
export LD_LIBRARY_PATH=$PWD/.deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
: "${KV_VARIANTS:?KV_VARIANTS: NAME=SOURCE ... (a source tree, or a patch applied to a copy of this one)}"
read -ra items <<<"$KV_VARIANTS"
steps=" ${KV_VARIANTS_STEPS:-build check bench} "
has() { [[ $steps == *" $1 "* ]]; }
jobs=$(( $(nproc) / ${#items[@]} ))
[ "$jobs" -ge 1 ] || jobs=1

names=() pids=()
for item in "${items[@]}"; do
    name=${item%%=*} source=${item#*=}
    names+=("$name")
    pids+=("")  # no build to wait for: the build directory a call before left
    has build || continue
    if [ -f "$source" ]; then
        patch_file=$(realpath "$source")
        source=.deps/variant-$name
        rm -rf "$source" && mkdir -p "$source"
        # What the kernels' build reads: not the bindings, samples or docs (nor their build outputs).
        tar --exclude=./build --exclude=./.deps --exclude=./.git --exclude=./bindings --exclude=./samples --exclude=./docs \
            --exclude=./tests/fuzz -cf - . | tar -xf - -C "$source"
        if ! (cd "$source" && { patch -p1 <"$patch_file" || git apply "$patch_file"; }) >"$OUT/patch-$name.txt" 2>&1; then
            echo "FAIL $name: the patch does not apply"; cat "$OUT/patch-$name.txt"; exit 1
        fi
    fi
    KV_AB_SRC=$source KV_AB_DIR=build/kv-$name KV_AB_BUILD_ONLY=1 KV_AB_JOBS=$jobs OUT=$OUT \
        bash tests/gpu/kv-ab.sh >"$OUT/build-$name.txt" 2>&1 &
    pids[-1]=$!
done

. tests/gpu/kv-check.sh
sanitize=" ${KV_VARIANTS_SANITIZE:-0} "
checked=()
for i in "${!names[@]}"; do
    name=${names[$i]} dir=build/kv-${names[$i]}
    if { [ -n "${pids[$i]}" ] && ! wait "${pids[$i]}"; } || [ ! -f "$dir/lib/libgrey.so" ]; then
        echo "FAIL $name: build"; tail -20 "$OUT/build-$name.txt" 2>/dev/null; continue
    fi
    if ! has check; then
        checked+=("$name")
        continue
    fi
    echo "$name:"
    kv_conformance "$dir" "$OUT/conformance-$name.txt"
    ok=$?
    if [[ $sanitize == " 1 " || $sanitize == *" $name "* ]]; then
        for tool in memcheck racecheck; do
            compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 20 "$dir/bin/grey_gpu_kv_conformance" --quick \
                --backend-dir "$dir/lib/grey" >"$OUT/$tool-$name.txt" 2>&1
            r=$?
            echo "$name: compute-sanitizer $tool exit $r, $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/$tool-$name.txt" | tail -1)"
            [ $r -eq 0 ] || ok=$r
        done
    fi
    [ $ok -eq 0 ] && checked+=("$name")
done
[ ${#checked[@]} -gt 0 ] || exit 1
has bench || exit 0

. tests/gpu/flashinfer-env.sh
IFS=';' read -ra sets <<<"${KV_VARIANTS_BENCH:---formats int8,int4,int2}"
for s in "${!sets[@]}"; do
    for round in $(seq 1 "${KV_VARIANTS_ROUNDS:-1}"); do
        for name in "${checked[@]}"; do
            echo "-- set $s (${sets[$s]}), round $round: $name"
            ${flashinfer_env[@]+"${flashinfer_env[@]}"} python3 bench/kv_gpu_bench.py --lib "build/kv-$name/lib/libgrey.so" \
                --backend-dir "build/kv-$name/lib/grey" --repeat 30 ${sets[$s]} --json "$OUT/bench-$s-$name-$round.json" 2>/dev/null |
                grep -E "SDPA cudnn|best bf16|libgrey"
        done
    done
done
python3 - "$OUT" "${#sets[@]}" "${checked[@]}" <<'EOF'
import glob, json, statistics, sys
out, sets, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("== medians over rounds: device time, µs (× the best bf16 kernel time of the same runs); 'buf': from device buffers;"
      " 'comp': the compression kernel, GB/s of BF16 read (× the device-to-device copy of the same run)")
for s in range(sets):
    rows, best, ratios = {}, [], {}
    for name in names:
        for path in sorted(glob.glob(f"{out}/bench-{s}-{name}-*.json")):
            d = json.load(open(path))
            best.append(d["best_bf16_baseline"]["kernel_us"])
            for r in d["libgrey"]:
                rows.setdefault(r["format"], {}).setdefault(name, []).append(r["device_us"])
                # The queries and output in device buffers (grey_kv_attend_buffer), where the library has it.
                if "buffer_device_us" in r:
                    rows.setdefault(r["format"] + " buf", {}).setdefault(name, []).append(r["buffer_device_us"])
                # The compression of a fill's finished blocks, GB/s of BF16 read over the copy of the same run.
                if "compress_device_gbps_bf16_in" in r:
                    ratios.setdefault(r["format"], {}).setdefault(name, []).append(
                        (r["compress_device_gbps_bf16_in"], r["compress_device_gbps_bf16_in"] / d["memcpy"]["gbps"]))
    if not best:
        continue
    b = statistics.median(best)
    print(f"set {s}: best bf16 {b:.1f}")
    for fmt, by in rows.items():
        cells = [f"{n} {statistics.median(by[n]):.1f} ({b / statistics.median(by[n]):.2f}×)" for n in names if n in by]
        print(f"  {fmt:10} " + "   ".join(cells))
    for fmt, by in ratios.items():
        cells = [f"{n} {statistics.median(g for g, _ in by[n]):.1f} GB/s ({statistics.median(x for _, x in by[n]):.2f}× copy)" for n in names if n in by]
        print(f"  {fmt + ' comp':10} " + "   ".join(cells))
EOF
