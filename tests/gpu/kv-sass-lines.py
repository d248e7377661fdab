#!/usr/bin/env python3
"""Where a kernel's executed instructions go, by source: ncu's per-instruction counts (the `--page source
--csv --print-source sass` export that tests/gpu/kv-profile.sh writes with KV_PROFILE_FULL=1) joined with
the line table of the same code (`nvdisasm -gi` of the kernel's cubin, built with -lineinfo). Each
instruction is credited to the innermost frame of SOURCE that falls in one of the parts: the functions
of SOURCE that --functions names (every function of SOURCE without it), and NAME=FIRST-LAST line ranges
given with --part, which come first (a function's body split where that says more). Prints, per part, the warp instructions executed per UNIT (--per, e.g. the chunks of a
launch), their share, the share of ncu's stall samples and the three largest stall reasons.

    python3 tests/gpu/kv-sass-lines.py mma_sass.csv kernel.sass --kernel grey_kv_attend_mma_8_4 \
        --source kernels/cuda/kv_attend_mma.cuh --per 131072 \
        --functions load_queries,value_products,attend_chunk,stage_rows,stage_chunk,open,advance,attend \
        [--part k_products=505-558 ...]

The listing must be of the very code profiled: the script compares each instruction's opcode, address
by address, and says how many differ.
"""
import argparse
import collections
import csv
import re
import sys


def read_profile(path):
    rows = list(csv.reader(open(path, newline="")))
    header = next(i for i, r in enumerate(rows) if "Address" in r and "Source" in r)
    names = rows[header]
    at = {name: names.index(name) for name in ("Address", "Source", "Instructions Executed", "Warp Stall Sampling (All Samples)")}
    stalls = [i for i, n in enumerate(names) if n.startswith("stall_") and "Not Issued" not in n]
    out = []
    for r in rows[header + 1:]:
        if len(r) <= at["Instructions Executed"] or not r[at["Address"]]:
            continue
        out.append((int(r[at["Address"]], 0), r[at["Source"]].strip(), int(r[at["Instructions Executed"]] or 0),
                    int(r[at["Warp Stall Sampling (All Samples)"]] or 0), {names[i][6:]: int(r[i] or 0) for i in stalls}))
    return out


def read_listing(path, kernel):
    """{offset: (opcode, [(file, line), ...] innermost first)} of the kernel's text section."""
    frames, listing, inside = [], {}, False
    for line in open(path):
        if line.startswith("//--") and ".text." in line:
            inside = f".text.{kernel} " in line  # the header of this kernel's section, not one whose name extends it
            continue
        if not inside:
            continue
        m = re.match(r'\s*//## File "([^"]+)", line (\d+)', line)
        if m:
            frames.append((m.group(1).rsplit("/", 1)[-1], int(m.group(2))))
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
        if m:
            listing[int(m.group(1), 16)] = (opcode(m.group(2)), frames)
            frames = []
    return listing


def opcode(text):
    words = text.split()
    if words and words[0].startswith("@"):
        words = words[1:]
    return words[0] if words else ""


def functions_of(source):
    """[(first, last, name)]: each function definition of SOURCE up to the next one."""
    starts = []
    for number, line in enumerate(open(source), 1):
        m = re.match(r"\s*(?:template\s*<[^>]*>\s*)?(?:__device__|__global__)[\w\s:<>,&*]*?\b(\w+)\s*\(", line)
        if m:
            starts.append((number, m.group(1)))
    return [(first, (starts[i + 1][0] - 1) if i + 1 < len(starts) else 1 << 30, name) for i, (first, name) in enumerate(starts)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profile")
    p.add_argument("listing")
    p.add_argument("--kernel", required=True)
    p.add_argument("--source", required=True, help="the source file whose frames name the parts")
    p.add_argument("--per", type=float, default=1.0, help="divide the counts by this (e.g. the launch's chunks)")
    p.add_argument("--functions", default="", help="NAME,NAME,...: the functions of SOURCE that are parts (all when empty)")
    p.add_argument("--part", action="append", default=[], help="NAME=FIRST-LAST: a line range of SOURCE as a part")
    args = p.parse_args()

    parts = []
    for item in args.part:
        name, _, span = item.partition("=")
        first, _, last = span.partition("-")
        parts.append((int(first), int(last), name))
    wanted = set(filter(None, args.functions.split(",")))
    parts += [f for f in functions_of(args.source) if not wanted or f[2] in wanted]  # explicit ranges first: they win
    source = args.source.rsplit("/", 1)[-1]

    profile = read_profile(args.profile)
    listing = read_listing(args.listing, args.kernel)
    if not profile or not listing:
        sys.exit(f"nothing to join: {len(profile)} profiled instructions, {len(listing)} listed")
    base = profile[0][0]
    differ, chain = 0, []
    executed, samples = collections.Counter(), collections.Counter()
    reasons = collections.defaultdict(collections.Counter)
    for address, text, count, sampled, stalls in profile:
        listed = listing.get(address - base)
        if listed is None or listed[0] != opcode(text):
            differ += 1
        if listed and listed[1]:
            chain = listed[1]
        part = "(elsewhere)"
        for file, line in chain:
            if file != source:
                continue
            hit = next((name for first, last, name in parts if first <= line <= last), None)
            if hit:
                part = hit
                break
        executed[part] += count
        samples[part] += sampled
        reasons[part].update(stalls)
    total, total_samples = sum(executed.values()), max(1, sum(samples.values()))
    print(f"{len(profile)} instructions profiled, {differ} differ from the listing")
    print(f"{'part':24} {'per unit':>10} {'instr':>7} {'samples':>8}  largest stall reasons")
    for part, count in executed.most_common():
        top = ", ".join(f"{k} {100 * v // max(1, samples[part])}%" for k, v in reasons[part].most_common(3) if v)
        print(f"{part:24} {count / args.per:10.1f} {100 * count / total:6.1f}% {100 * samples[part] / total_samples:7.1f}%  {top}")
    print(f"{'total':24} {total / args.per:10.1f}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
