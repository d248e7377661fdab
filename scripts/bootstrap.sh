#!/usr/bin/env bash
# Installs what building and testing libgrey needs on Debian (or Ubuntu), as root. Prints what it
# installs, and does nothing when everything is already there. Safe to run repeatedly.
set -euo pipefail

# Debian packages. Add to this list (never install by hand): CI starts from a fresh machine.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3 python3-pip python3-venv python3-dev
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev libzstd-dev liblz4-dev libxxhash-dev
  # greyctl quantize --skip: a regular expression engine without backtracking or recursion
  libre2-dev
  clang libclang-rt-14-dev
  # language bindings (bindings/, samples/): SWIG for Python and Go, Go itself, bindgen for Rust
  swig golang-go bindgen libclang-dev
  # DLPack's header, for the Python binding's Buffer.__dlpack__
  libdlpack-dev
  # greyd: its HTTP server (GNU libmicrohttpd), and a real Prometheus that scrapes it in a test
  libmicrohttpd-dev prometheus
  # the Level Zero backend: ze_api.h / zes_api.h for types and constants (the loader is dlopen'ed);
  # llvm-spirv turns its OpenCL C kernels into SPIR-V, spirv-val checks them, and the OpenCL ICD loader
  # runs them on the CPU in a test (the CPU runtime itself comes from PyPI: requirements-test.txt)
  libze-dev llvm-spirv-14 spirv-tools ocl-icd-opencl-dev opencl-c-headers
  # the HIP backend's AMD code objects (gfx90a, gfx942, gfx1100): clang 19 compiles kernels/cuda as HIP
  # (gfx942 needs 19; Debian 12's clang 14 stops at gfx940) and lld links them; no ROCm package is needed.
  # llvm-14's llvm-readelf reads their kernels' metadata in a test
  clang-19 lld-19 llvm-14
)
# Rust: Debian's cargo and rustc, unless a toolchain is already there (rustup's, in ~/.cargo/bin).
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
  PACKAGES+=(cargo rustc)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: need root to install packages (run as root, or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "bootstrap: all Debian packages present"
fi

# Python packages (tests and tools), if a later part of the project lists any. Debian marks its
# interpreter externally managed (PEP 668); these are test tools for this machine, so allow them.
export PIP_BREAK_SYSTEM_PACKAGES=1
if [ -f scripts/requirements-test.txt ]; then
  # No -q on the dry run: quiet mode suppresses the "Would install" line this looks for.
  if ! python3 -m pip install --disable-pip-version-check -r scripts/requirements-test.txt --dry-run 2>/dev/null | grep -q "Would install"; then
    echo "bootstrap: all Python packages present"
  else
    echo "bootstrap: installing Python packages from scripts/requirements-test.txt"
    python3 -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
  fi
fi
