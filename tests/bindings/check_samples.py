#!/usr/bin/env python3
"""Runs each sample command and checks that it lists the devices `greyctl detect --json` lists.

    python3 tests/bindings/check_samples.py GREYCTL NAME=COMMAND...

Each sample prints "device I: NAME, memory BYTES bytes, UNITS compute units" per device ("-" for an
unavailable value); the expected lines are built from greyctl's JSON.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys


def expected(greyctl: str) -> list[str]:
    out = subprocess.run([greyctl, "--no-env", "detect", "--json"], check=True, capture_output=True, text=True)
    lines = []
    for d in json.loads(out.stdout)["devices"]:
        def dash(key: str) -> str:
            return "-" if d[key] is None else str(d[key])
        lines.append(f"device {d['index']}: {dash('name')}, memory {dash('memory_total_bytes')} bytes, "
                     f"{dash('compute_units')} compute units")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    want = expected(argv[1])
    passed = failed = 0
    for spec in argv[2:]:
        name, _, command = spec.partition("=")
        run = subprocess.run(command, shell=True, capture_output=True, text=True)
        got = [line for line in run.stdout.splitlines() if re.match(r"device \d+: ", line)]
        if run.returncode != 0 or got != want:
            failed += 1
            print(f"samples: {name} FAILED ({shlex.quote(command)}, exit {run.returncode})", file=sys.stderr)
            print(f"  want {want}\n  got  {got}\n  stderr: {run.stderr.strip()[-2000:]}", file=sys.stderr)
        else:
            passed += 1
            print(f"samples: {name} ok ({len(got)} device(s))")
    print(f"samples: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
