#!/usr/bin/env python3
"""greyctl's consistency: every command answers --help; every command that prints results has --json
and its output parses; every class of failure exits with its documented code, and with --json prints
{"error": {"class", "exit_code", "status", "message"}} on standard output.

    consistency_test.py GREYCTL
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

GREYCTL = os.path.abspath(sys.argv[1])
# greyctl's exit classes (tools/greyctl/exit_codes.hpp, docs/cli.md "Exit codes").
EXIT = {"ok": 0, "check_failed": 1, "usage": 2, "bad_input": 3, "unavailable": 4, "failed": 5}
# Commands that print no results of their own, so need no --json.
NO_RESULTS = {"help"}

passed = failed = 0


def report(ok: bool, name: str, detail: str = "") -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def greyctl(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GREYCTL, "--no-env", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def subcommands(*path: str) -> list[str]:
    out = subprocess.run([GREYCTL, *path, "--help"], capture_output=True, text=True).stdout
    names, on = [], False
    for line in out.splitlines():
        if line.startswith("Subcommands:"):
            on = True
        elif on and line.strip():
            if not line.startswith(" "):
                break
            names.append(line.split()[0])
    return names


def leaf_commands() -> list[tuple[str, ...]]:
    leaves = []
    for command in subcommands():
        subs = subcommands(command)
        leaves.extend([(command, s) for s in subs] if subs else [(command,)])
    return leaves


def write_model(path: Path) -> None:
    """A small safetensors model: two 2-D F32 weights, a bias."""
    rng = random.Random(7)
    header, blobs, offset = {}, [], 0
    for name, shape in (("enc.weight", [8, 128]), ("dec.weight", [8, 128]), ("enc.bias", [8])):
        n = 1
        for d in shape:
            n *= d
        data = struct.pack(f"<{n}f", *[rng.gauss(0, 1) for _ in range(n)])
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="greyctl-consistency-"))
    leaves = leaf_commands()
    report(len(leaves) >= 20, "the command tree lists every command", f"{leaves}")

    # Every command answers --help (exit 0); every command that prints results has --json.
    for leaf in leaves:
        r = subprocess.run([GREYCTL, *leaf, "--help"], capture_output=True, text=True)
        report(r.returncode == 0 and "Usage:" in r.stdout, f"{' '.join(leaf)} --help", f"exit {r.returncode}")
        if leaf[0] not in NO_RESULTS:
            report("--json" in r.stdout, f"{' '.join(leaf)} has --json", r.stdout[-400:])

    # Files the commands below use.
    model = work / "model.safetensors"
    write_model(model)
    (work / "cfg.yaml").write_text(f"daemon:\n  proof_artifact_dir: {work}/proofs\n")
    cfg = ["--config", str(work / "cfg.yaml")]
    (work / "bad.yaml").write_text("memory:\n  compression:\n    algorithm: brotli\n")
    (work / "proofs").mkdir()
    greyctl("audit", "keygen", "--out", "key", cwd=work)
    os.replace(work / "key.writer", work / "proofs" / "audit.key.writer")
    port = str(free_port())
    run_dir = work / "run"

    # One successful run of every command with --json: (arguments, expected exit). Run in this order.
    runs: list[tuple[list[str], int]] = [
        (["detect"], 0),
        (["detect", "--query", "index,name,memory_free_bytes"], 0),
        ([*cfg, "detect", "--proof"], 0),
        (["config", "show"], 0),
        (["config", "validate", "cfg.yaml"], 0),
        (["config", "init", "-o", "init.yaml"], 0),
        (["quantize", "--input", "model.safetensors", "--format", "int4-g32", "--no-keep-critical", "--output", "q.safetensors"], 0),
        (["dequantize", "--input", "q.safetensors", "--output", "r.safetensors"], 0),
        (["simulate-ram", "--model", "model.safetensors", "--tenants", "2"], 0),
        (["kv-bench", "--query-heads", "4", "--kv-heads", "2", "--head-dim", "32", "--context", "40", "--batch", "2", "--iterations", "1"], 0),
        (["audit", "keygen", "--out", "k2"], 0),
        (["audit", "append", "--log", "proofs/audit.log", "--key", "proofs/audit.key.writer", "--type", "t", "--payload", '{"v": 1001}'], 0),
        (["audit", "checkpoint", "--log", "proofs/audit.log", "--key", "proofs/audit.key.writer", "--out", "cp"], 0),
        (["audit", "show", "--log", "proofs/audit.log"], 0),
        (["audit", "verify", "--log", "proofs/audit.log", "--key", "key", "--checkpoint", "cp"], 0),
        (["audit", "prove", "--log", "proofs/audit.log", "--record", "0", "--checkpoint", "cp", "--out", "p0"], 0),
        (["audit", "verify-proof", "--proof", "p0", "--checkpoint", "cp"], 0),
        ([*cfg, "proof", "list"], 0),
        (["rollback", "--list", "--state-dir", "state"], 0),
        (["validate-performance", "--duration", "0.1", "--cooldown", "0", "--repeats", "1", "--no-proof"], 0),
        (["daemon", "status", "--run-dir", str(run_dir)], EXIT["unavailable"]),  # not running: {"running": false}
        (["daemon", "start", "--run-dir", str(run_dir), "--port", port, "--no-audit"], 0),
        (["daemon", "status", "--run-dir", str(run_dir)], 0),
        (["daemon", "tenant-weight", "--run-dir", str(run_dir), "batch", "2"], 0),
        (["daemon", "reload", "--run-dir", str(run_dir)], 0),
        (["emergency-stop", "--run-dir", str(run_dir)], 0),
        (["emergency-stop", "--run-dir", str(run_dir), "--clear"], 0),
        (["daemon", "logs", "--run-dir", str(run_dir)], 0),
        (["daemon", "stop", "--run-dir", str(run_dir)], 0),
    ]
    seen: set[tuple[str, ...]] = set()
    for args, want in runs:
        r = greyctl(*args, "--json", cwd=work)
        name = " ".join(a for a in args if not a.startswith(str(work)))
        try:
            document = json.loads(r.stdout)
            parsed = isinstance(document, (dict, list))
        except json.JSONDecodeError as e:
            parsed, document = False, str(e)
        report(r.returncode == want and parsed, f"{name} --json", f"exit {r.returncode} (want {want}); stdout {r.stdout[:300]!r}; stderr {r.stderr[-300:]!r}")
        command = [a for a in args if not a.startswith("-") and a in {c for leaf in leaves for c in leaf}]
        seen.add(tuple(command[:2]))
    artifact = next((work / "proofs").glob("*.json"))
    for args in (["proof", "show", artifact.stem], ["proof", "verify", str(artifact), "--key", "key"]):
        r = greyctl(*cfg, *args, "--json", cwd=work)
        ok = r.returncode == 0 and isinstance(json.loads(r.stdout or "null"), dict)
        report(ok, f"{' '.join(args[:2])} --json", f"exit {r.returncode}: {r.stdout[:200]!r} {r.stderr[-300:]!r}")
        seen.add(tuple(args[:2]))
    # --watch with --json: one document per line, as many as --count.
    r = greyctl("detect", "--query", "index,name", "--watch", "0.05", "--count", "3", "--json", cwd=work)
    lines = r.stdout.splitlines()
    report(r.returncode == 0 and len(lines) == 3 and all(json.loads(line)["devices"][0]["index"] == 0 for line in lines),
           "detect --watch --count 3 --json: three JSON lines", r.stdout[:300])
    r = greyctl("detect", "--query", "index,backend,memory_free_bytes,temperature_c", cwd=work)
    rows = r.stdout.splitlines()
    report(r.returncode == 0 and rows[0] == "index,backend,memory_free_bytes,temperature_c" and rows[1].startswith("0,host,")
           and re.fullmatch(r"0,host,\d+,\[\w+\]", rows[1]) is not None, "detect --query CSV (an unavailable value as [STATE])", r.stdout)

    # apply and plan: from a plan of the model on a described machine.
    (work / "devices.yaml").write_text("version: 1\ndevices:\n  - {name: CUDA0, type: gpu, memory_gib: 4, bandwidth_gbps: 192}\n"
                                       "  - {name: CPU, type: cpu, memory_gib: 16, bandwidth_gbps: 50}\n")
    r = greyctl("plan", "--workload", "inference", "--model", "model.safetensors", "--devices", "devices.yaml", "-o", "plan.yaml", "--json",
                cwd=work)
    if r.returncode == 0:
        report(isinstance(json.loads(r.stdout), dict), "plan --json", r.stdout[:200])
        r = greyctl("--config", "apply-cfg.yaml", "apply", "--plan", "plan.yaml", "--state-dir", "state", "--json", cwd=work)
        report(r.returncode == 0 and "dry_run" in json.loads(r.stdout or "{}"), "apply --json (dry run)", f"exit {r.returncode} {r.stdout[:200]!r} {r.stderr[-300:]!r}")
        seen.update({("plan",), ("apply",)})
    else:
        report(False, "plan --json", f"exit {r.returncode}: {r.stderr[-400:]}")
    missing = [leaf for leaf in leaves if leaf[0] not in NO_RESULTS and leaf not in seen]
    report(not missing, "every command with results was run with --json", f"not run: {missing}")

    # Every class of failure: its exit code, its message on stderr, and with --json the error document.
    log = work / "proofs" / "audit.log"
    tampered = work / "tampered.log"
    data = bytearray(log.read_bytes())
    at = data.index(b"1001")
    data[at:at + 4] = b"9001"
    tampered.write_bytes(bytes(data))
    # A second checkpoint of a longer log: the proof of record 0 in the first tree does not hold against it.
    greyctl("audit", "append", "--log", "proofs/audit.log", "--key", "proofs/audit.key.writer", "--type", "t", "--payload", "{}", cwd=work)
    greyctl("audit", "checkpoint", "--log", "proofs/audit.log", "--key", "proofs/audit.key.writer", "--out", "cp2", cwd=work)
    failures = [
        ("check_failed", "a tampered log", ["audit", "verify", "--log", "tampered.log", "--key", "key"], False),
        ("check_failed", "an invalid configuration file", ["config", "validate", "bad.yaml"], False),
        ("check_failed", "a proof against another checkpoint", ["audit", "verify-proof", "--proof", "p0", "--checkpoint", "cp2"], False),
        ("usage", "an unknown option", ["detect", "--no-such-option"], True),
        ("usage", "an unknown command", ["detekt"], True),
        ("usage", "a missing required option", ["quantize", "--format", "int8"], True),
        ("usage", "an unknown --query field", ["detect", "--query", "name,memory_fre_bytes"], True),
        ("usage", "query heads not a multiple of KV heads", ["kv-bench", "--query-heads", "3", "--kv-heads", "2"], True),
        ("bad_input", "a missing input file", ["quantize", "--input", "missing.safetensors", "--format", "int8"], True),
        ("bad_input", "a malformed input file", ["quantize", "--input", "bad.yaml", "--format", "int8"], True),
        ("bad_input", "an input that is a directory", ["dequantize", "--input", "proofs", "--output", "x.safetensors"], True),
        ("bad_input", "a missing log", ["audit", "show", "--log", "missing.log"], True),
        ("bad_input", "a missing configuration file", ["config", "validate", "missing.yaml"], True),
        ("bad_input", "an output that exists", ["quantize", "--input", "model.safetensors", "--format", "int8", "--output", "q.safetensors"], True),
        ("unavailable", "a backend that is not there", ["detect", "--backend", "nosuch"], True),
        ("unavailable", "the cuda backend on a machine without it", ["quantize", "--input", "model.safetensors", "--format", "int8", "--backend", "cuda"], True),
        ("unavailable", "greyd not running", ["daemon", "reload", "--run-dir", str(run_dir)], True),
        ("failed", "a workload that fails", ["validate-performance", "--workload", "false", "--duration", "0.1", "--repeats", "1", "--cooldown", "0", "--no-proof"], True),
    ]
    for cls, what, args, error_document in failures:
        r = greyctl(*args, cwd=work)
        report(r.returncode == EXIT[cls], f"{cls} ({EXIT[cls]}): {what}", f"exit {r.returncode}; stderr {r.stderr[-300:]!r}")
        r = greyctl(*args, "--json", cwd=work)
        try:
            document = json.loads(r.stdout)
        except json.JSONDecodeError:
            document = None
        if error_document:
            error = document.get("error", {}) if isinstance(document, dict) else {}
            ok = (r.returncode == EXIT[cls] and error.get("class") == cls and error.get("exit_code") == EXIT[cls]
                  and error.get("message") and error["message"] in r.stderr)
        else:  # a check that fails prints its result document, not an error
            ok = r.returncode == EXIT[cls] and isinstance(document, dict) and "error" not in document
        report(ok, f"{cls} --json: {what}", f"exit {r.returncode}; stdout {r.stdout[:300]!r}")

    print(f"{passed} passed, {failed} failed")
    subprocess.run(["rm", "-rf", str(work)])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
