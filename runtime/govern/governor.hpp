// The grey_governor of grey.h: one DeviceGate and one Controller per device of a context, the tenants,
// and the thread that samples telemetry and runs the controllers every period.
#pragma once

#include "config/config.hpp"
#include "govern/clock.hpp"
#include "govern/controller.hpp"
#include "govern/device_gate.hpp"
#include "govern/telemetry_source.hpp"
#include "govern/tenant.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace grey::govern {

// grey_governor_options with every default filled in.
struct GovernorOptions {
    uint32_t sample_period_ms = 100;
    uint64_t burst_ns = 20'000'000ull;
    uint64_t slice_ns = 2'000'000ull;
    uint64_t aging_ns = 2'000'000'000ull;
    double kp = 0.03;
    double ti_s = 2.0;
    double horizon_s = 0.5;
    double hysteresis_c = 1.0;
    double min_duty = 0.05;
    double unknown_duty = 0.5;
};

// What the governor knows of each device when it starts.
struct DeviceInfo {
    bool sensor_required = true;  // false for the host CPU (see ControllerSettings)
};

struct GovernorSnapshot {
    bool stopped = false;
    uint64_t steps = 0;
    uint64_t stop_count = 0;
    std::string stop_reason;
    ControllerSettings controller;
    GateSettings gate;
    size_t tenants = 0;
};

class Governor {
public:
    Governor(std::vector<DeviceInfo> devices, const config::Config& config, const GovernorOptions& options,
             std::unique_ptr<TelemetrySource> source, std::shared_ptr<const Clock> clock);
    ~Governor();
    Governor(const Governor&) = delete;
    Governor& operator=(const Governor&) = delete;

    void configure(const config::Config& config);
    void step();
    void emergency_stop(const std::string& reason);
    void resume();

    std::shared_ptr<TenantState> add_tenant(const std::string& name, double weight, uint32_t priority);
    void remove_tenant(TenantState& tenant);
    [[nodiscard]] std::vector<std::shared_ptr<TenantState>> tenants() const;

    [[nodiscard]] DeviceGate& gate(uint32_t device);
    [[nodiscard]] DeviceGate& gate_of_ticket(uint64_t ticket);
    [[nodiscard]] size_t device_count() const noexcept { return devices_.size(); }
    [[nodiscard]] GovernorSnapshot snapshot() const;
    [[nodiscard]] const Clock& clock() const noexcept { return *clock_; }

private:
    struct ControlledDevice {
        std::unique_ptr<DeviceGate> gate;
        Controller controller;
    };
    void run_thread();

    const GovernorOptions options_;
    std::unique_ptr<TelemetrySource> source_;
    std::shared_ptr<const Clock> clock_;
    std::vector<ControlledDevice> devices_;

    mutable std::mutex mutex_;  // settings, stop state, tenants; taken before any gate's mutex
    ControllerSettings controller_settings_;
    GateSettings gate_settings_;
    std::vector<std::shared_ptr<TenantState>> tenants_;
    uint64_t next_tenant_id_ = 1;
    bool stopped_ = false;
    uint64_t stop_count_ = 0;
    std::string stop_reason_;

    std::mutex step_mutex_;  // one control step at a time (thread and grey_governor_step)
    std::atomic<uint64_t> steps_{0};

    std::mutex thread_mutex_;
    std::condition_variable thread_wake_;
    bool thread_exit_ = false;
    std::thread thread_;
};

// The thermal.* and scheduling.* keys of `config`, with the tuning of `options`.
ControllerSettings controller_settings(const config::Config& config, const GovernorOptions& options);
GateSettings gate_settings(const config::Config& config, const GovernorOptions& options);

}  // namespace grey::govern
