#!/usr/bin/env python3
"""Runs the examples of README.md and docs/*.md as a reader would, and fails when one does not work.

A fenced block is an example when its info string holds the word `example` after the language:

    ```sh example                 run with bash -e -o pipefail
    ```python example             run with python3 (the bindings' environment)
    ```c example file=hello.c     written to hello.c for the blocks after it (a compile line, say)

Each document's examples run in order in one scratch directory of their own, as a reader works through
the page in one shell: files one block writes, the next finds. The directory starts as a view of a fresh
clone that has been built (every top-level entry of the repository linked in, `build/` too), so
`scripts/...`, `config/grey.yaml` and `samples/...` are where the documents say; an example writes its
own files in the scratch directory, never in the repository.

    python3 scripts/doc_examples.py [--keep] [--list] FILE.md...

The environment comes from the caller: PATH holding an installed greyctl and a python3 that imports
grey, PKG_CONFIG_PATH finding grey.pc (scripts/test-doc-examples.sh sets them up).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^(```+)\s*(\S*)\s*(.*)$")
RUNNERS = {"sh": ["bash", "-e", "-o", "pipefail"], "bash": ["bash", "-e", "-o", "pipefail"], "python": ["python3"]}


def examples(path):
    """Yields (line, language, options, text) for every example block of a markdown file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, language, rest = match.groups()
        start = i + 1
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            i += 1
        words = rest.split()
        if "example" in words:
            options = dict(w.split("=", 1) for w in words if "=" in w)
            yield start, language, options, "\n".join(lines[start:i]) + "\n"
        i += 1


def clone_view(repository, directory):
    for entry in os.listdir(repository):
        if entry == ".git":
            continue
        os.symlink(os.path.join(repository, entry), os.path.join(directory, entry))


def run_document(path, repository, keep, timeout):
    failures = 0
    blocks = list(examples(path))
    if not blocks:
        return 0, 0
    scratch = tempfile.mkdtemp(prefix="grey-doc-" + os.path.basename(path).replace(".md", "") + "-")
    clone_view(repository, scratch)
    try:
        for line, language, options, text in blocks:
            where = f"{os.path.relpath(path, repository)}:{line}"
            if "file" in options:
                target = os.path.join(scratch, options["file"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w", encoding="utf-8") as f:
                    f.write(text)
                print(f"file {where}: {options['file']}")
                continue
            if language not in RUNNERS:
                print(f"FAIL {where}: no way to run a `{language}` example (give it file=NAME)")
                failures += 1
                continue
            try:
                result = subprocess.run(RUNNERS[language] + ["-"], input=text, text=True, cwd=scratch,
                                        capture_output=True, timeout=timeout)
                status, output = result.returncode, result.stdout + result.stderr
            except subprocess.TimeoutExpired:
                status, output = "timeout", f"(still running after {timeout} s)"
            if status == 0:
                print(f"ok   {where}: {language}")
            else:
                failures += 1
                print(f"FAIL {where}: {language} exited {status}:\n{text}--- its output:\n{output[-3000:]}")
    finally:
        if keep:
            print(f"     (kept {scratch})")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return len(blocks), failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("--list", action="store_true", help="list the examples, run nothing")
    parser.add_argument("--timeout", type=int, default=300, help="seconds an example may run")
    parser.add_argument("documents", nargs="+")
    args = parser.parse_args()
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if args.list:
        for path in args.documents:
            for line, language, options, _ in examples(path):
                print(f"{path}:{line}: {language} {options or ''}")
        return 0
    total = failed = 0
    for path in args.documents:
        count, failures = run_document(os.path.abspath(path), repository, args.keep, args.timeout)
        total += count
        failed += failures
    print(f"documentation examples: {total - failed} of {total} ran as written")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
