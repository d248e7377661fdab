#include "cuda/nvml.hpp"

#include <dlfcn.h>

#include <initializer_list>

namespace grey::cuda {

Nvml::Nvml(const char* library) : library_name_(library) {
    library_ = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) {
        const char* why = dlerror();
        throw NvmlUnavailable(std::string("NVML is not available: dlopen(") + library + ") failed: " + (why ? why : "unknown error"));
    }
    // The first of `names` the library exports, or NULL.
    auto find = [this](std::initializer_list<const char*> names, const char** found = nullptr) -> void* {
        for (const char* name : names)
            if (void* fn = dlsym(library_, name)) {
                if (found != nullptr) *found = name;
                return fn;
            }
        return nullptr;
    };
    auto init = reinterpret_cast<Return (*)()>(find({"nvmlInit_v2", "nvmlInit"}));
    shutdown = reinterpret_cast<decltype(shutdown)>(find({"nvmlShutdown"}));
    error_string = reinterpret_cast<decltype(error_string)>(find({"nvmlErrorString"}));
    if (init == nullptr || shutdown == nullptr) {
        dlclose(library_);
        throw NvmlUnavailable(std::string("NVML is not usable: ") + library + " exports neither nvmlInit_v2 nor nvmlInit, or no nvmlShutdown");
    }
    if (const Return r = init(); r != nvml::kSuccess) {
        const std::string why = describe(r, "nvmlInit_v2");
        dlclose(library_);
        throw NvmlUnavailable("NVML did not start: " + why);
    }
    system_get_driver_version = reinterpret_cast<decltype(system_get_driver_version)>(find({"nvmlSystemGetDriverVersion"}));
    device_get_handle_by_pci_bus_id = reinterpret_cast<decltype(device_get_handle_by_pci_bus_id)>(
        find({"nvmlDeviceGetHandleByPciBusId_v2", "nvmlDeviceGetHandleByPciBusId"}));
    device_get_memory_info_v2 = reinterpret_cast<decltype(device_get_memory_info_v2)>(find({"nvmlDeviceGetMemoryInfo_v2"}));
    device_get_memory_info = reinterpret_cast<decltype(device_get_memory_info)>(find({"nvmlDeviceGetMemoryInfo"}));
    device_get_max_clock_info = reinterpret_cast<decltype(device_get_max_clock_info)>(find({"nvmlDeviceGetMaxClockInfo"}));
    device_get_clock_info = reinterpret_cast<decltype(device_get_clock_info)>(find({"nvmlDeviceGetClockInfo"}));
    device_get_enforced_power_limit = reinterpret_cast<decltype(device_get_enforced_power_limit)>(find({"nvmlDeviceGetEnforcedPowerLimit"}));
    device_get_power_default_limit =
        reinterpret_cast<decltype(device_get_power_default_limit)>(find({"nvmlDeviceGetPowerManagementDefaultLimit"}));
    device_get_power_limit_constraints =
        reinterpret_cast<decltype(device_get_power_limit_constraints)>(find({"nvmlDeviceGetPowerManagementLimitConstraints"}));
    device_get_power_management_limit =
        reinterpret_cast<decltype(device_get_power_management_limit)>(find({"nvmlDeviceGetPowerManagementLimit"}));
    device_set_power_management_limit =
        reinterpret_cast<decltype(device_set_power_management_limit)>(find({"nvmlDeviceSetPowerManagementLimit"}));
    device_get_temperature_threshold =
        reinterpret_cast<decltype(device_get_temperature_threshold)>(find({"nvmlDeviceGetTemperatureThreshold"}));
    device_get_curr_pcie_link_generation =
        reinterpret_cast<decltype(device_get_curr_pcie_link_generation)>(find({"nvmlDeviceGetCurrPcieLinkGeneration"}));
    device_get_max_pcie_link_generation =
        reinterpret_cast<decltype(device_get_max_pcie_link_generation)>(find({"nvmlDeviceGetMaxPcieLinkGeneration"}));
    device_get_curr_pcie_link_width = reinterpret_cast<decltype(device_get_curr_pcie_link_width)>(find({"nvmlDeviceGetCurrPcieLinkWidth"}));
    device_get_max_pcie_link_width = reinterpret_cast<decltype(device_get_max_pcie_link_width)>(find({"nvmlDeviceGetMaxPcieLinkWidth"}));
    device_get_temperature_v = reinterpret_cast<decltype(device_get_temperature_v)>(find({"nvmlDeviceGetTemperatureV"}));
    device_get_temperature = reinterpret_cast<decltype(device_get_temperature)>(find({"nvmlDeviceGetTemperature"}));
    device_get_power_usage = reinterpret_cast<decltype(device_get_power_usage)>(find({"nvmlDeviceGetPowerUsage"}));
    device_get_total_energy_consumption =
        reinterpret_cast<decltype(device_get_total_energy_consumption)>(find({"nvmlDeviceGetTotalEnergyConsumption"}));
    device_get_utilization_rates = reinterpret_cast<decltype(device_get_utilization_rates)>(find({"nvmlDeviceGetUtilizationRates"}));
    device_get_clocks_event_reasons = reinterpret_cast<decltype(device_get_clocks_event_reasons)>(
        find({"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"}, &clocks_event_reasons_name));
    device_get_field_values = reinterpret_cast<decltype(device_get_field_values)>(find({"nvmlDeviceGetFieldValues"}));
}

Nvml::~Nvml() {
    if (shutdown != nullptr) (void)shutdown();
    if (library_ != nullptr) dlclose(library_);
}

std::string Nvml::describe(Return result, const char* call) const {
    const char* text = error_string != nullptr ? error_string(result) : nullptr;
    return std::string("NVML: ") + call + " failed: " + (text != nullptr ? text : "error " + std::to_string(result));
}

std::string Nvml::missing(const char* names) const { return std::string("NVML: ") + names + " not found in " + library_name_; }

}  // namespace grey::cuda
