#!/usr/bin/env python3
"""Runs the samples of one kind, in every language, and checks what they print.

    python3 tests/bindings/check_samples.py detect GREYCTL NAME=COMMAND...
    python3 tests/bindings/check_samples.py quantize GREYCTL NAME=COMMAND...
    python3 tests/bindings/check_samples.py audit GREYCTL NAME=COMMAND...
    python3 tests/bindings/check_samples.py async GREYCTL NAME=COMMAND...
    python3 tests/bindings/check_samples.py kv GREYCTL NAME=COMMAND...

detect:   each prints "device I: NAME, memory BYTES bytes, UNITS compute units" per device ("-" for an
          unavailable value); the lines must be those built from `greyctl detect --json`.
quantize: each prints "input: NAME [ROWS, COLS] DTYPE of MODEL" (or "input: synthetic ..." for the
          stand-in) and one "quantize FORMAT: ..." line per format. Every language must print the same
          lines, byte for byte (the host kernels are deterministic); for a model's tensor, each line
          must also be what `greyctl quantize --json` reports for that tensor.
audit:    each is run with a fresh directory as its last argument and prints "appended record N" and
          "verify: cause C, records N, head H, root R, log_id I". Every language must report an intact
          log of 3 records, and `greyctl audit verify --json` on the files it left must report the same
          records, head, root and log id. (Heads differ between languages: keys are random and records
          carry their time.)
async:    each uploads the synthetic tensor on one stream, quantizes it to q4_0 on another after an
          event, and checks the bytes against the synchronous call itself; it prints "async input: ...",
          "async q4_0: ... checksum C, equal to the synchronous call" and "async nan: refused at
          synchronize with the synchronous call's message". Every language must print the same lines,
          byte for byte (the checksum included).
kv:       each creates a KV cache on the host, appends a prompt and decode steps, forks and truncates,
          attends, gathers and prints "kv cache: ...", "kv append: ...", "kv fork: ...", "kv attend: ...",
          "kv gather: ...", "kv stats: ..." and "kv free: ..." (figures fixed by the shapes, and one block
          quantized). Every language must print the same lines, byte for byte (the host reference is
          deterministic).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path


def run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, capture_output=True, text=True)


def greyctl_json(greyctl: str, *args: str) -> dict:
    out = subprocess.run([greyctl, "--no-env", *args, "--json"], capture_output=True, text=True)
    if out.returncode not in (0, 1) or not out.stdout.strip():  # audit verify exits 1 when tampered
        raise RuntimeError(f"greyctl {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


class Checker:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.passed = self.failed = 0

    def ok(self, name: str, what: str) -> None:
        self.passed += 1
        print(f"samples: {self.kind} {name} ok ({what})")

    def fail(self, name: str, command: str, run_: subprocess.CompletedProcess[str] | None, why: str) -> None:
        self.failed += 1
        print(f"samples: {self.kind} {name} FAILED ({shlex.quote(command)}): {why}", file=sys.stderr)
        if run_ is not None:
            print(f"  exit {run_.returncode}\n  stdout: {run_.stdout.strip()[-2000:]}\n  stderr: {run_.stderr.strip()[-2000:]}",
                  file=sys.stderr)

    def done(self) -> int:
        print(f"samples: {self.kind}: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def check_detect(greyctl: str, specs: list[tuple[str, str]]) -> int:
    want = []
    for d in greyctl_json(greyctl, "detect")["devices"]:
        def dash(key: str) -> str:
            return "-" if d[key] is None else str(d[key])
        want.append(f"device {d['index']}: {dash('name')}, memory {dash('memory_total_bytes')} bytes, "
                    f"{dash('compute_units')} compute units")
    checker = Checker("detect")
    for name, command in specs:
        r = run(command)
        got = [line for line in r.stdout.splitlines() if re.match(r"device \d+: ", line)]
        if r.returncode != 0 or got != want:
            checker.fail(name, command, r, f"want {want}, got {got}")
        else:
            checker.ok(name, f"{len(got)} device(s)")
    return checker.done()


INPUT = re.compile(r"^input: (\S+) \[\d+, \d+\] \S+ of (.+)$")  # a model's tensor, not the synthetic one


def quantize_line(name: str, row: dict) -> str:
    return (f"quantize {name}: bits_per_weight {row['bits_per_weight']:.4f} rel_rmse {row['rel_rmse']:.8f} "
            f"sqnr_db {row['sqnr_db']:.4f} max_abs_err {row['max_abs_err']:.8f}")


def check_quantize(greyctl: str, specs: list[tuple[str, str]]) -> int:
    checker = Checker("quantize")
    greyctl_rows: dict[tuple[str, str], dict[str, dict]] = {}  # (model, format) -> tensor name -> row

    def greyctl_line(model: str, fmt: str, tensor: str) -> str:
        if (model, fmt) not in greyctl_rows:
            # --no-keep-critical: the samples may pick an embedding, which the default policy keeps.
            report = greyctl_json(greyctl, "quantize", "--input", model, "--format", fmt, "--no-keep-critical")
            greyctl_rows[(model, fmt)] = {row["name"]: row for row in report["tensors"]}
        row = greyctl_rows[(model, fmt)].get(tensor)
        return quantize_line(fmt, row) if row else f"(greyctl did not quantize {tensor} in {fmt})"

    reference: tuple[str, list[str]] | None = None
    for name, command in specs:
        r = run(command)
        lines = [line for line in r.stdout.splitlines() if line.startswith(("input:", "quantize "))]
        inputs = [line for line in lines if line.startswith("input:")]
        formats = [line.split(":")[0].split()[1] for line in lines if line.startswith("quantize ")]
        problems = []
        if r.returncode != 0 or len(inputs) != 1 or not formats:
            problems.append("no report (one input line and a line per format)")
        elif len(set(formats)) != len(formats):
            problems.append(f"a format reported twice: {formats}")
        elif INPUT.match(inputs[0]):
            # A model's tensor: greyctl, another consumer of the library, must report the same figures.
            tensor, model = INPUT.match(inputs[0]).groups()
            for line, fmt in zip(lines[1:], formats):
                want = greyctl_line(model, fmt, tensor)
                if line != want:
                    problems.append(f"greyctl quantize --json says {want!r}, the sample {line!r}")
        if not problems and reference is not None and lines != reference[1]:
            diff = [f"{a!r} != {b!r}" for a, b in zip(lines, reference[1]) if a != b]
            problems.append(f"differs from {reference[0]}: {diff or 'another number of lines'}")
        if problems:
            checker.fail(name, command, r, "; ".join(problems))
            continue
        reference = reference or (name, lines)
        source = "greyctl agrees" if INPUT.match(inputs[0]) else "synthetic input, no greyctl figures"
        checker.ok(name, f"{len(formats)} formats of {inputs[0][len('input: '):]}, {source}")
    return checker.done()


VERIFY = re.compile(r"^verify: cause (\S+), records (\d+), head ([0-9a-f]{64}), root ([0-9a-f]{64}), log_id ([0-9a-f]{32})$")


def check_audit(greyctl: str, specs: list[tuple[str, str]]) -> int:
    checker = Checker("audit")
    with tempfile.TemporaryDirectory(prefix="grey-audit-samples-") as tmp:
        for name, command in specs:
            directory = Path(tmp) / name
            full = f"{command} {shlex.quote(str(directory))}"
            r = run(full)
            lines = r.stdout.splitlines()
            verdicts = [m for m in map(VERIFY.match, lines) if m]
            appended = [line for line in lines if line.startswith("appended record ")]
            if r.returncode != 0 or len(verdicts) != 1:
                checker.fail(name, full, r, "no verify line")
                continue
            cause, records, head, root, log_id = verdicts[0].groups()
            if (cause, records) != ("intact", "3") or appended != [f"appended record {i}" for i in range(3)]:
                checker.fail(name, full, r, f"cause {cause}, records {records}, appended {appended}")
                continue
            try:
                g = greyctl_json(greyctl, "audit", "verify", "--log", str(directory / "audit.log"), "--key",
                                 str(directory / "audit.key"), "--checkpoint", str(directory / "checkpoint-1"))
            except RuntimeError as e:
                checker.fail(name, full, r, str(e))
                continue
            if (g["intact"], g["records"], g["head_hash"], g["root_hash"], g["log_id"]) != (True, 3, head, root, log_id):
                checker.fail(name, full, r, f"greyctl audit verify says {g}")
                continue
            checker.ok(name, "intact, 3 records; greyctl audit verify agrees on head, root and log id")
    return checker.done()


ASYNC_LINES = (re.compile(r"^async input: synthetic \[256, 512\] F32$"),
               re.compile(r"^async q4_0: 4 quantizations of \[64, 512\] on 2 streams, \d+ bytes, checksum [0-9a-f]{16}, "
                          r"equal to the synchronous call$"),
               re.compile(r"^async nan: refused at synchronize with the synchronous call's message$"))


def check_same_lines(kind: str, patterns: tuple[re.Pattern[str], ...], what: str, specs: list[tuple[str, str]]) -> int:
    """Each sample prints the lines starting with "KIND " that `patterns` match, and all print them alike."""
    checker = Checker(kind)
    reference: tuple[str, list[str]] | None = None
    for name, command in specs:
        r = run(command)
        lines = [line for line in r.stdout.splitlines() if line.startswith(kind + " ")]
        if r.returncode != 0 or len(lines) != len(patterns) or not all(p.match(l) for p, l in zip(patterns, lines)):
            checker.fail(name, command, r, f"want the {len(patterns)} {kind} lines, got {lines}")
            continue
        if reference is not None and lines != reference[1]:
            checker.fail(name, command, r, f"differs from {reference[0]}: {lines} != {reference[1]}")
            continue
        reference = reference or (name, lines)
        checker.ok(name, what)
    return checker.done()


def check_async(greyctl: str, specs: list[tuple[str, str]]) -> int:
    del greyctl  # the samples check themselves against the synchronous calls
    return check_same_lines("async", ASYNC_LINES, "streams, an event and async q4_0 equal to the synchronous call; NaN refused at synchronize",
                            specs)


KV_LINES = (re.compile(r"^kv cache: 2 layers, 2 KV heads, head_dim 64, blocks of 16 tokens, the newest 16 in bf16, older ones int4 "
                       r"\(V groups of 32\)$"),
            re.compile(r"^kv append: sequence A holds 43 tokens \(a 40-token prompt, then 3 decode steps\)$"),
            re.compile(r"^kv fork: sequence B holds 45 tokens \(A's 43 and 2 of its own\), A truncated to 38$"),
            re.compile(r"^kv attend: layer 1, 4 query heads on 2 KV heads, batch of A and B: output sum -?\d+\.\d{6}, "
                       r"sum of squares \d+\.\d{6}$"),
            re.compile(r"^kv gather: B layer 0, 45 tokens: largest difference from what was appended K 0\.00\d{4}, V 0\.00\d{4}$"),
            re.compile(r"^kv stats: 2 sequences, 83 tokens, \d+ blocks \(1 quantized\), \d+ bytes, \d+\.\d{2} bytes per token, "
                       r"compression ratio \d+\.\d{4}$"),
            re.compile(r"^kv free: 0 sequences, \d+ full blocks kept as cached prefixes$"))


def check_kv(greyctl: str, specs: list[tuple[str, str]]) -> int:
    del greyctl  # nothing of greyctl's to compare with: the languages are compared with each other
    return check_same_lines("kv", KV_LINES, "append, fork, truncate, attend, gather and stats; the same lines as every other language", specs)


def main(argv: list[str]) -> int:
    checks = {"detect": check_detect, "quantize": check_quantize, "audit": check_audit, "async": check_async, "kv": check_kv}
    if len(argv) < 4 or argv[1] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    specs = [tuple(spec.partition("=")[::2]) for spec in argv[3:]]
    return checks[argv[1]](argv[2], specs)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
