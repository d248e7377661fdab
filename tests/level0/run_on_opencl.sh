#!/usr/bin/env bash
# Runs a test program against Intel's OpenCL CPU runtime from PyPI (intel-opencl-rt): writes an ICD
# file naming the wheel's libintelocl.so (the wheel's own .icd holds a placeholder path) and points the
# ICD loader at it. Usage: run_on_opencl.sh PROGRAM [ARGS...]
set -euo pipefail
library=$(python3 - <<'PY'
import importlib.metadata as metadata
try:
    dist = metadata.distribution("intel-opencl-rt")
except metadata.PackageNotFoundError:
    raise SystemExit("")
for f in dist.files or []:
    if str(f).endswith("libintelocl.so"):
        print(dist.locate_file(f).resolve())
        break
PY
)
if [ -z "$library" ] || [ ! -f "$library" ]; then
  echo "run_on_opencl.sh: intel-opencl-rt is not installed (scripts/bootstrap.sh installs it from scripts/requirements-test.txt)" >&2
  exit 1
fi
vendors=$(mktemp -d)
trap 'rm -rf "$vendors"' EXIT
echo "$library" > "$vendors/intel-cpu.icd"
export OCL_ICD_VENDORS="$vendors"
exec "$@"
