#include "hip/hip_runtime.hpp"

namespace grey::hip {

namespace {

// Opens the first candidate; a missing library is LibraryUnavailable like any other reason.
backend::VendorLibrary open_library(std::span<const char* const> candidates, const char* what) try {
    return backend::VendorLibrary(candidates, what);
} catch (const backend::VendorLibraryMissing& e) {
    throw LibraryUnavailable(e.what());
}

}  // namespace

HipRuntime::HipRuntime(std::span<const char* const> candidates) : library_(open_library(candidates, "the HIP runtime")) {
    auto need = [this](const char* name) {
        void* fn = library_.symbol(name);
        if (fn == nullptr) throw LibraryUnavailable(library_.name() + " does not export " + name);
        return fn;
    };
#define GREY_HIP_NEED(member, name) member = reinterpret_cast<decltype(member)>(need(name));
    GREY_HIP_NEED(init, "hipInit")
    GREY_HIP_NEED(get_device_count, "hipGetDeviceCount")
    GREY_HIP_NEED(device_get_name, "hipDeviceGetName")
    GREY_HIP_NEED(device_get_attribute, "hipDeviceGetAttribute")
    GREY_HIP_NEED(device_total_mem, "hipDeviceTotalMem")
    GREY_HIP_NEED(device_get_pci_bus_id, "hipDeviceGetPCIBusId")
    GREY_HIP_NEED(set_device, "hipSetDevice")
    GREY_HIP_NEED(mem_get_info, "hipMemGetInfo")
    GREY_HIP_NEED(mem_alloc, "hipMalloc")
    GREY_HIP_NEED(mem_free, "hipFree")
    GREY_HIP_NEED(mem_copy, "hipMemcpy")
    GREY_HIP_NEED(mem_set, "hipMemset")
    GREY_HIP_NEED(device_synchronize, "hipDeviceSynchronize")
    GREY_HIP_NEED(driver_get_version, "hipDriverGetVersion")
    GREY_HIP_NEED(runtime_get_version, "hipRuntimeGetVersion")
    GREY_HIP_NEED(get_error_name, "hipGetErrorName")
#undef GREY_HIP_NEED
    device_get_uuid = reinterpret_cast<api::DeviceGetUuidFn>(library_.symbol("hipDeviceGetUuid"));
    module_load_data = reinterpret_cast<api::ModuleLoadDataFn>(library_.symbol("hipModuleLoadData"));
    module_unload = reinterpret_cast<api::ModuleUnloadFn>(library_.symbol("hipModuleUnload"));
    module_get_function = reinterpret_cast<api::ModuleGetFunctionFn>(library_.symbol("hipModuleGetFunction"));
    module_launch_kernel = reinterpret_cast<api::ModuleLaunchKernelFn>(library_.symbol("hipModuleLaunchKernel"));
    module_occupancy = reinterpret_cast<api::ModuleOccupancyFn>(library_.symbol("hipModuleOccupancyMaxActiveBlocksPerMultiprocessor"));
    const std::pair<void**, const char*> stream_api[] = {
        {reinterpret_cast<void**>(&stream_create), "hipStreamCreate"},         {reinterpret_cast<void**>(&stream_destroy), "hipStreamDestroy"},
        {reinterpret_cast<void**>(&stream_synchronize), "hipStreamSynchronize"}, {reinterpret_cast<void**>(&stream_query), "hipStreamQuery"},
        {reinterpret_cast<void**>(&stream_wait_event), "hipStreamWaitEvent"},   {reinterpret_cast<void**>(&event_create), "hipEventCreate"},
        {reinterpret_cast<void**>(&event_destroy), "hipEventDestroy"},         {reinterpret_cast<void**>(&event_synchronize), "hipEventSynchronize"},
        {reinterpret_cast<void**>(&event_query), "hipEventQuery"},             {reinterpret_cast<void**>(&event_record), "hipEventRecord"},
        {reinterpret_cast<void**>(&event_elapsed_time), "hipEventElapsedTime"}, {reinterpret_cast<void**>(&mem_copy_async), "hipMemcpyAsync"},
        {reinterpret_cast<void**>(&mem_set_async), "hipMemsetAsync"}};
    for (const auto& [member, name] : stream_api) {
        *member = library_.symbol(name);
        if (*member == nullptr && stream_api_missing_.empty()) stream_api_missing_ = name;
    }
    // ROCm 6 and 7 name the ROCm 5 layout hipGetDevicePropertiesR0000 (their hipGetDeviceProperties is a
    // macro for hipGetDevicePropertiesR0600, another layout); ROCm 5 has only hipGetDeviceProperties.
    for (const char* name : {"hipGetDevicePropertiesR0000", "hipGetDeviceProperties"}) {
        if (void* fn = library_.symbol(name)) {
            get_device_properties = reinterpret_cast<api::GetDevicePropertiesFn>(fn);
            get_device_properties_name = name;
            break;
        }
    }
    if (const api::Error e = init(0); e != api::kSuccess)
        throw LibraryUnavailable("the HIP runtime " + library_.name() + " did not start: " + describe(e, "hipInit"));
}

void HipRuntime::require_stream_api() const {
    if (!stream_api_missing_.empty()) throw std::domain_error("no streams: " + missing(stream_api_missing_.c_str()));
}

std::string HipRuntime::describe(api::Error error, const char* call) const {
    const char* name = get_error_name != nullptr ? get_error_name(error) : nullptr;
    return std::string("HIP: ") + call + " failed: " + (name != nullptr ? name : "hipError_t " + std::to_string(error));
}

RocmSmi::RocmSmi(std::span<const char* const> candidates) : library_(open_library(candidates, "ROCm SMI")) {
    auto find = [this](const char* name) { return library_.symbol(name); };
    auto init = reinterpret_cast<rsmi::InitFn>(find("rsmi_init"));
    shut_down = reinterpret_cast<rsmi::ShutDownFn>(find("rsmi_shut_down"));
    status_string = reinterpret_cast<rsmi::StatusStringFn>(find("rsmi_status_string"));
    num_monitor_devices = reinterpret_cast<rsmi::NumDevicesFn>(find("rsmi_num_monitor_devices"));
    dev_pci_id_get = reinterpret_cast<rsmi::PciIdFn>(find("rsmi_dev_pci_id_get"));
    if (init == nullptr || shut_down == nullptr || num_monitor_devices == nullptr || dev_pci_id_get == nullptr)
        throw LibraryUnavailable("ROCm SMI is not usable: " + library_.name() +
                                 " lacks rsmi_init, rsmi_shut_down, rsmi_num_monitor_devices or rsmi_dev_pci_id_get");
    if (const rsmi::Status s = init(0); s != rsmi::kSuccess) {
        shut_down = nullptr;
        throw LibraryUnavailable("ROCm SMI did not start: " + describe(s, "rsmi_init"));
    }
    dev_power_cap_get = reinterpret_cast<rsmi::SensorU64Fn>(find("rsmi_dev_power_cap_get"));
    dev_power_cap_default_get = reinterpret_cast<rsmi::U64Fn>(find("rsmi_dev_power_cap_default_get"));
    dev_power_cap_range_get = reinterpret_cast<rsmi::CapRangeFn>(find("rsmi_dev_power_cap_range_get"));
    dev_power_cap_set = reinterpret_cast<rsmi::CapSetFn>(find("rsmi_dev_power_cap_set"));
    dev_power_ave_get = reinterpret_cast<rsmi::SensorU64Fn>(find("rsmi_dev_power_ave_get"));
    dev_energy_count_get = reinterpret_cast<rsmi::EnergyFn>(find("rsmi_dev_energy_count_get"));
    dev_temp_metric_get = reinterpret_cast<rsmi::TempFn>(find("rsmi_dev_temp_metric_get"));
    dev_busy_percent_get = reinterpret_cast<rsmi::PercentFn>(find("rsmi_dev_busy_percent_get"));
    dev_memory_busy_percent_get = reinterpret_cast<rsmi::PercentFn>(find("rsmi_dev_memory_busy_percent_get"));
    dev_memory_usage_get = reinterpret_cast<rsmi::MemoryFn>(find("rsmi_dev_memory_usage_get"));
    version_str_get = reinterpret_cast<rsmi::VersionStrFn>(find("rsmi_version_str_get"));
    dev_gpu_clk_freq_get = reinterpret_cast<rsmi::ClockFn>(find("rsmi_dev_gpu_clk_freq_get"));
    dev_pci_bandwidth_get = reinterpret_cast<rsmi::PcieBandwidthFn>(find("rsmi_dev_pci_bandwidth_get"));
    dev_metrics_indep_throttle_status_get = reinterpret_cast<rsmi::ThrottleStatusFn>(find("rsmi_dev_metrics_indep_throttle_status_get"));
    rsmi::Version version{};
    if (auto version_get = reinterpret_cast<rsmi::VersionFn>(find("rsmi_version_get")); version_get == nullptr)
        version_unknown = missing("rsmi_version_get");
    else if (const rsmi::Status v = version_get(&version); v != rsmi::kSuccess)
        version_unknown = describe(v, "rsmi_version_get");
    else if (version.major == 0)
        version_unknown = "ROCm SMI: rsmi_version_get gave major version 0";
    else
        major_version = version.major;
}

RocmSmi::~RocmSmi() {
    if (shut_down != nullptr) (void)shut_down();
}

std::string RocmSmi::describe(rsmi::Status status, const char* call) const {
    const char* text = nullptr;
    if (status_string == nullptr || status_string(status, &text) != rsmi::kSuccess) text = nullptr;
    return std::string("ROCm SMI: ") + call + " failed: " + (text != nullptr ? text : "rsmi_status_t " + std::to_string(status));
}

std::string RocmSmi::missing(const char* name) const { return std::string("ROCm SMI: ") + name + " not found in " + library_.name(); }

}  // namespace grey::hip
