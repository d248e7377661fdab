#include "govern/controller.hpp"

#include <algorithm>
#include <cmath>

namespace grey::govern {
namespace {

constexpr double kNs = 1e9;
// Readings outside this range are sensor faults (NVML reports 0 or 255 for some failures), not heat.
constexpr double kPlausibleMinC = -40.0;
constexpr double kPlausibleMaxC = 150.0;

}  // namespace

bool Controller::usable(uint64_t now_ns, const Reading& reading) const {
    if (!reading.temperature_c) return false;
    const double t = *reading.temperature_c;
    if (!std::isfinite(t) || t < kPlausibleMinC || t > kPlausibleMaxC) return false;
    // A reading no newer than the last one, or taken too long before now, says nothing about now.
    if (reading.timestamp_ns <= last_reading_ns_ || reading.timestamp_ns > now_ns) return false;
    return static_cast<double>(now_ns - reading.timestamp_ns) / kNs <= settings_.stale_after_s;
}

double Controller::slope() const {
    if (window_.size() < 2) return 0.0;
    const double t0 = window_.back().first;
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const auto& [t, y] : window_) {
        const double x = t - t0;
        n += 1;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    const double denominator = n * sxx - sx * sx;
    if (denominator <= 1e-12) return 0.0;
    return (n * sxy - sx * sy) / denominator;
}

Decision Controller::unknown(uint64_t now_ns) {
    Decision d;
    if (!ever_known_ && !settings_.sensor_required) {
        d.mode = Mode::NoSensor;
        return d;
    }
    if (!unknown_) {
        unknown_ = true;
        unknown_since_ns_ = now_ns;
    }
    // Unknown is never cool: the duty is held (the integral frozen) and, once the sensor has been silent
    // for the grace period, capped at unknown_duty. A hot restriction stays in force.
    if (static_cast<double>(now_ns - unknown_since_ns_) / kNs >= settings_.unknown_grace_s)
        duty_ = std::min(duty_, settings_.unknown_duty);
    d.mode = Mode::Unknown;
    d.duty = duty_;
    d.batch_scale = duty_;
    d.max_level = hot_ ? 0 : kAllLevels;
    return d;
}

Decision Controller::step(uint64_t now_ns, const Reading& reading) {
    const double dt = last_now_ns_ != 0 && now_ns > last_now_ns_ ? static_cast<double>(now_ns - last_now_ns_) / kNs : 0.0;
    last_now_ns_ = now_ns;
    if (!settings_.enabled) {
        engaged_ = hot_ = false;
        duty_ = 1.0;
        return Decision{};
    }
    if (!usable(now_ns, reading)) return unknown(now_ns);
    last_reading_ns_ = reading.timestamp_ns;
    unknown_ = false;
    ever_known_ = true;

    const double temperature = *reading.temperature_c;
    const double seconds = static_cast<double>(reading.timestamp_ns) / kNs;
    window_.emplace_back(seconds, temperature);
    while (!window_.empty() && window_.front().first < seconds - settings_.slope_window_s) window_.pop_front();
    const double rate = slope();
    const bool proactive = settings_.strategy == Strategy::Proactive;
    const double predicted = proactive ? temperature + rate * settings_.horizon_s : temperature;

    if (temperature >= settings_.max_c) hot_ = true;
    else if (temperature < settings_.max_c - settings_.hysteresis_c) hot_ = false;

    const double target = settings_.target_c;
    const bool trigger = proactive ? predicted >= target : temperature > target;
    if (!engaged_ && (trigger || hot_)) {
        engaged_ = true;
        saturated_s_ = 0.0;
        integral_ = duty_ - settings_.kp * (target - predicted);  // bumpless: the duty carries on from here
    }
    if (engaged_) {
        // Proactive integrates the predicted error too: the integral starts winding down before the
        // target is crossed, and at rest (slope 0) the prediction is the temperature, so no offset remains.
        integral_ += settings_.kp / settings_.ti_s * (target - predicted) * dt;
        double u = integral_ + settings_.kp * (target - predicted);
        // Anti-windup: the integral is held where the output saturates.
        if (u > 1.0) {
            integral_ -= u - 1.0;
            u = 1.0;
        } else if (u < settings_.min_duty) {
            integral_ += settings_.min_duty - u;
            u = settings_.min_duty;
        }
        duty_ = u;
        saturated_s_ = (u >= 1.0 && temperature < target - settings_.hysteresis_c && !hot_) ? saturated_s_ + dt : 0.0;
        if (saturated_s_ >= settings_.release_hold_s) engaged_ = false;
    } else {
        duty_ = 1.0;
    }

    Decision d;
    d.mode = hot_ ? Mode::Hot : engaged_ ? Mode::Pacing : Mode::Cool;
    d.duty = duty_;
    d.batch_scale = duty_;
    d.max_level = hot_ ? 0 : kAllLevels;
    d.temperature_known = true;
    d.temperature_c = temperature;
    d.slope_c_per_s = rate;
    d.predicted_c = temperature + rate * settings_.horizon_s;
    return d;
}

}  // namespace grey::govern
