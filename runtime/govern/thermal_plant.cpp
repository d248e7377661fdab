#include "govern/thermal_plant.hpp"

#include <algorithm>
#include <cmath>

namespace grey::govern {

ThermalPlant::ThermalPlant(const PlantParameters& parameters, double initial_c)
    : parameters_(parameters), temperature_c_(initial_c) {}

double ThermalPlant::power_w(double duty) const noexcept {
    const double d = std::clamp(duty, 0.0, 1.0);
    return parameters_.idle_power_w + d * (parameters_.max_power_w - parameters_.idle_power_w);
}

double ThermalPlant::steady_state_c(double duty) const noexcept {
    return parameters_.ambient_c + parameters_.resistance_c_per_w * power_w(duty);
}

double ThermalPlant::time_constant_s() const noexcept {
    return parameters_.resistance_c_per_w * parameters_.capacity_j_per_c;
}

double ThermalPlant::duty_for(double temperature_c) const noexcept {
    const double span = parameters_.max_power_w - parameters_.idle_power_w;
    if (span <= 0.0) return 0.0;
    const double power = (temperature_c - parameters_.ambient_c) / parameters_.resistance_c_per_w;
    return std::clamp((power - parameters_.idle_power_w) / span, 0.0, 1.0);
}

void ThermalPlant::advance(double seconds, double duty) {
    if (seconds <= 0.0) return;
    last_duty_ = std::clamp(duty, 0.0, 1.0);
    const double target = steady_state_c(last_duty_);
    temperature_c_ = target + (temperature_c_ - target) * std::exp(-seconds / time_constant_s());
    energy_j_ += power_w(last_duty_) * seconds;
}

}  // namespace grey::govern
