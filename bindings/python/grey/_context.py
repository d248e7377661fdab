"""grey.Context, its devices, backends and buffers."""

from __future__ import annotations

import os
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Optional, Union

from . import capi
from ._config import Config
from ._fields import DeviceSpec, Telemetry, read_fields
from ._stream import Event, HostMemory, Stream
from ._util import enum_names, known, read_text

LogCallback = Callable[[str, str], None]

_DLPACK_CPU, _DLPACK_CUDA = 1, 2  # DLDeviceType: kDLCPU, kDLCUDA
LOG_LEVELS = {name: value for value, name in enum_names("GREY_LOG_").items()}


def _log_level(level: Union[str, int]) -> int:
    if isinstance(level, int):
        return level
    try:
        return LOG_LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; expected one of {sorted(LOG_LEVELS)}") from None


def _destroy_context(handle: Any, log: object) -> None:
    # `log` rides along only to stay alive until the context that calls it is gone.
    capi.grey_context_destroy(handle)


def _destroy_buffer(handle: Any, context_finalizer: "weakref.finalize") -> None:
    # When a garbage cycle takes a context and its buffers together, the context may go first and has
    # then freed the buffer already.
    if context_finalizer.alive:
        capi.grey_buffer_destroy(handle)


@dataclass(frozen=True)
class BackendInfo:
    """One backend candidate the loader considered: ``outcome`` is loaded/skipped/failed/not_found."""

    name: str
    path: str
    outcome: str
    reason: str
    device_count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PluginDir:
    """One directory of the plugin search path and the loader's verdict on it.

    ``origin`` is host (``backend_dir``), environment (GREY_BACKEND_DIR) or beside_library (``grey/``
    beside the file holding libgrey: for this package, ``grey/grey/`` inside it). ``state`` is searched,
    missing, refused (someone other than root or this user could have written there) or duplicate;
    ``reason`` says why, naming the path at fault; ``real_path`` has every symbolic link resolved.
    """

    path: str
    real_path: str
    origin: str
    state: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Context:
    """A libgrey context: configuration, backends and devices.

    Use it as a context manager, or call ``close()``; it also frees itself when garbage-collected.
    Closing the context frees every buffer it still owns.

    ``backends``: names to load ("cuda,hip" or ["cuda", "hip"]); None loads every plugin found. A named
    backend that does not load raises ``grey.Unsupported`` ("backend 'cuda' is not available: ..."),
    unless ``require_backends=False``: then it is only reported by ``backends()``.
    ``backend_dir``: a directory searched for plugins first, if it can be trusted (see ``plugin_dirs``).
    ``config_path``: a YAML file overlaid on ``profile`` ("conservative", "balanced", "aggressive").
    ``env_overrides``: apply GREY_* environment variables (off by default: the environment is never
    read). ``log``: a callable ``log(level, message)`` receiving messages at or above ``log_level``
    (default: libgrey writes them to stderr); it may be called from any thread that uses the context
    and must not call back into it.
    """

    def __init__(
        self,
        *,
        backends: Union[str, Iterable[str], None] = None,
        require_backends: bool = True,
        backend_dir: Union[str, os.PathLike[str], None] = None,
        config_path: Union[str, os.PathLike[str], None] = None,
        profile: Optional[str] = None,
        env_overrides: bool = False,
        log_level: Union[str, int] = "warning",
        log: Optional[LogCallback] = None,
    ) -> None:
        options = capi.grey_context_options()
        options.log_level = _log_level(log_level)
        if backends is not None:
            options.backends = backends if isinstance(backends, str) else ",".join(backends)
            options.require_backends = 1 if require_backends else 0
        if backend_dir is not None:
            options.backend_dir = os.fspath(backend_dir)
        if config_path is not None:
            options.config_path = os.fspath(config_path)
        if profile is not None:
            options.profile = profile
        options.apply_env_overrides = 1 if env_overrides else 0
        sink = None
        if log is not None:
            names = {value: name.upper() for name, value in LOG_LEVELS.items()}

            def sink(level: int, message: str) -> None:
                log(names.get(level, str(level)), message)

            capi.grey_py_options_set_log(options, sink)
        self._handle: Any = capi.grey_context_create(options)
        self._buffers: "weakref.WeakSet[Buffer]" = weakref.WeakSet()
        self._finalizer = weakref.finalize(self, _destroy_context, self._handle, sink)
        self._exports = 0  # live DLPack exports of its buffers: they keep the context's memory

    # -- lifetime ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Destroys the context and every buffer it still owns. Idempotent. Memory a DLPack consumer
        still holds is freed when the consumer lets go of it, not before."""
        for buffer in list(self._buffers):
            buffer.close()
        self._handle = None
        if self._exports == 0:
            self._finalizer()

    def _export_released(self) -> None:
        self._exports -= 1
        if self._exports == 0 and self._handle is None:
            self._finalizer()

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_handle(self) -> Any:
        if self._handle is None:
            raise ValueError("operation on a closed grey.Context")
        return self._handle

    # -- devices ----------------------------------------------------------------------------------
    def device_count(self) -> int:
        return int(capi.grey_device_count(self._get_handle()))

    def device(self, index: int) -> DeviceSpec:
        """The specification of device `index`; grey.InvalidArgument if there is no such device."""
        handle = self._get_handle()
        raw = capi.grey_device_spec()
        capi.grey_device_spec_get(handle, index, raw)
        return DeviceSpec(index, raw, read_fields(raw, capi.GREY_FIELD_GROUP_SPEC,
                                                  lambda field: self.field_reason(index, field)))

    def devices(self) -> list[DeviceSpec]:
        """Every device of every loaded backend, in index order (the host CPU is always there)."""
        return [self.device(i) for i in range(self.device_count())]

    def telemetry(self, index: int) -> Telemetry:
        """Samples device `index` now."""
        handle = self._get_handle()
        raw = capi.grey_device_telemetry()
        capi.grey_device_telemetry_get(handle, index, raw)
        return Telemetry(index, raw, read_fields(raw, capi.GREY_FIELD_GROUP_TELEMETRY,
                                                 lambda field: self.field_reason(index, field)))

    def field_reason(self, index: int, field: int) -> str:
        """Why `field` (a GREY_FIELD_* value) of device `index` is unavailable ("" when it is ok)."""
        return read_text(capi.grey_device_field_reason, self._get_handle(), index, field)

    # -- backends and configuration ---------------------------------------------------------------
    def backends(self) -> list[BackendInfo]:
        """The loader's report: every backend candidate, loaded or not, and why."""
        handle = self._get_handle()
        report = []
        for i in range(capi.grey_backend_candidate_count(handle)):
            raw = capi.grey_backend_info()
            capi.grey_backend_info_get(handle, i, raw)
            report.append(BackendInfo(raw.name, raw.path, known(capi.grey_backend_outcome_name(raw.outcome)), raw.reason,
                                      raw.device_count))
        return report

    def backend_search_path(self) -> list[str]:
        """The directories on the plugin search path, in order, searched or not (see plugin_dirs)."""
        text = read_text(capi.grey_backend_search_path, self._get_handle())
        return [line for line in text.split("\n") if line]

    def plugin_dirs(self) -> list[PluginDir]:
        """Every directory on the plugin search path, in order, with whether it was searched and why."""
        handle = self._get_handle()
        dirs = []
        for i in range(capi.grey_plugin_dir_count(handle)):
            raw = capi.grey_plugin_dir_info()
            capi.grey_plugin_dir_info_get(handle, i, raw)
            dirs.append(PluginDir(raw.path, raw.real_path, known(capi.grey_plugin_origin_name(raw.origin)),
                                  known(capi.grey_plugin_dir_state_name(raw.state)), raw.reason))
        return dirs

    @property
    def config(self) -> Config:
        """The context's effective configuration (read-only, valid while the context is open)."""
        return Config._view(capi.grey_context_config(self._get_handle()), self)

    # -- buffers ----------------------------------------------------------------------------------
    def buffer(self, size: int, device: int = 0) -> "Buffer":
        """Allocates `size` bytes on `device`."""
        buffer = Buffer(self, capi.grey_buffer_create(self._get_handle(), device, size))
        self._buffers.add(buffer)
        return buffer

    # -- streams and events -------------------------------------------------------------------------
    def stream(self, device: int = 0) -> Stream:
        """A new stream on `device` (grey.Stream)."""
        return Stream(self, device)

    def wrap_stream(self, native: Any, device: int) -> Stream:
        """A grey.Stream over another library's CUDA stream on `device` (grey.Stream.wrap)."""
        return Stream.wrap(self, device, native)

    def event(self, device: int = 0) -> Event:
        """A new event on `device` (grey.Event)."""
        return Event(self, device)

    def host_memory(self, size: int, device: int = 0) -> HostMemory:
        """`size` bytes of host memory `device` transfers from at full speed (grey_host_alloc)."""
        return HostMemory(self, size, device)

    def __repr__(self) -> str:
        return "<grey.Context closed>" if self.closed else f"<grey.Context devices={self.device_count()}>"


class Buffer:
    """Memory on one device, owned by its context. Reads and writes take any C-contiguous object with
    the buffer protocol (bytes, bytearray, memoryview, NumPy arrays) and copy straight between it and
    the device, with no intermediate copy.

    DLPack: ``numpy.from_dlpack(buf)`` (host buffers), ``torch.from_dlpack(buf)`` (host or CUDA) see the
    buffer's own bytes as a 1-D uint8 tensor, without a copy; writes through either side are seen by the
    other. The export maps the buffer (grey_buffer_map) and keeps it, and its context, alive until the
    consumer lets go, even across close().
    """

    def __init__(self, context: Context, handle: Any) -> None:
        self._context = context  # keeps the owner alive for as long as the buffer
        self._handle: Any = handle
        self._finalizer = weakref.finalize(self, _destroy_buffer, handle, context._finalizer)
        self._exports = 0
        self._writer: Optional[Stream] = None  # the grey.Stream that last enqueued work writing the buffer

    def close(self) -> None:
        """Frees the buffer (once no DLPack consumer holds it any more). Idempotent."""
        self._handle = None
        if self._exports == 0:
            self._finalizer()

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Buffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_handle(self) -> Any:
        if self._handle is None:
            raise ValueError("operation on a closed grey.Buffer")
        return self._handle

    @property
    def size(self) -> int:
        return int(capi.grey_buffer_size(self._get_handle()))

    def __len__(self) -> int:
        return self.size

    @property
    def device(self) -> int:
        return int(capi.grey_buffer_device(self._get_handle()))

    def write(self, data: Any, offset: int = 0) -> None:
        """Copies all of `data` (any buffer-protocol object) into the buffer at `offset`."""
        capi.grey_buffer_write(self._get_handle(), offset, data)

    def read_into(self, out: Any, offset: int = 0) -> None:
        """Fills the writable buffer-protocol object `out` (a NumPy array, bytearray, ...) from `offset`."""
        capi.grey_buffer_read(self._get_handle(), offset, out)

    def read(self, size: Optional[int] = None, offset: int = 0) -> bytearray:
        """`size` bytes from `offset` (default: to the end) as a new bytearray."""
        if size is None:
            size = self.size - offset
        out = bytearray(size)
        self.read_into(out, offset)
        return out

    def copy_from(self, source: "Buffer", size: Optional[int] = None, offset: int = 0, source_offset: int = 0) -> None:
        """Copies `size` bytes (default: all of `source` from `source_offset`) from another buffer."""
        if size is None:
            size = source.size - source_offset
        capi.grey_buffer_copy(self._get_handle(), offset, source._get_handle(), source_offset, size)

    def fill(self, value: int, offset: int = 0, size: Optional[int] = None) -> None:
        """Sets `size` bytes (default: to the end) from `offset` to the byte `value`."""
        if size is None:
            size = self.size - offset
        capi.grey_buffer_fill(self._get_handle(), offset, value, size)

    # -- DLPack ---------------------------------------------------------------------------------
    def __dlpack__(self, *, stream: Any = None, max_version: Optional[tuple[int, int]] = None,
                   dl_device: Optional[tuple[int, int]] = None, copy: Optional[bool] = None) -> Any:
        """A DLPack capsule of the buffer's bytes (1-D uint8, writable), for ``from_dlpack``: DLPack 1.0's
        "dltensor_versioned" when the consumer offers `max_version` >= (1, 0), else the unversioned
        "dltensor".

        `stream` is the consumer's, as the DLPack protocol defines it: for a CUDA buffer None or 1 (the
        legacy default stream), 2 (the per-thread one) or a cudaStream_t as an integer, and -1 for "do not
        synchronize"; a host buffer takes None or -1. Unless it is -1, work that a grey.Stream enqueued
        writing this buffer is ordered before the consumer's: a CUDA consumer stream is made to wait for
        it on the device (nothing blocks; a failure that work finds, such as a NaN input, is raised by
        that grey.Stream's synchronize), a host buffer's is waited for here (raising the error the stream
        found, if any). Synchronous libgrey calls complete before they return and need nothing."""
        handle = self._get_handle()
        device = self.__dlpack_device__()  # maps the buffer: asked once per export
        on_cuda = device[0] == _DLPACK_CUDA
        self._wait_for_writer(self._checked_dlpack_stream(stream, on_cuda), on_cuda)
        if copy:
            raise BufferError("grey.Buffer exports its own memory; it cannot export a copy")
        if dl_device is not None and tuple(dl_device) != device:
            raise BufferError(f"the buffer lives on DLPack device {device}, not {tuple(dl_device)}")
        versioned = max_version is not None and tuple(max_version) >= (1, 0)
        capsule = capi.grey_py_buffer_dlpack(self, handle, 1 if versioned else 0)
        self._exports += 1
        self._context._exports += 1
        return capsule

    def _checked_dlpack_stream(self, stream: Any, on_cuda: bool) -> Any:
        if stream is None or stream == -1:
            return stream
        if isinstance(stream, bool) or not isinstance(stream, int):
            raise BufferError(f"the DLPack stream must be an integer or None, not {type(stream).__name__}")
        if not on_cuda:
            raise BufferError(f"the buffer is host memory, which has no streams: the DLPack stream must be None or -1, not {stream}")
        if stream == 0:
            raise BufferError("DLPack stream 0 is ambiguous for CUDA: pass 1 for the legacy default stream or 2 for the per-thread one")
        if stream < -1:
            raise BufferError(f"DLPack stream {stream} is not a CUDA stream")
        return stream

    def _wait_for_writer(self, stream: Any, on_cuda: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is None or writer.closed or stream == -1:
            return
        done = Event(self._context, writer.device)
        try:
            done.record(writer)
            if not on_cuda:
                done.synchronize()
                return
            # The consumer's stream waits on the device; DLPack's None is CUDA's legacy default stream.
            with Stream.wrap(self._context, writer.device, 1 if stream is None else stream) as consumer:
                consumer.wait(done)
        finally:
            done.close()

    def __dlpack_device__(self) -> tuple[int, int]:
        """(kDLCPU = 1, 0) for host memory, (kDLCUDA = 2, CUDA ordinal) for a CUDA device's."""
        handle = self._get_handle()
        mapping = capi.grey_buffer_mapping()
        capi.grey_buffer_map(handle, mapping)
        capi.grey_buffer_unmap(handle)
        if mapping.kind == capi.GREY_MEMORY_HOST:
            return (_DLPACK_CPU, 0)
        if mapping.kind == capi.GREY_MEMORY_CUDA_DEVICE:
            return (_DLPACK_CUDA, int(mapping.vendor_device))
        raise BufferError(f"libgrey memory kind {mapping.kind} has no DLPack device")

    def _dlpack_released(self) -> None:
        # Called by the capsule's deleter (with the GIL) after it unmapped the buffer.
        self._exports -= 1
        if self._exports == 0 and self._handle is None:
            self._finalizer()
        self._context._export_released()

    def __repr__(self) -> str:
        return "<grey.Buffer closed>" if self.closed else f"<grey.Buffer size={self.size} device={self.device}>"
