"""The thermal governor and fair scheduler (grey.h, "Thermal governor and fair scheduler";
docs/govern.md).

    with grey.Context() as ctx, grey.Governor(ctx) as gov, gov.tenant("app", weight=2) as app:
        with app.admit(device=0, cost_ns=5_000_000) as work:   # blocks until the work may start
            run_batch(scale=work.batch_scale)                   # released when the block ends

A refused admission raises grey.Timeout (not admitted in time; nothing held) or grey.Stopped (an
emergency stop is in force).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from . import capi
from ._util import HandleOwner

WAIT_FOREVER = 2**64 - 1  # GREY_WAIT_FOREVER (UINT64_MAX), which SWIG does not export


def _fields(raw: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(raw, name) for name in names}


@dataclass(frozen=True)
class TenantStats:
    name: str
    priority: int
    weight: float
    admitted_count: int
    admitted_cost_ns: int
    actual_cost_ns: int
    waited_total_ns: int
    wait_max_ns: int
    timeouts: int
    refused_stopped: int
    yield_requests: int
    waiting: int
    running: int

    @staticmethod
    def _from(raw: Any) -> "TenantStats":
        return TenantStats(**_fields(raw, tuple(TenantStats.__dataclass_fields__)))


@dataclass(frozen=True)
class DeviceGovernState:
    mode: str
    temperature_known: bool
    temperature_c: Optional[float]
    slope_c_per_s: Optional[float]
    predicted_c: Optional[float]
    duty: float
    batch_scale: float
    waiting: int
    running: int
    admitted_count: int
    admitted_cost_ns: int
    paced_ns: int
    hot_ns: int
    unknown_ns: int
    stopped_ns: int
    mode_changes: int
    yield_requests: int


@dataclass(frozen=True)
class GovernorState:
    stopped: bool
    stop_reason: str
    device_count: int
    tenant_count: int
    steps: int
    stop_count: int
    target_temp_c: float
    max_temp_c: float
    strategy: str
    priority_levels: int
    thermal_enabled: bool
    fairness_enabled: bool
    preemption_allowed: bool


class Admission:
    """Admitted work. Release it with ``release()`` or by leaving its ``with`` block."""

    def __init__(self, tenant: "Tenant", raw: Any) -> None:
        self.tenant = tenant
        self.device: int = raw.device
        self.ticket: int = raw.ticket
        self.waited_ns: int = raw.waited_ns
        self.duty: float = raw.duty
        self.batch_scale: float = raw.batch_scale
        self._released = False

    def release(self, actual_ns: int = 0) -> None:
        if not self._released:
            capi.grey_govern_release(self.tenant._get_handle(), self.ticket, actual_ns)
            self._released = True

    @property
    def should_yield(self) -> bool:
        return bool(capi.grey_govern_should_yield(self.tenant._get_handle(), self.ticket))

    def __enter__(self) -> "Admission":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Tenant(HandleOwner):
    """A user of the devices, with a weight and a priority level (0 is the highest). Close it before its
    governor."""

    def __init__(self, governor: "Governor", name: str, weight: float = 1.0, priority: int = 0) -> None:
        options = capi.grey_tenant_options()
        options.name = name
        options.weight = weight
        options.priority = priority
        self.governor = governor
        self._own(capi.grey_tenant_create(governor._get_handle(), options), capi.grey_tenant_destroy)
        governor._tenants.append(self)

    def admit(self, device: int, cost_ns: int, timeout_ns: int = WAIT_FOREVER) -> Admission:
        """Blocks until the work may start; raises grey.Timeout or grey.Stopped otherwise."""
        raw = capi.grey_admission()
        capi.grey_govern_admit(self._get_handle(), device, cost_ns, timeout_ns, raw)
        return Admission(self, raw)

    def submit(self, device: int, cost_ns: int) -> int:
        """Queues a request; returns its ticket at once (see wait and cancel)."""
        return capi.grey_govern_submit(self._get_handle(), device, cost_ns)

    def wait(self, ticket: int, timeout_ns: int = 0) -> Admission:
        """Waits for a submitted ticket (0 polls); grey.Timeout leaves it queued."""
        raw = capi.grey_admission()
        capi.grey_govern_wait(self._get_handle(), ticket, timeout_ns, raw)
        return Admission(self, raw)

    def cancel(self, ticket: int) -> None:
        capi.grey_govern_cancel(self._get_handle(), ticket)

    def set_weight(self, weight: float) -> None:
        capi.grey_tenant_set_weight(self._get_handle(), weight)

    def stats(self) -> TenantStats:
        raw = capi.grey_tenant_stats()
        capi.grey_tenant_stats_get(self._get_handle(), raw)
        return TenantStats._from(raw)


class Governor(HandleOwner):
    """Paces the work of its tenants on every device of a context. sample_period_ms=0 starts no sampling
    thread: call step(). Close it before its context (closing it closes its tenants)."""

    def __init__(self, context: Any, sample_period_ms: int = 100) -> None:
        options = capi.grey_governor_options()
        options.sample_period_ms = sample_period_ms
        self.context = context
        self._tenants: list[Tenant] = []
        self._own(capi.grey_governor_create(context._get_handle(), options), capi.grey_governor_destroy)

    def close(self) -> None:
        for tenant in self._tenants:
            tenant.close()
        self._tenants.clear()
        super().close()

    def tenant(self, name: str, weight: float = 1.0, priority: int = 0) -> Tenant:
        return Tenant(self, name, weight, priority)

    def step(self) -> None:
        capi.grey_governor_step(self._get_handle())

    def emergency_stop(self, reason: str = "") -> None:
        capi.grey_governor_emergency_stop(self._get_handle(), reason)

    def resume(self) -> None:
        capi.grey_governor_resume(self._get_handle())

    def configure(self, config: Any) -> None:
        capi.grey_governor_configure(self._get_handle(), config._get_handle())

    def state(self) -> GovernorState:
        raw = capi.grey_governor_state()
        capi.grey_governor_state_get(self._get_handle(), raw)
        return GovernorState(stopped=bool(raw.stopped), stop_reason=raw.stop_reason, device_count=raw.device_count,
                             tenant_count=raw.tenant_count, steps=raw.steps, stop_count=raw.stop_count,
                             target_temp_c=raw.target_temp_c, max_temp_c=raw.max_temp_c,
                             strategy="proactive" if raw.proactive else "reactive", priority_levels=raw.priority_levels,
                             thermal_enabled=bool(raw.thermal_enabled), fairness_enabled=bool(raw.fairness_enabled),
                             preemption_allowed=bool(raw.preemption_allowed))

    def device(self, index: int) -> DeviceGovernState:
        raw = capi.grey_govern_device_state()
        capi.grey_governor_device_state_get(self._get_handle(), index, raw)
        known = bool(raw.temperature_known)
        return DeviceGovernState(
            mode=capi.grey_govern_mode_name(raw.mode), temperature_known=known,
            temperature_c=raw.temperature_c if known else None, slope_c_per_s=raw.slope_c_per_s if known else None,
            predicted_c=raw.predicted_c if known else None, duty=raw.duty, batch_scale=raw.batch_scale,
            waiting=raw.waiting, running=raw.running, admitted_count=raw.admitted_count,
            admitted_cost_ns=raw.admitted_cost_ns, paced_ns=raw.paced_ns, hot_ns=raw.hot_ns, unknown_ns=raw.unknown_ns,
            stopped_ns=raw.stopped_ns, mode_changes=raw.mode_changes, yield_requests=raw.yield_requests)

    def tenants(self) -> list[TenantStats]:
        handle = self._get_handle()
        result = []
        for i in range(capi.grey_governor_tenant_count(handle)):
            raw = capi.grey_tenant_stats()
            capi.grey_governor_tenant_stats_get(handle, i, raw)
            result.append(TenantStats._from(raw))
        return result
