"""Helpers shared by the Pythonic layer."""

from __future__ import annotations

from typing import Any, Callable

from . import capi
from .errors import BufferTooSmall

_FIRST_CAPACITY = 256


def read_text(call: Callable[..., str], *args: Any) -> str:
    """Calls a function that follows grey.h's text buffer protocol, growing the buffer once if needed."""
    try:
        return call(*args, _FIRST_CAPACITY)
    except BufferTooSmall as small:
        return call(*args, small.required)


def enum_names(prefix: str) -> dict[int, str]:
    """Maps the values of a grey.h enum to lower-case names taken from its constants.

    ``enum_names("GREY_VENDOR_")`` gives ``{1: "nvidia", ...}``: the same names greyctl prints, and
    new values added to grey.h appear without a change here.
    """
    names: dict[int, str] = {}
    for attr in dir(capi):
        if attr.startswith(prefix) and not attr.endswith("FORCE32"):
            value = getattr(capi, attr)
            if isinstance(value, int):
                names.setdefault(value, attr[len(prefix):].lower())
    return names
