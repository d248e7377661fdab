"""Model files: grey.Model (safetensors and GGUF, memory-mapped) and grey.ModelWriter."""

from __future__ import annotations

import os
import weakref
from typing import Any, Iterator, Optional, Union

from . import capi
from ._tensor import DTYPE_NAMES, DTypeLike, dtype_value, desc_shape, make_desc, numpy_dtype, numpy_module
from ._util import HandleOwner, enum_names

_FORMATS = {name: value for value, name in enum_names("GREY_MODEL_FORMAT_").items()}
_FORMAT_NAMES = {value: name for name, value in _FORMATS.items()}

PathLike = Union[str, "os.PathLike[str]"]


class _Mapping:
    """Owns the grey_model handle. Every tensor view holds a reference to it, so the file stays mapped
    while any view lives, even after Model.close()."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        weakref.finalize(self, capi.grey_model_destroy, handle)


class Tensor:
    """One tensor of a model file. ``data`` is a read-only NumPy view of the mapped file, of `shape`,
    when NumPy has the element type (BF16 as uint16 bits); ``raw`` is the same bytes as uint8. Both keep
    the file mapped for as long as they live."""

    def __init__(self, mapping: _Mapping, raw: Any) -> None:
        self.name = str(raw.name)
        self.dtype_value = int(raw.desc.dtype)
        self.dtype = DTYPE_NAMES.get(self.dtype_value, str(self.dtype_value))
        self.shape = desc_shape(raw.desc)
        self.file_type = int(raw.file_type)
        self.nbytes = int(raw.size_bytes)
        self._memory = capi.grey_py_model_tensor_memory(mapping, raw)

    @property
    def raw(self) -> Any:
        """The tensor's bytes, as a read-only NumPy uint8 array (no copy)."""
        np = numpy_module()
        return np.frombuffer(self._memory, dtype=np.uint8)

    @property
    def data(self) -> Any:
        """The tensor as a read-only NumPy array of `shape` (no copy); its raw bytes for block types."""
        np = numpy_module()
        dtype = numpy_dtype(self.dtype_value)
        if dtype is None:
            return self.raw
        return np.frombuffer(self._memory, dtype=dtype).reshape(self.shape)

    def __repr__(self) -> str:
        return f"<grey.Tensor {self.name!r} {self.dtype}{list(self.shape)}>"


class Model(HandleOwner):
    """A safetensors or GGUF file, memory-mapped read-only (chosen by content).

    ``with grey.Model(path) as model: for t in model: ...`` iterates its tensors in file order; ``model[i]``
    and ``model["name"]`` pick one. close() drops this object's hold on the file, which is unmapped once
    no tensor view is left either: views stay valid after close() for as long as they live.
    """

    def __init__(self, path: PathLike) -> None:
        self._own(_Mapping(capi.grey_model_create(os.fspath(path))))  # the mapping frees itself
        self.path = os.fspath(path)
        self._names: Optional[dict[str, int]] = None

    def _get_mapping(self) -> _Mapping:
        mapping: _Mapping = self._get_handle()
        return mapping

    @property
    def format(self) -> str:
        """"safetensors" or "gguf"."""
        value = capi.grey_model_format_get(self._get_mapping().handle)
        return _FORMAT_NAMES.get(value, str(value))

    def __len__(self) -> int:
        return int(capi.grey_model_tensor_count(self._get_mapping().handle))

    def tensor(self, index: int) -> Tensor:
        mapping = self._get_mapping()
        if index < 0:
            index += len(self)
        raw = capi.grey_model_tensor()
        capi.grey_model_tensor_get(mapping.handle, index, raw)
        return Tensor(mapping, raw)

    def __getitem__(self, key: Union[int, str]) -> Tensor:
        if isinstance(key, str):
            if self._names is None:
                self._names = {t.name: i for i, t in enumerate(self)}
            if key not in self._names:
                raise KeyError(key)
            return self.tensor(self._names[key])
        return self.tensor(key)

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self.tensor(i)

    def names(self) -> list[str]:
        return [t.name for t in self]

    def evict(self, index: int) -> None:
        """Drops the pages of tensor `index` from the process's resident memory: its views stay valid
        and read the file again if touched. Walking a model larger than memory, evict each tensor when
        done with it."""
        capi.grey_model_tensor_evict(self._get_mapping().handle, index if index >= 0 else index + len(self))

    def __repr__(self) -> str:
        if self.closed:
            return "<grey.Model closed>"
        return f"<grey.Model {self.path!r} {self.format}, {len(self)} tensors>"


class ModelWriter(HandleOwner):
    """Writes a safetensors or GGUF file, all at once or streamed.

    All at once: ``with grey.ModelWriter("gguf") as w: w.add_tensor("w", array); w.write(path)``; tensors
    are copied when added. Streamed, holding one tensor at a time: declare every tensor
    (``i = w.declare_tensor("w", dtype="f32", shape=(4096, 4096))``), ``w.open(path)``, then
    ``w.write_tensor(i, array)`` for each (in any order, a tensor in one or more pieces) and
    ``w.finish()``. Either way the file appears at `path` only when complete; closing an unfinished
    writer leaves nothing behind. Not thread-safe: use one writer from one thread at a time.
    """

    def __init__(self, format: str = "safetensors") -> None:
        try:
            value = _FORMATS[format.lower()]
        except (KeyError, AttributeError):
            raise ValueError(f"unknown model format {format!r}; expected one of {sorted(_FORMATS)}") from None
        self._own(capi.grey_model_writer_create(value), capi.grey_model_writer_destroy)
        self.format = format.lower()

    def copy_metadata(self, model: Model) -> None:
        """Copies every metadata entry of `model`."""
        capi.grey_model_writer_copy_metadata(self._get_handle(), model._get_mapping().handle)

    def set_metadata(self, key: str, value: str) -> None:
        """Sets a string metadata entry, replacing one of the same key."""
        capi.grey_model_writer_set_metadata(self._get_handle(), key, value)

    def add_tensor(self, name: str, data: Any, *, dtype: Optional[DTypeLike] = None,
                   shape: Optional[tuple[int, ...]] = None, file_type: int = 0) -> None:
        """Adds a tensor: a NumPy array (its dtype and shape, unless given), a grey.Tensor of another model,
        or the bytes of a block type with ``dtype="Q4_0"`` and `shape`. BF16 is uint16 bits with
        ``dtype="bf16"``. `file_type` is the ggml type number, read only for dtype "OTHER" in GGUF."""
        np = numpy_module()
        if isinstance(data, Tensor):
            value = data.dtype_value if dtype is None else dtype_value(dtype)
            shape = data.shape if shape is None else shape
            file_type = data.file_type if file_type == 0 else file_type
            data = data.raw
        else:
            data = np.ascontiguousarray(data)
            value = dtype_value(data.dtype if dtype is None else dtype)
            shape = tuple(int(n) for n in data.shape) if shape is None else shape
        capi.grey_model_writer_add_tensor(self._get_handle(), name, make_desc(value, tuple(shape)), file_type, data)

    def write(self, path: PathLike) -> None:
        """Writes the file, replacing `path`."""
        capi.grey_model_writer_write(self._get_handle(), os.fspath(path))

    def declare_tensor(self, name: str, *, dtype: DTypeLike, shape: tuple[int, ...], file_type: int = 0) -> int:
        """Declares the next tensor without its bytes, for streaming; returns its index."""
        desc = make_desc(dtype_value(dtype), tuple(int(n) for n in shape))
        return int(capi.grey_model_writer_declare_tensor(self._get_handle(), name, desc, file_type))

    def open(self, path: PathLike, *, replace: bool = False) -> None:
        """Starts the streamed file (its header is written now). A file already at `path` is an
        IoError unless `replace`."""
        options = capi.grey_model_write_options()
        options.replace = 1 if replace else 0
        capi.grey_model_writer_open(self._get_handle(), os.fspath(path), options)

    def write_tensor(self, index: int, data: Any) -> None:
        """Writes the next bytes of declared tensor `index`: a NumPy array or any buffer."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            data = numpy_module().ascontiguousarray(data)
        capi.grey_model_writer_write_tensor(self._get_handle(), index, data)

    def finish(self) -> None:
        """Completes the streamed file and puts it at its path."""
        capi.grey_model_writer_finish(self._get_handle())
