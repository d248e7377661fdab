#!/usr/bin/env python3
"""Compares `greyctl detect --json --telemetry` with nvidia-smi for every field both report.

usage: compare_detect.py DETECT_JSON SMI_CSV SMI_Q_TEXT
       compare_detect.py --query        (prints the --query-gpu field list)
  SMI_CSV     nvidia-smi --query-gpu=<the list> --format=csv,noheader,nounits (one line per GPU)
  SMI_Q_TEXT  nvidia-smi -q -d TEMPERATURE (for the temperature thresholds)
Static fields must match exactly (after unit conversion); live readings (temperatures, power, clocks,
utilisation, memory in use) are sampled at different instants, so they match within the tolerance
printed beside them. Prints a table and exits 1 on any mismatch.
"""
import json
import re
import sys

# (nvidia-smi query field, greyctl key, group, kind, tolerance)
# kind: text | int | float | mib (nvidia-smi MiB vs bytes) | watt (W vs mW) | busid
FIELDS = [
    ("name", "name", "spec", "text", None),
    ("uuid", "uuid", "spec", "text", None),
    ("pci.bus_id", "pci_bus_id", "spec", "busid", None),
    ("driver_version", "driver_version", "spec", "text", None),
    ("compute_cap", "compute_capability", "spec", "text", None),
    ("memory.total", "memory_total_bytes", "spec", "mib", 1),
    ("memory.free", "memory_free_bytes", "spec", "mib", 64),
    ("clocks.max.memory", "memory_clock_max_mhz", "spec", "int", 0),
    ("clocks.max.graphics", "graphics_clock_max_mhz", "spec", "int", 0),
    ("enforced.power.limit", "power_limit_mw", "spec", "watt", 1),
    ("power.default_limit", "power_limit_default_mw", "spec", "watt", 1),
    ("power.min_limit", "power_limit_min_mw", "spec", "watt", 1),
    ("power.max_limit", "power_limit_max_mw", "spec", "watt", 1),
    ("pcie.link.gen.current", "pcie_generation_current", "spec", "int", 0),
    ("pcie.link.gen.max", "pcie_generation_max", "spec", "int", 0),
    ("pcie.link.width.current", "pcie_width_current", "spec", "int", 0),
    ("pcie.link.width.max", "pcie_width_max", "spec", "int", 0),
    ("temperature.gpu", "temperature_c", "telemetry", "float", 3),
    ("temperature.memory", "memory_temperature_c", "telemetry", "float", 3),
    ("power.draw", "power_draw_mw", "telemetry", "watt", 30),
    ("clocks.sm", "sm_clock_mhz", "telemetry", "int", 200),
    ("clocks.gr", "graphics_clock_mhz", "telemetry", "int", 200),
    ("clocks.mem", "memory_clock_mhz", "telemetry", "int", 0),
    ("utilization.gpu", "utilization_percent", "telemetry", "int", 10),
    ("memory.used", "memory_used_bytes", "telemetry", "mib", 64),
]
QUERY = ",".join(f[0] for f in FIELDS)

THRESHOLDS = [
    ("GPU Shutdown Temp", "temperature_shutdown_c"),
    ("GPU Slowdown Temp", "temperature_slowdown_c"),
    ("GPU Max Operating Temp", "temperature_gpu_max_c"),
    ("Memory Max Operating Temp", "temperature_memory_max_c"),
]
NOT_REPORTED = ("[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", "")


def norm_busid(text):
    domain, rest = (text or "0:0").strip().lower().split(":", 1)
    return f"{int(domain, 16):x}:{rest}"


def compare(kind, tol, smi, grey):
    """(greyctl value as shown, matched: True/False, or None when nvidia-smi has no value)."""
    if smi in NOT_REPORTED:
        return ("(unavailable)" if grey is None else str(grey)), None
    if grey is None:
        return "(unavailable)", False
    if kind == "text":
        return str(grey), smi == str(grey).strip()
    if kind == "busid":
        return str(grey), norm_busid(smi) == norm_busid(grey)
    smi_value = float(smi)
    if kind == "mib":
        value = grey / (1 << 20)
        return f"{value:.0f}", abs(value - smi_value) <= tol
    if kind == "watt":
        value = grey / 1000.0
        return f"{value:.2f}", abs(value - smi_value) <= tol
    return str(grey), abs(float(grey) - smi_value) <= tol


def main():
    detect = json.load(open(sys.argv[1]))
    rows = [[v.strip() for v in l.split(",")] for l in open(sys.argv[2]).read().splitlines() if l.strip()]
    smi_q = open(sys.argv[3]).read()
    names = [f[0] for f in FIELDS]
    by_bus = {norm_busid(r[names.index("pci.bus_id")]): dict(zip(names, r)) for r in rows}
    gpus = [d for d in detect["devices"] if d["backend"] == "cuda"]
    blocks = {}
    for m in re.finditer(r"^GPU ([0-9A-Fa-f:.]+)\n(.*?)(?=^GPU |\Z)", smi_q, re.S | re.M):
        blocks[norm_busid(m.group(1))] = m.group(2)
    failures = compared = 0
    if len(gpus) != len(rows):
        print(f"greyctl offers {len(gpus)} CUDA device(s), nvidia-smi lists {len(rows)}")
        failures += 1
    for device in gpus:
        bus = norm_busid(device.get("pci_bus_id"))
        smi = by_bus.get(bus)
        print(f"-- {device.get('name')} ({device.get('pci_bus_id')})")
        print(f"   {'field':28} {'nvidia-smi':>24} {'greyctl':>24}  match")
        if smi is None:
            print("   nvidia-smi lists no GPU at this bus id")
            failures += 1
            continue
        telemetry = device.get("telemetry", {})
        for query, key, group, kind, tol in FIELDS:
            shown, ok = compare(kind, tol, smi[query], (device if group == "spec" else telemetry).get(key))
            if ok is not None:
                compared += 1
                failures += 0 if ok else 1
            mark = "n/a" if ok is None else ("yes" if ok else "NO")
            print(f"   {key:28} {smi[query]:>24} {shown:>24}  {mark}{'' if not tol else f' (±{tol})'}")
        block = blocks.get(bus, smi_q)
        # nvidia-smi 580 lists the GPU thresholds relative to the "T.Limit" (the GPU max operating
        # temperature): "GPU T.Limit Temp" is the margin from the current temperature up to it, and
        # "GPU Shutdown T.Limit Temp: -8 C" puts shutdown 8 degrees above it. Absolute values follow.
        def reading(label):
            m = re.search(r"^\s*" + re.escape(label) + r"\s*:\s*(-?[0-9.]+) C", block, re.M)
            return float(m.group(1)) if m else None
        current, margin = reading("GPU Current Temp"), reading("GPU T.Limit Temp")
        tlimit = current + margin if current is not None and margin is not None else None
        derived = {}
        if tlimit is not None:
            derived["temperature_gpu_max_c"] = tlimit
            for label, key in (("GPU Shutdown T.Limit Temp", "temperature_shutdown_c"),
                               ("GPU Slowdown T.Limit Temp", "temperature_slowdown_c")):
                if reading(label) is not None:
                    derived[key] = tlimit - reading(label)
        for label, key in THRESHOLDS:
            value = reading(label)
            grey = device.get(key)
            if value is None and key in derived:
                value = derived[key]
                label = "from T.Limit"
            if value is None:
                print(f"   {key:28} {'(not listed)':>24} {str(grey):>24}  n/a")
                continue
            ok = grey is not None and abs(float(grey) - value) < 0.5
            compared += 1
            failures += 0 if ok else 1
            note = " (nvidia-smi: T.Limit relative)" if label == "from T.Limit" else ""
            print(f"   {key:28} {value:>24g} {str(grey):>24}  {'yes' if ok else 'NO'}{note}")
        for key in ("compute_units", "architecture", "l2_cache_bytes", "memory_bus_width_bits", "peak_memory_bandwidth_gbps",
                    "runtime_version"):
            print(f"   {key:28} {'(not in query)':>24} {str(device.get(key)):>24}  -")
        for key in ("energy_total_mj", "throttle_reasons", "throttle_time_power_ns", "throttle_time_thermal_ns",
                    "throttle_time_sync_boost_ns"):
            print(f"   {key:28} {'(not in query)':>24} {str(telemetry.get(key)):>24}  -")
        if telemetry.get("throttle_reason_names") is not None:
            print(f"   throttle reasons: {', '.join(telemetry['throttle_reason_names']) or 'none'}")
        for key, why in {**device.get("unavailable", {}), **telemetry.get("unavailable", {})}.items():
            print(f"   unavailable: {key}: {why}")
    print(f"detect vs nvidia-smi: {compared - failures} of {compared} compared fields match")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--query"]:
        print(QUERY)
        sys.exit(0)
    sys.exit(main())
