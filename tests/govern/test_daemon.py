"""greyd end to end: start, stop, status, double-start refusal, /metrics through prometheus_client's parser
and a real Prometheus, control refused without credentials, the emergency stop, fuzzed HTTP request lines,
and validate-performance on the builtin workload.

    python3 -m pytest tests/govern/test_daemon.py   (GREYCTL names the greyctl binary)
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import signal
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


def greyctl(*args: str, cwd: Path, check: bool = True, env: dict | None = None,
            global_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    result = subprocess.run([GREYCTL, "--no-env", *global_args, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
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
    def __init__(self, root: Path, env: dict | None = None, global_args: tuple[str, ...] = ()):
        self.root = root
        self.run_dir = root / "run"
        self.port = free_port()
        self.env = env
        self.global_args = global_args

    def start(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        return greyctl("daemon", "start", "--run-dir", str(self.run_dir), "--port", str(self.port), "--sample-period-ms", "20",
                       *extra, cwd=self.root, check=check, env=self.env, global_args=self.global_args)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return greyctl(*args, "--run-dir", str(self.run_dir), cwd=self.root, check=check, env=self.env, global_args=self.global_args)

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
    d = Daemon(keyed_root(tmp_path / "greyd"))
    d.start()
    yield d
    d.ctl("daemon", "stop", check=False)


def keyed_root(root: Path) -> Path:
    """`root` with an audit key pair, the writer key where greyd looks for it (./proofs)."""
    (root / "proofs").mkdir(parents=True)
    greyctl("audit", "keygen", "--out", str(root / "audit.key"), cwd=root)
    shutil.copy(root / "audit.key.writer", root / "proofs" / "audit.key.writer")
    os.chmod(root / "proofs" / "audit.key.writer", 0o600)
    return root


def audit_types(d: Daemon) -> list[str]:
    out = greyctl("audit", "show", "--log", str(d.root / "proofs" / "audit.log"), cwd=d.root).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def test_start_status_double_start_and_stop(daemon):
    status = json.loads(daemon.ctl("daemon", "status", "--json").stdout)
    assert status["running"] is True
    assert status["daemon"]["http"] == f"127.0.0.1:{daemon.port}"
    assert status["devices"][0]["backend"] == "host"
    second = daemon.start(check=False)
    assert second.returncode == 5  # failed: greyctl's exit classes (docs/cli.md)
    assert "already running" in second.stderr
    fg = greyctl("daemon", "start", "--foreground", "--run-dir", str(daemon.run_dir), "--port", str(free_port()), cwd=daemon.root, check=False)
    assert fg.returncode == 5 and "already running" in fg.stderr
    assert get(daemon.port, "/healthz") == (200, "ok\n")
    assert "serving http://127.0.0.1" in daemon.ctl("daemon", "logs").stdout
    daemon.ctl("daemon", "stop")
    assert daemon.ctl("daemon", "status", check=False).returncode == 4  # unavailable
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
                 "grey_tenant_wait_seconds", "grey_audit_records", "grey_audit_head_info", "grey_governor_paced_seconds"):
        assert name in families, name
    tenants = [s for s in families["grey_tenant_admitted"].samples if s.name == "grey_tenant_admitted_total"]
    assert [(s.labels["tenant"], s.value) for s in tenants] == [('we"ird\\name', 1.0)]
    modes = {s.labels["mode"]: s.value for s in families["grey_governor_mode"].samples}
    assert sum(modes.values()) == 1.0
    # The host has no temperature sensor here or has one: either way no 0 stands in for a missing value.
    assert all(s.value > -300 for s in families.get("grey_device_temperature_celsius", []).samples) if "grey_device_temperature_celsius" in families else True


# /status telemetry key -> the /metrics family that exports it.
TELEMETRY_METRICS = {"temperature_c": "grey_device_temperature_celsius", "power_draw_mw": "grey_device_power_watts",
                     "energy_total_mj": "grey_device_energy_joules", "utilization_percent": "grey_device_utilization_ratio",
                     "memory_used_bytes": "grey_device_memory_used_bytes", "graphics_clock_mhz": "grey_device_graphics_clock_hertz",
                     "throttle_time_power_ns": "grey_device_throttle_power_seconds",
                     "throttle_time_thermal_ns": "grey_device_throttle_thermal_seconds"}


def test_metrics_come_from_measured_state(daemon):
    """Every figure is one the daemon measured: no memory multiplier (nothing measures one yet), no pool
    statistics of greyd's own context (it allocates nothing: zeros by construction), a device reading only
    where the device gave one, and the governor's counters move with the work admitted."""
    def scrape():
        return {f.name: f for f in text_string_to_metric_families(get(daemon.port, "/metrics")[1])}

    def value(families, name, **labels):
        return [s.value for s in families[name].samples if s.labels == labels and not s.name.endswith("_created")][0]

    def reported() -> set[str]:
        telemetry = json.loads(get(daemon.port, "/status")[1])["devices"][0]["telemetry"]
        return {key for key in TELEMETRY_METRICS if isinstance(telemetry.get(key), (int, float))}

    # The telemetry behind both pages is refreshed once a second: compare a scrape with the readings
    # /status gave just before and just after it, when those agree.
    for _ in range(20):
        first, before, second = reported(), scrape(), reported()
        if first == second:
            break
    assert first == second, "the readings never held still across a scrape"
    assert {family for key, family in TELEMETRY_METRICS.items() if family in before} == {TELEMETRY_METRICS[k] for k in first}
    assert [n for n in before if n.startswith("grey_memory_") or "multiplier" in n] == []
    device = json.loads(get(daemon.port, "/status")[1])["devices"][0]
    assert device["memory"]["multiplier"] is None and "allocated_bytes" not in device["memory"]
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.run_dir / "control.sock"))
        answer = daemon.control({"command": "admit", "tenant": "measured", "cost_ns": 3_000_000}, s)
        assert daemon.control({"command": "release", "ticket": answer["ticket"], "actual_ns": 2_500_000}, s)["ok"]
    after = scrape()
    assert value(after, "grey_governor_admitted", device="0") == value(before, "grey_governor_admitted", device="0") + 1
    assert value(after, "grey_tenant_admitted_cost_seconds", tenant="measured") == pytest.approx(0.003)
    assert value(after, "grey_tenant_actual_cost_seconds", tenant="measured") == pytest.approx(0.0025)


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
    assert daemon.ctl("daemon", "tenant-weight", "batch", "-1", check=False).returncode == 5
    assert daemon.ctl("daemon", "reload").returncode == 0
    assert daemon.control({"command": "no-such"})["ok"] is False
    assert "greyd.tenant_weight" in audit_types(daemon) and "greyd.reload" in audit_types(daemon)


def request_line_is_http(raw: str) -> bool:
    """Whether the first line of `raw` has the form METHOD SP TARGET SP HTTP/x.y at all."""
    first = raw.lstrip("\r\n").replace("\r\n", "\n").split("\n", 1)[0]
    return re.fullmatch(r"[!-~]+ [!-~]+ HTTP/[0-9]\.[0-9]", first) is not None


def test_malformed_requests_get_4xx_and_never_a_crash(daemon):
    rng = random.Random(20)
    pieces = ["GET", "POST", "G\x00T", "/metrics", "/../../etc/passwd", "%", "%zz", "HTTP/1.1", "HTTP/9.9", "HTTP/1.1\r\n",
              " ", "\t", "\r\n", "\n", "Host:", "Content-Length: -1", "Content-Length: 99999999999999999999",
              "Transfer-Encoding: chunked", "\xff\xfe", "A" * 9000, "?" + "a=" * 500, "\r\n\r\n"]
    unanswered_http: list[str] = []
    for _ in range(300):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        # Empty lines before a request line are skipped (RFC 9112, 2.2): the server rightly waits for
        # the request until its idle timeout, so the test waits only long enough to see no crash.
        blank = line.strip("\r\n") == ""
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=1 if blank else 10) as s:
            try:
                s.sendall(line.encode("latin-1", "replace") + b"\r\n\r\n")
                reply = s.recv(4096)
            except (ConnectionResetError, BrokenPipeError, TimeoutError):
                reply = b""
        if not reply:
            # libmicrohttpd closes, without an answer, a first line that is not METHOD TARGET VERSION at all.
            if request_line_is_http(line):
                unanswered_http.append(line[:60])
            continue
        code = int(reply.split(b" ", 2)[1])
        # 505 only for a well-formed line naming an HTTP version other than 1.0 and 1.1.
        assert code < 500 or (code == 505 and "HTTP/9.9" in line), (line[:80], reply[:80])
        if code == 200:
            assert line.startswith("GET /"), line[:80]
    assert not unanswered_http, f"{len(unanswered_http)} HTTP requests got no answer, e.g. {unanswered_http[:5]}"
    assert get(daemon.port, "/healthz") == (200, "ok\n")


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on `port`, from /proc/net/tcp and tcp6."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, words))
    return found


def test_http_listens_on_loopback_only_by_default(daemon):
    assert listening_addresses(daemon.port) == ["127.0.0.1"]
    # Host names are refused: a name can resolve to an address nobody meant to expose.
    other = Daemon(daemon.root)
    other.run_dir = daemon.root / "run2"
    refused = other.start("--bind", "localhost", check=False)
    assert refused.returncode == 5
    assert "--bind 'localhost' is not a numeric IPv4 or IPv6 address" in refused.stderr, refused.stderr
    assert listening_addresses(other.port) == []


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def flood(port: int, head: bytes, chunk: bytes, limit: int) -> bytes:
    """Sends `head`, then `chunk` over and over (up to `limit` bytes) until greyd stops reading; its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        sent = 0
        try:
            s.sendall(head)
            while sent < limit:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return s.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return b""


def status_code(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1."), reply[:80]
    return int(reply.split(b" ", 2)[1])


def test_oversize_requests_are_refused_and_memory_stays_bounded(daemon):
    pid = int((daemon.run_dir / "greyd.pid").read_text())
    before = rss_kib(pid)
    limit = 64 << 20
    # Endless headers, one endless header line, an endless request line, a body on a GET, a chunked body.
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(64))
    assert status_code(flood(daemon.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n", headers, limit)) == 431
    assert status_code(flood(daemon.port, b"GET /metrics HTTP/1.1\r\nX-Long: ", b"v" * 65536, limit)) == 431
    assert status_code(flood(daemon.port, b"GET /metrics?", b"a" * 65536, limit)) in (414, 431)
    body = flood(daemon.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n", b"a" * 65536, limit)
    assert status_code(body) == 413 and b"no request body" in body
    chunked = b"GET /status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert status_code(flood(daemon.port, chunked, b"10000\r\n" + b"a" * 65536 + b"\r\n", limit)) == 413
    # Five floods of 64 MiB each cost the daemon at most a few connection buffers.
    assert rss_kib(pid) - before < 16 * 1024, (before, rss_kib(pid))
    assert get(daemon.port, "/healthz") == (200, "ok\n")


def held_connections(pid: int, port: int) -> int:
    """How many accepted TCP connections on `port` the process `pid` holds open (not the listening socket,
    and not connections still waiting in the kernel's accept queue, which cost the process nothing)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if int(fields[1].split(":")[1], 16) == port and fields[3] != "0A" and fields[9] in inodes:
                    held += 1
    return held


def test_connections_beyond_the_limit_are_not_held(daemon):
    limit = 64  # HttpServer::kMaxConnections
    pid = int((daemon.run_dir / "greyd.pid").read_text())
    idle = [socket.create_connection(("127.0.0.1", daemon.port), timeout=10) for _ in range(limit + 16)]
    try:
        time.sleep(1)  # lets the daemon accept what it will
        held = held_connections(pid, daemon.port)
        assert 0 < held <= limit, held
    finally:
        for s in idle:
            s.close()
    # Once they are gone (the daemon notices a closed connection at once), the pages answer again.
    deadline = time.time() + 20
    while time.time() < deadline and held_connections(pid, daemon.port) > 0:
        time.sleep(0.2)
    assert get(daemon.port, "/healthz") == (200, "ok\n")


@pytest.mark.parametrize("page", ["/healthz", "/status", "/metrics"])
def test_every_page_refuses_bad_requests(daemon, page):
    def raw(request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and (b"Content-Length: 0" in data or data.endswith(b"\n")):
                    break
            return data

    path = page.encode()
    for method in (b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"BREW"):
        reply = raw(method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        assert status_code(reply) == 405 and b"Allow: GET, HEAD" in reply, (method, reply[:120])
    assert status_code(raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")) == 413
    assert status_code(raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")) == 400
    assert status_code(raw(b"GET " + path + b"/x HTTP/1.1\r\nHost: x\r\n\r\n")) == 404
    assert status_code(raw(b"GET " + path + b"%00x HTTP/1.1\r\nHost: x\r\n\r\n")) == 404  # never cut at the NUL
    assert status_code(raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"v" * 20000 + b"\r\n\r\n")) == 431
    head = raw(b"HEAD " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_code(head) == 200 and head.endswith(b"\r\n\r\n"), head[-80:]
    # A query string is ignored: the page is the same.
    assert get(daemon.port, page + "?x=%00&y")[0] == 200


# Each control command with each kind of bad input: refused, naming the field, and nothing done.
BAD_CONTROL = [
    ({"command": "status", "extra": 1}, 'status: unknown field "extra"'),
    ({"command": "shutdown", "now": True}, 'shutdown: unknown field "now"'),
    ({"command": "clear_stop", "x": None}, 'clear_stop: unknown field "x"'),
    ({"command": "reload", "config": "/etc/passwd"}, 'reload: unknown field "config"'),
    ({"command": "emergency_stop", "reason": 7}, "emergency_stop: 'reason' must be a string"),
    ({"command": "emergency_stop", "reason": ""}, "emergency_stop: 'reason' must be 1 to 255 bytes (it is 0)"),
    ({"command": "emergency_stop", "reason": "r" * 256}, "emergency_stop: 'reason' must be 1 to 255 bytes (it is 256)"),
    ({"command": "emergency_stop", "reason": "a\x00b"}, "emergency_stop: 'reason' holds a NUL byte (at byte 1)"),
    ({"command": "set_weight", "weight": 2}, "set_weight: the field 'tenant' is required"),
    ({"command": "set_weight", "tenant": "t"}, "set_weight: the field 'weight' is required"),
    ({"command": "set_weight", "tenant": "t", "weight": "2"}, "set_weight: 'weight' must be a number"),
    ({"command": "set_weight", "tenant": "t\x00u", "weight": 2}, "set_weight: 'tenant' holds a NUL byte (at byte 1)"),
    ({"command": "set_weight", "tenant": "t" * 64, "weight": 2}, "set_weight: 'tenant' must be 1 to 63 bytes (it is 64)"),
    ({"command": "set_weight", "tenant": "t", "weight": 0}, "weight"),
    ({"command": "set_weight", "tenant": "t", "weight": -1.5}, "weight"),
    ({"command": "admit"}, "admit: the field 'tenant' is required"),
    ({"command": "admit", "tenant": ["a"]}, "admit: 'tenant' must be a string"),
    ({"command": "admit", "tenant": "a\x00"}, "admit: 'tenant' holds a NUL byte (at byte 1)"),
    ({"command": "admit", "tenant": "a", "cost_ns": -1}, "admit: 'cost_ns' must be an integer from 0 to 18446744073709551615"),
    ({"command": "admit", "tenant": "a", "cost_ns": "1000"}, "admit: 'cost_ns' must be an integer"),
    ({"command": "admit", "tenant": "a", "cost_ns": 1.5}, "admit: 'cost_ns' must be an integer"),
    ({"command": "admit", "tenant": "a", "device": 2**32}, "admit: 'device' must be an integer from 0 to 4294967295"),
    ({"command": "admit", "tenant": "a", "device": 7}, "device index 7 is out of range"),
    ({"command": "admit", "tenant": "a", "priority": 2**32}, "admit: 'priority' must be an integer from 0 to 4294967295"),
    ({"command": "admit", "tenant": "a", "timeout_ms": -5}, "admit: 'timeout_ms' must be an integer"),
    ({"command": "admit", "tenant": "a", "tickets": 1}, 'admit: unknown field "tickets"'),
    ({"command": "release"}, "release: the field 'ticket' is required"),
    ({"command": "release", "ticket": "1"}, "release: 'ticket' must be an integer"),
    ({"command": "release", "ticket": 12345}, "ticket 12345 was not admitted on this connection"),
    ({"command": "release", "ticket": 1, "actual_ns": -1}, "release: 'actual_ns' must be an integer"),
    ({"command": "no-such"}, 'unknown command "no-such"'),
    ({"command": 5}, 'a request is one JSON object with a "command" string'),
    ({"commands": "status"}, 'a request is one JSON object with a "command" string'),
    (["status"], 'a request is one JSON object with a "command" string'),
]


def test_every_control_command_refuses_bad_input(daemon):
    for request, message in BAD_CONTROL:
        answer = daemon.control(request)
        assert answer["ok"] is False and message in answer["error"], (request, answer)
    status = json.loads(daemon.ctl("daemon", "status", "--json").stdout)
    assert status["emergency_stop"]["active"] is False and status["tenants"] == []
    assert status["daemon"]["pid"] == int((daemon.run_dir / "greyd.pid").read_text())  # still the same daemon
    # Bytes that are not JSON, and a line past the limit (64 KiB), which also ends the connection.
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(daemon.run_dir / "control.sock"))
        s.sendall(b"\xff\xfe{\n")
        assert b"a request is one JSON object" in s.recv(4096)
        s.sendall(b"x" * (70 * 1024))
        assert b"request line too long" in s.recv(4096)
        assert s.recv(4096) == b""


def test_tenants_created_over_the_socket_are_bounded(daemon):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.run_dir / "control.sock"))
        for i in range(256):
            assert daemon.control({"command": "set_weight", "tenant": f"t{i}", "weight": 1}, s)["ok"]
        refused = daemon.control({"command": "admit", "tenant": "one-too-many", "cost_ns": 1}, s)
        assert refused["ok"] is False and "256 tenants, its limit" in refused["error"], refused
        assert daemon.control({"command": "admit", "tenant": "t3", "cost_ns": 1}, s)["ok"]  # existing ones still work


def audit_records(d: Daemon) -> list[dict]:
    """The records of greyd's log as `audit show` prints them: index, epoch, type, payload."""
    out = greyctl("audit", "show", "--log", str(d.root / "proofs" / "audit.log"), cwd=d.root).stdout
    records = []
    for line in out.splitlines():
        _, _, _, kind, payload = line.split(maxsplit=4)
        records.append({"type": kind, "payload": json.loads(payload)})
    return records


@pytest.fixture
def fake_gpu(tmp_path):
    """A greyd whose devices include a fake NVIDIA GPU (tests/cuda's fake driver and NVML), whose power
    limit lives in a file (650 W at first) with the history of every set beside it."""
    fake, plugins = os.environ.get("GREY_FAKE_DRIVER_DIR"), os.environ.get("GREY_PLUGIN_DIR")
    if not fake or not plugins:
        pytest.skip("the CUDA backend and its fake driver are not built here (tests/cuda)")
    power = tmp_path / "power"
    power.write_text("650000")
    env = {"LD_LIBRARY_PATH": fake, "FAKE_NVML_POWER_FILE": str(power)}
    d = Daemon(keyed_root(tmp_path / "greyd"), env=env, global_args=("--backend-dir", plugins))
    yield d, power
    d.ctl("daemon", "stop", check=False)


def power_history(power: Path) -> list[str]:
    log = Path(str(power) + ".log")
    return log.read_text().splitlines() if log.exists() else []


def gpu_governor(d: Daemon) -> dict:
    status = json.loads(d.ctl("daemon", "status", "--json").stdout)
    [gpu] = [dev for dev in status["devices"] if dev["backend"] == "cuda"]
    return gpu["governor"]


def test_power_limit_is_never_touched_without_the_opt_in(fake_gpu):
    d, power = fake_gpu
    d.start()
    assert gpu_governor(d)["power_limit_held_mw"] is None
    d.ctl("emergency-stop", "--reason", "test")
    d.ctl("emergency-stop", "--clear")
    d.ctl("daemon", "stop")
    assert power_history(power) == [] and power.read_text() == "650000"
    assert "greyd.power_limit" not in audit_types(d)


def test_power_limit_opt_in_is_restored_on_emergency_stop_and_on_exit(fake_gpu):
    d, power = fake_gpu
    d.start("--power-limit-w", "300")
    assert power.read_text() == "300000"
    governor = gpu_governor(d)
    assert (governor["power_limit_held_mw"], governor["power_limit_restore_mw"]) == (300000, 650000)
    assert (d.run_dir / "power-limits.json").exists()
    d.ctl("emergency-stop", "--reason", "rack too hot")
    assert power.read_text() == "650000"
    assert gpu_governor(d)["power_limit_held_mw"] is None
    assert not (d.run_dir / "power-limits.json").exists()
    [stop] = [r for r in audit_records(d) if r["type"] == "greyd.emergency_stop"]
    assert stop["payload"]["reverted"] == [{"device": 1, "power_limit_mw": 650000, "ok": True}]
    d.ctl("emergency-stop", "--clear")  # resuming admission does not set the limit again
    d.ctl("daemon", "stop")
    assert power_history(power) == ["set 300000", "set 650000"]
    # Held again by a new daemon, and restored when it exits.
    d.start("--power-limit-w", "300")
    assert power.read_text() == "300000"
    d.ctl("daemon", "stop")
    assert power.read_text() == "650000"
    assert power_history(power) == ["set 300000", "set 650000"] * 2
    assert audit_types(d).count("greyd.power_limit") == 2


def test_power_limits_left_by_a_killed_daemon_are_restored_at_the_next_start(fake_gpu):
    d, power = fake_gpu
    d.start("--power-limit-w", "250")
    pid = int((d.run_dir / "greyd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 30
    while time.time() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert power.read_text() == "250000"  # a killed process restores nothing: the next start must
    d.start()
    assert power.read_text() == "650000"
    assert not (d.run_dir / "power-limits.json").exists()
    [restored] = [r for r in audit_records(d) if r["type"] == "greyd.power_limit_restored"]
    assert restored["payload"]["restored"] == [{"device": 1, "power_limit_mw": 650000}]
    assert gpu_governor(d)["power_limit_held_mw"] is None
    assert power_history(power) == ["set 250000", "set 650000"]


def test_a_power_limit_the_driver_refuses_stops_greyd_from_starting(fake_gpu):
    d, power = fake_gpu
    d.env["FAKE_NVML_FAIL"] = "nvmlDeviceSetPowerManagementLimit:4"
    refused = d.start("--power-limit-w", "300", check=False)
    assert refused.returncode == 5
    assert "options->power_limit_mw: device 1 cannot hold 300000 mW" in refused.stderr, refused.stderr
    assert power_history(power) == [] and power.read_text() == "650000"


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
    assert any(v.startswith("throughput") and ("LOSS" in v or "gain" in v or "no change" in v or "within the run-to-run spread" in v)
               for v in result["verdicts"])
    # The order alternates: the first pair runs ungoverned first, the second governed first.
    assert [r["second_in_pair"] for r in result["runs"]["governed"]] == [True, False]
    assert [r["second_in_pair"] for r in result["runs"]["ungoverned"]] == [False, True]
    # The host device has no sensor the governor needs, so it held nothing back, and says so.
    assert any(v.startswith("the governor held back no work") for v in result["verdicts"]), result["verdicts"]
    assert "result recorded in the audit log" in out.stderr
    assert audit_types_of(tmp_path) == ["grey.proof"]


def audit_types_of(root: Path) -> list[str]:
    out = greyctl("audit", "show", "--log", str(root / "proofs" / "audit.log"), cwd=root).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]
