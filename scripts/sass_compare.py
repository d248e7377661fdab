#!/usr/bin/env python3
"""Compares the machine code (SASS) of every CUDA kernel, function by function, between a git revision
and the work tree: the evidence that a refactoring of kernels/cuda or common/ left the kernels unchanged.
Needs nvcc and cuobjdump (the CUDA toolkit's, or the nvidia-cuda-cuobjdump package from PyPI), no GPU.

    scripts/sass_compare.py [--base REV] [--arch 80 --arch 90] [--rename OLD=NEW ...]

Every kernels/cuda/*.cu of each tree is compiled to a cubin with the fatbin flags of
backends/cuda/CMakeLists.txt (GREY_CUDA_FATBIN_FLAGS, without its -gencode pairs) for each architecture,
each function's SASS is read with cuobjdump -sass, and the instruction text (addresses and encodings
dropped) is compared. Prints one line a function and architecture: same, DIFFERENT (with the count of
differing lines), only in base, only in tree. --rename names a kernel that was renamed. Exits 1 when any
function differs or is missing."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fatbin_flags(tree):
    text = open(os.path.join(tree, "backends/cuda/CMakeLists.txt")).read()
    block = re.search(r"set\(GREY_CUDA_FATBIN_FLAGS(.*?)\)", text, re.S).group(1)
    tokens = block.split()
    flags, skip = [], False
    for token in tokens:
        if skip:
            skip = False
            continue
        if token == "-gencode":
            skip = True
            continue
        flags.append(token)
    return flags


def export_revision(revision, into):
    archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", revision, "kernels", "include"]
                             + (["common"] if has_path(revision, "common") else []),
                             check=True, capture_output=True).stdout
    tar_path = os.path.join(into, "tree.tar")
    with open(tar_path, "wb") as f:
        f.write(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    os.makedirs(os.path.join(into, "backends/cuda"), exist_ok=True)
    flags = subprocess.run(["git", "-C", ROOT, "show", f"{revision}:backends/cuda/CMakeLists.txt"], check=True,
                           capture_output=True, text=True).stdout
    with open(os.path.join(into, "backends/cuda/CMakeLists.txt"), "w") as f:
        f.write(flags)


def has_path(revision, path):
    return subprocess.run(["git", "-C", ROOT, "cat-file", "-e", f"{revision}:{path}"], capture_output=True).returncode == 0


def functions(tree, arch, work):
    """{function name: [instruction lines]} of every kernel source of `tree` for sm_`arch`."""
    flags = fatbin_flags(tree)
    sources = sorted(f for f in os.listdir(os.path.join(tree, "kernels/cuda")) if f.endswith(".cu"))

    def compile_one(source):
        cubin = os.path.join(work, f"{source}.sm{arch}.cubin")
        subprocess.run(["nvcc", "-cubin", *flags, f"-arch=sm_{arch}", f"-I{tree}", f"-I{tree}/include", "-o", cubin,
                        os.path.join(tree, "kernels/cuda", source)], check=True, capture_output=True)
        return cubin

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        cubins = list(pool.map(compile_one, sources))
    result = {}
    for cubin in cubins:
        text = subprocess.run(["cuobjdump", "-sass", cubin], check=True, capture_output=True, text=True).stdout
        current = None
        for line in text.splitlines():
            header = re.match(r"\s*Function : (\S+)", line)
            if header:
                current = header.group(1)
                result[current] = []
                continue
            instruction = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s*(.*?)\s*;?\s*(/\*.*\*/)?\s*$", line)
            if current is not None and instruction and instruction.group(1):
                result[current].append(instruction.group(1))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="the git revision to compare against (default HEAD)")
    parser.add_argument("--arch", action="append", help="an SM architecture (default: 80 and 90, the fatbin's)")
    parser.add_argument("--rename", action="append", default=[], help="OLD=NEW: a kernel renamed since --base")
    args = parser.parse_args()
    archs = args.arch or ["80", "90"]
    renames = dict(item.split("=", 1) for item in args.rename)
    for tool in ("nvcc", "cuobjdump"):
        if shutil.which(tool) is None:
            sys.exit(f"sass_compare: {tool} is not on PATH")
    failed = False
    with tempfile.TemporaryDirectory() as work:
        base_tree = os.path.join(work, "base")
        os.makedirs(base_tree)
        export_revision(args.base, base_tree)
        for arch in archs:
            base = functions(base_tree, arch, work)
            tree = functions(ROOT, arch, work)
            for name in sorted(set(base) | set(renames.get(n, n) for n in base) | set(tree)):
                old = next((n for n, new in renames.items() if new == name), name)
                if name in renames:  # the old name of a renamed kernel: reported under its new name
                    continue
                if old not in base:
                    print(f"sm_{arch} {name}: only in tree")
                    failed = True
                elif name not in tree:
                    print(f"sm_{arch} {name}: only in base")
                    failed = True
                elif base[old] == tree[name]:
                    print(f"sm_{arch} {name}: same ({len(tree[name])} instructions)" + (f", was {old}" if old != name else ""))
                else:
                    differing = sum(1 for a, b in zip(base[old], tree[name]) if a != b) + abs(len(base[old]) - len(tree[name]))
                    print(f"sm_{arch} {name}: DIFFERENT ({differing} of {len(base[old])} instructions)")
                    failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
