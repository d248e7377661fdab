"""Helpers shared by the Pythonic layer."""

from __future__ import annotations

import weakref
from typing import Any, Callable, Optional, TypeVar

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


def known(name: Optional[str]) -> str:
    """libgrey's name for an enum value (a ``grey_*_name`` function), or "unknown" for a value newer than
    the library, which has no name."""
    return name if name is not None else "unknown"


_Self = TypeVar("_Self", bound="HandleOwner")


class HandleOwner:
    """Owns one libgrey handle: ``close()``, ``with`` or, as a safety net, the garbage collector frees
    it, once. Using it after close raises ValueError naming the class."""

    _handle: Any = None
    _finalizer: Optional[weakref.finalize] = None

    def _own(self, handle: Any, destroy: Optional[Callable[[Any], None]] = None) -> None:
        """Takes `handle`; `destroy(handle)` frees it. Without `destroy`, closing only drops this
        object's reference (the handle is an object that frees itself once nothing refers to it)."""
        self._handle = handle
        self._finalizer = weakref.finalize(self, destroy, handle) if destroy is not None else None

    def close(self) -> None:
        """Frees the handle. Idempotent."""
        if self._finalizer is not None:
            self._finalizer()
        self._handle = None

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_handle(self) -> Any:
        if self._handle is None:
            raise ValueError(f"operation on a closed grey.{type(self).__name__}")
        return self._handle
