#!/usr/bin/env python3
"""Compares two `greyctl quantize --json` reports of one model: host memory against a GPU backend.

usage: compare_quantize_reports.py HOST_JSON OTHER_JSON
Everything must be equal (tensors, formats, element and byte counts, bits per weight, max_abs_err)
except the two figures derived from the error sums. A GPU measures its report on the device and sums
in another order than the host: each sum of n non-negative terms lies within 2 n 2^-53 of the host's,
relative (common/quant_error.hpp), so rel_rmse = sqrt(error / signal) lies within that relative bound
too and sqnr_db = 10 log10(signal / error) within 10 / ln 10 times twice it, absolute (a few ulps of
rounding are allowed on top). Prints each difference and exits 1 on any.
"""
import json
import math
import sys

ULP = 2.0 ** -53


def bound(elements):
    return 2.0 * (elements + 8) * ULP  # + 8: the rounding of the division, root and logarithm


def compare_row(where, host, other, failures):
    if set(host) != set(other):
        failures.append(f"{where}: keys {sorted(host)} vs {sorted(other)}")
        return
    relative = bound(host.get("elements", 0))
    for key, a in host.items():
        b = other[key]
        if key == "rel_rmse" and a is not None and b is not None:
            ok = abs(a - b) <= relative * max(abs(a), abs(b))
        elif key == "sqnr_db" and a is not None and b is not None:
            ok = abs(a - b) <= 10.0 / math.log(10.0) * 2.0 * relative
        else:
            ok = a == b
        if not ok:
            failures.append(f"{where}: {key} {a!r} vs {b!r}")


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        host = json.load(f)
    with open(argv[2]) as f:
        other = json.load(f)
    failures = []
    if set(host) != set(other):
        failures.append(f"report keys {sorted(host)} vs {sorted(other)}")
    host_rows, other_rows = host.get("tensors", []), other.get("tensors", [])
    if len(host_rows) != len(other_rows):
        failures.append(f"{len(host_rows)} tensors vs {len(other_rows)}")
    for h, o in zip(host_rows, other_rows):
        compare_row(f"tensor {h.get('name')}", h, o, failures)
    compare_row("total", host.get("total", {}), other.get("total", {}), failures)
    for key in set(host) & set(other) - {"tensors", "total"}:
        if host[key] != other[key]:
            failures.append(f"{key}: {host[key]!r} vs {other[key]!r}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
