#include "govern/governor.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <chrono>

namespace grey::govern {

ControllerSettings controller_settings(const config::Config& config, const GovernorOptions& options) {
    ControllerSettings s;
    s.enabled = config.get_bool("thermal.enabled");
    s.target_c = config.get_real("thermal.target_temp_c");
    s.max_c = config.get_real("thermal.max_temp_c");
    s.strategy = config.get_string("thermal.throttle_strategy") == "reactive" ? Strategy::Reactive : Strategy::Proactive;
    s.kp = options.kp;
    s.ti_s = options.ti_s;
    s.horizon_s = options.horizon_s;
    s.hysteresis_c = options.hysteresis_c;
    s.min_duty = options.min_duty;
    s.unknown_duty = options.unknown_duty;
    // A reading is stale once two sampling periods (at least a second) have passed since it was taken.
    s.stale_after_s = std::max(1.0, 2.0 * options.sample_period_ms / 1000.0);
    return s;
}

GateSettings gate_settings(const config::Config& config, const GovernorOptions& options) {
    GateSettings s;
    s.priority_levels = static_cast<uint32_t>(std::clamp<int64_t>(config.get_int("scheduling.priority_levels"), 1, kMaxLevels));
    s.fairness = config.get_bool("scheduling.fairness_enabled");
    s.preemption = config.get_bool("scheduling.preemption_allowed");
    s.aging_ns = options.aging_ns;
    s.burst_ns = options.burst_ns;
    s.slice_ns = options.slice_ns;
    return s;
}

Governor::Governor(std::vector<DeviceInfo> devices, const config::Config& config, const GovernorOptions& options,
                   std::unique_ptr<TelemetrySource> source, std::shared_ptr<const Clock> clock)
    : options_(options),
      source_(std::move(source)),
      clock_(std::move(clock)),
      controller_settings_(controller_settings(config, options)),
      gate_settings_(gate_settings(config, options)) {
    for (uint32_t i = 0; i < devices.size(); ++i) {
        ControllerSettings cs = controller_settings_;
        cs.sensor_required = devices[i].sensor_required;
        devices_.push_back({std::make_unique<DeviceGate>(i, *clock_, gate_settings_), Controller(cs)});
    }
    if (options_.sample_period_ms > 0) thread_ = std::thread([this] { run_thread(); });
}

Governor::~Governor() {
    if (thread_.joinable()) {
        {
            std::lock_guard lock(thread_mutex_);
            thread_exit_ = true;
        }
        thread_wake_.notify_all();
        thread_.join();
    }
}

void Governor::run_thread() {
    const auto period = std::chrono::milliseconds(options_.sample_period_ms);
    auto next = std::chrono::steady_clock::now();
    std::unique_lock lock(thread_mutex_);
    while (!thread_exit_) {
        lock.unlock();
        try {
            step();
        } catch (...) {
            // A step never throws for a device that cannot be read (the reading is just empty); anything
            // else is a bug, which must not end the thread that keeps devices paced.
        }
        lock.lock();
        next += period;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now;  // after a stall, do not run a burst of steps to catch up
        thread_wake_.wait_until(lock, next, [this] { return thread_exit_; });
    }
}

void Governor::configure(const config::Config& config) {
    ControllerSettings cs = controller_settings(config, options_);
    GateSettings gs = gate_settings(config, options_);
    {
        std::lock_guard lock(mutex_);
        controller_settings_ = cs;
        gate_settings_ = gs;
    }
    std::lock_guard step_lock(step_mutex_);
    for (ControlledDevice& d : devices_) {
        ControllerSettings device_settings = cs;
        device_settings.sensor_required = d.controller.settings().sensor_required;
        d.controller.configure(device_settings);
        d.gate->configure(gs);
    }
}

void Governor::step() {
    std::lock_guard step_lock(step_mutex_);
    for (ControlledDevice& d : devices_) {
        const Reading reading = source_->read(d.gate->device());
        const Decision decision = d.controller.step(clock_->now_ns(), reading);
        d.gate->apply(decision, clock_->now_ns());
    }
    ++steps_;
}

void Governor::emergency_stop(const std::string& reason) {
    std::lock_guard lock(mutex_);
    if (!stopped_) ++stop_count_;
    stopped_ = true;
    stop_reason_ = reason;
    // Every gate is stopped before the call returns: no admission starts on any device after it.
    for (ControlledDevice& d : devices_) d.gate->set_stopped(true);
}

void Governor::resume() {
    std::lock_guard lock(mutex_);
    stopped_ = false;
    stop_reason_.clear();
    for (ControlledDevice& d : devices_) d.gate->set_stopped(false);
}

std::shared_ptr<TenantState> Governor::add_tenant(const std::string& name, double weight, uint32_t priority) {
    std::lock_guard lock(mutex_);
    for (const auto& t : tenants_)
        if (t->name == name) fail(GREY_ERROR_INVALID_ARGUMENT, "a tenant named '" + name + "' already exists");
    tenants_.push_back(std::make_shared<TenantState>(next_tenant_id_++, name, weight, priority));
    return tenants_.back();
}

void Governor::remove_tenant(TenantState& tenant) {
    for (ControlledDevice& d : devices_) d.gate->forget(tenant);
    std::lock_guard lock(mutex_);
    std::erase_if(tenants_, [&](const auto& t) { return t.get() == &tenant; });
}

std::vector<std::shared_ptr<TenantState>> Governor::tenants() const {
    std::lock_guard lock(mutex_);
    return tenants_;
}

DeviceGate& Governor::gate(uint32_t device) {
    if (device >= devices_.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "device index " + std::to_string(device) + " is out of range (the governor has " +
                                              std::to_string(devices_.size()) + " device(s))");
    return *devices_[device].gate;
}

DeviceGate& Governor::gate_of_ticket(uint64_t ticket) {
    const uint64_t device = ticket >> 48;
    if (device >= devices_.size()) fail(GREY_ERROR_INVALID_ARGUMENT, "ticket " + std::to_string(ticket) + " was never issued by this governor");
    return *devices_[device].gate;
}

GovernorSnapshot Governor::snapshot() const {
    GovernorSnapshot s;
    std::lock_guard lock(mutex_);
    s.stopped = stopped_;
    s.stop_count = stop_count_;
    s.stop_reason = stop_reason_;
    s.controller = controller_settings_;
    s.gate = gate_settings_;
    s.tenants = tenants_.size();
    s.steps = steps_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace grey::govern
