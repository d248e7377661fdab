"""Exceptions raised by libgrey calls: one subclass of :class:`Error` per ``grey_status``.

Every failing call raises the subclass for its status, with the detailed message libgrey gave
(``grey_last_error()``, read on the failing thread) as its text.
"""

from __future__ import annotations

from . import capi

__all__ = [
    "Error",
    "Timeout",
    "Stopped",
    "Cancelled",
    "InvalidArgument",
    "OutOfMemory",
    "Unsupported",
    "NotFound",
    "IoError",
    "Corrupt",
    "ConfigError",
    "BackendError",
    "PermissionDenied",
    "BufferTooSmall",
    "InternalError",
    "from_status",
]


class Error(Exception):
    """A libgrey call failed. ``status`` is the ``grey_status`` value, ``message`` libgrey's detail."""

    status: int = -1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    @property
    def status_name(self) -> str:
        """libgrey's short description of the status ("invalid argument")."""
        return str(capi.grey_status_string(self.status))


class InvalidArgument(Error):
    status = capi.GREY_ERROR_INVALID_ARGUMENT


class OutOfMemory(Error):
    status = capi.GREY_ERROR_OUT_OF_MEMORY


class Unsupported(Error):
    status = capi.GREY_ERROR_UNSUPPORTED


class NotFound(Error):
    status = capi.GREY_ERROR_NOT_FOUND


class IoError(Error):
    status = capi.GREY_ERROR_IO


class Corrupt(Error):
    status = capi.GREY_ERROR_CORRUPT


class ConfigError(Error):
    status = capi.GREY_ERROR_CONFIG


class BackendError(Error):
    status = capi.GREY_ERROR_BACKEND


class PermissionDenied(Error):
    status = capi.GREY_ERROR_PERMISSION_DENIED


class BufferTooSmall(Error):
    """An output buffer was too small; ``required`` is the size (in bytes, NUL included) to ask for."""

    status = capi.GREY_ERROR_BUFFER_TOO_SMALL

    def __init__(self, message: str, status: int | None = None, required: int = 0) -> None:
        super().__init__(message, status)
        self.required = required


class InternalError(Error):
    status = capi.GREY_ERROR_INTERNAL


class Timeout(Error):
    """Not admitted before the timeout (nothing is held)."""

    status = capi.GREY_ERROR_TIMEOUT


class Stopped(Error):
    """An emergency stop is in force: no work is admitted."""

    status = capi.GREY_ERROR_STOPPED


class Cancelled(Error):
    """A progress callback asked the call to stop (nothing was written)."""

    status = capi.GREY_ERROR_CANCELLED


_BY_STATUS: dict[int, type[Error]] = {
    cls.status: cls
    for cls in (InvalidArgument, OutOfMemory, Unsupported, NotFound, IoError, Corrupt, ConfigError,
                BackendError, PermissionDenied, BufferTooSmall, InternalError, Timeout, Stopped, Cancelled)
}


def from_status(status: int, message: str, required: int = 0) -> Error:
    """The exception for a failed call (a status this version does not know gives the base class)."""
    cls = _BY_STATUS.get(status)
    if cls is BufferTooSmall:
        return BufferTooSmall(message, status, required)
    if cls is None:
        return Error(message, status)
    return cls(message, status)
