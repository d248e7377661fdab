"""Quantization: grey.quantize, grey.QuantizedTensor, grey.quant_compare.

Formats are named as everywhere in libgrey ("int8", "int4-g128", "q4_0", ...: grey.quant_formats()),
parsed by the library itself (grey_quant_params_from_name), so an unknown name raises
grey.InvalidArgument with libgrey's message listing the valid ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

from . import capi
from ._tensor import DTYPE_NAMES, DTypeLike, dtype_value, make_desc, numpy_dtype, numpy_module
from ._util import enum_names

_CALIBRATIONS = {name: value for value, name in enum_names("GREY_CALIBRATION_").items()}
_CALIBRATION_NAMES = {value: name for name, value in _CALIBRATIONS.items()}
_PLAIN = ("F32", "F16", "BF16")


def quant_formats() -> list[str]:
    """Every format name libgrey knows, in its documented order."""
    return [str(capi.grey_quant_name_at(i)) for i in range(capi.grey_quant_name_count())]


def _params(format: str, calibration: str) -> Any:
    if not isinstance(format, str):
        raise TypeError(f"format must be a name such as 'int4-g128', not {type(format).__name__}")
    params = capi.grey_quant_params()
    capi.grey_quant_params_from_name(format, params)
    try:
        params.calibration = _CALIBRATIONS[calibration]
    except (KeyError, TypeError):
        raise ValueError(f"unknown calibration {calibration!r}; expected one of {sorted(_CALIBRATIONS)}") from None
    return params


@dataclass(frozen=True)
class QuantReport:
    """What a quantization cost, against a float64 reference (grey_quant_report)."""

    calibration: str
    elements: int
    bytes: int
    bits_per_weight: float
    rel_rmse: float
    sqnr_db: float  # inf when the result is exact
    max_abs_err: float
    sum_squared_error: float
    sum_squared_signal: float

    @classmethod
    def _from_raw(cls, raw: Any) -> "QuantReport":
        return cls(_CALIBRATION_NAMES.get(raw.calibration, str(raw.calibration)), int(raw.elements), int(raw.bytes),
                   float(raw.bits_per_weight), float(raw.rel_rmse), float(raw.sqnr_db), float(raw.max_abs_err),
                   float(raw.sum_squared_error), float(raw.sum_squared_signal))

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict; an infinite SQNR (exact result) is None, as greyctl's JSON has it."""
        out = asdict(self)
        if math.isinf(out["sqnr_db"]):
            out["sqnr_db"] = None
        return out


def _plain_input(array: Any, dtype: Optional[DTypeLike]) -> tuple[Any, int]:
    """The C-contiguous NumPy array to read and its grey_dtype (F32, F16 or BF16)."""
    np = numpy_module()
    from ._model import Tensor  # a model file's tensor knows its element type

    if isinstance(array, Tensor):
        value = array.dtype_value if dtype is None else dtype_value(dtype)
        array = array.data
    else:
        array = np.asarray(array)
        value = dtype_value(array.dtype if dtype is None else dtype)
    if DTYPE_NAMES.get(value) not in _PLAIN:
        raise ValueError(f"quantization reads F32, F16 or BF16 (BF16 as uint16 bits with dtype='bf16'), "
                         f"not {DTYPE_NAMES.get(value, value)}")
    if array.itemsize != (4 if DTYPE_NAMES[value] == "F32" else 2):
        raise ValueError(f"an array of {array.dtype} cannot hold {DTYPE_NAMES[value]} elements")
    return np.ascontiguousarray(array), value  # copies only what is not contiguous already


class QuantizedTensor:
    """A quantized tensor: its bytes (``data``, a NumPy uint8 array in the layout of
    docs/quantization.md), its format name, shape and source element type, and ``report``, the error
    measured when it was made. ``dequantize()`` gives the values back."""

    def __init__(self, data: Any, format: str, calibration: str, shape: tuple[int, ...], dtype: str,
                 report: Optional[QuantReport]) -> None:
        self.data = data
        self.format = format
        self.calibration = calibration
        self.shape = shape
        self.dtype = dtype
        self.report = report

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def dequantize(self, dtype: DTypeLike = "F32") -> Any:
        """The values as a new NumPy array of `shape`: float32 (default), float16, or "bf16" (uint16 bits)."""
        np = numpy_module()
        value = dtype_value(dtype)
        if DTYPE_NAMES.get(value) not in _PLAIN:
            raise ValueError(f"dequantize writes F32, F16 or BF16, not {DTYPE_NAMES.get(value, value)}")
        out = np.empty(self.shape, dtype=numpy_dtype(value))
        capi.grey_dequantize(make_desc(value, self.shape), _params(self.format, self.calibration), self.data, out)
        return out

    def __repr__(self) -> str:
        return (f"<grey.QuantizedTensor {self.format} shape={self.shape} from {self.dtype}, {self.nbytes} bytes"
                + (f", rel_rmse={self.report.rel_rmse:.5f}>" if self.report else ">"))


def quant_size(shape: tuple[int, ...], format: str) -> int:
    """The bytes the quantized form of a tensor of `shape` takes in `format`."""
    return int(capi.grey_quant_size(make_desc(capi.GREY_DTYPE_F32, shape), _params(format, "rtn")))


def quantize(array: Any, format: str, calibration: str = "rtn", *, dtype: Optional[DTypeLike] = None,
             report: bool = True) -> QuantizedTensor:
    """Quantizes `array` (a NumPy float32 or float16 array, a grey.Tensor of a model file, or uint16 BF16
    bits with ``dtype="bf16"``) into `format` ("int8", "int4-g128", ...; grey.quant_formats()).

    `calibration` is "rtn" (round to nearest from the absolute maximum) or "mse" (per-group clipping
    search). The input is read in place when it is C-contiguous and the result is written straight into
    the returned array. ``report=False`` skips measuring the error (it costs one dequantization).
    """
    np = numpy_module()
    params = _params(format, calibration)
    source, value = _plain_input(array, dtype)
    shape = tuple(int(n) for n in source.shape)
    desc = make_desc(value, shape)
    out = np.empty(capi.grey_quant_size(desc, params), dtype=np.uint8)
    raw = capi.grey_quant_report() if report else None
    capi.grey_quantize(desc, source, params, out, raw)
    return QuantizedTensor(out, format, calibration, shape, DTYPE_NAMES[value],
                           QuantReport._from_raw(raw) if raw is not None else None)


def quant_compare(reference: Any, approximation: Any, *, dtype: Optional[DTypeLike] = None) -> QuantReport:
    """The error of `approximation` against `reference` (same shape and element type), in float64."""
    ref, value = _plain_input(reference, dtype)
    approx, approx_value = _plain_input(approximation, dtype)
    if approx_value != value or approx.shape != ref.shape:
        raise ValueError(f"reference is {DTYPE_NAMES[value]}{list(ref.shape)}, approximation "
                         f"{DTYPE_NAMES[approx_value]}{list(approx.shape)}: they must match")
    raw = capi.grey_quant_report()
    capi.grey_quant_compare(make_desc(value, tuple(int(n) for n in ref.shape)), ref, approx, raw)
    return QuantReport._from_raw(raw)
