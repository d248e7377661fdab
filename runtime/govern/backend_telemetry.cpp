#include "govern/telemetry_source.hpp"

namespace grey::govern {
namespace {

std::optional<uint64_t> value(const grey_field_u64& field) {
    if (field.state != GREY_FIELD_OK) return std::nullopt;
    return field.value;
}

}  // namespace

Reading BackendTelemetry::read(uint32_t device) noexcept {
    Reading reading;
    grey_device_telemetry t{};
    t.struct_size = sizeof t;
    if (grey_device_telemetry_get(context_, device, &t) != GREY_OK) return reading;
    reading.timestamp_ns = t.timestamp_ns;
    if (t.temperature_c.state == GREY_FIELD_OK) reading.temperature_c = t.temperature_c.value;
    reading.power_mw = value(t.power_draw_mw);
    reading.energy_mj = value(t.energy_total_mj);
    reading.throttle_reasons = value(t.throttle_reasons);
    reading.throttle_power_ns = value(t.throttle_time_power_ns);
    reading.throttle_thermal_ns = value(t.throttle_time_thermal_ns);
    return reading;
}

}  // namespace grey::govern
