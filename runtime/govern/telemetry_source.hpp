// What the governor reads from a device each period. A reading whose temperature is missing, older than
// the previous one, or implausible is "unknown" to the controller: never taken as cool.
#pragma once

#include "grey.h"

#include <cstdint>
#include <optional>

struct grey_context;

namespace grey::govern {

struct Reading {
    uint64_t timestamp_ns = 0;  // when the sample was taken (monotonic clock)
    std::optional<double> temperature_c;
    std::optional<uint64_t> power_mw;
    std::optional<uint64_t> energy_mj;
    std::optional<uint64_t> throttle_reasons;
    std::optional<uint64_t> throttle_power_ns;
    std::optional<uint64_t> throttle_thermal_ns;
};

class TelemetrySource {
public:
    virtual ~TelemetrySource() = default;
    // Never throws: a device that cannot be read gives a reading with nothing in it.
    [[nodiscard]] virtual Reading read(uint32_t device) noexcept = 0;
};

// Reads through the context's backends (grey_device_telemetry_get), as any host program would.
class BackendTelemetry final : public TelemetrySource {
public:
    explicit BackendTelemetry(grey_context* context) : context_(context) {}
    [[nodiscard]] Reading read(uint32_t device) noexcept override;

private:
    grey_context* context_;
};

}  // namespace grey::govern
