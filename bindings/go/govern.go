package grey

import (
	"math"
	"runtime"
	"sync"

	"libgrey/grey/capi"
)

// WaitForever is the timeout that waits without limit (GREY_WAIT_FOREVER).
const WaitForever = uint64(math.MaxUint64)

// Governor paces the work of its tenants on every device of a context to keep them in their thermal
// envelope and shares them fairly (grey.h, "Thermal governor and fair scheduler"; docs/govern.md).
// Close it before its context.
type Governor struct {
	mu     sync.RWMutex
	handle capi.Grey_governor
}

// GovernorState is grey_governor_state.
type GovernorState struct {
	Stopped, ThermalEnabled, Proactive, Fairness, Preemption bool
	Devices, Tenants, PriorityLevels                         int
	Steps, StopCount                                         uint64
	TargetC, MaxC                                            float64
	StopReason                                               string
}

// DeviceGovernState is grey_govern_device_state.
type DeviceGovernState struct {
	Mode                                     string
	TemperatureKnown                         bool
	TemperatureC, SlopeCPerS, PredictedC     float64
	Duty, BatchScale                         float64
	Waiting, Running, Admitted, AdmittedCost uint64
	PacedNs, HotNs, UnknownNs, StoppedNs     uint64
}

// TenantStats is grey_tenant_stats.
type TenantStats struct {
	Name                                               string
	Priority                                           int
	Weight                                             float64
	Admitted, AdmittedCostNs, ActualCostNs             uint64
	WaitedTotalNs, WaitMaxNs, Timeouts, RefusedStopped uint64
	YieldRequests, Waiting, Running                    uint64
}

// Admission is grey_admission: release Ticket with Tenant.Release when the work is done.
type Admission struct {
	Device     int
	Ticket     uint64
	WaitedNs   uint64
	Duty       float64
	BatchScale float64
}

// NewGovernor creates a governor over every device of ctx. samplePeriodMs 0 starts no sampling thread
// (call Step); otherwise it samples every samplePeriodMs.
func (c *Context) NewGovernor(samplePeriodMs int) (*Governor, error) {
	raw := capi.NewGrey_governor_options()
	defer capi.DeleteGrey_governor_options(raw)
	raw.SetSample_period_ms(uint(samplePeriodMs))
	out := []uintptr{0}
	if err := c.with(func(h capi.Grey_context) error { return capi.Grey_governor_create(h, raw, out) }); err != nil {
		return nil, err
	}
	g := &Governor{handle: capi.SwigcptrGrey_governor(out[0])}
	runtime.SetFinalizer(g, (*Governor).Close)
	return g, nil
}

// Close stops the governor; its tenants become invalid. Safe to call more than once.
func (g *Governor) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.handle != nil {
		capi.Grey_governor_destroy(g.handle)
		g.handle = nil
	}
	runtime.SetFinalizer(g, nil)
	return nil
}

func (g *Governor) with(f func(capi.Grey_governor) error) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.handle == nil {
		return ErrClosed
	}
	return f(g.handle)
}

// Step samples every device and runs one control step.
func (g *Governor) Step() error { return g.with(capi.Grey_governor_step) }

// EmergencyStop stops admitting work on every device; Resume ends it.
func (g *Governor) EmergencyStop(reason string) error {
	return g.with(func(h capi.Grey_governor) error { return capi.Grey_governor_emergency_stop(h, reason) })
}

// Resume ends an emergency stop.
func (g *Governor) Resume() error { return g.with(capi.Grey_governor_resume) }

// Configure re-reads the thermal.* and scheduling.* keys from config.
func (g *Governor) Configure(config *Config) error {
	return g.with(func(h capi.Grey_governor) error {
		return config.with(false, func(c capi.Grey_config) error { return capi.Grey_governor_configure(h, c) })
	})
}

// State reports the governor as a whole.
func (g *Governor) State() (GovernorState, error) {
	raw := capi.NewGrey_governor_state()
	defer capi.DeleteGrey_governor_state(raw)
	if err := g.with(func(h capi.Grey_governor) error { return capi.Grey_governor_state_get(h, raw) }); err != nil {
		return GovernorState{}, err
	}
	return GovernorState{
		Stopped: raw.GetStopped() != 0, ThermalEnabled: raw.GetThermal_enabled() != 0, Proactive: raw.GetProactive() != 0,
		Fairness: raw.GetFairness_enabled() != 0, Preemption: raw.GetPreemption_allowed() != 0,
		Devices: int(raw.GetDevice_count()), Tenants: int(raw.GetTenant_count()), PriorityLevels: int(raw.GetPriority_levels()),
		Steps: raw.GetSteps(), StopCount: raw.GetStop_count(), TargetC: raw.GetTarget_temp_c(), MaxC: raw.GetMax_temp_c(),
		StopReason: raw.GetStop_reason(),
	}, nil
}

// Device reports the governor's state on one device.
func (g *Governor) Device(index int) (DeviceGovernState, error) {
	i, err := deviceIndex(index)
	if err != nil {
		return DeviceGovernState{}, err
	}
	raw := capi.NewGrey_govern_device_state()
	defer capi.DeleteGrey_govern_device_state(raw)
	if err := g.with(func(h capi.Grey_governor) error { return capi.Grey_governor_device_state_get(h, i, raw) }); err != nil {
		return DeviceGovernState{}, err
	}
	return DeviceGovernState{
		Mode: capi.Grey_govern_mode_name(raw.GetMode()), TemperatureKnown: raw.GetTemperature_known() != 0,
		TemperatureC: raw.GetTemperature_c(), SlopeCPerS: raw.GetSlope_c_per_s(), PredictedC: raw.GetPredicted_c(),
		Duty: raw.GetDuty(), BatchScale: raw.GetBatch_scale(), Waiting: raw.GetWaiting(), Running: raw.GetRunning(),
		Admitted: raw.GetAdmitted_count(), AdmittedCost: raw.GetAdmitted_cost_ns(), PacedNs: raw.GetPaced_ns(),
		HotNs: raw.GetHot_ns(), UnknownNs: raw.GetUnknown_ns(), StoppedNs: raw.GetStopped_ns(),
	}, nil
}

func tenantStats(raw capi.Grey_tenant_stats) TenantStats {
	return TenantStats{
		Name: raw.GetName(), Priority: int(raw.GetPriority()), Weight: raw.GetWeight(), Admitted: raw.GetAdmitted_count(),
		AdmittedCostNs: raw.GetAdmitted_cost_ns(), ActualCostNs: raw.GetActual_cost_ns(), WaitedTotalNs: raw.GetWaited_total_ns(),
		WaitMaxNs: raw.GetWait_max_ns(), Timeouts: raw.GetTimeouts(), RefusedStopped: raw.GetRefused_stopped(),
		YieldRequests: raw.GetYield_requests(), Waiting: raw.GetWaiting(), Running: raw.GetRunning(),
	}
}

// Tenants reports every tenant, in creation order.
func (g *Governor) Tenants() ([]TenantStats, error) {
	var list []TenantStats
	err := g.with(func(h capi.Grey_governor) error {
		n := []uint32{0}
		if err := capi.Grey_governor_tenant_count(h, n); err != nil {
			return err
		}
		for i := uint(0); i < uint(n[0]); i++ {
			raw := capi.NewGrey_tenant_stats()
			err := capi.Grey_governor_tenant_stats_get(h, i, raw)
			if err == nil {
				list = append(list, tenantStats(raw))
			}
			capi.DeleteGrey_tenant_stats(raw)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return list, err
}

// Tenant is a user of the devices with a weight and a priority level (0 is the highest).
type Tenant struct {
	mu       sync.RWMutex
	handle   capi.Grey_tenant
	governor *Governor
}

// NewTenant creates a tenant named name.
func (g *Governor) NewTenant(name string, weight float64, priority int) (*Tenant, error) {
	raw := capi.NewGrey_tenant_options()
	defer capi.DeleteGrey_tenant_options(raw)
	raw.SetName(name)
	raw.SetWeight(weight)
	raw.SetPriority(uint(priority))
	out := []uintptr{0}
	if err := g.with(func(h capi.Grey_governor) error { return capi.Grey_tenant_create(h, raw, out) }); err != nil {
		return nil, err
	}
	t := &Tenant{handle: capi.SwigcptrGrey_tenant(out[0]), governor: g}
	runtime.SetFinalizer(t, (*Tenant).Close)
	return t, nil
}

// Close destroys the tenant (before its governor). Safe to call more than once.
func (t *Tenant) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handle != nil {
		_ = t.governor.with(func(capi.Grey_governor) error { capi.Grey_tenant_destroy(t.handle); return nil })
		t.handle = nil
	}
	runtime.SetFinalizer(t, nil)
	return nil
}

func (t *Tenant) with(f func(capi.Grey_tenant) error) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.handle == nil {
		return ErrClosed
	}
	return t.governor.with(func(capi.Grey_governor) error { return f(t.handle) })
}

func admission(raw capi.Grey_admission) Admission {
	return Admission{Device: int(raw.GetDevice()), Ticket: raw.GetTicket(), WaitedNs: raw.GetWaited_ns(), Duty: raw.GetDuty(),
		BatchScale: raw.GetBatch_scale()}
}

// Admit blocks until work of estimated device time costNs may start on device, until timeoutNs passes
// (ErrTimeout; 0 never blocks) or an emergency stop refuses it (ErrStopped).
func (t *Tenant) Admit(device int, costNs, timeoutNs uint64) (Admission, error) {
	i, err := deviceIndex(device)
	if err != nil {
		return Admission{}, err
	}
	raw := capi.NewGrey_admission()
	defer capi.DeleteGrey_admission(raw)
	if err := t.with(func(h capi.Grey_tenant) error { return capi.Grey_govern_admit(h, i, costNs, timeoutNs, raw) }); err != nil {
		return Admission{}, err
	}
	return admission(raw), nil
}

// Submit queues a request and returns its ticket at once; Wait learns when it is admitted.
func (t *Tenant) Submit(device int, costNs uint64) (uint64, error) {
	i, err := deviceIndex(device)
	if err != nil {
		return 0, err
	}
	out := []uint64{0}
	err = t.with(func(h capi.Grey_tenant) error { return capi.Grey_govern_submit(h, i, costNs, out) })
	return out[0], err
}

// Wait waits up to timeoutNs for a submitted ticket (0 polls); ErrTimeout leaves it queued.
func (t *Tenant) Wait(ticket, timeoutNs uint64) (Admission, error) {
	raw := capi.NewGrey_admission()
	defer capi.DeleteGrey_admission(raw)
	if err := t.with(func(h capi.Grey_tenant) error { return capi.Grey_govern_wait(h, ticket, timeoutNs, raw) }); err != nil {
		return Admission{}, err
	}
	return admission(raw), nil
}

// Cancel withdraws a ticket not yet admitted.
func (t *Tenant) Cancel(ticket uint64) error {
	return t.with(func(h capi.Grey_tenant) error { return capi.Grey_govern_cancel(h, ticket) })
}

// Release ends admitted work; actualNs (0: unknown) is the device time it took.
func (t *Tenant) Release(ticket, actualNs uint64) error {
	return t.with(func(h capi.Grey_tenant) error { return capi.Grey_govern_release(h, ticket, actualNs) })
}

// ShouldYield says whether running work should stop at its next safe point (preemption).
func (t *Tenant) ShouldYield(ticket uint64) (bool, error) {
	out := []uint32{0}
	err := t.with(func(h capi.Grey_tenant) error { return capi.Grey_govern_should_yield(h, ticket, out) })
	return out[0] != 0, err
}

// SetWeight changes the tenant's weight.
func (t *Tenant) SetWeight(weight float64) error {
	return t.with(func(h capi.Grey_tenant) error { return capi.Grey_tenant_set_weight(h, weight) })
}

// Stats reports what the tenant was admitted and waited.
func (t *Tenant) Stats() (TenantStats, error) {
	raw := capi.NewGrey_tenant_stats()
	defer capi.DeleteGrey_tenant_stats(raw)
	if err := t.with(func(h capi.Grey_tenant) error { return capi.Grey_tenant_stats_get(h, raw) }); err != nil {
		return TenantStats{}, err
	}
	return tenantStats(raw), nil
}
