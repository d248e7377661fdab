"""Device specifications and telemetry as Python objects, read generically through grey_field_describe."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Union

from . import capi
from ._util import known

Value = Union[int, float, str, None]



@dataclass(frozen=True)
class FieldDescription:
    field: int
    key: str
    kind: int
    group: int
    unit: str


@functools.lru_cache(maxsize=None)
def descriptions(group: int) -> tuple[FieldDescription, ...]:
    """Every field of `group` (spec or telemetry) this libgrey knows, in grey_field order."""
    out = []
    for field in range(capi.GREY_FIELD_COUNT):
        desc = capi.grey_field_desc()
        capi.grey_field_describe(field, desc)
        if desc.group == group:
            out.append(FieldDescription(field, desc.key, desc.kind, desc.group, desc.unit))
    return tuple(out)


@dataclass(frozen=True)
class Field:
    """One reading: ``value`` is None unless ``state`` is "ok"; ``reason`` then says why."""

    key: str
    value: Value
    state: str
    source: str
    unit: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def read_fields(raw: Any, group: int, reason: Callable[[int], str]) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for desc in descriptions(group):
        reading = getattr(raw, desc.key)
        state = known(capi.grey_field_state_name(reading.state))
        ok = reading.state == capi.GREY_FIELD_OK
        fields[desc.key] = Field(
            key=desc.key,
            value=reading.value if ok else None,
            state=state,
            source=known(capi.grey_source_name(reading.source)),
            unit=desc.unit,
            reason="" if ok else reason(desc.field),
        )
    return fields


class _Readings:
    """Fields as attributes (``spec.memory_total_bytes``), each None when unavailable."""

    fields: dict[str, Field]

    def __getattr__(self, name: str) -> Value:
        fields = self.__dict__.get("fields")
        if fields is not None and name in fields:
            return fields[name].value
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.fields))

    def _fields_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: f.value for key, f in self.fields.items()}
        out["unavailable"] = {key: f.reason for key, f in self.fields.items() if not f.ok}
        out["unavailable_states"] = {key: f.state for key, f in self.fields.items() if not f.ok}
        out["sources"] = {key: f.source for key, f in self.fields.items() if f.ok}
        return out


class DeviceSpec(_Readings):
    """Static facts about one device, with every field of grey_device_spec as an attribute."""

    def __init__(self, index: int, raw: Any, fields: dict[str, Field]) -> None:
        self.index = index
        self.backend: str = raw.backend
        self.backend_device_index: int = raw.backend_device_index
        self.vendor: str = known(capi.grey_vendor_name(raw.vendor))
        self.type: str = known(capi.grey_device_type_name(raw.type))
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        """The device as ``greyctl detect --json`` prints it."""
        head: dict[str, Any] = {
            "index": self.index,
            "backend": self.backend,
            "backend_device_index": self.backend_device_index,
            "vendor": self.vendor,
            "type": self.type,
        }
        head.update(self._fields_dict())
        return head

    def __repr__(self) -> str:
        return (f"DeviceSpec(index={self.index}, backend={self.backend!r}, name={self.name!r}, "
                f"memory_total_bytes={self.memory_total_bytes}, compute_units={self.compute_units})")


class Telemetry(_Readings):
    """One live sample of a device, with every field of grey_device_telemetry as an attribute."""

    def __init__(self, index: int, raw: Any, fields: dict[str, Field]) -> None:
        self.index = index
        self.timestamp_ns: int = raw.timestamp_ns
        self.fields = fields

    @property
    def throttle_reason_names(self) -> list[str]:
        """The names of the set throttle_reasons bits ([] when unavailable)."""
        bits = self.fields["throttle_reasons"].value
        if not isinstance(bits, int):
            return []
        names = []
        for shift in range(32):
            if bits & (1 << shift):
                name = capi.grey_throttle_reason_name(1 << shift)
                if name is not None:
                    names.append(name)
        return names

    def to_dict(self) -> dict[str, Any]:
        """The sample as ``greyctl detect --telemetry --json`` prints it."""
        out: dict[str, Any] = {"timestamp_ns": self.timestamp_ns}
        out.update(self._fields_dict())
        if self.fields["throttle_reasons"].ok:
            out["throttle_reason_names"] = self.throttle_reason_names
        return out

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={f.value}" for k, f in self.fields.items() if f.ok)
        return f"Telemetry(index={self.index}, {shown})"
