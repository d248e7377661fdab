#!/usr/bin/env python3
"""Keeps a signed audit log: generates keys, appends three records, writes a checkpoint, then verifies
the log and the checkpoint with the verifier key and prints the verdict.

    python3 samples/python/audit.py [DIR]

The files (audit.key, audit.key.writer, audit.log, checkpoint-1) go to DIR, which must not hold them
yet (keys are never overwritten); without DIR, to a temporary directory removed at the end.
"""

import sys
import tempfile
from pathlib import Path

import grey


def run(directory: Path) -> int:
    verifier, writer = directory / "audit.key", directory / "audit.key.writer"
    log_path, checkpoint = directory / "audit.log", directory / "checkpoint-1"
    grey.audit_keygen(verifier, writer)
    with grey.AuditLog(log_path, writer) as log:
        for step in range(3):
            sequence = log.append("sample.step", {"step": step, "language": "python"})
            print(f"appended record {sequence}")
        log.checkpoint(checkpoint)
    report = grey.audit_verify(log_path, verifier, [checkpoint])
    print(f"verify: cause {report.cause}, records {report.records}, head {report.head_hash.hex()}, "
          f"root {report.root_hash.hex()}, log_id {report.log_id.hex()}")
    return 0 if report.intact else 1


def main(argv: list[str]) -> int:
    try:
        if len(argv) > 1:
            directory = Path(argv[1])
            directory.mkdir(parents=True, exist_ok=True)
            return run(directory)
        with tempfile.TemporaryDirectory(prefix="grey-audit-sample-") as directory:
            return run(Path(directory))
    except grey.Error as err:
        print(f"audit: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
