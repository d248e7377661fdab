#!/usr/bin/env python3
"""Lists every device libgrey sees: name, memory and compute units (pip install ./bindings/python first)."""

import sys

import grey


def dash(value):
    return "-" if value is None else value


def main() -> int:
    try:
        with grey.Context() as ctx:
            devices = ctx.devices()
    except grey.Error as err:
        print(f"detect: {err}", file=sys.stderr)
        return 1
    print(f"libgrey {grey.version_string()}: {len(devices)} device(s)")
    for dev in devices:
        print(f"device {dev.index}: {dash(dev.name)}, memory {dash(dev.memory_total_bytes)} bytes, "
              f"{dash(dev.compute_units)} compute units")
    return 0


if __name__ == "__main__":
    sys.exit(main())
