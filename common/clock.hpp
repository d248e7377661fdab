// The monotonic clock every timestamp libgrey reports is read from (telemetry samples, rate intervals):
// CLOCK_MONOTONIC in nanoseconds, so that the host and a GPU backend stamp their samples on one scale.
#pragma once

#include <cstdint>
#include <ctime>

namespace grey::common {

inline uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace grey::common
