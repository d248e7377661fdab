// NVML, opened at run time. Symbols are resolved one by one with fallbacks to their older names, since
// NVIDIA versions and deprecates them (several were deprecated in CUDA 13); a symbol that is absent
// leaves its pointer NULL and the fields it feeds are reported unsupported with the symbol's name.
#pragma once

#include "cuda/nvml_api.hpp"

#include <stdexcept>
#include <string>

namespace grey::cuda {

class NvmlUnavailable : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Nvml {
public:
    // Opens `library` (normally "libnvidia-ml.so.1") and initialises NVML; throws NvmlUnavailable.
    explicit Nvml(const char* library);
    ~Nvml();
    Nvml(const Nvml&) = delete;
    Nvml& operator=(const Nvml&) = delete;

    [[nodiscard]] const std::string& library_name() const noexcept { return library_name_; }
    // "NVML: nvmlDeviceGetPowerUsage failed: Insufficient Permissions".
    [[nodiscard]] std::string describe(nvml::Return result, const char* call) const;
    // "NVML: nvmlDeviceGetPowerUsage not found in libnvidia-ml.so.1".
    [[nodiscard]] std::string missing(const char* names) const;

    using Device = nvml::Device;
    using Return = nvml::Return;

    Return (*shutdown)() = nullptr;
    const char* (*error_string)(Return) = nullptr;
    Return (*system_get_driver_version)(char*, unsigned int) = nullptr;
    Return (*device_get_handle_by_pci_bus_id)(const char*, Device*) = nullptr;
    Return (*device_get_memory_info_v2)(Device, nvml::MemoryV2*) = nullptr;
    Return (*device_get_memory_info)(Device, nvml::Memory*) = nullptr;
    Return (*device_get_max_clock_info)(Device, int, unsigned int*) = nullptr;
    Return (*device_get_clock_info)(Device, int, unsigned int*) = nullptr;
    Return (*device_get_enforced_power_limit)(Device, unsigned int*) = nullptr;
    Return (*device_get_power_default_limit)(Device, unsigned int*) = nullptr;
    Return (*device_get_power_limit_constraints)(Device, unsigned int*, unsigned int*) = nullptr;
    // The limit the host sets (the enforced limit may be lower), and setting it (needs root).
    Return (*device_get_power_management_limit)(Device, unsigned int*) = nullptr;
    Return (*device_set_power_management_limit)(Device, unsigned int) = nullptr;
    Return (*device_get_temperature_threshold)(Device, int, unsigned int*) = nullptr;
    Return (*device_get_curr_pcie_link_generation)(Device, unsigned int*) = nullptr;
    Return (*device_get_max_pcie_link_generation)(Device, unsigned int*) = nullptr;
    Return (*device_get_curr_pcie_link_width)(Device, unsigned int*) = nullptr;
    Return (*device_get_max_pcie_link_width)(Device, unsigned int*) = nullptr;
    Return (*device_get_temperature_v)(Device, nvml::TemperatureV1*) = nullptr;
    Return (*device_get_temperature)(Device, int, unsigned int*) = nullptr;
    Return (*device_get_power_usage)(Device, unsigned int*) = nullptr;
    Return (*device_get_total_energy_consumption)(Device, unsigned long long*) = nullptr;
    Return (*device_get_utilization_rates)(Device, nvml::Utilization*) = nullptr;
    // nvmlDeviceGetCurrentClocksEventReasons, or its older name ...ClocksThrottleReasons.
    Return (*device_get_clocks_event_reasons)(Device, unsigned long long*) = nullptr;
    const char* clocks_event_reasons_name = "nvmlDeviceGetCurrentClocksEventReasons";
    Return (*device_get_field_values)(Device, int, nvml::FieldValue*) = nullptr;

private:
    void* library_ = nullptr;
    std::string library_name_;
};

}  // namespace grey::cuda
