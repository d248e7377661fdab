// A first-order (single RC) thermal model of a device, for deterministic tests of the controller and for
// fitting to a measured heating curve (tests/gpu/govern.py fits these parameters on a GPU).
//
//   C dT/dt = P(d) - (T - T_ambient) / R,        P(d) = P_idle + d (P_max - P_idle)
//
// d is the duty (the fraction of time the device runs admitted work), R the thermal resistance from die
// to ambient (K/W), C the heat capacity (J/K). The step response is exponential with time constant
// tau = R C towards T_ss(d) = T_ambient + R P(d). Over a step with constant duty the solution is exact,
// so a simulation's result does not depend on its step size.
#pragma once

#include <cstdint>

namespace grey::govern {

struct PlantParameters {
    // An H200 under 8192x8192 bf16 matmuls (tests/gpu/govern.py, bench/RESULTS.md): idle 36 C at 125 W,
    // full duty 58.7 C at 691 W, heating with a time constant of about 2.7 s.
    double ambient_c = 31.0;
    double resistance_c_per_w = 0.04;
    double capacity_j_per_c = 67.0;  // tau = 2.7 s with the resistance above
    double idle_power_w = 125.0;
    double max_power_w = 691.0;
};

class ThermalPlant {
public:
    ThermalPlant(const PlantParameters& parameters, double initial_c);

    // Runs the plant for `seconds` at a constant `duty` (clamped to [0, 1]).
    void advance(double seconds, double duty);

    [[nodiscard]] double temperature_c() const noexcept { return temperature_c_; }
    [[nodiscard]] double energy_j() const noexcept { return energy_j_; }
    [[nodiscard]] double power_w(double duty) const noexcept;
    [[nodiscard]] double steady_state_c(double duty) const noexcept;
    [[nodiscard]] double time_constant_s() const noexcept;
    // The constant duty whose steady state is `temperature_c`, clamped to [0, 1].
    [[nodiscard]] double duty_for(double temperature_c) const noexcept;
    [[nodiscard]] const PlantParameters& parameters() const noexcept { return parameters_; }

private:
    PlantParameters parameters_;
    double temperature_c_;
    double energy_j_ = 0.0;
    double last_duty_ = 0.0;
};

}  // namespace grey::govern
