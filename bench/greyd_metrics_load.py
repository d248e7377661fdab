"""greyd under a steady /metrics load (issue 20's goal: 1,000 requests/s with p99 < 10 ms and stable
memory over 60 s). Starts a greyd of its own (no audit log) with a few tenants, so that the page has
per-tenant series, then sends GET /metrics on keep-alive connections at a fixed rate, open loop: each
request has a scheduled time, and its latency counts from that time, so a stall shows as latency rather
than as fewer requests. Prints one JSON document.

    python3 bench/greyd_metrics_load.py --greyctl build/default/bin/greyctl [--seconds 60] [--rate 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def control(socket_path: Path, request: dict) -> dict:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_path))
        s.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            data += s.recv(65536)
    return json.loads(data)


def client(port: int, first: int, step: int, count: int, start: float, interval: float, latencies: list[float],
           errors: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(first, count, step):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or not body:
                errors.append(f"status {response.status}")
        except (OSError, http.client.HTTPException) as e:
            errors.append(repr(e))
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append(time.perf_counter() - scheduled)
    connection.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--greyctl", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=1000, help="requests per second, all clients together")
    parser.add_argument("--clients", type=int, default=4, help="keep-alive connections")
    args = parser.parse_args()
    args.greyctl = os.path.abspath(args.greyctl)  # greyd runs from a temporary directory

    with tempfile.TemporaryDirectory() as tmp:
        run_dir, port = Path(tmp) / "run", free_port()
        subprocess.run([args.greyctl, "--no-env", "daemon", "start", "--run-dir", str(run_dir), "--port", str(port), "--no-audit"],
                       check=True, capture_output=True, cwd=tmp)
        pid = int((run_dir / "greyd.pid").read_text())
        try:
            for i in range(8):
                control(run_dir / "control.sock", {"command": "set_weight", "tenant": f"tenant-{i}", "weight": 1 + i})
            count = int(args.seconds * args.rate)
            latencies: list[list[float]] = [[] for _ in range(args.clients)]
            errors: list[str] = []
            start = time.perf_counter() + 0.5
            cpu_before = cpu_seconds(pid)
            threads = [threading.Thread(target=client, args=(port, c, args.clients, count, start, 1 / args.rate, latencies[c], errors))
                       for c in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(max(0.0, start + min(5.0, args.seconds / 4) - time.perf_counter()))
            early = memory_kib(pid)
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            late = memory_kib(pid)
            cpu_used = cpu_seconds(pid) - cpu_before
        finally:
            subprocess.run([args.greyctl, "--no-env", "daemon", "stop", "--run-dir", str(run_dir)], capture_output=True, cwd=tmp)
    done = sorted(x for per_client in latencies for x in per_client)
    result = {
        "requests": len(done),
        "errors": len(errors),
        "first_errors": errors[:5],
        "seconds": round(elapsed, 2),
        "achieved_per_s": round(len(done) / elapsed, 1),
        "target_per_s": args.rate,
        "latency_ms": {"p50": round(percentile(done, 0.5) * 1e3, 3), "p99": round(percentile(done, 0.99) * 1e3, 3),
                       "max": round(done[-1] * 1e3, 3)} if done else None,
        # What greyd itself spent: when the client cannot keep the rate, this says whether greyd could.
        "greyd_cpu_ms_per_request": round(cpu_used * 1e3 / max(1, len(done)), 3),
        "greyd_rss_kib": {"early": early["VmRSS"], "end": late["VmRSS"], "peak": late["VmHWM"]},
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
    }
    print(json.dumps(result, indent=2))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
