// The HIP runtime (libamdhip64) and ROCm SMI (librocm_smi64), opened at run time from candidate lists
// of sonames (they drift between ROCm releases), each ending in the unversioned name. The HIP entry
// points the backend cannot work without are resolved up front; ROCm SMI is optional and each of its
// entry points is resolved on its own, so a missing one marks only the fields it feeds.
#pragma once

#include "common/vendor_library.hpp"
#include "hip/hip_api.hpp"

#include <span>
#include <stdexcept>
#include <string>

namespace grey::hip {

class HipError : public std::runtime_error {
public:
    HipError(api::Error error, std::string message) : std::runtime_error(std::move(message)), error_(error) {}
    [[nodiscard]] api::Error error() const noexcept { return error_; }

private:
    api::Error error_;
};

// The library cannot be used at all: not installed, a missing entry point, or it did not start.
class LibraryUnavailable : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline constexpr const char* kHipCandidates[] = {"libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5", "libamdhip64.so"};
inline constexpr const char* kSmiCandidates[] = {"librocm_smi64.so.7", "librocm_smi64.so.6", "librocm_smi64.so.5", "librocm_smi64.so.1",
                                                 "librocm_smi64.so"};

class HipRuntime {
public:
    // Resolves every entry point and calls hipInit(0); throws LibraryUnavailable naming what is missing.
    explicit HipRuntime(std::span<const char* const> candidates = kHipCandidates);

    [[nodiscard]] const std::string& library_name() const noexcept { return library_.name(); }
    // "HIP: hipMalloc failed: hipErrorOutOfMemory".
    [[nodiscard]] std::string describe(api::Error error, const char* call) const;
    // "HIP: hipDeviceGetUuid not found in libamdhip64.so.6".
    [[nodiscard]] std::string missing(const char* name) const { return std::string("HIP: ") + name + " not found in " + library_.name(); }
    void check(api::Error error, const char* call) const {
        if (error != api::kSuccess) throw HipError(error, describe(error, call));
    }

    api::InitFn init = nullptr;
    api::GetDeviceCountFn get_device_count = nullptr;
    api::DeviceGetNameFn device_get_name = nullptr;
    api::DeviceGetAttributeFn device_get_attribute = nullptr;
    api::DeviceTotalMemFn device_total_mem = nullptr;
    api::DeviceGetPCIBusIdFn device_get_pci_bus_id = nullptr;
    api::SetDeviceFn set_device = nullptr;
    api::MemGetInfoFn mem_get_info = nullptr;
    api::MallocFn mem_alloc = nullptr;
    api::FreeFn mem_free = nullptr;
    api::MemcpyFn mem_copy = nullptr;
    api::MemsetFn mem_set = nullptr;
    api::DeviceSynchronizeFn device_synchronize = nullptr;
    api::VersionFn driver_get_version = nullptr;
    api::VersionFn runtime_get_version = nullptr;
    api::GetErrorNameFn get_error_name = nullptr;
    // Optional: NULL where the runtime lacks it (the uuid field then says so).
    api::DeviceGetUuidFn device_get_uuid = nullptr;
    // Optional, for the kernels (without them the kernels are unavailable, and say which is missing):
    // modules, launches, and the device's gfx target (the R0000 layout: hip_api.hpp).
    api::ModuleLoadDataFn module_load_data = nullptr;
    api::ModuleUnloadFn module_unload = nullptr;
    api::ModuleGetFunctionFn module_get_function = nullptr;
    api::ModuleLaunchKernelFn module_launch_kernel = nullptr;
    // Optional, for the quantization kernels (their grids are sized by it, hip_quantizer.hpp).
    api::ModuleOccupancyFn module_occupancy = nullptr;
    // Optional, for the stream slots (hip_streams.hpp); require_stream_api() names the first missing one.
    api::StreamCreateFn stream_create = nullptr;
    api::StreamFn stream_destroy = nullptr;
    api::StreamFn stream_synchronize = nullptr;
    api::StreamFn stream_query = nullptr;
    api::StreamWaitEventFn stream_wait_event = nullptr;
    api::EventCreateFn event_create = nullptr;
    api::EventFn event_destroy = nullptr;
    api::EventFn event_synchronize = nullptr;
    api::EventFn event_query = nullptr;
    api::EventRecordFn event_record = nullptr;
    api::EventElapsedTimeFn event_elapsed_time = nullptr;
    api::MemcpyAsyncFn mem_copy_async = nullptr;
    api::MemsetAsyncFn mem_set_async = nullptr;
    // Throws std::domain_error (the slots' GREY_ERROR_UNSUPPORTED) naming the first stream entry point
    // the runtime lacks.
    void require_stream_api() const;
    api::GetDevicePropertiesFn get_device_properties = nullptr;
    const char* get_device_properties_name = nullptr;  // the symbol it was found under

private:
    backend::VendorLibrary library_;
    std::string stream_api_missing_;
};

class RocmSmi {
public:
    // Opens ROCm SMI and calls rsmi_init(0); throws LibraryUnavailable.
    explicit RocmSmi(std::span<const char* const> candidates = kSmiCandidates);
    ~RocmSmi();
    RocmSmi(const RocmSmi&) = delete;
    RocmSmi& operator=(const RocmSmi&) = delete;

    [[nodiscard]] std::string describe(rsmi::Status status, const char* call) const;
    [[nodiscard]] std::string missing(const char* name) const;

    rsmi::ShutDownFn shut_down = nullptr;
    rsmi::NumDevicesFn num_monitor_devices = nullptr;
    rsmi::PciIdFn dev_pci_id_get = nullptr;
    rsmi::SensorU64Fn dev_power_cap_get = nullptr;
    rsmi::U64Fn dev_power_cap_default_get = nullptr;
    rsmi::CapRangeFn dev_power_cap_range_get = nullptr;
    rsmi::CapSetFn dev_power_cap_set = nullptr;
    rsmi::SensorU64Fn dev_power_ave_get = nullptr;
    rsmi::EnergyFn dev_energy_count_get = nullptr;
    rsmi::TempFn dev_temp_metric_get = nullptr;
    rsmi::PercentFn dev_busy_percent_get = nullptr;
    rsmi::PercentFn dev_memory_busy_percent_get = nullptr;
    rsmi::MemoryFn dev_memory_usage_get = nullptr;
    rsmi::VersionStrFn version_str_get = nullptr;
    rsmi::StatusStringFn status_string = nullptr;
    rsmi::ClockFn dev_gpu_clk_freq_get = nullptr;
    rsmi::PcieBandwidthFn dev_pci_bandwidth_get = nullptr;
    rsmi::ThrottleStatusFn dev_metrics_indep_throttle_status_get = nullptr;
    // The library's major version (rsmi_version_get), which decides the frequency structs' layout; 0
    // when it cannot say, and then those structs are not read.
    uint32_t major_version = 0;
    std::string version_unknown;  // why major_version is 0

private:
    backend::VendorLibrary library_;
};

}  // namespace grey::hip
