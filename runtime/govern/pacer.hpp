// A token bucket of device time: it fills at `rate` nanoseconds of admitted work per nanosecond of wall
// time (the controller's duty) up to `burst`, and each admission takes its estimated cost. Work may be
// admitted while the bucket holds anything, so it can go into debt by one request's cost; the debt is
// repaid before the next admission. Not synchronised: the owning DeviceGate's mutex guards it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace grey::govern {

class Pacer {
public:
    void configure(uint64_t burst_ns) {
        burst_ = static_cast<double>(burst_ns);
        tokens_ = std::min(tokens_, burst_);
    }
    void start(uint64_t now_ns, uint64_t burst_ns) {
        burst_ = static_cast<double>(burst_ns);
        tokens_ = burst_;
        last_ns_ = now_ns;
    }

    // Brings the bucket up to `now_ns` at the current rate; call before changing the rate.
    void refill(uint64_t now_ns) {
        if (now_ns > last_ns_) {
            tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ns - last_ns_) * rate_);
            last_ns_ = now_ns;
        }
    }
    void set_rate(double rate) { rate_ = std::clamp(rate, 1e-6, 1.0); }
    [[nodiscard]] double rate() const noexcept { return rate_; }

    [[nodiscard]] bool ready() const noexcept { return tokens_ > 0.0; }
    void take(uint64_t cost_ns) { tokens_ -= static_cast<double>(cost_ns); }
    // Gives back (or, negative, takes more of) what an admission's estimate was off by.
    void adjust(double ns) { tokens_ = std::min(burst_, tokens_ + ns); }

    // When the bucket will next hold something, if it is refilled at the current rate.
    [[nodiscard]] uint64_t ready_at(uint64_t now_ns) const noexcept {
        if (tokens_ > 0.0) return now_ns;
        return now_ns + static_cast<uint64_t>(std::ceil((1.0 - tokens_) / rate_));
    }
    [[nodiscard]] double tokens() const noexcept { return tokens_; }

private:
    double rate_ = 1.0;
    double burst_ = 0.0;
    double tokens_ = 0.0;
    uint64_t last_ns_ = 0;
};

}  // namespace grey::govern
