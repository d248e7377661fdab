#!/usr/bin/env bash
# The main job on a real default input: detect every device on this machine, then validate the
# configuration users know (shared/reference-config.yaml when present, else the balanced profile).
set -euo pipefail
cd "$(dirname "$0")/.."
greyctl=build/default/bin/greyctl

echo "== greyctl detect"
"$greyctl" detect --all
echo
config=../shared/reference-config.yaml
if [ -f "$config" ]; then
  echo "== greyctl config validate $config"
  "$greyctl" config validate "$config"
else
  echo "== greyctl config show (balanced profile)"
  "$greyctl" config show
fi
