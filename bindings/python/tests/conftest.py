import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def greyctl():
    """The path of greyctl (GREYCTL, or the default preset's build)."""
    path = Path(os.environ.get("GREYCTL", REPO / "build" / "default" / "bin" / "greyctl"))
    if not path.exists():
        if "GREYCTL" in os.environ:
            pytest.fail(f"GREYCTL={path} does not exist")
        pytest.skip(f"no greyctl at {path}: build the default preset, or set GREYCTL")
    return path


@pytest.fixture(scope="session")
def greyctl_devices(greyctl):
    """The devices as `greyctl detect --json` reports them."""
    out = subprocess.run([str(greyctl), "--no-env", "detect", "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["devices"]


@pytest.fixture
def keys(tmp_path):
    """A fresh audit key pair: (verifier key, writer key) paths."""
    import grey

    verifier, writer = tmp_path / "audit.key", tmp_path / "audit.key.writer"
    grey.audit_keygen(verifier, writer)
    return verifier, writer
