#!/usr/bin/env bash
# Builds libgrey (release preset), installs it into a staging prefix, then builds and runs the two
# consumer samples: one through find_package(grey) and pkg-config, one vendoring the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
stage=$PWD/build/stage
rm -rf "$stage" build/consumer build/vendored

# The HIP plugin's AMD code objects come from the default build when it has them (make test builds it
# first; cmake/GreyDeviceCode.cmake refuses a stale one, naming it), instead of being compiled twice more.
device_code=""
if [ -d build/default/backends/hip/code_objects ]; then device_code="$PWD/build/default"; fi

echo "== install libgrey into $stage"
# The consumers need libgrey itself; the CUDA plugin (nvcc) is built and tested by the presets above.
cmake --preset release -DCMAKE_INSTALL_PREFIX="$stage" -DGREY_WITH_CUDA=OFF -DGREY_DEVICE_CODE_FROM="$device_code" >/dev/null
cmake --build --preset release -j "$jobs"
cmake --install build/release >/dev/null

echo "== the installed tree names no build directory and searches for plugins only beside libgrey"
# A path fixed at build time would be searched for plugins by every installed copy: whoever can create
# that directory later runs code in every program using libgrey.
build_root=$PWD/build
for f in "$stage"/lib/libgrey.so.*.*.* "$stage"/lib/libgrey.a "$stage"/bin/greyctl; do
  if grep -q -a -F "$build_root/" "$f"; then
    echo "FAIL $f holds a path into the build tree ($build_root/):" >&2
    strings -a "$f" | grep -F "$build_root/" | head -n 3 >&2
    exit 1
  fi
done
"$stage/bin/greyctl" --no-env detect --json --debug | python3 -c '
import json, sys
expected = [sys.argv[1] + "/lib/grey"]
dirs = json.load(sys.stdin)["search_path"]
if dirs != expected:
    sys.exit(f"FAIL the installed greyctl searches {dirs} for plugins; expected only {expected}")
' "$stage"
echo "ok   installed libgrey: no build path inside, plugins searched in <libdir>/grey only"

echo "== samples/cmake-consumer (find_package)"
cmake -S samples/cmake-consumer -B build/consumer -G Ninja -DCMAKE_PREFIX_PATH="$stage" >/dev/null
cmake --build build/consumer -j "$jobs"
LD_LIBRARY_PATH="$stage/lib" build/consumer/list_devices | grep -q '^0 host ' 
build/consumer/list_devices_static | grep -q '^0 host '
if ldd build/consumer/list_devices_static | grep -q libgrey; then
  echo "FAIL list_devices_static needs libgrey.so at run time" >&2; exit 1
fi
echo "ok   find_package(grey): shared, and static from a C-only project with nothing added"

echo "== pkg-config"
PKG_CONFIG_PATH="$stage/lib/pkgconfig" cc samples/cmake-consumer/list_devices.c -o build/consumer/list_devices_pc \
  $(PKG_CONFIG_PATH="$stage/lib/pkgconfig" pkg-config --cflags --libs grey) -Wl,-rpath,"$stage/lib"
build/consumer/list_devices_pc | grep -q '^0 host '
echo "ok   pkg-config grey"

echo "== pkg-config --static (a C program and libgrey.a, nothing else named)"
# A libdir holding only the archive, as a prefix with the static library alone would be.
static_only=$PWD/build/consumer/static-only
mkdir -p "$static_only" && cp "$stage/lib/libgrey.a" "$static_only/"
cc samples/cmake-consumer/list_devices.c -o build/consumer/list_devices_pc_static \
  $(PKG_CONFIG_PATH="$stage/lib/pkgconfig" pkg-config --define-variable=libdir="$static_only" --static --cflags --libs grey)
if ldd build/consumer/list_devices_pc_static | grep -q libgrey; then
  echo "FAIL list_devices_pc_static needs libgrey.so at run time" >&2; exit 1
fi
build/consumer/list_devices_pc_static | grep -q '^0 host '
echo "ok   pkg-config --static grey"

echo "== samples/cmake-vendored (add_subdirectory)"
# In unity batches (the release build above compiled every file on its own).
cmake -S samples/cmake-vendored -B build/vendored -G Ninja -DGREY_DEVICE_CODE_FROM="$device_code" -DCMAKE_UNITY_BUILD=ON >/dev/null
cmake --build build/vendored -j "$jobs"
build/vendored/list_devices | grep -q '^0 host '
echo "ok   add_subdirectory(libgrey)"

test -f "$stage/include/grey.h" && test -f "$stage/include/grey_backend.h" && test -f "$stage/lib/pkgconfig/grey.pc" \
  && cmp -s config/grey.yaml "$stage/share/grey/grey.yaml"
# build/release serves other commands too (the benchmarks' in bench/RESULTS.md): it compiles its own
# device code again from here on.
cmake --preset release -DGREY_DEVICE_CODE_FROM= >/dev/null
echo "5 passed, 0 failed"
