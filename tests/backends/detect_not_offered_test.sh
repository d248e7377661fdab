#!/usr/bin/env bash
# greyctl detect --debug on a machine without AMD or Intel GPUs lists the HIP and Level Zero plugins as
# skipped, "not offered on this machine", each with the reason its backend gave.
# Usage: detect_not_offered_test.sh GREYCTL
set -uo pipefail
greyctl=$1
out=$("$greyctl" detect --debug 2>&1)
status=$?
echo "$out"
if [ "$status" -ne 0 ]; then
  echo "FAIL: greyctl detect --debug exited with $status" >&2
  exit 1
fi
for backend in hip level0; do
  # The backend's line, then its reason on the next line.
  reason=$(echo "$out" | awk -v b="$backend" '$1 == b && $2 == "skipped" { getline; print; exit }')
  case "$reason" in
    *"not offered on this machine: $backend backend: "*) echo "ok: $backend:$reason" ;;
    *) echo "FAIL: $backend is not listed as skipped and not offered, with its reason (got: '$reason')" >&2; exit 1 ;;
  esac
done
