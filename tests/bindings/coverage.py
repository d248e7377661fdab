#!/usr/bin/env python3
"""Fails unless every function declared in include/grey.h is reachable from Python, Go and Rust.

    python3 tests/bindings/coverage.py --python PYTHON --rust-bindings FILE --go-archive FILE [--lib LIBGREY]

  Python: an attribute of grey.capi, imported by PYTHON (the interpreter grey is installed for).
  Go:     a function Grey_<name> defined in package libgrey/grey/capi (`go tool nm` of its archive).
  Rust:   `pub fn <name>` in grey-sys's generated bindings (target/.../out/grey_sys.rs).
  --lib:  also checks that the header parser found every grey_* symbol libgrey.so exports.

The functions are read from grey.h itself (bindings/tools/greyh.py), never listed here, so a function
another branch adds to grey.h is checked as soon as it lands.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bindings" / "tools"))
import greyh  # noqa: E402

# Deliberate exceptions: function name -> {language: why it is not reachable there}. Keep it short,
# and keep docs/bindings.md's list the same. An entry no longer needed fails the test, so the list
# cannot go stale.
EXCEPTIONS: dict[str, dict[str, str]] = {}


def python_names(python: str) -> set[str]:
    out = subprocess.run([python, "-c", "import json, grey.capi as c; print(json.dumps(dir(c)))"],
                         check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout))


def go_names(archive: Path) -> set[str]:
    out = subprocess.run(["go", "tool", "nm", str(archive)], check=True, capture_output=True, text=True)
    prefix = "libgrey/grey/capi.Grey_"
    names = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-2] == "T" and parts[-1].startswith(prefix):
            names.add("grey_" + parts[-1][len(prefix):])
    return names


def rust_names(bindings: Path) -> set[str]:
    import re
    return set(re.findall(r"pub fn (grey_\w+)\s*\(", bindings.read_text(encoding="utf-8")))


def exported(lib: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], check=True, capture_output=True, text=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.split() and line.split()[-1].startswith("grey_")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--header", type=Path, default=REPO / "include" / "grey.h")
    ap.add_argument("--python", required=True)
    ap.add_argument("--go-archive", type=Path, required=True)
    ap.add_argument("--rust-bindings", type=Path, required=True)
    ap.add_argument("--lib", type=Path)
    args = ap.parse_args()

    functions = [fn.name for fn in greyh.functions(args.header.read_text(encoding="utf-8"))]
    problems: list[str] = []
    if len(functions) < 10:
        problems.append(f"only {len(functions)} functions parsed from {args.header}: the parser is broken")
    if args.lib is not None:
        missed = exported(args.lib) - set(functions)
        if missed:
            problems.append(f"libgrey exports functions the header parser did not find: {sorted(missed)}")

    reachable = {
        "python": python_names(args.python),
        "go": go_names(args.go_archive),
        "rust": rust_names(args.rust_bindings),
    }
    for fn in functions:
        for language, names in reachable.items():
            excused = EXCEPTIONS.get(fn, {}).get(language)
            if fn in names and excused:
                problems.append(f"{fn} is reachable from {language} now: remove its exception")
            elif fn not in names and not excused:
                problems.append(f"{fn} is not reachable from {language}")
    for fn in EXCEPTIONS:
        if fn not in functions:
            problems.append(f"exception for {fn}, which grey.h no longer declares")

    for p in problems:
        print(f"coverage: {p}", file=sys.stderr)
    checked = len(functions) * len(reachable)
    failed = len(problems)
    print(f"coverage: {len(functions)} grey.h functions x {len(reachable)} languages")
    print(f"coverage: {checked - failed} passed, {failed} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
