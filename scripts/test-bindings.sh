#!/usr/bin/env bash
# The language bindings and samples (docs/bindings.md): pytest, go test, cargo test, the coverage test
# (every grey.h function reachable from Python, Go and Rust) and the five detect samples checked
# against `greyctl detect --json`. Run by scripts/run-tests.sh after the C/C++ tests; needs the
# default preset's build (build/default). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/default

if [ ! -x "$build/bin/greyctl" ] || [ ! -e "$build/lib/libgrey.so" ]; then
  echo "test-bindings: no libgrey in $build: run 'cmake --preset default && cmake --build --preset default' first" >&2
  exit 1
fi
export GREYCTL=$build/bin/greyctl
export GREY_LIB_DIR=$build/lib
export GOPROXY=off      # no Go module from outside the repository
export GOFLAGS=
if [ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ]; then
  PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
for tool in swig go cargo bindgen; do
  command -v "$tool" >/dev/null || { echo "test-bindings: '$tool' not found (run scripts/bootstrap.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== python: pip install ./bindings/python (scikit-build-core, into build/bindings-venv)"
venv=$root/build/bindings-venv
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
  -C build-dir="$root/build/python" ./bindings/python

echo "== python: pytest"
set +e
# From inside tests/: `python -m` puts the working directory on sys.path, and bindings/python itself
# holds the uninstalled sources of package grey.
(cd bindings/python/tests && "$venv/bin/python" -m pytest -q -p no:cacheprovider .)
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test-bindings: pytest collected no tests under bindings/python/tests" >&2
  exit 1
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
fi

echo "== go: go test"
bash scripts/stamp-go-bindings.sh --check
(cd bindings/go && go test -count=1 ./...)

echo "== rust: cargo test --offline"
cargo test --offline --manifest-path bindings/rust/Cargo.toml

echo "== coverage: every grey.h function from Python, Go and Rust"
go build -o "$tmp/capi.a" ./bindings/go/capi 2>"$tmp/go-build.log" || { cat "$tmp/go-build.log" >&2; exit 1; }
rust_bindings=$(ls -t bindings/rust/target/debug/build/grey-sys-*/out/grey_sys.rs | head -n 1)
python3 tests/bindings/coverage.py --python "$venv/bin/python" --go-archive "$tmp/capi.a" \
  --rust-bindings "$rust_bindings" --lib "$build/lib/libgrey.so"

echo "== samples: build and compare with greyctl detect --json"
cc -std=c11 -Wall -Wextra -Werror -Iinclude samples/c/detect.c -L"$build/lib" -Wl,-rpath,"$build/lib" -lgrey -o "$tmp/detect-c"
c++ -std=c++20 -Wall -Wextra -Werror -Iinclude samples/cpp/detect.cpp -L"$build/lib" -Wl,-rpath,"$build/lib" -lgrey -o "$tmp/detect-cpp"
python3 tests/bindings/check_samples.py "$GREYCTL" \
  "c=$tmp/detect-c" \
  "cpp=$tmp/detect-cpp" \
  "python=$venv/bin/python samples/python/detect.py" \
  "go=go run ./samples/go/detect" \
  "rust=cd samples/rust/detect && cargo run --offline -q"
