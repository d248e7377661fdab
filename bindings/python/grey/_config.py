"""grey.Config: the layered configuration (profile, YAML file, environment, explicit values)."""

from __future__ import annotations

import os
from typing import Any, Iterator, Optional, Union

from . import capi
from ._util import HandleOwner, read_text

ConfigValue = Union[str, bool, int, float]


def config_keys() -> list[str]:
    """Every key of the configuration schema, as dotted paths ("memory.compression.algorithm")."""
    return [capi.grey_config_key_name(i) for i in range(capi.grey_config_key_count())]


def _text_value(value: ConfigValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"a config value must be str, bool, int or float, not {type(value).__name__}")


class Config(HandleOwner):
    """A grey_config: ``Config("aggressive")``, ``Config.load("grey.yaml")``, ``cfg["memory.x"] = 3``.

    Closes itself when garbage-collected; ``close()`` or ``with`` frees it at once. A Config is not
    synchronised: use one from one thread at a time. ``Context.config`` gives a read-only view of a
    context's effective configuration, valid while the context is open.
    """

    def __init__(self, profile: Optional[str] = None) -> None:
        self._owner: Any = None
        self._own(capi.grey_config_create(profile), capi.grey_config_destroy)

    @classmethod
    def load(cls, path: Union[str, os.PathLike[str]], profile: Optional[str] = None) -> "Config":
        """The defaults of `profile` with the YAML file at `path` overlaid."""
        config = cls(profile)
        try:
            config.load_file(path)
        except BaseException:
            config.close()
            raise
        return config

    @classmethod
    def _view(cls, handle: Any, owner: Any) -> "Config":
        view = cls.__new__(cls)
        view._owner = owner
        view._own(handle)  # a view only lets go of the context's config: close() frees nothing
        return view

    # -- lifetime (close() and ``with`` from HandleOwner) -------------------------------------------
    @property
    def closed(self) -> bool:
        return self._live() is None

    def _live(self) -> Any:
        if self._handle is None or (self._owner is not None and self._owner.closed):
            return None
        return self._handle

    def _get_handle(self) -> Any:
        handle = self._live()
        if handle is None:
            raise ValueError("operation on a closed grey.Config")
        return handle

    def _writable(self) -> Any:
        if self._owner is not None:
            raise TypeError("a context's configuration is read-only; make a grey.Config to change values")
        return self._get_handle()

    # -- values -----------------------------------------------------------------------------------
    def load_file(self, path: Union[str, os.PathLike[str]]) -> None:
        """Overlays a YAML file; raises grey.ConfigError naming file, line and key if it is invalid."""
        capi.grey_config_load_file(self._writable(), os.fspath(path))

    def load_string(self, yaml: str, origin: Optional[str] = None) -> None:
        """Overlays YAML text; `origin` names it in error messages."""
        capi.grey_config_load_string(self._writable(), yaml, origin)

    def apply_env(self) -> None:
        """Applies the GREY_* environment variables (never done implicitly)."""
        capi.grey_config_apply_env(self._writable())

    def get(self, key: str) -> str:
        """The textual value of `key`; grey.NotFound for an unknown key."""
        return read_text(capi.grey_config_get, self._get_handle(), key)

    def set(self, key: str, value: ConfigValue) -> None:
        """Sets `key`, validated as in a file (True -> "true", 75 -> "75")."""
        capi.grey_config_set(self._writable(), key, _text_value(value))

    def to_yaml(self) -> str:
        """The whole configuration as YAML."""
        return read_text(capi.grey_config_to_yaml, self._get_handle())

    def to_dict(self) -> dict[str, str]:
        """Every schema key with its textual value."""
        return {key: self.get(key) for key in config_keys()}

    def __getitem__(self, key: str) -> str:
        return self.get(key)

    def __setitem__(self, key: str, value: ConfigValue) -> None:
        self.set(key, value)

    def __iter__(self) -> Iterator[str]:
        return iter(config_keys())

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("context view" if self._owner is not None else "open")
        return f"<grey.Config {state}>"
