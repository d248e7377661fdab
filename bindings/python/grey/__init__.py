"""libgrey for Python.

    import grey
    with grey.Context() as ctx:
        for dev in ctx.devices():
            print(dev.name, dev.memory_total_bytes, dev.compute_units)

    q = grey.quantize(weights, format="int4-g128", calibration="mse")   # NumPy in, NumPy out
    print(q.report.rel_rmse, q.report.sqnr_db, q.dequantize().shape)

    with grey.AuditLog("audit.log", "audit.key.writer") as log:
        log.append("run", {"step": 1})

Every failing call raises a subclass of grey.Error carrying libgrey's message. The raw SWIG module is
grey.capi: every function of grey.h, with the same names, for what this layer does not cover yet.
"""

from __future__ import annotations

from . import capi
from ._audit import (AuditLog, AuditLogInfo, AuditReport, ProofReport, audit_check_proof, audit_keygen,
                     audit_prove_consistency, audit_prove_inclusion, audit_records, audit_verify, proof_verify,
                     sha256_file)
from ._config import Config, config_keys
from ._context import BackendInfo, Buffer, Context, PluginDir
from ._fields import DeviceSpec, Field, Telemetry
from ._kv import WINDOW_ALL, KvCache, KvStats
from ._govern import (WAIT_FOREVER, Admission, DeviceGovernState, Governor, GovernorState, Tenant,
                      TenantStats)
from ._model import Model, ModelWriter, Tensor
from ._stream import AsyncMapping, Event, HostMemory, Stream
from ._quant import QuantizedTensor, QuantReport, quant_compare, quant_formats, quant_size, quantize
from ._model_quant import dequantize_model, quantize_model
from .errors import (BackendError, BufferTooSmall, ConfigError, Corrupt, Error, InternalError, InvalidArgument,
                     IoError, NotFound, OutOfMemory, PermissionDenied, Stopped, Timeout, Unsupported, Cancelled)

__all__ = [
    "capi", "Context", "Config", "Buffer", "Stream", "Event", "HostMemory", "AsyncMapping", "BackendInfo", "PluginDir", "DeviceSpec", "Telemetry", "Field",
    "config_keys", "Governor", "Tenant", "Admission", "GovernorState", "DeviceGovernState", "TenantStats",
    "WAIT_FOREVER", "Timeout", "Stopped", "Cancelled", "KvCache", "KvStats", "WINDOW_ALL",
    "version", "version_string", "build_revision", "Error", "InvalidArgument", "OutOfMemory", "Unsupported",
    "NotFound", "IoError", "Corrupt", "ConfigError", "BackendError", "PermissionDenied", "BufferTooSmall",
    "InternalError", "quantize", "quantize_model", "dequantize_model", "quant_compare", "quant_formats", "quant_size", "QuantizedTensor", "QuantReport",
    "Model", "ModelWriter", "Tensor", "AuditLog", "AuditLogInfo", "AuditReport", "ProofReport", "audit_keygen",
    "audit_verify", "audit_records", "audit_prove_inclusion", "audit_prove_consistency", "audit_check_proof",
    "proof_verify", "sha256_file",
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
