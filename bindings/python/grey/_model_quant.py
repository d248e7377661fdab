"""Whole models: grey.quantize_model and grey.dequantize_model (grey_model_quantize and
grey_model_dequantize). The policy (what is quantized, in which format, what keeps its precision and
why) is libgrey's; these only pass the caller's choices on."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Mapping, Optional

from . import capi
from ._model import PathLike
from ._quant import _CALIBRATIONS
from ._tensor import DTypeLike, dtype_value
from ._util import read_text
from .errors import Cancelled

# progress(bytes_done, bytes_total, tensor) -> a true value to stop (None or False: go on).
Progress = Callable[[int, int, str], Any]


class _ProgressCall:
    """Runs a whole-model call with the caller's progress callable, so that an exception it raises stops
    the call and is raised from it (in place of grey.Cancelled)."""

    def __init__(self, progress: Optional[Progress]) -> None:
        self.progress = progress
        self.error: Optional[BaseException] = None

    def __call__(self, done: int, total: int, tensor: str) -> bool:
        try:
            return bool(self.progress(done, total, tensor))  # type: ignore[misc]
        except BaseException as e:  # noqa: B036 - KeyboardInterrupt too: it must stop the call
            self.error = e
            return True

    def run(self, set_progress: Callable[[Any, Any], None], options: Any, call: Callable[[], Any]) -> Any:
        set_progress(options, None if self.progress is None else self)
        try:
            return call()
        except Cancelled:
            if self.error is not None:
                raise self.error from None
            raise


def _lines(patterns: Iterable[str], what: str) -> str:
    if isinstance(patterns, (str, bytes)):
        raise TypeError(f"{what} must be a list of patterns, not one string")
    items = [str(p) for p in patterns]
    for p in items:
        if "\n" in p:
            raise ValueError(f"{what}: a pattern cannot hold a line break: {p!r}")
    return "".join(p + "\n" for p in items)


def quantize_model(input: PathLike, output: Optional[PathLike], format: str, *, calibration: str = "rtn",
                   keep: Iterable[str] = (), quantize: Iterable[str] = (), formats: Optional[Mapping[str, str]] = None,
                   keep_critical: bool = True, allow_empty: bool = False, replace: bool = False,
                   context: Any = None, device: int = 0, progress: Optional[Progress] = None) -> dict[str, Any]:
    """Quantizes the model file `input` in `format` ("int4-g128", ...) under libgrey's policy and writes
    `output` (.safetensors or .gguf; None to measure only). Returns the report: {"tensors": [...],
    "kept": [{"name", "dtype", "shape", "reason"}...], "total": {...}}.

    `keep` and `quantize` are RE2 patterns of tensor names to keep in their precision, or to quantize
    even though they are critical layers; `formats` maps a pattern to the format of the tensors it
    matches (the first match wins). ``keep_critical=False`` quantizes the critical layers too. With a
    grey.Context, tensors are quantized in buffers on its device `device`.

    `progress(bytes_done, bytes_total, tensor)` is called before the first tensor and after each one
    (input bytes, kept tensors included); a true result stops the call with grey.Cancelled and writes
    nothing; an exception it raises stops the call too and is raised from it.
    """
    options = capi.grey_model_quant_options()
    try:
        options.calibration = _CALIBRATIONS[calibration]
    except (KeyError, TypeError):
        raise ValueError(f"unknown calibration {calibration!r}; expected one of {sorted(_CALIBRATIONS)}") from None
    options.keep_patterns = _lines(keep, "keep")
    options.quantize_patterns = _lines(quantize, "quantize")
    options.format_overrides = _lines([f"{p}={f}" for p, f in (formats or {}).items()], "formats")
    options.keep_critical = 1 if keep_critical else 0
    options.allow_empty = 1 if allow_empty else 0
    options.replace = 1 if replace else 0
    if context is not None:
        options.context = context._get_handle()
        options.device = device
    result = _ProgressCall(progress).run(capi.grey_py_quant_options_set_progress, options, lambda: capi.grey_model_quantize(
        os.fspath(input), None if output is None else os.fspath(output), format, options))
    try:
        report: dict[str, Any] = json.loads(read_text(capi.grey_model_quant_result_json, result))
    finally:
        capi.grey_model_quant_result_destroy(result)
    return report


def dequantize_model(input: PathLike, output: PathLike, *, dtype: DTypeLike = "F32", replace: bool = False,
                     progress: Optional[Progress] = None) -> None:
    """Restores a full-precision safetensors file `output` from the model `input` that libgrey quantized:
    quantized tensors become `dtype` ("F32", "F16" or "BF16") in their original shape, the rest is copied.
    `progress` is called as quantize_model's is."""
    options = capi.grey_model_dequant_options()
    options.dtype = dtype_value(dtype)
    options.replace = 1 if replace else 0
    _ProgressCall(progress).run(capi.grey_py_dequant_options_set_progress, options,
                                lambda: capi.grey_model_dequantize(os.fspath(input), os.fspath(output), options))
