"""grey.Stream and grey.Event: ordered work on one device, apart from the calling thread.

    with grey.Context() as ctx:
        buf = ctx.buffer(len(data))
        stream = ctx.stream()
        stream.write_async(buf, data)          # returns once enqueued
        out = bytearray(len(data))
        stream.read_async(buf, out)
        stream.synchronize()                   # raises the error the work found, if any

The memory an _async call reads or writes must stay unchanged until the stream reaches it: the Stream
keeps a reference to every object it was given until synchronize() (or a query that finds it idle),
so only the object's contents need care, not its lifetime.

A stream of a CUDA device speaks the CUDA stream protocol (``__cuda_stream__``), so CuPy, PyTorch and
cuda.core can enqueue on it, and ``Stream.wrap`` goes the other way: libgrey's work on another library's
CUDA stream. ``grey.Buffer.__dlpack__(stream=...)`` makes the consumer's stream wait for the grey stream
that last enqueued work writing the buffer, on the device, without blocking.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import Any, Optional

from . import capi
from ._tensor import DTypeLike, dtype_value, make_desc


def _destroy(destroy: Any, handle: Any, context_finalizer: "weakref.finalize") -> None:
    # When a garbage cycle takes a context and its streams together, the context may go first and has
    # then destroyed them already.
    if context_finalizer.alive:
        destroy(handle)


def _address(data: Any, writable: bool) -> tuple[int, int, Any]:
    """The address and size of a buffer-protocol object, and what keeps that memory alive."""
    view = memoryview(data).cast("B")
    if view.readonly:
        if writable:
            raise TypeError("the destination must be writable (a bytearray, a writable memoryview, an array)")
        holder: Any = ctypes.create_string_buffer(view.tobytes(), max(len(view), 1))
    else:
        holder = (ctypes.c_char * len(view)).from_buffer(view)
    return ctypes.addressof(holder), len(view), holder


def _cuda_stream_handle(native: Any) -> int:
    """The CUstream of a stream given as an integer or by a CUDA stream protocol."""
    if hasattr(native, "__cuda_stream__"):
        version, handle = native.__cuda_stream__()
        if version != 0:
            raise TypeError(f"__cuda_stream__ version {version} is not supported (0 is)")
        return int(handle)
    if hasattr(native, "cuda_stream"):  # torch.cuda.Stream
        return int(native.cuda_stream)
    if isinstance(native, bool) or not isinstance(native, int):
        raise TypeError(f"a CUDA stream is an integer or has __cuda_stream__, not {type(native).__name__}")
    if native < 0:
        raise ValueError(f"a CUDA stream handle is not negative (got {native})")
    return native


class _Handle:
    def __init__(self, context: Any, handle: Any, destroy: Any) -> None:
        self._context = context
        self._handle = handle
        self._finalizer = weakref.finalize(self, _destroy, destroy, handle, context._finalizer)

    def close(self) -> None:
        """Destroys the object now (a stream first waits for its work)."""
        if self._handle is not None:
            self._handle = None
            self._finalizer()

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_handle(self) -> Any:
        if self._handle is None:
            raise ValueError(f"the {type(self).__name__.lower()} is closed")
        self._context._get_handle()
        return self._handle


class Event(_Handle):
    """A point in a stream's work (grey_event): record it on a stream, wait for it on another."""

    def __init__(self, context: Any, device: int) -> None:
        super().__init__(context, capi.grey_event_create(context._get_handle(), device), capi.grey_event_destroy)

    def record(self, stream: "Stream") -> None:
        """Captures the work enqueued on `stream` so far."""
        capi.grey_event_record(self._get_handle(), stream._get_handle())

    def synchronize(self) -> None:
        """Waits for the latest record; raises the error its stream had found by then, if any."""
        capi.grey_event_synchronize(self._get_handle())

    def query(self) -> bool:
        """Whether the latest record has completed (raises its stream's error as synchronize does)."""
        return bool(capi.grey_event_query(self._get_handle()))

    def elapsed_ms(self, end: "Event") -> float:
        """Milliseconds from this event's latest record to `end`'s, on one device; waits for both."""
        return float(capi.grey_event_elapsed_ms(self._get_handle(), end._get_handle()))


class AsyncMapping:
    """A mapping from Stream.map_async: kind, address, size and vendor_device as grey_buffer_mapping
    has them. unmap() (or leaving a ``with`` block) ends it, once the work reading it is done: unmap
    is not enqueued on the stream."""

    def __init__(self, buffer: Any, mapping: Any) -> None:
        self._buffer = buffer
        self.kind = int(mapping.kind)
        self.address = int(mapping.address)
        self.size = int(mapping.size_bytes)
        self.vendor_device = int(mapping.vendor_device)
        self._done = False

    def unmap(self) -> None:
        """Ends the mapping (grey_buffer_unmap); safe to call more than once."""
        if not self._done:
            self._done = True
            capi.grey_buffer_unmap(self._buffer._get_handle())

    def __enter__(self) -> "AsyncMapping":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unmap()


class Stream(_Handle):
    """An ordered queue of work on one device (grey_stream)."""

    def __init__(self, context: Any, device: int, *, native: Any = None) -> None:
        """A new stream on `device`; with `native`, a wrapper of the caller's own stream instead (see wrap)."""
        if native is None:
            handle = capi.grey_stream_create(context._get_handle(), device)
        else:
            handle = capi.grey_stream_wrap_native(context._get_handle(), device, capi.GREY_MEMORY_CUDA_DEVICE,
                                                  _cuda_stream_handle(native))
        super().__init__(context, handle, capi.grey_stream_destroy)
        self.device = device
        self._keep: list[Any] = []

    @classmethod
    def wrap(cls, context: Any, device: int, native: Any) -> "Stream":
        """A grey.Stream over another library's CUDA stream on `device` (grey_stream_wrap_native): `native`
        is a CUstream as an integer (0, 1 and 2 are CUDA's NULL, legacy and per-thread default streams),
        an object with ``__cuda_stream__`` (cuda.core, CuPy) or one with ``cuda_stream`` (a
        torch.cuda.Stream). libgrey's async work then runs in order with that library's, and ``wait``
        makes it wait for a grey.Event without blocking Python. The native stream stays its owner's and
        must outlive the wrapper; closing the wrapper waits only for what libgrey enqueued on it."""
        return cls(context, device, native=native)

    def close(self) -> None:
        super().close()
        self._keep.clear()

    def write_async(self, buffer: Any, data: Any, offset: int = 0) -> None:
        """Enqueues a copy of `data` (any buffer-protocol object) into `buffer` at `offset`."""
        address, size, holder = _address(data, writable=False)
        capi.grey_buffer_write_async(buffer._get_handle(), offset, address, size, self._get_handle())
        self._keep.append((buffer, data, holder))
        buffer._writer = self

    def read_async(self, buffer: Any, out: Any, offset: int = 0) -> None:
        """Enqueues a copy of len(out) bytes of `buffer` at `offset` into `out` (writable)."""
        address, size, holder = _address(out, writable=True)
        capi.grey_buffer_read_async(buffer._get_handle(), offset, address, size, self._get_handle())
        self._keep.append((buffer, out, holder))

    def copy_async(self, destination: Any, source: Any, size: Optional[int] = None, offset: int = 0,
                   source_offset: int = 0) -> None:
        """Enqueues a copy between two buffers of this stream's device."""
        if size is None:
            size = min(destination.size - offset, source.size - source_offset)
        capi.grey_buffer_copy_async(destination._get_handle(), offset, source._get_handle(), source_offset, size,
                                    self._get_handle())
        self._keep.append((destination, source))
        destination._writer = self

    def fill_async(self, buffer: Any, value: int, offset: int = 0, size: Optional[int] = None) -> None:
        """Enqueues a fill of `size` bytes (the rest of the buffer by default) with `value`."""
        if size is None:
            size = buffer.size - offset
        capi.grey_buffer_fill_async(buffer._get_handle(), offset, value, size, self._get_handle())
        self._keep.append(buffer)
        buffer._writer = self

    def checksum_async(self, buffer: Any, offset: int = 0, size: Optional[int] = None) -> "ctypes.c_uint64":
        """Enqueues grey_buffer_checksum; the result's ``.value`` holds it once the stream has reached it."""
        if size is None:
            size = buffer.size - offset
        result = ctypes.c_uint64(0)
        capi.grey_buffer_checksum_async(buffer._get_handle(), offset, size, ctypes.addressof(result),
                                        self._get_handle())
        self._keep.append((buffer, result))
        return result

    def map_async(self, buffer: Any, write: bool = False) -> "AsyncMapping":
        """Enqueues grey_buffer_map_async: a sealed buffer that is not raw is decoded into the device's
        working-set cache on this stream (a raw buffer maps at once). The address is filled now; its
        bytes are there once the stream reaches this point (synchronize(), or an Event recorded after).
        A failure of the mapping itself (cache too small, a corrupted block) raises at synchronize();
        the returned mapping then has address 0 and still needs its unmap()."""
        mapping = capi.grey_buffer_mapping()
        access = capi.GREY_MAP_WRITE if write else capi.GREY_MAP_READ
        capi.grey_buffer_map_async(buffer._get_handle(), access, mapping, self._get_handle())
        return AsyncMapping(buffer, mapping)

    def quantize_async(self, source: Any, shape: tuple[int, ...], format: str, destination: Any, *,
                       dtype: DTypeLike = "F32", calibration: str = "rtn", source_offset: int = 0,
                       destination_offset: int = 0) -> None:
        """Enqueues grey_quantize_buffer_async: the plain tensor of `shape` and `dtype` ("F32", "F16",
        "BF16") in buffer `source` into `format` ("int8", "q4_0", ...) in buffer `destination`
        (grey.quant_size(shape, format) bytes). A NaN input raises at the next synchronize()."""
        from ._quant import _params

        capi.grey_quantize_buffer_async(make_desc(dtype_value(dtype), shape), source._get_handle(), source_offset,
                                        _params(format, calibration), destination._get_handle(), destination_offset,
                                        self._get_handle())
        self._keep.append((source, destination))
        destination._writer = self

    def dequantize_async(self, source: Any, shape: tuple[int, ...], format: str, destination: Any, *,
                         dtype: DTypeLike = "F32", source_offset: int = 0, destination_offset: int = 0) -> None:
        """Enqueues grey_dequantize_buffer_async: `format` in buffer `source` back to `dtype` in `destination`."""
        from ._quant import _params

        capi.grey_dequantize_buffer_async(make_desc(dtype_value(dtype), shape), _params(format, "rtn"), source._get_handle(),
                                          source_offset, destination._get_handle(), destination_offset, self._get_handle())
        self._keep.append((source, destination))
        destination._writer = self

    def native_handle(self) -> tuple[int, int]:
        """(the grey_memory_kind naming the vendor API, the handle as an integer): a CUstream for a CUDA
        device, owned by this stream. Raises grey.Unsupported where the device has no native streams (the
        host device's streams are threads of libgrey)."""
        kind, handle = capi.grey_stream_native_handle(self._get_handle())
        return int(kind), int(handle)

    def __cuda_stream__(self) -> tuple[int, int]:
        """The CUDA stream protocol: (0, the CUstream as an integer), for CuPy, PyTorch and cuda.core to
        enqueue on this stream. grey.Unsupported where the device has no native streams (the host device),
        BufferError where they are not CUDA's."""
        kind, handle = self.native_handle()
        if kind != capi.GREY_MEMORY_CUDA_DEVICE:
            raise BufferError(f"the stream is on device {self.device}, which is not a CUDA device: it has no CUDA stream")
        return (0, handle)

    def wait(self, event: Event) -> None:
        """Work enqueued after this waits for `event`'s latest record."""
        capi.grey_stream_wait_event(self._get_handle(), event._get_handle())

    def synchronize(self) -> None:
        """Waits for all enqueued work; raises the first error it found since the last synchronize."""
        try:
            capi.grey_stream_synchronize(self._get_handle())
        finally:
            self._keep.clear()

    def query(self) -> bool:
        """Whether all enqueued work has run (raises a kept error once idle, as synchronize does)."""
        try:
            done = bool(capi.grey_stream_query(self._get_handle()))
        except Exception:
            self._keep.clear()
            raise
        if done:
            self._keep.clear()
        return done

    def __repr__(self) -> str:
        return "<grey.Stream closed>" if self.closed else f"<grey.Stream device={self.device}>"


class HostMemory:
    """Host memory from grey_host_alloc (pinned where the device's backend can pin), usable as a buffer."""

    def __init__(self, context: Any, size: int, device: int = 0) -> None:
        self._context = context
        self.address = int(capi.grey_host_alloc(context._get_handle(), device, size))
        self.size = size
        self._array: Any = (ctypes.c_char * size).from_address(self.address)

    def memoryview(self) -> memoryview:
        """A writable view of the memory (valid until close)."""
        if self._array is None:
            raise ValueError("the host memory is closed")
        return memoryview(self._array).cast("B")

    def close(self) -> None:
        if self._array is not None:
            self._array = None
            capi.grey_host_free(self._context._get_handle(), self.address)

    def __enter__(self) -> "HostMemory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
