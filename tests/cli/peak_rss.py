#!/usr/bin/env python3
"""Runs a command and checks its peak resident memory.

    peak_rss.py LIMIT_MIB -- COMMAND...

Passes the command's output through and exits with its exit status, or with 99 (after saying so) when
the command's peak resident set (getrusage of the child: file-backed pages it touched count, as they
do in its RSS) was above LIMIT_MIB. Prints "peak_rss_mib N" on stderr either way.
"""

import resource
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    limit_mib = float(sys.argv[1])
    rc = subprocess.run(sys.argv[3:]).returncode
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
    print(f"peak_rss_mib {peak_mib:.1f}", file=sys.stderr)
    if peak_mib > limit_mib:
        print(f"peak RSS {peak_mib:.1f} MiB is above the limit of {limit_mib:.1f} MiB", file=sys.stderr)
        return 99
    return rc


if __name__ == "__main__":
    sys.exit(main())
