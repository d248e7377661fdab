"""Element types and tensor descriptors shared by quantization and model files."""

from __future__ import annotations

from typing import Any, Sequence, Union

from . import capi

# grey_dtype values by their grey.h names ("F32", "BF16", "Q4_0", ...), read from the library so that
# types added to grey.h appear here without a change.
DTYPES: dict[str, int] = {}
for _value in range(256):
    _name = capi.grey_dtype_name(_value)
    if _name is None:
        break
    DTYPES[str(_name)] = _value
DTYPE_NAMES: dict[int, str] = {value: name for name, value in DTYPES.items()}

# NumPy's name for the element types NumPy has. BF16 has no NumPy type: its bits travel as uint16.
_NUMPY = {
    "F32": "float32", "F16": "float16", "F64": "float64", "I8": "int8", "U8": "uint8", "I16": "int16",
    "U16": "uint16", "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64", "BOOL": "bool",
    "BF16": "uint16",
}
_FROM_NUMPY = {numpy_name: grey_name for grey_name, numpy_name in _NUMPY.items() if grey_name != "BF16"}

DTypeLike = Union[str, Any]  # "F32", "bf16", numpy.float16, numpy.dtype("float32"), ...


def numpy_module() -> Any:
    try:
        import numpy
    except ImportError as e:  # pragma: no cover - numpy is a test dependency of this package
        raise ImportError("grey's tensor functions need NumPy: pip install numpy") from e
    return numpy


def dtype_value(dtype: DTypeLike) -> int:
    """The grey_dtype for a grey.h name (any case) or a NumPy dtype; ValueError for anything else."""
    if isinstance(dtype, str) and dtype.upper() in DTYPES:
        return DTYPES[dtype.upper()]
    np = numpy_module()
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name in _FROM_NUMPY:
        return DTYPES[_FROM_NUMPY[name]]
    raise ValueError(f"unknown element type {dtype!r}; expected a NumPy dtype or one of {sorted(DTYPES)}")


def numpy_dtype(dtype: int) -> Any:
    """The NumPy dtype holding elements of grey_dtype `dtype` (uint16 bits for BF16), or None."""
    name = _NUMPY.get(DTYPE_NAMES.get(dtype, ""))
    return None if name is None else numpy_module().dtype(name)


def make_desc(dtype: int, shape: Sequence[int]) -> Any:
    """A grey_tensor_desc (struct_size is filled by the binding)."""
    if len(shape) > capi.GREY_TENSOR_MAX_RANK:
        raise ValueError(f"rank {len(shape)} is more than libgrey's {capi.GREY_TENSOR_MAX_RANK}")
    desc = capi.grey_tensor_desc()
    desc.dtype = dtype
    desc.rank = len(shape)
    desc.shape = tuple(int(extent) for extent in shape)  # the binding pads the array with zeros
    return desc


def desc_shape(desc: Any) -> tuple[int, ...]:
    return tuple(desc.shape[:desc.rank])
