"""libgrey for Python.

    import grey
    with grey.Context() as ctx:
        for dev in ctx.devices():
            print(dev.name, dev.memory_total_bytes, dev.compute_units)

Every failing call raises a subclass of grey.Error carrying libgrey's message. The raw SWIG module is
grey.capi: every function of grey.h, with the same names, for what this layer does not cover yet.
"""

from __future__ import annotations

from . import capi
from ._config import Config, config_keys
from ._context import BackendInfo, Buffer, Context
from ._fields import DeviceSpec, Field, Telemetry
from .errors import (BackendError, BufferTooSmall, ConfigError, Corrupt, Error, InternalError, InvalidArgument,
                     IoError, NotFound, OutOfMemory, PermissionDenied, Unsupported)

__all__ = [
    "capi", "Context", "Config", "Buffer", "BackendInfo", "DeviceSpec", "Telemetry", "Field", "config_keys",
    "version", "version_string", "build_revision", "Error", "InvalidArgument", "OutOfMemory", "Unsupported",
    "NotFound", "IoError", "Corrupt", "ConfigError", "BackendError", "PermissionDenied", "BufferTooSmall",
    "InternalError",
]


def version() -> int:
    """The loaded library's version as (major << 16) | (minor << 8) | patch."""
    return int(capi.grey_version())


def version_string() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return str(capi.grey_version_string())


def build_revision() -> str:
    """The source revision libgrey was built from."""
    return str(capi.grey_build_revision())


__version__ = version_string()
