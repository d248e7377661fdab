// The controller on the simulated plant: step responses, overshoot, both strategies, and readings that
// go missing, stale or implausible (unknown, never cool).
#include "simulation.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace grey::govern::test {
namespace {

struct Trace {
    std::vector<double> time_s, temperature_c, duty;
    std::vector<Mode> mode;
    double peak_c = 0.0;
};

ControllerSettings settings_for(Strategy strategy, double target, double max) {
    ControllerSettings s;
    s.strategy = strategy;
    s.target_c = target;
    s.max_c = max;
    return s;
}

// Saturated demand: the device runs whatever duty the controller allows, from idle, for `seconds`.
Trace run_closed_loop(const ControllerSettings& settings, double seconds, PlantTelemetry* telemetry_out = nullptr,
                      std::function<Fault(uint64_t)> fault = {}) {
    ManualClock clock;
    ThermalPlant plant(default_plant(), default_plant().ambient_c + default_plant().resistance_c_per_w * default_plant().idle_power_w);
    PlantTelemetry telemetry(plant, clock);
    if (fault) telemetry.fault = fault;
    Controller controller(settings);
    Trace trace;
    const uint64_t step = 100 * kMs;
    double duty = 1.0;
    for (uint64_t t = 0; t < static_cast<uint64_t>(seconds * kSecond); t += step) {
        const Decision d = controller.step(clock.now_ns(), telemetry.read(0));
        duty = d.duty;
        telemetry.last_duty = duty;
        plant.advance(static_cast<double>(step) / kSecond, duty);
        clock.advance(step);
        trace.time_s.push_back(static_cast<double>(t) / kSecond);
        trace.temperature_c.push_back(plant.temperature_c());
        trace.duty.push_back(duty);
        trace.mode.push_back(d.mode);
        trace.peak_c = std::max(trace.peak_c, plant.temperature_c());
    }
    (void)telemetry_out;
    return trace;
}

double idle_c() { return default_plant().ambient_c + default_plant().resistance_c_per_w * default_plant().idle_power_w; }

// Worst distance from the target after `settle_s`.
double worst_error_after(const Trace& trace, double target, double settle_s) {
    double worst = 0.0;
    for (size_t i = 0; i < trace.time_s.size(); ++i)
        if (trace.time_s[i] >= settle_s) worst = std::max(worst, std::abs(trace.temperature_c[i] - target));
    return worst;
}

// The default plant is an H200's die (tau 2.7 s): from a cold start at full duty it heats at about 8 K/s,
// so even the proactive law overshoots by a few kelvin before the duty has come down; then it holds.
TEST(Controller, ProactiveHoldsTenKelvinAboveIdleWithinAKelvinAfterAFewKelvinOfOvershoot) {
    const double target = idle_c() + 10.0;
    const Trace trace = run_closed_loop(settings_for(Strategy::Proactive, target, target + 8.0), 600.0);
    std::printf("proactive: peak %.2f C (target %.2f), worst error after 200 s %.2f K, final duty %.3f\n", trace.peak_c, target,
                worst_error_after(trace, target, 200.0), trace.duty.back());
    EXPECT_LE(trace.peak_c - target, 5.0);
    EXPECT_LE(worst_error_after(trace, target, 200.0), 1.0);
    // Over the last 100 s the mean duty is the one that holds the plant at the target (within what the
    // sensor's whole degrees allow: the duties of target - 1 and target + 1.5).
    const ThermalPlant plant(default_plant(), 0.0);
    const size_t n = 1000;
    double mean = 0.0;
    for (size_t i = trace.duty.size() - n; i < trace.duty.size(); ++i) mean += trace.duty[i] / n;
    EXPECT_GE(mean, plant.duty_for(target - 1.0));
    EXPECT_LE(mean, plant.duty_for(target + 1.5));
}

TEST(Controller, ReactiveOvershootsMoreThanProactiveAndStillSettles) {
    const double target = idle_c() + 10.0;
    const Trace proactive = run_closed_loop(settings_for(Strategy::Proactive, target, target + 8.0), 600.0);
    const Trace reactive = run_closed_loop(settings_for(Strategy::Reactive, target, target + 8.0), 600.0);
    std::printf("overshoot: proactive %.2f K, reactive %.2f K; reactive worst error after 300 s %.2f K\n", proactive.peak_c - target,
                reactive.peak_c - target, worst_error_after(reactive, target, 300.0));
    EXPECT_GT(reactive.peak_c, proactive.peak_c + 1.0);
    EXPECT_LE(reactive.peak_c - target, 8.0);  // below max: the hot restriction never had to act
    EXPECT_LE(worst_error_after(reactive, target, 300.0), 2.0);
}

TEST(Controller, ReactiveDoesNothingBeforeTheTargetProactiveActsOnTheSlope) {
    const double target = idle_c() + 10.0;
    const Trace proactive = run_closed_loop(settings_for(Strategy::Proactive, target, target + 8.0), 120.0);
    const Trace reactive = run_closed_loop(settings_for(Strategy::Reactive, target, target + 8.0), 120.0);
    auto first_below_full = [](const Trace& t) {
        for (size_t i = 0; i < t.duty.size(); ++i)
            if (t.duty[i] < 1.0) return i;
        return t.duty.size();
    };
    const size_t p = first_below_full(proactive), r = first_below_full(reactive);
    ASSERT_LT(p, proactive.duty.size());
    ASSERT_LT(r, reactive.duty.size());
    EXPECT_LT(proactive.temperature_c[p], target);  // paced before reaching the target
    EXPECT_GE(reactive.temperature_c[r], target);   // only once past it
}

TEST(Controller, ATargetStepDownIsFollowedWithoutUndershootingFarBelow) {
    const double target = idle_c() + 15.0;
    ManualClock clock;
    ThermalPlant plant(default_plant(), idle_c());
    PlantTelemetry telemetry(plant, clock);
    ControllerSettings s = settings_for(Strategy::Proactive, target, target + 10.0);
    Controller controller(s);
    const uint64_t step = 100 * kMs;
    double lowest_after_step = 1e9;
    for (int i = 0; i < 8000; ++i) {
        if (i == 4000) {
            s.target_c = target - 5.0;  // a reload with a lower target
            controller.configure(s);
        }
        const Decision d = controller.step(clock.now_ns(), telemetry.read(0));
        plant.advance(0.1, d.duty);
        clock.advance(step);
        if (i > 4000) lowest_after_step = std::min(lowest_after_step, plant.temperature_c());
    }
    EXPECT_NEAR(plant.temperature_c(), target - 5.0, 1.0);
    EXPECT_GE(lowest_after_step, target - 5.0 - 2.5);
}

TEST(Controller, AboveMaxOnlyTheHighestLevelIsAdmittedUntilHysteresisClears) {
    ControllerSettings s = settings_for(Strategy::Reactive, 60.0, 70.0);
    Controller controller(s);
    Reading r;
    uint64_t now = kSecond;
    auto feed = [&](double temperature) {
        now += 100 * kMs;
        r.timestamp_ns = now;
        r.temperature_c = temperature;
        return controller.step(now, r);
    };
    EXPECT_EQ(feed(50.0).max_level, kAllLevels);
    Decision d = feed(70.0);
    EXPECT_EQ(d.mode, Mode::Hot);
    EXPECT_EQ(d.max_level, 0u);
    EXPECT_EQ(feed(69.5).max_level, 0u);  // within the hysteresis band: still hot
    d = feed(68.9);
    EXPECT_NE(d.mode, Mode::Hot);
    EXPECT_EQ(d.max_level, kAllLevels);
}

TEST(Controller, MissingReadingsAreUnknownNeverCool) {
    const double target = idle_c() + 10.0;
    ControllerSettings s = settings_for(Strategy::Proactive, target, target + 8.0);
    // The sensor drops out for 30 s once the device is being paced.
    const uint64_t drop_from = 1 * kSecond + 150 * kSecond, drop_to = drop_from + 30 * kSecond;
    auto fault = [&](uint64_t now) { return now >= drop_from && now < drop_to ? Fault::Missing : Fault::None; };
    const Trace trace = run_closed_loop(s, 300.0, nullptr, fault);
    double duty_before = 0;
    bool saw_unknown = false;
    for (size_t i = 0; i < trace.time_s.size(); ++i) {
        const uint64_t now = kSecond + static_cast<uint64_t>(trace.time_s[i] * kSecond);
        if (now < drop_from) duty_before = trace.duty[i];
        if (now >= drop_from && now < drop_to) {
            saw_unknown = true;
            EXPECT_EQ(trace.mode[i], Mode::Unknown);
            EXPECT_LE(trace.duty[i], duty_before + 1e-12) << "duty rose while the temperature was unknown";
            if (now >= drop_from + 2 * kSecond + 100 * kMs) {
                EXPECT_LE(trace.duty[i], s.unknown_duty);
            }
        }
    }
    EXPECT_TRUE(saw_unknown);
    EXPECT_LE(worst_error_after(trace, target, 280.0), 1.5);  // it recovers once readings return
}

TEST(Controller, ADeviceThatNeverReportedATemperatureIsUnknownNotCool) {
    Controller controller(settings_for(Strategy::Proactive, 70.0, 80.0));
    Reading nothing;
    Decision d;
    for (uint64_t t = 1; t <= 30; ++t) {
        nothing.timestamp_ns = t * 100 * kMs;
        d = controller.step(t * 100 * kMs, nothing);
        EXPECT_EQ(d.mode, Mode::Unknown);
    }
    EXPECT_LE(d.duty, 0.5);
}

TEST(Controller, AHostWithoutASensorIsReportedUnpaced) {
    ControllerSettings s = settings_for(Strategy::Proactive, 70.0, 80.0);
    s.sensor_required = false;
    Controller controller(s);
    const Decision d = controller.step(kSecond, Reading{});
    EXPECT_EQ(d.mode, Mode::NoSensor);
    EXPECT_EQ(d.duty, 1.0);
}

TEST(Controller, StaleAndImplausibleReadingsAreUnknown) {
    for (const Fault fault : {Fault::Stale, Fault::Implausible}) {
        ManualClock clock;
        ThermalPlant plant(default_plant(), 60.0);
        PlantTelemetry telemetry(plant, clock, false);
        Controller controller(settings_for(Strategy::Proactive, 70.0, 80.0));
        (void)controller.step(clock.now_ns(), telemetry.read(0));  // one good reading first
        clock.advance(100 * kMs);
        telemetry.fault = [&](uint64_t) { return fault; };
        const Decision d = controller.step(clock.now_ns(), telemetry.read(0));
        EXPECT_EQ(d.mode, Mode::Unknown) << static_cast<int>(fault);
        EXPECT_FALSE(d.temperature_known);
    }
}

TEST(Controller, AReadingOlderThanTheStaleLimitIsUnknown) {
    Controller controller(settings_for(Strategy::Proactive, 70.0, 80.0));
    Reading r;
    r.timestamp_ns = kSecond;
    r.temperature_c = 50.0;
    EXPECT_EQ(controller.step(kSecond, r).mode, Mode::Cool);
    r.timestamp_ns = 2 * kSecond;  // new, but arriving 1.5 s after it was taken
    EXPECT_EQ(controller.step(3 * kSecond + 500 * kMs, r).mode, Mode::Unknown);
}

TEST(Controller, DisabledMeansOffAndFullDuty) {
    ControllerSettings s = settings_for(Strategy::Proactive, 70.0, 80.0);
    s.enabled = false;
    Controller controller(s);
    Reading r;
    r.timestamp_ns = kSecond;
    r.temperature_c = 95.0;
    const Decision d = controller.step(kSecond, r);
    EXPECT_EQ(d.mode, Mode::Off);
    EXPECT_EQ(d.duty, 1.0);
    EXPECT_EQ(d.max_level, kAllLevels);
}

TEST(ThermalPlant, StepResponseIsExactAndIndependentOfStepSize) {
    ThermalPlant coarse(default_plant(), 40.0), fine(default_plant(), 40.0);
    const double tau = coarse.time_constant_s();
    coarse.advance(tau, 1.0);
    const int steps = static_cast<int>(std::lround(tau / 0.01));
    for (int i = 0; i < steps; ++i) fine.advance(tau / steps, 1.0);
    EXPECT_NEAR(coarse.temperature_c(), fine.temperature_c(), 1e-9);
    // One time constant covers 1 - 1/e of the distance to the steady state.
    const double ss = coarse.steady_state_c(1.0);
    EXPECT_NEAR(coarse.temperature_c(), ss + (40.0 - ss) * std::exp(-1.0), 1e-9);
    EXPECT_NEAR(coarse.duty_for(coarse.steady_state_c(0.3)), 0.3, 1e-12);
}

}  // namespace
}  // namespace grey::govern::test
