// The thermal controller of one device: from each telemetry reading to a duty (the fraction of device
// time the scheduler may admit), a suggested batch scale and the priority levels admitted.
//
// It acts only through those outputs: libgrey paces the work that goes through its admission API and
// never touches clocks, power limits or fans. docs/govern.md derives the tuning.
#pragma once

#include "govern/telemetry_source.hpp"

#include <cstdint>
#include <deque>
#include <limits>
#include <utility>

namespace grey::govern {

enum class Strategy { Proactive, Reactive };

// The values are grey_govern_mode's.
enum class Mode : uint32_t { Off = 0, NoSensor = 1, Cool = 2, Pacing = 3, Hot = 4, Unknown = 5, Stopped = 6 };

inline constexpr uint32_t kAllLevels = std::numeric_limits<uint32_t>::max();

struct ControllerSettings {
    bool enabled = true;          // thermal.enabled
    double target_c = 75.0;       // thermal.target_temp_c
    double max_c = 83.0;          // thermal.max_temp_c
    Strategy strategy = Strategy::Proactive;
    double kp = 0.03;             // duty per kelvin of error
    double ti_s = 2.0;            // integral time: the integral term gains kp/ti per kelvin-second
    double horizon_s = 0.5;       // proactive: the error is taken at T + slope * horizon
    double hysteresis_c = 1.0;    // release below target - h (pacing) and max - h (hot)
    double min_duty = 0.05;       // pacing never goes below this
    double unknown_duty = 0.5;    // duty ceiling once the temperature has been unknown for unknown_grace_s
    double unknown_grace_s = 2.0;
    double slope_window_s = 5.0;  // the slope is a least-squares fit over this much history
    double release_hold_s = 5.0;  // pacing ends after the controller has asked for full duty this long
    double stale_after_s = 1.0;   // a reading older than this when it arrives is stale
    // true (GPUs): a device that has never reported a temperature is unknown, not cool. false (the host
    // CPU, whose temperature the OS manages): such a device is reported as having no sensor, unpaced.
    bool sensor_required = true;
};

struct Decision {
    Mode mode = Mode::Off;
    double duty = 1.0;
    double batch_scale = 1.0;
    uint32_t max_level = kAllLevels;  // the lowest priority level admitted (0 = the highest only)
    bool temperature_known = false;
    double temperature_c = 0.0;
    double slope_c_per_s = 0.0;
    double predicted_c = 0.0;
};

class Controller {
public:
    explicit Controller(const ControllerSettings& settings) : settings_(settings) {}

    // New settings (a configuration reload); the controller keeps its state.
    void configure(const ControllerSettings& settings) { settings_ = settings; }
    [[nodiscard]] const ControllerSettings& settings() const noexcept { return settings_; }

    // One control step at `now_ns` with the latest reading.
    Decision step(uint64_t now_ns, const Reading& reading);

private:
    [[nodiscard]] bool usable(uint64_t now_ns, const Reading& reading) const;
    Decision unknown(uint64_t now_ns);
    [[nodiscard]] double slope() const;

    ControllerSettings settings_;
    std::deque<std::pair<double, double>> window_;  // (seconds, temperature)
    bool ever_known_ = false;
    bool engaged_ = false;
    bool hot_ = false;
    bool unknown_ = false;
    double integral_ = 1.0;
    double duty_ = 1.0;
    double saturated_s_ = 0.0;
    uint64_t last_now_ns_ = 0;
    uint64_t last_reading_ns_ = 0;
    uint64_t unknown_since_ns_ = 0;
};

}  // namespace grey::govern
