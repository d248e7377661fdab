"""greyd end to end: start, stop, status, double-start refusal, /metrics through prometheus_client's parser
and a real Prometheus, control refused without credentials, the emergency stop, fuzzed HTTP request lines,
and validate-performance on the builtin workload.

    python3 -m pytest tests/govern/test_daemon.py   (GREYCTL names the greyctl binary)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

GREYCTL = os.environ.get("GREYCTL", "greyctl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def greyctl(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([GREYCTL, "--no-env", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"greyctl {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Daemon:
    def __init__(self, root: Path):
        self.root = root
        self.run_dir = root / "run"
        self.port = free_port()

    def start(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        return greyctl("daemon", "start", "--run-dir", str(self.run_dir), "--port", str(self.port), "--sample-period-ms", "20",
                       *extra, cwd=self.root, check=check)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return greyctl(*args, "--run-dir", str(self.run_dir), cwd=self.root, check=check)

    def control(self, request: dict, sock: socket.socket | None = None) -> dict:
        own = sock is None
        if own:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(self.run_dir / "control.sock"))
        sock.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, "greyd closed the connection"
            data += chunk
        if own:
            sock.close()
        return json.loads(data)


@pytest.fixture
def daemon(tmp_path):
    root = tmp_path / "greyd"
    (root / "proofs").mkdir(parents=True)
    greyctl("audit", "keygen", "--out", str(root / "audit.key"), cwd=root)
    shutil.copy(root / "audit.key.writer", root / "proofs" / "audit.key.writer")
    os.chmod(root / "proofs" / "audit.key.writer", 0o600)
    d = Daemon(root)
    d.start()
    yield d
    d.ctl("daemon", "stop", check=False)


def audit_types(d: Daemon) -> list[str]:
    out = greyctl("audit", "show", "--log", str(d.root / "proofs" / "audit.log"), cwd=d.root).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def test_start_status_double_start_and_stop(daemon):
    status = json.loads(daemon.ctl("daemon", "status", "--json").stdout)
    assert status["running"] is True
    assert status["daemon"]["http"] == f"127.0.0.1:{daemon.port}"
    assert status["devices"][0]["backend"] == "host"
    second = daemon.start(check=False)
    assert second.returncode == 1
    assert "already running" in second.stderr
    fg = greyctl("daemon", "start", "--foreground", "--run-dir", str(daemon.run_dir), "--port", str(free_port()), cwd=daemon.root, check=False)
    assert fg.returncode == 1 and "already running" in fg.stderr
    assert get(daemon.port, "/healthz") == (200, "ok\n")
    assert "serving http://127.0.0.1" in daemon.ctl("daemon", "logs").stdout
    daemon.ctl("daemon", "stop")
    assert daemon.ctl("daemon", "status", check=False).returncode == 3
    assert not (daemon.run_dir / "control.sock").exists()
    assert audit_types(daemon)[0] == "greyd.start"
    assert "greyd.stop" in audit_types(daemon) and "grey.proof" in audit_types(daemon)


def test_metrics_parse_with_prometheus_client(daemon):
    # A tenant with a name that needs escaping, admitted once, so that per-tenant series exist.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.run_dir / "control.sock"))
        answer = daemon.control({"command": "admit", "tenant": 'we"ird\\name', "cost_ns": 1000}, s)
        assert answer["ok"], answer
        assert daemon.control({"command": "release", "ticket": answer["ticket"], "actual_ns": 500}, s)["ok"]
    status, text = get(daemon.port, "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("grey_daemon_health_ok", "grey_governor_duty_ratio", "grey_governor_mode", "grey_tenant_admitted",
                 "grey_tenant_wait_seconds", "grey_audit_records", "grey_audit_head_info", "grey_memory_allocated_bytes",
                 "grey_governor_paced_seconds"):
        assert name in families, name
    tenants = [s for s in families["grey_tenant_admitted"].samples if s.name == "grey_tenant_admitted_total"]
    assert [(s.labels["tenant"], s.value) for s in tenants] == [('we"ird\\name', 1.0)]
    modes = {s.labels["mode"]: s.value for s in families["grey_governor_mode"].samples}
    assert sum(modes.values()) == 1.0
    # The host has no temperature sensor here or has one: either way no 0 stands in for a missing value.
    assert all(s.value > -300 for s in families.get("grey_device_temperature_celsius", []).samples) if "grey_device_temperature_celsius" in families else True


def test_a_real_prometheus_scrapes_greyd(daemon, tmp_path):
    prometheus = shutil.which("prometheus")
    assert prometheus, "Debian's prometheus package is not installed (scripts/bootstrap.sh)"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: greyd\n    static_configs:\n"
                      f"      - targets: ['127.0.0.1:{daemon.port}']\n")
    proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        result = None
        while time.time() < deadline:
            try:
                status, body = get(port, "/api/v1/query?query=grey_daemon_health_ok")
                result = json.loads(body)["data"]["result"] if status == 200 else None
            except (OSError, ValueError, KeyError):
                result = None
            if result:
                break
            time.sleep(0.5)
        assert result, "Prometheus never stored a sample of grey_daemon_health_ok"
        assert result[0]["metric"]["job"] == "greyd" and result[0]["value"][1] == "1"
        status, body = get(port, "/api/v1/targets")
        target = json.loads(body)["data"]["activeTargets"][0]
        assert target["health"] == "up", target
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_control_is_refused_without_credentials(daemon):
    # Another user cannot reach the socket at all: the run directory is 0700 and the socket 0600.
    assert oct(daemon.run_dir.stat().st_mode & 0o777) == "0o700"
    assert oct((daemon.run_dir / "control.sock").stat().st_mode & 0o777) == "0o600"
    if os.geteuid() == 0:
        probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                 "try:\n s.connect(sys.argv[1]); print('connected')\nexcept PermissionError: print('refused')\n")
        out = subprocess.run(["python3", "-c", probe, str(daemon.run_dir / "control.sock")], capture_output=True, text=True,
                             user=65534, group=65534, timeout=30)
        assert out.stdout.strip() == "refused", out
    # HTTP offers no control: every method other than GET, and every other path, is refused.
    for method, path in (("POST", "/emergency-stop"), ("POST", "/status"), ("PUT", "/control"), ("DELETE", "/metrics"),
                         ("GET", "/control/emergency_stop"), ("POST", "/reload")):
        req = urllib.request.Request(f"http://127.0.0.1:{daemon.port}{path}", method=method, data=b"{}" if method != "GET" else None)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert 400 <= e.value.code < 500, (method, path, e.value.code)
    status = json.loads(daemon.ctl("daemon", "status", "--json").stdout)
    assert status["emergency_stop"]["active"] is False


def test_emergency_stop_end_to_end(daemon):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.run_dir / "control.sock"))
        first = daemon.control({"command": "admit", "tenant": "app", "cost_ns": 1_000_000}, s)
        assert first["ok"], first
        out = daemon.ctl("emergency-stop", "--reason", "overheating rack 7").stdout
        assert "EMERGENCY STOP" in out
        refused = daemon.control({"command": "admit", "tenant": "app", "cost_ns": 1_000}, s)
        assert refused["ok"] is False and refused["status"] == "stopped", refused
    status = daemon.ctl("daemon", "status").stdout
    assert "EMERGENCY STOP in force" in status and "overheating rack 7" in status
    metrics = {f.name: f for f in text_string_to_metric_families(get(daemon.port, "/metrics")[1])}
    assert metrics["grey_emergency_stop_active"].samples[0].value == 1.0
    assert {s.labels["mode"]: s.value for s in metrics["grey_governor_mode"].samples}["stopped"] == 1.0
    # It survives a restart until cleared.
    daemon.ctl("daemon", "stop")
    daemon.start()
    assert json.loads(daemon.ctl("daemon", "status", "--json").stdout)["emergency_stop"]["active"] is True
    daemon.ctl("emergency-stop", "--clear")
    assert daemon.control({"command": "admit", "tenant": "app", "cost_ns": 1_000})["ok"]
    types = audit_types(daemon)
    assert types.count("greyd.emergency_stop") == 2  # the stop, and its restoration at the restart
    assert "greyd.emergency_clear" in types
    verify = greyctl("audit", "verify", "--log", str(daemon.root / "proofs" / "audit.log"), "--key", str(daemon.root / "audit.key"),
                     cwd=daemon.root, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_weights_and_reload_over_the_control_socket(daemon):
    assert daemon.ctl("daemon", "tenant-weight", "batch", "3.5").returncode == 0
    status = json.loads(daemon.ctl("daemon", "status", "--json").stdout)
    assert [(t["name"], t["weight"]) for t in status["tenants"]] == [("batch", 3.5)]
    assert daemon.ctl("daemon", "tenant-weight", "batch", "-1", check=False).returncode == 1
    assert daemon.ctl("daemon", "reload").returncode == 0
    assert daemon.control({"command": "no-such"})["ok"] is False
    assert "greyd.tenant_weight" in audit_types(daemon) and "greyd.reload" in audit_types(daemon)


def test_malformed_requests_get_4xx_and_never_a_crash(daemon):
    rng = random.Random(20)
    pieces = ["GET", "POST", "G\x00T", "/metrics", "/../../etc/passwd", "%", "%zz", "HTTP/1.1", "HTTP/9.9", "HTTP/1.1\r\n",
              " ", "\t", "\r\n", "\n", "Host:", "Content-Length: -1", "Content-Length: 99999999999999999999",
              "Transfer-Encoding: chunked", "\xff\xfe", "A" * 9000, "?" + "a=" * 500, "\r\n\r\n"]
    answered = 0
    silent: list[str] = []
    for _ in range(300):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
            s.sendall(line.encode("latin-1", "replace") + b"\r\n\r\n")
            try:
                reply = s.recv(4096)
            except (ConnectionResetError, TimeoutError):
                reply = b""
        if not reply:
            silent.append(line[:60])
        else:
            answered += 1
            code = int(reply.split(b" ", 2)[1])
            # A line that happens to be a valid GET of a real page may succeed; nothing else may.
            assert code < 500, (line[:80], reply[:80])
            if code == 200:
                assert line.startswith("GET /metrics") or line.startswith("GET /"), line[:80]
    assert not silent, f"{len(silent)} requests got no answer, e.g. {silent[:5]}"
    assert get(daemon.port, "/healthz") == (200, "ok\n")


def test_validate_performance_builtin_reports_both_runs(tmp_path):
    (tmp_path / "proofs").mkdir()
    greyctl("audit", "keygen", "--out", str(tmp_path / "audit.key"), cwd=tmp_path)
    shutil.copy(tmp_path / "audit.key.writer", tmp_path / "proofs" / "audit.key.writer")
    os.chmod(tmp_path / "proofs" / "audit.key.writer", 0o600)
    out = greyctl("validate-performance", "--workload", "builtin", "--duration", "0.5", "--cooldown", "0", "--repeats", "2",
                  "--chunk-ms", "5", "--json", cwd=tmp_path)
    result = json.loads(out.stdout)
    assert result["repeats"] == 2 and len(result["runs"]["governed"]) == 2 and len(result["runs"]["ungoverned"]) == 2
    for side in ("governed", "ungoverned"):
        assert result[side]["throughput"]["mean"] > 0 and result[side]["throughput"]["n"] == 2
        assert set(result[side]["throttled_s"]) == {"device_power", "device_thermal", "governor_pacing", "governor_hot",
                                                     "governor_unknown_temperature"}
    assert any(v.startswith("throughput") and ("LOSS" in v or "gain" in v or "no change" in v) for v in result["verdicts"])
    assert "result recorded in the audit log" in out.stderr
    assert audit_types_of(tmp_path) == ["grey.proof"]


def audit_types_of(root: Path) -> list[str]:
    out = greyctl("audit", "show", "--log", str(root / "proofs" / "audit.log"), cwd=root).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]
