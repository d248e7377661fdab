#!/usr/bin/env python3
"""The governor on a real GPU (run by tests/gpu/govern.sh; PyTorch drives a sustained matmul load).

Phases, on the first CUDA device:
  1. idle: the idle temperature; the target is idle + 10 C (max: idle + 20 C).
  2. sweep: constant duty cycles (matmul chunks followed by sleeps), thermal control off; each phase's
     heating curve is fitted to the RC model of runtime/govern/thermal_plant.hpp (T_ss, tau), and the
     best constant duty is the largest swept duty whose fitted steady temperature stays under the target.
  3. governor: the same load, every chunk admitted through grey_govern_admit, the governor steering to
     the target. After settling: the worst |T - target| (goal: 2 C) and the throughput against the best
     constant duty's (goal: within 5%).
Writes govern.csv (time, phase, temperature, duty, throughput, power), govern.png (matplotlib) and
govern.json (every figure) into OUT. Reads telemetry only: it never changes clocks, power limits, compute
mode or persistence mode.

    python3 tests/gpu/govern.py --lib build/gpu/lib/libgrey.so --out DIR [--scale 1.0]
"""

from __future__ import annotations

import argparse
import csv
import ctypes as C
import json
import time
from pathlib import Path

import numpy as np
import torch


class FieldF64(C.Structure):
    _fields_ = [("value", C.c_double), ("state", C.c_int32), ("source", C.c_int32)]


class FieldU64(C.Structure):
    _fields_ = [("value", C.c_uint64), ("state", C.c_int32), ("source", C.c_int32)]


class Telemetry(C.Structure):  # grey_device_telemetry, frozen by tests/abi/layout_test.c
    _fields_ = [("struct_size", C.c_uint32), ("reserved0", C.c_uint32), ("timestamp_ns", C.c_uint64),
                ("temperature_c", FieldF64), ("memory_temperature_c", FieldF64)] + \
               [(n, FieldU64) for n in ("power_draw_mw", "energy_total_mj", "graphics_clock_mhz", "sm_clock_mhz",
                                        "memory_clock_mhz", "utilization_percent", "memory_utilization_percent",
                                        "memory_used_bytes", "throttle_reasons", "throttle_time_power_ns",
                                        "throttle_time_thermal_ns", "throttle_time_sync_boost_ns")]


class ContextOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("log_level", C.c_int32), ("log_callback", C.c_void_p), ("log_user", C.c_void_p),
                ("backends", C.c_char_p), ("backend_dir", C.c_char_p), ("config_path", C.c_char_p), ("profile", C.c_char_p),
                ("apply_env_overrides", C.c_uint32), ("reserved0", C.c_uint32)]


class GovernorOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("sample_period_ms", C.c_uint32), ("burst_ns", C.c_uint64), ("aging_ns", C.c_uint64),
                ("kp", C.c_double), ("ti_s", C.c_double), ("horizon_s", C.c_double), ("hysteresis_c", C.c_double),
                ("min_duty", C.c_double), ("unknown_duty", C.c_double), ("power_limit_mw", C.c_uint64), ("slice_ns", C.c_uint64)]


class TenantOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("priority", C.c_uint32), ("weight", C.c_double), ("name", C.c_char_p)]


class Admission(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("device", C.c_uint32), ("ticket", C.c_uint64), ("waited_ns", C.c_uint64),
                ("duty", C.c_double), ("batch_scale", C.c_double)]


class DeviceState(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("mode", C.c_int32), ("temperature_known", C.c_uint32), ("max_level", C.c_uint32),
                ("temperature_c", C.c_double), ("slope_c_per_s", C.c_double), ("predicted_c", C.c_double), ("duty", C.c_double),
                ("batch_scale", C.c_double)] + [(n, C.c_uint64) for n in (
                    "waiting", "running", "admitted_count", "admitted_cost_ns", "paced_ns", "hot_ns", "unknown_ns", "stopped_ns",
                    "mode_changes", "yield_requests", "power_limit_held_mw", "power_limit_restore_mw")]


def sized(struct):
    value = struct()
    value.struct_size = C.sizeof(struct)
    return value


class Grey:
    def __init__(self, lib: str):
        self.lib = C.CDLL(lib)
        self.lib.grey_last_error.restype = C.c_char_p
        self.lib.grey_govern_mode_name.restype = C.c_char_p

    def check(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: {self.lib.grey_last_error().decode()}")


def fit_rc(t: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """y = T_ss + (T0 - T_ss) exp(-t / tau): tau on a grid, T_ss and T0 by least squares. Returns
    (T_ss, tau, rms residual)."""
    best = (float(y[-1]), float("nan"), float("inf"))
    for tau in np.geomspace(2.0, 600.0, 200):
        e = np.exp(-(t - t[0]) / tau)
        a = np.stack([1 - e, e], axis=1)
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        rms = float(np.sqrt(np.mean((a @ coef - y) ** 2)))
        if rms < best[2]:
            best = (float(coef[0]), float(tau), rms)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every phase's duration")
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--tuning", action="append", default=[], metavar="KP:TI_S:HORIZON_S[:BURST_MS[:SLICE_MS]]",
                    help="run the governed phase once with these grey_governor_options, 0 for the library's default"
                         " (repeatable; default: the library's defaults); each run starts after a cool-down; the"
                         " first run's figures are the summary's")
    ap.add_argument("--no-sweep", action="store_true", help="skip the constant-duty sweep (tuning runs)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    g = Grey(args.lib)
    lib = g.lib

    options = sized(ContextOptions)
    options.log_level = 2
    options.backends = b"cuda"
    ctx = C.c_void_p()
    g.check(lib.grey_context_create(C.byref(options), C.byref(ctx)), "grey_context_create")
    count = C.c_uint32()
    g.check(lib.grey_device_count(ctx, C.byref(count)), "grey_device_count")
    assert count.value >= 2, "no CUDA device loaded"
    device = 1  # the host CPU is device 0; the first CUDA device follows it

    def telemetry() -> Telemetry:
        t = sized(Telemetry)
        g.check(lib.grey_device_telemetry_get(ctx, device, C.byref(t)), "grey_device_telemetry_get")
        return t

    def temperature() -> float:
        t = telemetry()
        return t.temperature_c.value if t.temperature_c.state == 0 else float("nan")

    def power() -> float:
        t = telemetry()
        return t.power_draw_mw.value / 1000.0 if t.power_draw_mw.state == 0 else float("nan")

    a = torch.randn(args.size, args.size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(args.size, args.size, device="cuda", dtype=torch.bfloat16)
    flops_per_matmul = 2.0 * args.size ** 3
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
    matmul_s = (time.perf_counter() - start) / 20
    per_chunk = max(1, round(0.02 / matmul_s))  # about 20 ms of work per chunk
    chunk_s = per_chunk * matmul_s

    rows: list[dict] = []
    t0 = time.perf_counter()

    def log(phase: str, duty: float, work_flops: float, window_s: float) -> None:
        rows.append({"time_s": round(time.perf_counter() - t0, 3), "phase": phase, "temperature_c": temperature(), "duty": duty,
                     "throughput_tflops": work_flops / window_s / 1e12 if window_s > 0 else 0.0, "power_w": power()})

    def run_chunk(n: int) -> float:
        s = time.perf_counter()
        for _ in range(n):
            a @ b
        torch.cuda.synchronize()
        return time.perf_counter() - s

    # 1. idle
    idle_samples = []
    end = time.perf_counter() + 20 * args.scale
    while time.perf_counter() < end:
        idle_samples.append(temperature())
        log("idle", 0.0, 0.0, 1.0)
        time.sleep(0.5)
    idle_c = float(np.nanmean(idle_samples))
    target = idle_c + 10.0
    maximum = idle_c + 20.0

    # 2. constant-duty sweep, thermal control off (plain loop, no admissions)
    sweep = []
    for duty in () if args.no_sweep else (1.0, 0.6, 0.4, 0.25):
        phase = f"duty-{duty:.2f}"
        phase_start = time.perf_counter()
        end = phase_start + 45 * args.scale
        work = 0.0
        window_work, window_start = 0.0, time.perf_counter()
        times, temps = [], []
        while time.perf_counter() < end:
            busy = run_chunk(per_chunk)
            work += per_chunk * flops_per_matmul
            window_work += per_chunk * flops_per_matmul
            if duty < 1.0:
                time.sleep(busy * (1.0 - duty) / duty)
            if time.perf_counter() - window_start >= 0.5:
                log(phase, duty, window_work, time.perf_counter() - window_start)
                times.append(rows[-1]["time_s"])
                temps.append(rows[-1]["temperature_c"])
                window_work, window_start = 0.0, time.perf_counter()
        t_ss, tau, rms = fit_rc(np.array(times), np.array(temps))
        sweep.append({"duty": duty, "throughput_tflops": work / (time.perf_counter() - phase_start) / 1e12,
                      "fitted_steady_c": t_ss, "fitted_tau_s": tau, "fit_rms_c": rms, "last_c": temps[-1] if temps else None})
    under = [s for s in sweep if s["fitted_steady_c"] <= target]
    best = max(under, key=lambda s: s["throughput_tflops"]) if under else None

    config = C.c_void_p()
    g.check(lib.grey_config_create(b"balanced", C.byref(config)), "grey_config_create")
    yaml = f"thermal:\n  enabled: true\n  target_temp_c: {target:.1f}\n  max_temp_c: {maximum:.1f}\n  throttle_strategy: proactive\n"
    g.check(lib.grey_config_load_string(config, yaml.encode(), b"govern.py"), "grey_config_load_string")
    governed_s = 150 * args.scale
    settle_s = 60 * args.scale

    def governed_run(label: str, kp: float, ti_s: float, horizon_s: float, burst_ms: float, slice_ms: float) -> dict:
        # cool down towards idle first
        end = time.perf_counter() + 20 * args.scale
        while time.perf_counter() < end:
            log("cooldown", 0.0, 0.0, 1.0)
            time.sleep(0.5)
        gov_options = sized(GovernorOptions)
        gov_options.sample_period_ms = 100
        gov_options.kp, gov_options.ti_s, gov_options.horizon_s = kp, ti_s, horizon_s  # 0: the library's default
        gov_options.burst_ns = int(burst_ms * 1e6)
        gov_options.slice_ns = int(slice_ms * 1e6)
        gov = C.c_void_p()
        g.check(lib.grey_governor_create(ctx, C.byref(gov_options), C.byref(gov)), "grey_governor_create")
        g.check(lib.grey_governor_configure(gov, config), "grey_governor_configure")
        tenant_options = sized(TenantOptions)
        tenant_options.weight = 1.0
        tenant_options.name = b"matmul"
        tenant = C.c_void_p()
        g.check(lib.grey_tenant_create(gov, C.byref(tenant_options), C.byref(tenant)), "grey_tenant_create")
        phase_start = time.perf_counter()
        end = phase_start + governed_s
        window_work, window_start = 0.0, time.perf_counter()
        settled_work, settled_start = 0.0, None
        settled_temps = []
        estimate_ns = int(chunk_s * 1e9)
        while time.perf_counter() < end:
            admission = sized(Admission)
            g.check(lib.grey_govern_admit(tenant, device, C.c_uint64(estimate_ns), C.c_uint64(2**64 - 1), C.byref(admission)), "admit")
            n = max(1, round(per_chunk * admission.batch_scale))
            busy = run_chunk(n)
            g.check(lib.grey_govern_release(tenant, C.c_uint64(admission.ticket), C.c_uint64(int(busy * 1e9))), "release")
            estimate_ns = int(busy / n * per_chunk * 1e9)
            window_work += n * flops_per_matmul
            if time.perf_counter() - phase_start >= settle_s:
                settled_start = settled_start or time.perf_counter()
                settled_work += n * flops_per_matmul
            if time.perf_counter() - window_start >= 0.5:
                state = sized(DeviceState)
                g.check(lib.grey_governor_device_state_get(gov, device, C.byref(state)), "device state")
                log(label, state.duty, window_work, time.perf_counter() - window_start)
                if settled_start is not None:
                    settled_temps.append(rows[-1]["temperature_c"])
                window_work, window_start = 0.0, time.perf_counter()
        state = sized(DeviceState)
        g.check(lib.grey_governor_device_state_get(gov, device, C.byref(state)), "device state")
        tflops = settled_work / (time.perf_counter() - settled_start) / 1e12 if settled_start else 0.0
        errors = np.abs(np.array(settled_temps) - target)
        lib.grey_tenant_destroy(tenant)
        lib.grey_governor_destroy(gov)
        return {"label": label, "kp": kp, "ti_s": ti_s, "horizon_s": horizon_s, "burst_ms": burst_ms, "slice_ms": slice_ms, "settle_s": settle_s, "seconds": governed_s,
                "throughput_tflops": tflops,
                "worst_abs_error_c": float(np.nanmax(errors)) if errors.size else None,
                "mean_abs_error_c": float(np.nanmean(errors)) if errors.size else None,
                "paced_s": state.paced_ns / 1e9, "hot_s": state.hot_ns / 1e9, "unknown_s": state.unknown_ns / 1e9,
                "mode_at_end": lib.grey_govern_mode_name(state.mode).decode()}

    tunings = [(tuple(float(x) for x in t.split(":")) + (0.0, 0.0))[:5] for t in args.tuning] or [(0.0,) * 5]
    runs = [governed_run("governor" if len(tunings) == 1 else f"kp{kp:g}-ti{ti:g}-h{h:g}-burst{b:g}-slice{sl:g}", kp, ti, h, b, sl)
            for kp, ti, h, b, sl in tunings]
    governed = runs[0]
    governed_tflops = governed["throughput_tflops"]
    worst = governed["worst_abs_error_c"]
    lib.grey_config_destroy(config)
    lib.grey_context_destroy(ctx)

    summary = {
        "device": torch.cuda.get_device_name(0), "matmul": f"{args.size}x{args.size} bf16", "matmul_ms": matmul_s * 1e3,
        "idle_c": idle_c, "target_c": target, "max_c": maximum, "sweep": sweep, "best_constant_duty": best,
        "governed": governed, "governed_runs": runs,
        "goals": {"hold_within_2c": worst is not None and worst <= 2.0,
                  "throughput_within_5pct_of_best_constant": bool(best and governed_tflops >= 0.95 * best["throughput_tflops"]),
                  "throughput_ratio_to_best_constant": governed_tflops / best["throughput_tflops"] if best else None},
    }
    with open(args.out / "govern.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "govern.json").write_text(json.dumps(summary, indent=2) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [r["time_s"] for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    axes[0].plot(t, [r["temperature_c"] for r in rows], label="temperature")
    axes[0].axhline(target, color="red", linestyle="--", label=f"target {target:.1f} C")
    axes[0].axhline(maximum, color="black", linestyle=":", label=f"max {maximum:.1f} C")
    axes[0].set_ylabel("C")
    axes[0].legend(loc="lower right")
    axes[1].plot(t, [r["duty"] for r in rows], color="green")
    axes[1].set_ylabel("duty")
    axes[2].plot(t, [r["throughput_tflops"] for r in rows], color="purple")
    axes[2].set_ylabel("TFLOP/s")
    axes[2].set_xlabel("seconds")
    for phase in sorted({r["phase"] for r in rows}, key=lambda p: next(r["time_s"] for r in rows if r["phase"] == p)):
        first = next(r["time_s"] for r in rows if r["phase"] == phase)
        for ax in axes:
            ax.axvline(first, color="grey", linewidth=0.5)
        axes[0].text(first, axes[0].get_ylim()[1], phase, fontsize=7, va="top")
    fig.suptitle(f"libgrey governor on {summary['device']}: constant-duty sweep, then the governor at idle + 10 C")
    fig.tight_layout()
    fig.savefig(args.out / "govern.png", dpi=120)
    print(json.dumps(summary["goals"], indent=2))
    print(f"best constant duty: {best}")
    for run in runs:
        print(f"governed: {run}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
