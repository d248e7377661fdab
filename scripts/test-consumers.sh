#!/usr/bin/env bash
# Builds libgrey (release preset), installs it into a staging prefix, then builds and runs the two
# consumer samples: one through find_package(grey) and pkg-config, one vendoring the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
stage=$PWD/build/stage
rm -rf "$stage" build/consumer build/vendored

echo "== install libgrey into $stage"
# The consumers need libgrey itself; the CUDA plugin (nvcc) is built and tested by the presets above.
cmake --preset release -DCMAKE_INSTALL_PREFIX="$stage" -DGREY_WITH_CUDA=OFF >/dev/null
cmake --build --preset release -j "$jobs"
cmake --install build/release >/dev/null

echo "== samples/cmake-consumer (find_package)"
cmake -S samples/cmake-consumer -B build/consumer -G Ninja -DCMAKE_PREFIX_PATH="$stage" >/dev/null
cmake --build build/consumer -j "$jobs"
LD_LIBRARY_PATH="$stage/lib" build/consumer/list_devices | grep -q '^0 host ' 
build/consumer/list_devices_static | grep -q '^0 host '
echo "ok   find_package(grey): shared and static"

echo "== pkg-config"
PKG_CONFIG_PATH="$stage/lib/pkgconfig" cc samples/cmake-consumer/list_devices.c -o build/consumer/list_devices_pc \
  $(PKG_CONFIG_PATH="$stage/lib/pkgconfig" pkg-config --cflags --libs grey) -Wl,-rpath,"$stage/lib"
build/consumer/list_devices_pc | grep -q '^0 host '
echo "ok   pkg-config grey"

echo "== samples/cmake-vendored (add_subdirectory)"
cmake -S samples/cmake-vendored -B build/vendored -G Ninja >/dev/null
cmake --build build/vendored -j "$jobs"
build/vendored/list_devices | grep -q '^0 host '
echo "ok   add_subdirectory(libgrey)"

test -f "$stage/include/grey.h" && test -f "$stage/include/grey_backend.h" && test -f "$stage/lib/pkgconfig/grey.pc" \
  && cmp -s config/grey.yaml "$stage/share/grey/grey.yaml"
echo "3 passed, 0 failed"
