// Spec and telemetry of one Level Zero device: the core API (properties, memory, caches) and Sysman
// through the same device handle (PCI, memory modules and bandwidth, frequency domains and throttle
// reasons, power limits and energy, temperature sensors). Every field is either set with its source or
// marked with its state and the reason; none is left as a bare 0.
#pragma once

#include "grey_backend.h"
#include "level0/ze_library.hpp"

#include <cstdint>
#include <mutex>
#include <optional>

namespace grey::level0 {

struct DeviceIdentity {
    ze_driver_handle_t driver = nullptr;
    ze_device_handle_t device = nullptr;
};

// The previous energy reading of a device: power draw is the energy used between two telemetry samples
// (Level Zero reports no instantaneous power).
struct EnergyHistory {
    std::mutex mutex;
    std::optional<zes_power_energy_counter_t> previous;
};

void fill_spec(const ZeLibrary& ze, const DeviceIdentity& id, grey_device_spec& spec, const grey_field_reasons* reasons);
void fill_telemetry(const ZeLibrary& ze, const DeviceIdentity& id, EnergyHistory& energy, grey_device_telemetry& telemetry,
                    const grey_field_reasons* reasons);

// grey_throttle_reason bits for zes_freq_throttle_reason_flags_t (docs/backends.md has the table).
uint64_t map_throttle_reasons(zes_freq_throttle_reason_flags_t flags);

}  // namespace grey::level0
