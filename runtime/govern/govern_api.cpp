// C entry points of the governor and scheduler (grey.h, "Thermal governor and fair scheduler").
#include "config/config_handle.hpp"
#include "core/context.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "govern/governor.hpp"
#include "govern/power_limit_hold.hpp"

#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <tuple>

struct grey_tenant;

struct grey_governor {
    std::unique_ptr<grey::govern::Governor> impl;
    std::unique_ptr<grey::govern::PowerLimitHold> power;  // only with options->power_limit_mw (opt-in)
    std::mutex handles_mutex;
    std::set<grey_tenant*> handles;  // freed with the governor if the host has not destroyed them
};

struct grey_tenant {
    grey_governor* governor;
    std::shared_ptr<grey::govern::TenantState> state;
};

namespace {

using namespace grey::govern;

double fraction(double value, double fallback, const char* name) {
    if (value == 0.0) return fallback;
    if (!std::isfinite(value) || value <= 0.0 || value > 1.0)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string("options->") + name + " must be in (0, 1], got " + std::to_string(value));
    return value;
}

double positive(double value, double fallback, const char* name) {
    if (value == 0.0) return fallback;
    if (!std::isfinite(value) || value < 0.0)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string("options->") + name + " must be positive and finite, got " + std::to_string(value));
    return value;
}

GovernorOptions governor_options(const grey_governor_options* given) {
    const grey_governor_options defaults = GREY_GOVERNOR_OPTIONS_INIT;
    const grey_governor_options o = grey::read_input_struct(given, defaults, "options");
    GovernorOptions r;
    r.sample_period_ms = o.sample_period_ms;
    if (o.burst_ns != 0) r.burst_ns = o.burst_ns;
    if (o.slice_ns != 0) r.slice_ns = o.slice_ns;
    if (o.aging_ns != 0) r.aging_ns = o.aging_ns;
    r.kp = positive(o.kp, r.kp, "kp");
    r.ti_s = positive(o.ti_s, r.ti_s, "ti_s");
    r.horizon_s = positive(o.horizon_s, r.horizon_s, "horizon_s");
    r.hysteresis_c = positive(o.hysteresis_c, r.hysteresis_c, "hysteresis_c");
    r.min_duty = fraction(o.min_duty, r.min_duty, "min_duty");
    r.unknown_duty = fraction(o.unknown_duty, r.unknown_duty, "unknown_duty");
    return r;
}

void check_weight(double weight) {
    if (!std::isfinite(weight) || weight <= 0.0)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "a tenant's weight must be positive and finite, got " + std::to_string(weight));
}

grey_tenant_stats tenant_stats(const TenantState& t) {
    grey_tenant_stats s{};
    s.struct_size = sizeof s;
    s.priority = t.priority;
    s.weight = t.weight.load(std::memory_order_relaxed);
    const TenantCounters& c = t.counters;
    s.admitted_count = c.admitted_count.load(std::memory_order_relaxed);
    s.admitted_cost_ns = c.admitted_cost_ns.load(std::memory_order_relaxed);
    s.actual_cost_ns = c.actual_cost_ns.load(std::memory_order_relaxed);
    s.waited_total_ns = c.waited_total_ns.load(std::memory_order_relaxed);
    s.wait_max_ns = c.wait_max_ns.load(std::memory_order_relaxed);
    s.timeouts = c.timeouts.load(std::memory_order_relaxed);
    s.refused_stopped = c.refused_stopped.load(std::memory_order_relaxed);
    s.yield_requests = c.yield_requests.load(std::memory_order_relaxed);
    s.waiting = static_cast<uint64_t>(std::max<int64_t>(0, c.waiting.load(std::memory_order_relaxed)));
    s.running = static_cast<uint64_t>(std::max<int64_t>(0, c.running.load(std::memory_order_relaxed)));
    grey::copy_text(s.name, t.name);
    return s;
}

grey_status admission_out(grey_status status, uint32_t device, const Admission& a, grey_admission* out) {
    if (status == GREY_OK) {
        grey_admission r{};
        r.struct_size = sizeof r;
        r.device = device;
        r.ticket = a.ticket;
        r.waited_ns = a.waited_ns;
        r.duty = a.duty;
        r.batch_scale = a.batch_scale;
        grey::copy_out_struct(r, out, sizeof(grey_admission), "out_admission");
    }
    return status;
}

// Runs `body`, which returns a status that is not an exception (timeouts, stops), inside abi_guard.
template <typename Body>
grey_status guarded_status(Body&& body) {
    grey_status result = GREY_OK;
    const grey_status thrown = grey::abi_guard([&] {
        result = body();
        if (result == GREY_ERROR_TIMEOUT) grey::fail(result, "not admitted before the timeout");
        if (result == GREY_ERROR_STOPPED) grey::fail(result, "an emergency stop is in force: no work is admitted");
    });
    return thrown;
}

}  // namespace

extern "C" {

const char* grey_govern_mode_name(grey_govern_mode mode) {
    switch (grey::raw_enum(mode)) {
        case GREY_GOVERN_OFF: return "off";
        case GREY_GOVERN_NO_SENSOR: return "no_sensor";
        case GREY_GOVERN_COOL: return "cool";
        case GREY_GOVERN_PACING: return "pacing";
        case GREY_GOVERN_HOT: return "hot";
        case GREY_GOVERN_UNKNOWN: return "unknown";
        case GREY_GOVERN_STOPPED: return "stopped";
        default: return nullptr;
    }
}

grey_status grey_governor_create(grey_context* context, const grey_governor_options* options, grey_governor** out_governor) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_governor, "out_governor");
        const GovernorOptions parsed = governor_options(options);
        const grey_governor_options defaults = GREY_GOVERNOR_OPTIONS_INIT;
        const uint64_t power_limit_mw = grey::read_input_struct(options, defaults, "options").power_limit_mw;
        std::vector<DeviceInfo> devices;
        for (const auto& device : context->devices) devices.push_back({device->backend->name() != "host"});
        auto governor = std::make_unique<grey_governor>();
        governor->impl = std::make_unique<Governor>(std::move(devices), context->config.impl, parsed,
                                                    std::make_unique<BackendTelemetry>(context), std::make_shared<SteadyClock>());
        if (power_limit_mw != 0)
            governor->power = std::make_unique<PowerLimitHold>(context, static_cast<uint32_t>(context->devices.size()), power_limit_mw);
        *out_governor = governor.release();
    });
}

void grey_governor_destroy(grey_governor* governor) {
    if (governor == nullptr) return;
    std::unique_ptr<grey_governor> owner(governor);
    owner->impl.reset();  // stops the thread before the tenants go
    owner->power.reset();  // restores the power limits it replaced
    for (grey_tenant* tenant : owner->handles) delete tenant;
}

grey_status grey_governor_configure(grey_governor* governor, const grey_config* config) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        grey::require_non_null(config, "config");
        governor->impl->configure(config->impl);
    });
}

grey_status grey_governor_step(grey_governor* governor) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        governor->impl->step();
    });
}

grey_status grey_governor_emergency_stop(grey_governor* governor, const char* reason) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        governor->impl->emergency_stop(reason != nullptr ? reason : "");
        // Admission is stopped first; then the power limits the governor set are put back.
        if (governor->power)
            if (const std::string problems = governor->power->restore(); !problems.empty())
                grey::fail(GREY_ERROR_BACKEND, "the emergency stop is in force, but restoring the power limit failed: " + problems);
    });
}

grey_status grey_governor_resume(grey_governor* governor) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        governor->impl->resume();
    });
}

grey_status grey_governor_state_get(grey_governor* governor, grey_governor_state* out_state) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        const GovernorSnapshot snap = governor->impl->snapshot();
        grey_governor_state s{};
        s.struct_size = sizeof s;
        s.stopped = snap.stopped ? 1u : 0u;
        s.device_count = static_cast<uint32_t>(governor->impl->device_count());
        s.tenant_count = static_cast<uint32_t>(snap.tenants);
        s.steps = snap.steps;
        s.stop_count = snap.stop_count;
        s.target_temp_c = snap.controller.target_c;
        s.max_temp_c = snap.controller.max_c;
        s.proactive = snap.controller.strategy == Strategy::Proactive ? 1u : 0u;
        s.priority_levels = snap.gate.priority_levels;
        s.thermal_enabled = snap.controller.enabled ? 1u : 0u;
        s.fairness_enabled = snap.gate.fairness ? 1u : 0u;
        s.preemption_allowed = snap.gate.preemption ? 1u : 0u;
        grey::copy_text(s.stop_reason, snap.stop_reason);
        grey::copy_out_struct(s, out_state, sizeof(grey_governor_state), "out_state");
    });
}

grey_status grey_governor_device_state_get(grey_governor* governor, uint32_t device, grey_govern_device_state* out_state) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        const GateSnapshot snap = governor->impl->gate(device).snapshot();
        grey_govern_device_state s{};
        s.struct_size = sizeof s;
        s.mode = static_cast<grey_govern_mode>(snap.decision.mode);
        s.temperature_known = snap.decision.temperature_known ? 1u : 0u;
        s.max_level = snap.decision.max_level;
        if (snap.decision.temperature_known) {
            s.temperature_c = snap.decision.temperature_c;
            s.slope_c_per_s = snap.decision.slope_c_per_s;
            s.predicted_c = snap.decision.predicted_c;
        }
        s.duty = snap.decision.duty;
        s.batch_scale = snap.decision.batch_scale;
        s.waiting = snap.waiting;
        s.running = snap.running;
        s.admitted_count = snap.admitted_count;
        s.admitted_cost_ns = snap.admitted_cost_ns;
        s.paced_ns = snap.paced_ns;
        s.hot_ns = snap.hot_ns;
        s.unknown_ns = snap.unknown_ns;
        s.stopped_ns = snap.stopped_ns;
        s.mode_changes = snap.mode_changes;
        s.yield_requests = snap.yield_requests;
        if (governor->power) std::tie(s.power_limit_held_mw, s.power_limit_restore_mw) = governor->power->held(device);
        grey::copy_out_struct(s, out_state, sizeof(grey_govern_device_state), "out_state");
    });
}

grey_status grey_tenant_create(grey_governor* governor, const grey_tenant_options* options, grey_tenant** out_tenant) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        grey::require_non_null(options, "options");
        grey::require_non_null(out_tenant, "out_tenant");
        const grey_tenant_options defaults = GREY_TENANT_OPTIONS_INIT;
        const grey_tenant_options o = grey::read_input_struct(options, defaults, "options");
        if (o.name == nullptr || o.name[0] == '\0') grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->name must name the tenant");
        const std::string name(o.name);
        if (name.size() >= GREY_NAME_MAX)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->name is " + std::to_string(name.size()) + " bytes; at most " +
                                                        std::to_string(GREY_NAME_MAX - 1) + " are allowed");
        check_weight(o.weight);
        auto tenant = std::make_unique<grey_tenant>(grey_tenant{governor, governor->impl->add_tenant(name, o.weight, o.priority)});
        std::lock_guard lock(governor->handles_mutex);
        governor->handles.insert(tenant.get());
        *out_tenant = tenant.release();
    });
}

void grey_tenant_destroy(grey_tenant* tenant) {
    if (tenant == nullptr) return;
    grey_governor* governor = tenant->governor;
    governor->impl->remove_tenant(*tenant->state);
    std::lock_guard lock(governor->handles_mutex);
    governor->handles.erase(tenant);
    delete tenant;
}

grey_status grey_tenant_set_weight(grey_tenant* tenant, double weight) {
    return grey::abi_guard([&] {
        grey::require_non_null(tenant, "tenant");
        check_weight(weight);
        tenant->state->weight.store(weight, std::memory_order_relaxed);
    });
}

grey_status grey_tenant_stats_get(grey_tenant* tenant, grey_tenant_stats* out_stats) {
    return grey::abi_guard([&] {
        grey::require_non_null(tenant, "tenant");
        grey::copy_out_struct(tenant_stats(*tenant->state), out_stats, sizeof(grey_tenant_stats), "out_stats");
    });
}

grey_status grey_governor_tenant_count(grey_governor* governor, uint32_t* out_count) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        grey::require_non_null(out_count, "out_count");
        *out_count = static_cast<uint32_t>(governor->impl->tenants().size());
    });
}

grey_status grey_governor_tenant_stats_get(grey_governor* governor, uint32_t index, grey_tenant_stats* out_stats) {
    return grey::abi_guard([&] {
        grey::require_non_null(governor, "governor");
        const auto tenants = governor->impl->tenants();
        if (index >= tenants.size())
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "tenant index " + std::to_string(index) + " is out of range (" +
                                                        std::to_string(tenants.size()) + " tenants)");
        grey::copy_out_struct(tenant_stats(*tenants[index]), out_stats, sizeof(grey_tenant_stats), "out_stats");
    });
}

grey_status grey_govern_admit(grey_tenant* tenant, uint32_t device, uint64_t cost_ns, uint64_t timeout_ns,
                              grey_admission* out_admission) {
    return guarded_status([&] {
        grey::require_non_null(tenant, "tenant");
        grey::require_non_null(out_admission, "out_admission");
        if (out_admission->struct_size < sizeof(grey_admission))
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "out_admission->struct_size is " + std::to_string(out_admission->struct_size) +
                                                        "; set it to sizeof(grey_admission)");
        Admission a;
        const grey_status status = tenant->governor->impl->gate(device).admit(*tenant->state, cost_ns, timeout_ns, a);
        return admission_out(status, device, a, out_admission);
    });
}

grey_status grey_govern_submit(grey_tenant* tenant, uint32_t device, uint64_t cost_ns, uint64_t* out_ticket) {
    return grey::abi_guard([&] {
        grey::require_non_null(tenant, "tenant");
        grey::require_non_null(out_ticket, "out_ticket");
        *out_ticket = tenant->governor->impl->gate(device).submit(*tenant->state, cost_ns);
    });
}

grey_status grey_govern_wait(grey_tenant* tenant, uint64_t ticket, uint64_t timeout_ns, grey_admission* out_admission) {
    return guarded_status([&] {
        grey::require_non_null(tenant, "tenant");
        grey::require_non_null(out_admission, "out_admission");
        if (out_admission->struct_size < sizeof(grey_admission))
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "out_admission->struct_size is " + std::to_string(out_admission->struct_size) +
                                                        "; set it to sizeof(grey_admission)");
        DeviceGate& gate = tenant->governor->impl->gate_of_ticket(ticket);
        Admission a;
        const grey_status status = gate.wait(*tenant->state, ticket, timeout_ns, a);
        return admission_out(status, gate.device(), a, out_admission);
    });
}

grey_status grey_govern_cancel(grey_tenant* tenant, uint64_t ticket) {
    return grey::abi_guard([&] {
        grey::require_non_null(tenant, "tenant");
        tenant->governor->impl->gate_of_ticket(ticket).cancel(*tenant->state, ticket);
    });
}

grey_status grey_govern_release(grey_tenant* tenant, uint64_t ticket, uint64_t actual_ns) {
    return grey::abi_guard([&] {
        grey::require_non_null(tenant, "tenant");
        tenant->governor->impl->gate_of_ticket(ticket).release(*tenant->state, ticket, actual_ns);
    });
}

grey_status grey_govern_should_yield(grey_tenant* tenant, uint64_t ticket, uint32_t* out_yield) {
    return grey::abi_guard([&] {
        grey::require_non_null(tenant, "tenant");
        grey::require_non_null(out_yield, "out_yield");
        *out_yield = tenant->governor->impl->gate_of_ticket(ticket).should_yield(*tenant->state, ticket) ? 1u : 0u;
    });
}

}  // extern "C"
