//! The thermal governor and fair scheduler (grey.h, "Thermal governor and fair scheduler";
//! docs/govern.md).

use crate::{c_string, check, sys, Config, Context, Result};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Wait without limit (`GREY_WAIT_FOREVER`).
pub const WAIT_FOREVER: u64 = u64::MAX;

/// Paces the work of its tenants on every device of a context. Borrows the context.
pub struct Governor<'ctx> {
    raw: NonNull<sys::grey_governor>,
    _context: PhantomData<&'ctx Context>,
}

unsafe impl Send for Governor<'_> {}
unsafe impl Sync for Governor<'_> {}

/// A user of the devices with a weight and a priority level (0 is the highest). Borrows its governor.
pub struct Tenant<'g> {
    raw: NonNull<sys::grey_tenant>,
    _governor: PhantomData<&'g ()>,
}

unsafe impl Send for Tenant<'_> {}
unsafe impl Sync for Tenant<'_> {}

/// Admitted work: pass `ticket` to [`Tenant::release`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    pub device: u32,
    pub ticket: u64,
    pub waited_ns: u64,
    pub duty: f64,
    pub batch_scale: f64,
}

/// `grey_governor_state`.
#[derive(Debug, Clone, PartialEq)]
pub struct GovernorState {
    pub stopped: bool,
    pub stop_reason: String,
    pub device_count: u32,
    pub tenant_count: u32,
    pub steps: u64,
    pub target_temp_c: f64,
    pub max_temp_c: f64,
    pub proactive: bool,
    pub priority_levels: u32,
}

/// `grey_govern_device_state`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceGovernState {
    pub mode: String,
    pub temperature_c: Option<f64>,
    pub duty: f64,
    pub batch_scale: f64,
    pub waiting: u64,
    pub running: u64,
    pub admitted_count: u64,
    pub paced_ns: u64,
    pub hot_ns: u64,
    pub unknown_ns: u64,
    pub stopped_ns: u64,
}

/// `grey_tenant_stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantStats {
    pub name: String,
    pub priority: u32,
    pub weight: f64,
    pub admitted_count: u64,
    pub admitted_cost_ns: u64,
    pub actual_cost_ns: u64,
    pub waited_total_ns: u64,
    pub wait_max_ns: u64,
    pub timeouts: u64,
    pub refused_stopped: u64,
    pub waiting: u64,
    pub running: u64,
}

fn text(chars: &[std::os::raw::c_char]) -> String {
    unsafe { CStr::from_ptr(chars.as_ptr()) }.to_string_lossy().into_owned()
}

fn stats(s: &sys::grey_tenant_stats) -> TenantStats {
    TenantStats {
        name: text(&s.name),
        priority: s.priority,
        weight: s.weight,
        admitted_count: s.admitted_count,
        admitted_cost_ns: s.admitted_cost_ns,
        actual_cost_ns: s.actual_cost_ns,
        waited_total_ns: s.waited_total_ns,
        wait_max_ns: s.wait_max_ns,
        timeouts: s.timeouts,
        refused_stopped: s.refused_stopped,
        waiting: s.waiting,
        running: s.running,
    }
}

fn zeroed<T>(size_field: impl FnOnce(&mut T) -> &mut u32) -> T {
    let mut value: T = unsafe { std::mem::zeroed() };
    *size_field(&mut value) = std::mem::size_of::<T>() as u32;
    value
}

impl<'ctx> Governor<'ctx> {
    /// A governor over every device of `context`; `sample_period_ms` 0 starts no sampling thread (call
    /// [`Governor::step`]).
    pub fn new(context: &'ctx Context, sample_period_ms: u32) -> Result<Governor<'ctx>> {
        let mut options: sys::grey_governor_options = zeroed(|o: &mut sys::grey_governor_options| &mut o.struct_size);
        options.sample_period_ms = sample_period_ms;
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_governor_create(context.raw(), &options, &mut raw) })?;
        Ok(Governor { raw: NonNull::new(raw).expect("grey_governor_create returned OK and NULL"), _context: PhantomData })
    }

    /// A tenant named `name`.
    pub fn tenant(&self, name: &str, weight: f64, priority: u32) -> Result<Tenant<'_>> {
        let name = c_string("grey_tenant_create", "options.name", name)?;
        let mut options: sys::grey_tenant_options = zeroed(|o: &mut sys::grey_tenant_options| &mut o.struct_size);
        options.name = name.as_ptr();
        options.weight = weight;
        options.priority = priority;
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_tenant_create(self.raw.as_ptr(), &options, &mut raw) })?;
        Ok(Tenant { raw: NonNull::new(raw).expect("grey_tenant_create returned OK and NULL"), _governor: PhantomData })
    }

    pub fn step(&self) -> Result<()> {
        check(unsafe { sys::grey_governor_step(self.raw.as_ptr()) })
    }

    pub fn emergency_stop(&self, reason: &str) -> Result<()> {
        let reason = c_string("grey_governor_emergency_stop", "reason", reason)?;
        check(unsafe { sys::grey_governor_emergency_stop(self.raw.as_ptr(), reason.as_ptr()) })
    }

    pub fn resume(&self) -> Result<()> {
        check(unsafe { sys::grey_governor_resume(self.raw.as_ptr()) })
    }

    /// Re-reads the thermal.* and scheduling.* keys from `config`.
    pub fn configure(&self, config: &Config) -> Result<()> {
        check(unsafe { sys::grey_governor_configure(self.raw.as_ptr(), config.raw_ptr()) })
    }

    pub fn state(&self) -> Result<GovernorState> {
        let mut s: sys::grey_governor_state = zeroed(|s: &mut sys::grey_governor_state| &mut s.struct_size);
        check(unsafe { sys::grey_governor_state_get(self.raw.as_ptr(), &mut s) })?;
        Ok(GovernorState {
            stopped: s.stopped != 0,
            stop_reason: text(&s.stop_reason),
            device_count: s.device_count,
            tenant_count: s.tenant_count,
            steps: s.steps,
            target_temp_c: s.target_temp_c,
            max_temp_c: s.max_temp_c,
            proactive: s.proactive != 0,
            priority_levels: s.priority_levels,
        })
    }

    pub fn device(&self, index: u32) -> Result<DeviceGovernState> {
        let mut s: sys::grey_govern_device_state = zeroed(|s: &mut sys::grey_govern_device_state| &mut s.struct_size);
        check(unsafe { sys::grey_governor_device_state_get(self.raw.as_ptr(), index, &mut s) })?;
        let mode = unsafe { sys::grey_govern_mode_name(s.mode) };
        Ok(DeviceGovernState {
            mode: if mode.is_null() { String::new() } else { unsafe { CStr::from_ptr(mode) }.to_string_lossy().into_owned() },
            temperature_c: if s.temperature_known != 0 { Some(s.temperature_c) } else { None },
            duty: s.duty,
            batch_scale: s.batch_scale,
            waiting: s.waiting,
            running: s.running,
            admitted_count: s.admitted_count,
            paced_ns: s.paced_ns,
            hot_ns: s.hot_ns,
            unknown_ns: s.unknown_ns,
            stopped_ns: s.stopped_ns,
        })
    }

    /// Every tenant, in creation order.
    pub fn tenants(&self) -> Result<Vec<TenantStats>> {
        let mut count = 0u32;
        check(unsafe { sys::grey_governor_tenant_count(self.raw.as_ptr(), &mut count) })?;
        (0..count)
            .map(|i| {
                let mut s: sys::grey_tenant_stats = zeroed(|s: &mut sys::grey_tenant_stats| &mut s.struct_size);
                check(unsafe { sys::grey_governor_tenant_stats_get(self.raw.as_ptr(), i, &mut s) })?;
                Ok(stats(&s))
            })
            .collect()
    }
}

impl Drop for Governor<'_> {
    fn drop(&mut self) {
        unsafe { sys::grey_governor_destroy(self.raw.as_ptr()) }
    }
}

fn admission(a: &sys::grey_admission) -> Admission {
    Admission { device: a.device, ticket: a.ticket, waited_ns: a.waited_ns, duty: a.duty, batch_scale: a.batch_scale }
}

impl Tenant<'_> {
    /// Blocks until work of estimated device time `cost_ns` may start; `Error::Timeout` after
    /// `timeout_ns` (0 never blocks), `Error::Stopped` under an emergency stop.
    pub fn admit(&self, device: u32, cost_ns: u64, timeout_ns: u64) -> Result<Admission> {
        let mut a: sys::grey_admission = zeroed(|a: &mut sys::grey_admission| &mut a.struct_size);
        check(unsafe { sys::grey_govern_admit(self.raw.as_ptr(), device, cost_ns, timeout_ns, &mut a) })?;
        Ok(admission(&a))
    }

    /// Queues a request and returns its ticket at once.
    pub fn submit(&self, device: u32, cost_ns: u64) -> Result<u64> {
        let mut ticket = 0u64;
        check(unsafe { sys::grey_govern_submit(self.raw.as_ptr(), device, cost_ns, &mut ticket) })?;
        Ok(ticket)
    }

    /// Waits up to `timeout_ns` (0 polls) for a submitted ticket; `Error::Timeout` leaves it queued.
    pub fn wait(&self, ticket: u64, timeout_ns: u64) -> Result<Admission> {
        let mut a: sys::grey_admission = zeroed(|a: &mut sys::grey_admission| &mut a.struct_size);
        check(unsafe { sys::grey_govern_wait(self.raw.as_ptr(), ticket, timeout_ns, &mut a) })?;
        Ok(admission(&a))
    }

    pub fn cancel(&self, ticket: u64) -> Result<()> {
        check(unsafe { sys::grey_govern_cancel(self.raw.as_ptr(), ticket) })
    }

    /// Ends admitted work; `actual_ns` (0: unknown) is the device time it took.
    pub fn release(&self, ticket: u64, actual_ns: u64) -> Result<()> {
        check(unsafe { sys::grey_govern_release(self.raw.as_ptr(), ticket, actual_ns) })
    }

    pub fn should_yield(&self, ticket: u64) -> Result<bool> {
        let mut flag = 0u32;
        check(unsafe { sys::grey_govern_should_yield(self.raw.as_ptr(), ticket, &mut flag) })?;
        Ok(flag != 0)
    }

    pub fn set_weight(&self, weight: f64) -> Result<()> {
        check(unsafe { sys::grey_tenant_set_weight(self.raw.as_ptr(), weight) })
    }

    pub fn stats(&self) -> Result<TenantStats> {
        let mut s: sys::grey_tenant_stats = zeroed(|s: &mut sys::grey_tenant_stats| &mut s.struct_size);
        check(unsafe { sys::grey_tenant_stats_get(self.raw.as_ptr(), &mut s) })?;
        Ok(stats(&s))
    }
}

impl Drop for Tenant<'_> {
    fn drop(&mut self) {
        unsafe { sys::grey_tenant_destroy(self.raw.as_ptr()) }
    }
}
