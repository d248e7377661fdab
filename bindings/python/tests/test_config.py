import pytest

import grey
from grey import capi


def test_profiles_and_values():
    with grey.Config("aggressive") as cfg:
        assert set(cfg) == set(grey.config_keys())
        cfg["memory.compression.algorithm"] = "zstd"
        assert cfg.get("memory.compression.algorithm") == "zstd"
        cfg.set("safety.dry_run_default", True)
        assert cfg["safety.dry_run_default"] == "true"
        cfg.set("detection.gpu_index", 1)
        assert cfg["detection.gpu_index"] == "1"
        lines = [l.strip() for l in cfg.to_yaml().splitlines()]
        assert [l for l in lines if l.startswith("algorithm:")] == ['algorithm: "zstd"']
        assert [l for l in lines if l.startswith("pool_size_mb:")] == ["pool_size_mb: 4096  # accepted, not yet acted on"]
        assert cfg.to_dict()["detection.gpu_index"] == "1"
    assert cfg.closed


def test_unknown_profile_and_key():
    with pytest.raises(grey.InvalidArgument, match="unknown profile 'nope'"):
        grey.Config("nope")
    cfg = grey.Config()
    with pytest.raises(grey.Error) as caught:
        cfg.get("no.such.key")
    assert "no.such.key" in str(caught.value)
    with pytest.raises(grey.ConfigError, match="no.such.key"):
        cfg.set("no.such.key", "1")
    with pytest.raises(TypeError):
        cfg.set("detection.gpu_index", [1])


def test_load_file_and_string(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("memory:\n  compression:\n    algorithm: none\n")
    cfg = grey.Config.load(path)
    assert cfg["memory.compression.algorithm"] == "none"
    cfg.load_string("memory:\n  compression:\n    algorithm: lz4\n", origin="inline")
    assert cfg["memory.compression.algorithm"] == "lz4"
    with pytest.raises(grey.ConfigError, match="inline2:3"):
        cfg.load_string("memory:\n  compression:\n    algorithm: 7zip\n", origin="inline2")
    assert cfg["memory.compression.algorithm"] == "lz4"  # unchanged after a failed load
    with pytest.raises(grey.Error):
        grey.Config.load(tmp_path / "missing.yaml")


def test_apply_env(monkeypatch):
    monkeypatch.setenv("GREY_GPU_INDEX", "3")
    cfg = grey.Config()
    assert cfg["detection.gpu_index"] != "3"
    cfg.apply_env()
    assert cfg["detection.gpu_index"] == "3"


def test_closed_config():
    cfg = grey.Config()
    cfg.close()
    cfg.close()
    with pytest.raises(ValueError, match="closed"):
        cfg.to_yaml()


def test_text_protocol_reports_the_size_it_needs():
    handle = capi.grey_config_create(None)
    try:
        yaml = grey.Config().to_yaml()
        with pytest.raises(grey.BufferTooSmall) as caught:
            capi.grey_config_to_yaml(handle, 1)
        assert caught.value.required == len(yaml.encode()) + 1
        assert capi.grey_config_to_yaml(handle, caught.value.required) == yaml
    finally:
        capi.grey_config_destroy(handle)
