// Deterministic simulation for the governor tests: a thermal plant read through a fake telemetry
// source (quantised like NVML's whole degrees, with scripted dropouts and stale readings), and a
// manual clock. Nothing here sleeps.
#pragma once

#include "govern/clock.hpp"
#include "govern/controller.hpp"
#include "govern/telemetry_source.hpp"
#include "govern/thermal_plant.hpp"

#include <cmath>
#include <functional>
#include <memory>

namespace grey::govern::test {

// Readings of a plant. `fault` decides, per reading, what goes wrong (nothing by default).
enum class Fault { None, Missing, Stale, Implausible };

class PlantTelemetry final : public TelemetrySource {
public:
    PlantTelemetry(const ThermalPlant& plant, const Clock& clock, bool quantise = true)
        : plant_(plant), clock_(clock), quantise_(quantise) {}

    std::function<Fault(uint64_t now_ns)> fault = [](uint64_t) { return Fault::None; };

    Reading read(uint32_t) noexcept override {
        Reading r;
        const uint64_t now = clock_.now_ns();
        const double t = plant_.temperature_c();
        switch (fault(now)) {
            case Fault::Missing: r.timestamp_ns = now; return r;
            case Fault::Stale:
                // The same old sample again: its timestamp does not move.
                r.timestamp_ns = last_timestamp_;
                r.temperature_c = last_value_;
                return r;
            case Fault::Implausible:
                r.timestamp_ns = now;
                r.temperature_c = 255.0;
                return r;
            case Fault::None: break;
        }
        r.timestamp_ns = now;
        r.temperature_c = quantise_ ? std::floor(t) : t;
        r.power_mw = static_cast<uint64_t>(plant_.power_w(last_duty) * 1000.0);
        r.energy_mj = static_cast<uint64_t>(plant_.energy_j() * 1000.0);
        last_timestamp_ = r.timestamp_ns;
        last_value_ = *r.temperature_c;
        return r;
    }

    double last_duty = 0.0;

private:
    const ThermalPlant& plant_;
    const Clock& clock_;
    bool quantise_;
    uint64_t last_timestamp_ = 0;
    double last_value_ = 0.0;
};

// The H200-like plant of PlantParameters' defaults, starting at its idle temperature.
inline PlantParameters default_plant() { return PlantParameters{}; }

inline constexpr uint64_t kMs = 1'000'000ull;
inline constexpr uint64_t kSecond = 1'000'000'000ull;

}  // namespace grey::govern::test
