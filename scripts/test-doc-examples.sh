#!/usr/bin/env bash
# Runs every example marked to run in README.md and docs/ (scripts/doc_examples.py says how they are
# marked) against libgrey as a user has it: the tree scripts/test-consumers.sh installed into build/stage
# and the Python package scripts/test-bindings.sh installed into build/bindings-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stage=$root/build/stage
venv=$root/build/bindings-venv
[ -x "$stage/bin/greyctl" ] || { echo "no installed greyctl in $stage: run scripts/test-consumers.sh first" >&2; exit 1; }
export PATH="$stage/bin:${PATH}"
[ -x "$venv/bin/python3" ] && export PATH="$venv/bin:$PATH"
[ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ] && export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"  # as test-bindings.sh
export PKG_CONFIG_PATH="$stage/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# The models the examples name, fetched once here (the examples copy them from the cache).
bash scripts/fetch-model.sh >/dev/null
echo "== documentation examples (README.md, docs/*.md)"
python3 scripts/doc_examples.py README.md docs/*.md
