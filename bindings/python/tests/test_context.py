import re
import threading
from pathlib import Path

import pytest

import grey
from grey import capi

# Fields that change between two queries of the same device.
VOLATILE = {"memory_free_bytes"}


def stable(device: dict) -> dict:
    out = {k: v for k, v in device.items() if k not in VOLATILE}
    for section in ("unavailable", "unavailable_states", "sources"):
        out[section] = {k: v for k, v in device[section].items() if k not in VOLATILE}
    return out


def test_version_agrees_with_header_constants():
    major, minor, patch = (int(x) for x in grey.version_string().split("."))
    assert grey.version() == (major << 16) | (minor << 8) | patch
    assert grey.version() == capi.GREY_VERSION_NUMBER
    assert grey.build_revision()


def test_devices_match_greyctl(greyctl_devices):
    with grey.Context() as ctx:
        ours = [stable(d.to_dict()) for d in ctx.devices()]
    assert ours == [stable(d) for d in greyctl_devices]


def test_spec_attributes_and_fields():
    with grey.Context() as ctx:
        host = ctx.device(0)
    assert host.backend == "host" and host.type == "cpu" and host.vendor == "cpu"
    assert isinstance(host.name, str) and host.name
    assert host.memory_total_bytes > 0 and host.compute_units >= 1
    assert host.uuid is None  # a CPU has none: unavailable fields read as None ...
    uuid = host.fields["uuid"]
    assert uuid.state == "not_applicable" and uuid.reason  # ... and say why
    assert host.fields["memory_total_bytes"].unit == "bytes" and host.fields["memory_total_bytes"].source == "os"
    with pytest.raises(AttributeError):
        host.no_such_field


def test_out_of_range_device_raises_invalid_argument_with_the_c_message():
    with grey.Context() as ctx:
        count = ctx.device_count()
        with pytest.raises(grey.InvalidArgument) as caught:
            ctx.device(count + 5)
    err = caught.value
    assert isinstance(err, grey.Error)
    assert err.status == capi.GREY_ERROR_INVALID_ARGUMENT
    assert f"device index {count + 5} is out of range" in str(err)
    assert err.status_name == capi.grey_status_string(capi.GREY_ERROR_INVALID_ARGUMENT)


def test_telemetry():
    with grey.Context() as ctx:
        first = ctx.telemetry(0)
        second = ctx.telemetry(0)
        with pytest.raises(grey.InvalidArgument):
            ctx.telemetry(ctx.device_count())
    assert second.timestamp_ns >= first.timestamp_ns > 0
    as_dict = first.to_dict()
    keys = {d.key for d in grey._fields.descriptions(capi.GREY_FIELD_GROUP_TELEMETRY)}
    assert keys <= set(as_dict)
    assert first.memory_used_bytes is None or first.memory_used_bytes > 0


def test_a_named_backend_that_is_not_there_fails_unless_optional():
    with pytest.raises(grey.Unsupported, match="backend 'nosuchbackend' is not available: requested, but no libgrey-backend-nosuchbackend.so"):
        grey.Context(backends=["host", "nosuchbackend"])
    with grey.Context(backends="host") as ctx:
        assert ctx.device_count() >= 1


def test_backends_report_and_search_path():
    with grey.Context(backends=["host", "nosuchbackend"], require_backends=False) as ctx:
        report = {b.name: b for b in ctx.backends()}
        path = ctx.backend_search_path()
    assert report["host"].outcome == "loaded" and report["host"].device_count >= 1
    assert report["nosuchbackend"].outcome == "not_found"
    assert report["host"].to_dict()["name"] == "host"
    assert path and all(isinstance(p, str) and p for p in path)


def test_backend_dir_is_searched_first(tmp_path):
    with grey.Context(backend_dir=tmp_path) as ctx:
        assert ctx.backend_search_path()[0] == str(tmp_path)


def test_plugins_are_searched_only_beside_the_package_or_where_the_host_says():
    # Not in a directory of the wheel's build (a deleted temporary directory that anyone could
    # re-create), nor at any other path fixed when the extension was built.
    beside = Path(capi._capi.__file__).resolve().parent / "grey"
    with grey.Context(backends="host") as ctx:
        dirs = ctx.plugin_dirs()
        path = ctx.backend_search_path()
    assert [(d.origin, d.path) for d in dirs] == [("beside_library", str(beside))]
    assert path == [str(beside)]
    assert dirs[0].state in ("searched", "missing") and dirs[0].reason
    assert dirs[0].to_dict()["origin"] == "beside_library"


def test_an_untrusted_backend_dir_is_refused_with_its_reason(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with grey.Context(backends="host", backend_dir=shared, log_level="off") as ctx:
        first = ctx.plugin_dirs()[0]
    assert (first.origin, first.state, first.path) == ("host", "refused", str(shared))
    assert f"directory '{shared}' is writable by group and others (mode 0777)" in first.reason


def test_closed_context_refuses_calls():
    ctx = grey.Context()
    with ctx:
        assert not ctx.closed
    assert ctx.closed
    ctx.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        ctx.devices()


def test_log_callback_receives_messages():
    messages = []
    with grey.Context(log_level="debug", log=lambda level, text: messages.append((level, text))):
        pass
    assert messages, "a debug-level context logs its backend search"
    assert all(level in {"DEBUG", "INFO", "WARNING", "ERROR"} for level, _ in messages)


def test_log_callback_from_several_threads():
    seen = []
    lock = threading.Lock()

    def log(level, text):
        with lock:
            seen.append(text)

    def work():
        with grey.Context(log_level="debug", log=log) as ctx:
            ctx.devices()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) >= 4


def test_bad_log_level():
    with pytest.raises(ValueError, match="unknown log level"):
        grey.Context(log_level="chatty")


def test_config_path_and_profile(tmp_path):
    cfg = tmp_path / "grey.yaml"
    cfg.write_text("memory:\n  compression:\n    algorithm: zstd\n")
    with grey.Context(config_path=cfg, profile="conservative") as ctx:
        view = ctx.config
        assert view["memory.compression.algorithm"] == "zstd"
        with pytest.raises(TypeError, match="read-only"):
            view["memory.compression.algorithm"] = "lz4"
    assert view.closed
    with pytest.raises(ValueError, match="closed"):
        view.get("memory.compression.algorithm")


def test_bad_config_file_is_a_config_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("memory:\n  compression:\n    algorithm: 7zip\n")
    with pytest.raises(grey.ConfigError, match=re.escape("memory.compression.algorithm")):
        grey.Context(config_path=cfg)


def test_env_overrides_only_when_asked(monkeypatch, tmp_path):
    cfg = tmp_path / "env.yaml"
    cfg.write_text("memory:\n  compression:\n    algorithm: none\n")
    monkeypatch.setenv("GREY_CONFIG_PATH", str(cfg))
    with grey.Context() as ctx:
        assert ctx.config["memory.compression.algorithm"] != "none"
    with grey.Context(env_overrides=True) as ctx:
        assert ctx.config["memory.compression.algorithm"] == "none"


def test_a_named_backend_fails_as_greyctl_detect_does(greyctl):
    """grey.Context(backends="cuda") fails whenever `greyctl detect --backend cuda` does (here, without a
    CUDA driver: grey.Unsupported, "backend 'cuda' is not available: ..."), never giving a context
    without the backend that was asked for."""
    import json
    import subprocess

    r = subprocess.run([str(greyctl), "--no-env", "--log-level", "OFF", "detect", "--backend", "cuda", "--json"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        pytest.skip("the CUDA backend is available on this machine")
    error = json.loads(r.stdout)["error"]
    assert (r.returncode, error["class"]) == (4, "unavailable") and error["message"].startswith("backend 'cuda' is not available: ")
    with pytest.raises(grey.Unsupported, match="^backend 'cuda' is not available: "):
        grey.Context(backends="cuda")
