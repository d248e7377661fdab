// The governor end to end in simulated time: telemetry from the plant, the controller's duty applied
// by the pacer, and the plant heated by what the scheduler actually admitted.
#include "simulation.hpp"

#include "config/config.hpp"
#include "govern/governor.hpp"

#include <gtest/gtest.h>

#include <deque>

namespace grey::govern::test {
namespace {

struct ClosedLoop {
    std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
    ThermalPlant plant{default_plant(), default_plant().ambient_c + default_plant().resistance_c_per_w * default_plant().idle_power_w};
    PlantTelemetry* telemetry = nullptr;
    std::unique_ptr<Governor> governor;

    explicit ClosedLoop(config::Config config) {
        auto source = std::make_unique<PlantTelemetry>(plant, *clock);
        telemetry = source.get();
        GovernorOptions options;
        options.sample_period_ms = 0;  // the test steps it
        governor = std::make_unique<Governor>(std::vector<DeviceInfo>{{true}}, config, options, std::move(source), clock);
    }

    // Saturating tenants for `seconds`; the plant's duty each 10 ms is the device time admitted in it.
    double run(std::vector<std::shared_ptr<TenantState>>& tenants, double seconds, uint64_t cost = 2 * kMs) {
        DeviceGate& gate = governor->gate(0);
        std::vector<std::deque<uint64_t>> outstanding(tenants.size());
        double peak = 0.0;
        const uint64_t tick = 10 * kMs;
        for (uint64_t t = 0; t < static_cast<uint64_t>(seconds * kSecond); t += tick) {
            if (t % (100 * kMs) == 0) governor->step();
            uint64_t admitted = 0;
            for (size_t i = 0; i < tenants.size(); ++i) {
                while (outstanding[i].size() < 4) outstanding[i].push_back(gate.submit(*tenants[i], cost));
                gate.poke();
                for (auto it = outstanding[i].begin(); it != outstanding[i].end();) {
                    Admission a;
                    if (gate.wait(*tenants[i], *it, 0, a) == GREY_OK) {
                        admitted += cost;
                        gate.release(*tenants[i], *it, 0);
                        it = outstanding[i].erase(it);
                    } else {
                        ++it;
                    }
                }
            }
            const double duty = std::min(1.0, static_cast<double>(admitted) / tick);
            telemetry->last_duty = duty;
            plant.advance(static_cast<double>(tick) / kSecond, duty);
            clock->advance(tick);
            peak = std::max(peak, plant.temperature_c());
        }
        return peak;
    }
};

config::Config config_with_target(double target, double max, const char* strategy = "proactive") {
    config::Config c;
    // One load, so that the target-below-max rule sees both new values together.
    c.load_yaml("thermal:\n  target_temp_c: " + std::to_string(target) + "\n  max_temp_c: " + std::to_string(max) +
                    "\n  throttle_strategy: " + strategy + "\n",
                "test");
    return c;
}

TEST(Governor, PacingAdmissionsHoldsThePlantAtTheTarget) {
    const double idle = default_plant().ambient_c + default_plant().resistance_c_per_w * default_plant().idle_power_w;
    ClosedLoop loop(config_with_target(idle + 10.0, idle + 18.0));
    std::vector<std::shared_ptr<TenantState>> tenants{loop.governor->add_tenant("a", 1.0, 0), loop.governor->add_tenant("b", 1.0, 0)};
    const double peak = loop.run(tenants, 300.0);
    std::printf("governor closed loop: peak %.2f C, final %.2f C (target %.2f), admitted a %.2f s b %.2f s\n", peak,
                loop.plant.temperature_c(), idle + 10.0, tenants[0]->counters.admitted_cost_ns.load() / 1e9,
                tenants[1]->counters.admitted_cost_ns.load() / 1e9);
    EXPECT_LE(peak, idle + 10.0 + 5.0);  // the fast die overshoots from a cold start (controller_test.cpp)
    EXPECT_NEAR(loop.plant.temperature_c(), idle + 10.0, 1.5);
    const GateSnapshot snap = loop.governor->gate(0).snapshot();
    EXPECT_EQ(snap.decision.mode, Mode::Pacing);
    EXPECT_GT(snap.paced_ns, 0u);
    // Both tenants got their half.
    const double a = static_cast<double>(tenants[0]->counters.admitted_cost_ns.load());
    const double b = static_cast<double>(tenants[1]->counters.admitted_cost_ns.load());
    EXPECT_NEAR(a / b, 1.0, 0.01);
}

TEST(Governor, EmergencyStopStopsEveryDeviceAndResumes) {
    auto clock = std::make_shared<ManualClock>();
    ThermalPlant plant(default_plant(), 40.0);
    GovernorOptions options;
    options.sample_period_ms = 0;
    Governor governor({{true}, {true}, {false}}, config::Config{}, options, std::make_unique<PlantTelemetry>(plant, *clock), clock);
    auto t = governor.add_tenant("t", 1.0, 0);
    governor.emergency_stop("operator");
    Admission a;
    for (uint32_t d = 0; d < 3; ++d) {
        EXPECT_EQ(governor.gate(d).admit(*t, kMs, 0, a), GREY_ERROR_STOPPED);
        EXPECT_EQ(governor.gate(d).snapshot().decision.mode, Mode::Stopped);
    }
    EXPECT_EQ(governor.snapshot().stop_reason, "operator");
    governor.resume();
    for (uint32_t d = 0; d < 3; ++d) EXPECT_EQ(governor.gate(d).admit(*t, kMs, 0, a), GREY_OK);
    EXPECT_EQ(governor.snapshot().stop_count, 1u);
}

TEST(Governor, ReloadChangesTargetAndLevels) {
    auto clock = std::make_shared<ManualClock>();
    ThermalPlant plant(default_plant(), 40.0);
    GovernorOptions options;
    options.sample_period_ms = 0;
    Governor governor({{true}}, config::Config{}, options, std::make_unique<PlantTelemetry>(plant, *clock), clock);
    config::Config c = config_with_target(60.0, 70.0, "reactive");
    c.set("scheduling.priority_levels", "5");
    c.set("scheduling.preemption_allowed", "true");
    governor.configure(c);
    const GovernorSnapshot s = governor.snapshot();
    EXPECT_EQ(s.controller.target_c, 60.0);
    EXPECT_EQ(s.controller.strategy, Strategy::Reactive);
    EXPECT_EQ(s.gate.priority_levels, 5u);
    EXPECT_TRUE(s.gate.preemption);
}

}  // namespace
}  // namespace grey::govern::test
